//! The shape check: walks a [`Node`] tree against the format table in `fields.rs`
//! and reports every unknown field (with a did-you-mean hint), missing required
//! field, wrong type, bad duration and bad enum value, all at once.

use super::duration::parse_duration;
use super::fields::{step_kinds, Field, Ty, MAX_PARALLELISM, PIPELINE, STEP_COMMON};
use super::node::{Node, NodeKind, ScalarStyle};
use crate::diag::{did_you_mean, Diagnostics};

/// Checks a whole pipeline document.
pub fn check_pipeline(root: &Node, diags: &mut Diagnostics) {
    if !matches!(root.kind, NodeKind::Map(_)) {
        diags.error(
            root.span,
            format!("a pipeline file must be a mapping with `sources:` and `sinks:`, found {}", root.describe()),
            None,
        );
        return;
    }
    check_object(root, PIPELINE, "the pipeline", diags);
}

pub fn is_valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z')) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub fn scalar_int(node: &Node) -> Option<i64> {
    match &node.kind {
        NodeKind::Scalar { text, style: ScalarStyle::Plain } => text.replace('_', "").parse().ok(),
        _ => None,
    }
}

pub fn scalar_bool(node: &Node) -> Option<bool> {
    match &node.kind {
        NodeKind::Scalar { text, style: ScalarStyle::Plain } => match &**text {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn check_object(node: &Node, fields: &[Field], what: &str, diags: &mut Diagnostics) {
    let entries = match &node.kind {
        NodeKind::Map(entries) => entries.as_slice(),
        _ if node.is_null() => &[],
        _ => {
            diags.error(node.span, format!("expected a mapping for {what}, found {}", node.describe()), None);
            return;
        }
    };
    for (key, value) in entries {
        let name = key.scalar().unwrap_or_default();
        match fields.iter().find(|f| f.name == name) {
            Some(field) => match &field.ty {
                // `sources:` and `sinks:` entries are named "source `id`", "sink `id`".
                Ty::Map(inner @ Ty::Tagged { .. }) if matches!(value.kind, NodeKind::Map(_)) => {
                    let singular = name.trim_end_matches('s');
                    for (k, v) in value.entries() {
                        check_value(v, inner, &format!("{singular} `{}`", k.scalar().unwrap_or_default()), diags);
                    }
                }
                _ => check_value(value, &field.ty, &field_of(name, what), diags),
            },
            None => diags.error(
                key.span,
                format!("unknown field `{name}` in {what}"),
                did_you_mean(name, fields.iter().map(|f| f.name))
                    .or_else(|| Some(format!("expected one of: {}", names(fields)))),
            ),
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if node.get(field.name).is_none() {
            diags.error(node.span, format!("missing required field `{}` in {what}", field.name), None);
        }
    }
}

/// How a field is named in messages: `csv` of source `clicks`; top-level fields by name.
fn field_of(name: &str, what: &str) -> String {
    if what == "the pipeline" {
        format!("`{name}`")
    } else {
        format!("`{name}` of {what}")
    }
}

fn names(fields: &[Field]) -> String {
    fields.iter().map(|f| format!("`{}`", f.name)).collect::<Vec<_>>().join(", ")
}

fn kind_matches(node: &Node, ty: &Ty) -> bool {
    match ty {
        Ty::List(_) => matches!(node.kind, NodeKind::Seq(_)),
        Ty::Map(_) | Ty::Object(_) | Ty::Tagged { .. } => matches!(node.kind, NodeKind::Map(_)),
        Ty::Steps => matches!(node.kind, NodeKind::Seq(_)),
        Ty::AnyOf(alts) => alts.iter().any(|a| kind_matches(node, a)),
        Ty::Any => true,
        Ty::IdList | Ty::NameList => !matches!(node.kind, NodeKind::Map(_)),
        _ => matches!(node.kind, NodeKind::Scalar { .. }),
    }
}

fn expected(ty: &Ty) -> String {
    match ty {
        Ty::Str | Ty::Expr | Ty::Aggregate => "a string".into(),
        Ty::Id => "an id".into(),
        Ty::IdList => "an id or a list of ids".into(),
        Ty::NameList => "a field name or a list of field names".into(),
        Ty::Int => "an integer".into(),
        Ty::PosInt => "a positive integer".into(),
        Ty::Parallelism => format!("an integer from 1 to {MAX_PARALLELISM}"),
        Ty::Bool => "true or false".into(),
        Ty::Duration => "a duration such as 500ms, 10s, 5m".into(),
        Ty::Size => "a size such as 512MiB or 2GiB".into(),
        Ty::Enum(options) => format!("one of {}", options.join(", ")),
        Ty::Any => "a value".into(),
        Ty::List(_) | Ty::Steps => "a list".into(),
        Ty::Map(_) | Ty::Object(_) | Ty::Tagged { .. } => "a mapping".into(),
        Ty::AnyOf(alts) => alts.iter().map(expected).collect::<Vec<_>>().join(" or "),
    }
}

/// Checks one value against its type; `what` names the place for messages.
pub fn check_value(node: &Node, ty: &Ty, what: &str, diags: &mut Diagnostics) {
    if !kind_matches(node, ty) {
        diags.error(node.span, format!("{what} must be {}, found {}", expected(ty), node.describe()), None);
        return;
    }
    let text = node.scalar().unwrap_or_default();
    match ty {
        Ty::Str | Ty::Expr | Ty::Aggregate if node.is_null() => {
            diags.error(node.span, format!("{what} must be {}, found nothing", expected(ty)), None)
        }
        Ty::Str | Ty::Expr | Ty::Aggregate | Ty::Any => {}
        Ty::Id => check_id(node, what, diags),
        Ty::IdList => match &node.kind {
            NodeKind::Seq(items) => items.iter().for_each(|i| check_value(i, &Ty::Id, what, diags)),
            _ => check_id(node, what, diags),
        },
        Ty::NameList => match &node.kind {
            NodeKind::Seq(items) => items.iter().for_each(|i| check_value(i, &Ty::Str, what, diags)),
            _ => check_value(node, &Ty::Str, what, diags),
        },
        Ty::Int => {
            if scalar_int(node).is_none() {
                diags.error(node.span, format!("{what} must be an integer, found `{text}`"), None);
            }
        }
        Ty::PosInt => {
            if scalar_int(node).is_none_or(|v| v < 1) {
                diags.error(node.span, format!("{what} must be a positive integer, found `{text}`"), None);
            }
        }
        Ty::Parallelism => {
            if scalar_int(node).is_none_or(|v| v < 1 || v > MAX_PARALLELISM as i64) {
                diags.error(
                    node.span,
                    format!("{what} must be an integer from 1 to {MAX_PARALLELISM}, found `{text}`"),
                    None,
                );
            }
        }
        Ty::Bool => {
            if scalar_bool(node).is_none() {
                diags.error(node.span, format!("{what} must be true or false, found `{text}`"), None);
            }
        }
        Ty::Duration => {
            if let Err(message) = parse_duration(text) {
                diags.error(
                    node.span,
                    format!("{message} for {what}"),
                    Some("durations look like 500ms, 10s, 5m, 1h, 1d".into()),
                );
            }
        }
        Ty::Size => {
            if let Err(message) = crate::spec::duration::parse_size(text) {
                diags.error(
                    node.span,
                    format!("{message} for {what}"),
                    Some("sizes look like 512MiB, 2GiB, 1GB".into()),
                );
            }
        }
        Ty::Enum(options) => {
            if !options.contains(&text) {
                diags.error(
                    node.span,
                    format!("{what} must be one of {}, found `{text}`", options.join(", ")),
                    did_you_mean(text, options.iter().copied()),
                );
            }
        }
        Ty::List(item) => node.items().iter().for_each(|i| check_value(i, item, what, diags)),
        Ty::Map(value) => {
            for (key, v) in node.entries() {
                check_value(v, value, &field_of(key.scalar().unwrap_or_default(), what), diags);
            }
        }
        Ty::Object(fields) => check_object(node, fields, what, diags),
        Ty::AnyOf(alts) => {
            if let Some(alt) = alts.iter().find(|a| kind_matches(node, a)) {
                check_value(node, alt, what, diags);
            }
        }
        Ty::Tagged { tag, variants } => check_tagged(node, tag, variants, what, diags),
        Ty::Steps => node.items().iter().enumerate().for_each(|(i, item)| check_step(item, i, diags)),
    }
}

fn check_id(node: &Node, what: &str, diags: &mut Diagnostics) {
    let text = node.scalar().unwrap_or_default();
    if !is_valid_id(text) {
        diags.error(
            node.span,
            format!("invalid id `{text}` for {what}"),
            Some("ids are lower case: a letter, then letters, digits or `_`".into()),
        );
    }
}

fn check_tagged(node: &Node, tag: &str, variants: &[super::fields::Variant], what: &str, diags: &mut Diagnostics) {
    let Some(tag_node) = node.get(tag) else {
        let kinds = variants.iter().map(|v| v.name).collect::<Vec<_>>().join(", ");
        diags.error(node.span, format!("missing required field `{tag}` in {what}"), Some(format!("one of: {kinds}")));
        return;
    };
    let name = tag_node.scalar().unwrap_or_default();
    match variants.iter().find(|v| v.name == name) {
        Some(variant) => check_object(node, variant.fields, what, diags),
        None => diags.error(
            tag_node.span,
            format!("unknown {tag} `{name}` for {what}"),
            did_you_mean(name, variants.iter().map(|v| v.name)).or_else(|| {
                Some(format!("one of: {}", variants.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")))
            }),
        ),
    }
}

/// The key and value of a step item that name its kind (`filter`, `map`, ...). With
/// several kinds (an error the check reports) the first one is used, so that later
/// rules still see the step.
pub fn step_kind(item: &Node) -> Option<(&Node, &Node)> {
    item.entries().iter().find(|(k, _)| step_kinds().any(|f| Some(f.name) == k.scalar())).map(|(k, v)| (k, v))
}

fn check_step(item: &Node, index: usize, diags: &mut Diagnostics) {
    let what = format!("step {}", index + 1);
    if !matches!(item.kind, NodeKind::Map(_)) {
        diags.error(
            item.span,
            format!("{what} must be a mapping such as `- filter: x > 1`, found {}", item.describe()),
            None,
        );
        return;
    }
    let mut kinds = 0;
    for (key, value) in item.entries() {
        let name = key.scalar().unwrap_or_default();
        if let Some(kind) = step_kinds().find(|f| f.name == name) {
            kinds += 1;
            if kinds > 1 {
                diags.error(
                    key.span,
                    format!("{what} has more than one kind (`{name}`)"),
                    Some("write each step as its own list item".into()),
                );
            }
            check_value(value, &kind.ty, &field_of(name, &what), diags);
        } else if let Some(common) = STEP_COMMON.iter().find(|f| f.name == name) {
            check_value(value, &common.ty, &field_of(name, &what), diags);
        } else {
            let candidates = step_kinds().chain(STEP_COMMON).map(|f| f.name);
            let hint = did_you_mean(name, candidates).or_else(|| {
                Some(format!("steps are: {}", step_kinds().map(|f| f.name).collect::<Vec<_>>().join(", ")))
            });
            diags.error(key.span, format!("unknown step `{name}` in {what}"), hint);
            kinds += 1;
        }
    }
    if kinds == 0 {
        diags.error(
            item.span,
            format!("{what} has no kind"),
            Some(format!("add one of: {}", step_kinds().map(|f| f.name).collect::<Vec<_>>().join(", "))),
        );
    }
}
