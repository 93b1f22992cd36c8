//! The pipeline format reference (docs/reference.md), generated from the format table,
//! the function library and the aggregate list, so it is complete by construction. A
//! test fails when the checked-in file is stale.

use super::fields::{Field, Ty, Variant, PIPELINE, SINK_TYPES, SOURCE_TYPES, STEP_COMMON};
use crate::steps::aggregate::AggFunc;
use std::fmt::Write as _;

fn ty_name(t: &Ty) -> String {
    match t {
        Ty::Str => "string".into(),
        Ty::Id => "id".into(),
        Ty::IdList => "id or list of ids".into(),
        Ty::NameList => "name or list of names".into(),
        Ty::Int => "integer".into(),
        Ty::PosInt => "integer ≥ 1".into(),
        Ty::Parallelism => format!("integer 1 to {}", super::fields::MAX_PARALLELISM),
        Ty::Bool => "bool".into(),
        Ty::Duration => "duration".into(),
        Ty::Size => "size".into(),
        Ty::Enum(o) => o.join(" \\| "),
        Ty::Expr => "expression".into(),
        Ty::Aggregate => "aggregate call".into(),
        Ty::Any => "any".into(),
        Ty::List(i) => format!("list of {}", ty_name(i)),
        Ty::Map(v) => format!("map of {}", ty_name(v)),
        Ty::Object(_) => "mapping (below)".into(),
        Ty::AnyOf(a) => a.iter().map(ty_name).collect::<Vec<_>>().join(" or "),
        Ty::Tagged { .. } => "mapping by `type`".into(),
        Ty::Steps => "list of steps".into(),
    }
}

fn table(out: &mut String, fields: &[Field], prefix: &str) {
    let _ = writeln!(out, "| field | type | required | meaning |\n|---|---|---|---|");
    for f in fields {
        let _ = writeln!(
            out,
            "| `{prefix}{}` | {} | {} | {} |",
            f.name,
            ty_name(&f.ty),
            if f.required { "yes" } else { "" },
            f.doc.replace('|', "\\|")
        );
    }
    for f in fields {
        let nested = match &f.ty {
            Ty::Object(inner) => Some(*inner),
            Ty::Map(inner) | Ty::List(inner) => match inner {
                Ty::Object(i) => Some(*i),
                _ => None,
            },
            Ty::AnyOf(alts) => alts.iter().find_map(|a| match a {
                Ty::Object(i) => Some(*i),
                _ => None,
            }),
            _ => None,
        };
        if let Some(inner) = nested {
            let _ = writeln!(out);
            table(out, inner, &format!("{prefix}{}.", f.name));
        }
    }
}

fn variants(out: &mut String, title: &str, list: &[Variant]) {
    for v in list {
        let _ = writeln!(out, "### {title} `{}`\n\n{}\n", v.name, v.doc);
        table(out, v.fields, "");
        let _ = writeln!(out);
    }
}

/// The whole reference as markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# flowctl pipeline reference\n\nGenerated from the format table in `src/spec/fields.rs` and the function library in `src/expr/` (`UPDATE_DOCS=1 cargo test reference` rewrites it). The semantics are described in the README and in the contract; this page lists every field.\n\n## Top level\n\n",
    );
    table(&mut out, PIPELINE, "");
    let _ = writeln!(out, "\nDurations: `500ms`, `2s`, `5m`, `1h`, `1d`, or sums like `1m30s`. `${{VAR}}` and `${{VAR:-default}}` are replaced from the environment in every value; `$${{` is a literal `${{`.\n\n## Sources\n");
    variants(&mut out, "source", SOURCE_TYPES);
    let _ = writeln!(out, "## Steps\n\nEach item of `steps:` has exactly one of these keys, plus optionally:\n");
    table(&mut out, STEP_COMMON, "");
    let _ = writeln!(out);
    for kind in super::fields::step_kinds() {
        let _ = writeln!(out, "### step `{}`\n\n{} Value: {}.\n", kind.name, kind.doc, ty_name(&kind.ty));
        if let Ty::Object(inner) = &kind.ty {
            table(&mut out, inner, "");
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "## Sinks\n");
    variants(&mut out, "sink", SINK_TYPES);
    let _ = writeln!(out, "## Aggregates (in `reduce`)\n\n| aggregate | meaning |\n|---|---|");
    for (name, _, doc) in AggFunc::ALL {
        let _ = writeln!(out, "| `{name}` | {doc} |");
    }
    let _ = writeln!(out, "\n## Functions (in expressions)\n\n| function | meaning |\n|---|---|");
    for f in crate::expr::functions() {
        let _ = writeln!(out, "| `{}` | {} |", f.signature, f.doc.replace('|', "\\|"));
    }
    out
}
