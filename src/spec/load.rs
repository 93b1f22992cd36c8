//! YAML text to a [`Node`] tree with positions. The only user of the YAML crate.
//!
//! We use `saphyr-parser` (the maintained YAML 1.2 parser of the saphyr project) at the
//! event level rather than a serde deserializer: serde stops at the first error, while
//! `flowctl validate` must report every mistake in a file at once, each with its own
//! line and column. The loader also rejects duplicate keys, which YAML libraries
//! commonly accept silently.
//!
//! Aliases are expanded into copies, so a small file with nested aliases (an "alias
//! bomb") could describe billions of nodes: the loader stops with an error at the alias
//! once the document would exceed [`MAX_NODES`] nodes, and at any collection nested
//! deeper than [`MAX_DEPTH`] (deep trees would exhaust the stack of later passes).

use super::interpolate::interpolate;
use super::node::{Node, NodeKind, ScalarStyle, Span};
use crate::diag::Diagnostics;
use saphyr_parser::{Event, Parser, ScalarStyle as YamlStyle};
use std::collections::HashMap;
use std::sync::Arc;

/// The most nodes a document may have, aliases expanded (documented in docs/limits.md).
pub const MAX_NODES: usize = 100_000;
/// The deepest nesting of sequences and mappings a document may have.
pub const MAX_DEPTH: usize = 128;

/// Parses `text` into a tree. YAML syntax errors and duplicate keys are added to
/// `diags`; `None` means there is no usable document.
pub fn parse_yaml(text: &str, env: &dyn Fn(&str) -> Option<String>, diags: &mut Diagnostics) -> Option<Node> {
    let mut builder =
        Builder { stack: Vec::new(), anchors: HashMap::new(), root: None, env, diags, nodes: 0, too_big: false };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_event() {
            None => break,
            Some(Ok((event, span))) => {
                let at = Span::new(span.start.line(), span.start.col() + 1, span.len().max(1));
                if builder.event(event, at) {
                    break;
                }
                if builder.too_big {
                    return None;
                }
            }
            Some(Err(e)) => {
                let m = e.marker();
                builder.diags.error(Span::new(m.line(), m.col() + 1, 1), format!("invalid YAML: {}", e.info()), None);
                return None;
            }
        }
    }
    builder.root
}

/// A collection being built; `size` counts the nodes in it so far (aliases expanded).
enum Frame {
    Seq { span: Span, items: Vec<Node>, anchor: usize, size: usize },
    Map { span: Span, entries: Vec<(Node, Node)>, key: Option<Node>, anchor: usize, size: usize },
}

struct Builder<'a> {
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes (nodes, aliases expanded).
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    env: &'a dyn Fn(&str) -> Option<String>,
    diags: &'a mut Diagnostics,
    /// Nodes in the document so far, aliases expanded.
    nodes: usize,
    /// A limit was hit (and reported): the document is not used.
    too_big: bool,
}

impl Builder<'_> {
    /// Handles one event; true when the first document is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> bool {
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let style = match style {
                    YamlStyle::Plain => ScalarStyle::Plain,
                    YamlStyle::SingleQuoted | YamlStyle::DoubleQuoted => ScalarStyle::Quoted,
                    _ => ScalarStyle::Block,
                };
                let text = interpolate(&text, span, self.env, self.diags);
                let node = Node { kind: NodeKind::Scalar { text: Arc::from(text), style }, span };
                self.count(1, span) && self.finish(node, anchor, 1)
            }
            Event::SequenceStart(anchor, _) => {
                if self.enter(span) {
                    self.stack.push(Frame::Seq { span, items: Vec::new(), anchor, size: 0 });
                }
                false
            }
            Event::MappingStart(anchor, _) => {
                if self.enter(span) {
                    self.stack.push(Frame::Map { span, entries: Vec::new(), key: None, anchor, size: 0 });
                }
                false
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { span, items, anchor, size }) => {
                    self.count(1, span) && self.finish(Node { kind: NodeKind::Seq(items), span }, anchor, size + 1)
                }
                _ => false,
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { span, entries, anchor, size, .. }) => {
                    let node = Node { kind: NodeKind::Map(entries), span: Span { len: 1, ..span } };
                    self.count(1, span) && self.finish(node, anchor, size + 1)
                }
                _ => false,
            },
            Event::Alias(id) => {
                let size = self.anchors.get(&id).map_or(1, |(_, size)| *size);
                if !self.count(size, span) {
                    return false;
                }
                let node = self.anchors.get(&id).map(|(node, _)| node.clone()).unwrap_or(Node {
                    kind: NodeKind::Scalar { text: Arc::from(""), style: ScalarStyle::Plain },
                    span,
                });
                self.finish(node, 0, size)
            }
            Event::DocumentEnd => self.root.is_some(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => false,
        }
    }

    /// Adds `n` nodes to the document's count; false (after reporting it at `span`)
    /// when that exceeds [`MAX_NODES`].
    fn count(&mut self, n: usize, span: Span) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES && !self.too_big {
            self.too_big = true;
            self.diags.error(
                span,
                format!("the document has more than {MAX_NODES} nodes with its aliases expanded"),
                Some("aliases (`*name`) copy what their anchor (`&name`) holds; nested ones multiply".into()),
            );
        }
        !self.too_big
    }

    /// Checks the nesting depth before a collection opens; false (after reporting it)
    /// when it is too deep.
    fn enter(&mut self, span: Span) -> bool {
        if self.stack.len() >= MAX_DEPTH && !self.too_big {
            self.too_big = true;
            self.diags.error(span, format!("sequences and mappings are nested more than {MAX_DEPTH} deep"), None);
        }
        !self.too_big
    }

    /// Attaches a complete node of `size` nodes to its parent; true when it was the
    /// document root.
    fn finish(&mut self, node: Node, anchor: usize, size: usize) -> bool {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                true
            }
            Some(Frame::Seq { items, size: total, .. }) => {
                *total += size;
                items.push(node);
                false
            }
            Some(Frame::Map { entries, key, size: total, .. }) => {
                *total += size;
                match key.take() {
                    None => {
                        if !matches!(node.kind, NodeKind::Scalar { .. }) {
                            self.diags.error(node.span, "mapping keys must be plain strings", None);
                        }
                        *key = Some(node);
                    }
                    Some(k) => {
                        if let Some((first, _)) = entries.iter().find(|(e, _)| e.scalar() == k.scalar()) {
                            self.diags.error(
                                k.span,
                                format!("duplicate key `{}`", k.scalar().unwrap_or_default()),
                                Some(format!("first defined at line {}", first.span.line)),
                            );
                        } else {
                            entries.push((k, node));
                        }
                    }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Option<Node>, Diagnostics) {
        let mut d = Diagnostics::default();
        let n = parse_yaml(text, &|_| None, &mut d);
        (n, d)
    }

    #[test]
    fn positions_of_nested_values() {
        let (n, d) = parse("a:\n  b: [1, two]\n  c: {x: 'y'}\n");
        assert!(d.is_empty());
        let n = n.expect("document");
        let b = n.get("a").and_then(|a| a.get("b")).expect("b");
        assert_eq!(b.items()[1].span, Span::new(2, 10, 3));
        let x = n.get("a").and_then(|a| a.get("c")).and_then(|c| c.get("x")).expect("x");
        assert_eq!((x.span.line, x.span.col), (3, 10));
        assert_eq!(x.scalar(), Some("y"));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let (_, d) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d.items()[0].span.line, 3);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (n, d) = parse("a: [1, 2\nb: 3\n");
        assert!(n.is_none());
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let (n, d) = parse(&bomb);
        assert!(n.is_none());
        assert_eq!(d.len(), 1);
        assert!(d.items()[0].message.contains("more than 100000 nodes"), "{:?}", d.items()[0].message);
        let deep = format!("a: {}{}\n", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let (n, d) = parse(&deep);
        assert!(n.is_none());
        assert!(d.items()[0].message.contains("nested more than"));
        let ok = format!("a: {}{}\n", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).1.is_empty());
    }

    #[test]
    fn anchors_and_aliases_copy_nodes() {
        let (n, d) = parse("a: &x {k: 1}\nb: *x\n");
        assert!(d.is_empty());
        assert_eq!(n.expect("doc").get("b").and_then(|b| b.get("k")).and_then(Node::scalar), Some("1"));
    }
}
