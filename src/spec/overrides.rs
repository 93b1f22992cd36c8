//! `--set path=value`: overrides of any spec value from the command line, applied to
//! the YAML tree before it is checked, so an overridden value is validated like one
//! written in the file (cron scripts reuse one pipeline file with other paths).

use super::node::{Node, NodeKind, ScalarStyle, Span};
use crate::diag::Diagnostics;
use std::sync::Arc;

/// One `--set`: a dotted path (list items by index) and a YAML scalar value.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub path: Vec<String>,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (path, value) = s.split_once('=').ok_or_else(|| format!("`{s}` is not path=value"))?;
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!("`{s}`: the path has an empty part"));
        }
        Ok(Override { path, value: value.to_string() })
    }
}

/// Applies overrides in order; a path through a value that is not a mapping or list
/// is a diagnostic at that value.
pub fn apply(root: &mut Node, overrides: &[Override], diags: &mut Diagnostics) {
    for o in overrides {
        set(root, &o.path, &o.value, &o.path.join("."), diags);
    }
}

fn scalar(value: &str, span: Span) -> Node {
    Node { kind: NodeKind::Scalar { text: Arc::from(value), style: ScalarStyle::Plain }, span }
}

fn set(node: &mut Node, path: &[String], value: &str, whole: &str, diags: &mut Diagnostics) {
    let Some((first, rest)) = path.split_first() else {
        let span = node.span;
        *node = scalar(value, span);
        return;
    };
    let span = node.span;
    if node.is_null() {
        // `key:` with nothing after it: becomes a mapping to set into.
        node.kind = NodeKind::Map(Vec::new());
    }
    match &mut node.kind {
        NodeKind::Map(entries) => {
            let at = match entries.iter().position(|(k, _)| k.scalar() == Some(first.as_str())) {
                Some(i) => i,
                None => {
                    let child = if rest.is_empty() {
                        scalar(value, span)
                    } else {
                        Node { kind: NodeKind::Map(Vec::new()), span }
                    };
                    entries.push((scalar(first, span), child));
                    entries.len() - 1
                }
            };
            set(&mut entries[at].1, rest, value, whole, diags);
        }
        NodeKind::Seq(items) => match first.parse::<usize>().ok().filter(|i| *i < items.len()) {
            Some(i) => set(&mut items[i], rest, value, whole, diags),
            None => diags.error(
                span,
                format!("--set {whole}: `{first}` is not an index of this list (0..{})", items.len()),
                None,
            ),
        },
        NodeKind::Scalar { .. } => {
            diags.error(span, format!("--set {whole}: `{first}` cannot be set inside a plain value"), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load::parse_yaml;

    #[test]
    fn replaces_inserts_and_indexes() {
        let mut d = Diagnostics::default();
        let mut root = parse_yaml("a: {b: 1}\nl: [x, {y: 2}]\n", &|_| None, &mut d).unwrap();
        let overrides: Vec<Override> = ["a.b=5", "a.c.d=new", "l.1.y=3"].iter().map(|s| s.parse().unwrap()).collect();
        apply(&mut root, &overrides, &mut d);
        assert!(d.is_empty());
        assert_eq!(root.get("a").and_then(|a| a.get("b")).and_then(Node::scalar), Some("5"));
        assert_eq!(root.get("a").and_then(|a| a.get("c")).and_then(|c| c.get("d")).and_then(Node::scalar), Some("new"));
        assert_eq!(root.get("l").unwrap().items()[1].get("y").and_then(Node::scalar), Some("3"));
        apply(&mut root, &["a.b.x=1".parse().unwrap()], &mut d);
        assert_eq!(d.len(), 1);
        assert!("nonsense".parse::<Override>().is_err());
    }
}
