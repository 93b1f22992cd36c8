//! The position-carrying YAML tree that every later stage reads: each node knows the
//! line and column it came from, so any diagnostic can point at it.

use std::sync::Arc;

/// A place in a pipeline file: 1-based line and column (in characters) and a length in
/// characters for the caret underline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    pub fn new(line: usize, col: usize, len: usize) -> Span {
        Span { line, col, len }
    }

    /// A position `chars` characters to the right on the same line.
    pub fn shifted(self, chars: usize, len: usize) -> Span {
        Span { line: self.line, col: self.col + chars, len }
    }
}

/// How a scalar was written. Quoted scalars are always strings; plain ones are typed
/// by YAML's core schema when a number or bool is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    Quoted,
    Block,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Scalar {
        text: Arc<str>,
        style: ScalarStyle,
    },
    Seq(Vec<Node>),
    /// Mapping entries in file order; keys are scalars (checked by the loader).
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl Node {
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, style: ScalarStyle::Plain } if matches!(&**text, "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.kind {
            NodeKind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.kind {
            NodeKind::Seq(items) => items,
            _ => &[],
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries().iter().find(|(k, _)| k.scalar() == Some(key)).map(|(_, v)| v)
    }

    /// The key node (for positions) of `key` in a mapping.
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        self.entries().iter().find(|(k, _)| k.scalar() == Some(key)).map(|(k, _)| k)
    }

    /// What kind of YAML value this is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Scalar { .. } if self.is_null() => "nothing (null)",
            NodeKind::Scalar { style: ScalarStyle::Plain, text } => {
                if text.parse::<i64>().is_ok() {
                    "a number"
                } else if matches!(&**text, "true" | "false") {
                    "a bool"
                } else {
                    "a string"
                }
            }
            NodeKind::Scalar { .. } => "a string",
        }
    }
}

impl Node {
    /// The node as a record value: plain scalars typed as YAML's core schema says
    /// (null, bool, int, float, else string), quoted ones as strings, lists and
    /// mappings as lists and maps. For literal values in the spec (generators, tests).
    pub fn to_value(&self) -> crate::record::Value {
        use crate::record::Value;
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => Value::Null,
            NodeKind::Scalar { text, style: ScalarStyle::Plain } => match &**text {
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                t => t
                    .parse::<i64>()
                    .map(Value::Int)
                    .or_else(|_| t.parse::<f64>().map(Value::Float))
                    .unwrap_or_else(|_| Value::str(text)),
            },
            NodeKind::Scalar { text, .. } => Value::str(text),
            NodeKind::Seq(items) => Value::List(Arc::new(items.iter().map(Node::to_value).collect())),
            NodeKind::Map(entries) => Value::Map(Arc::new(
                entries.iter().map(|(k, v)| (Arc::from(k.scalar().unwrap_or_default()), v.to_value())).collect(),
            )),
        }
    }
}
