//! Steps as Flink SQL views: filter, map, set and drop become `CREATE TEMPORARY VIEW`s
//! over the input's columns; `key_by` and `window` mark the relation for the `reduce`
//! that follows (window TVFs with GROUP BY, or an updating GROUP BY for a rolling
//! reduce); several inputs become a UNION ALL. Steps without a faithful Flink SQL
//! form are refused.

use super::expressions;
use super::types::{quote, Approximations, Column, KeyColumn, Refusal, Relation, Sql, TIME_COLUMN};
use crate::spec::{KeySpec, LatePolicy, StepKind, WindowKind};
use crate::steps::component::Relational;
use crate::steps::CompiledStep;
use crate::validate::ValidPipeline;

/// Translates step `i`, appending its statements to `out`; returns what it outputs.
pub fn step(
    p: &ValidPipeline,
    i: usize,
    inputs: &[&Relation],
    approx: &Approximations,
    out: &mut Vec<String>,
) -> Result<Relation, Refusal> {
    let spec = &p.spec.steps[i];
    let name = view_name(p, i);
    let input = union_all(&format!("{name}_input"), spec.span, inputs, out)?;
    let view =
        |body: String, out: &mut Vec<String>| out.push(format!("CREATE TEMPORARY VIEW {} AS\n{body};", quote(&name)));
    let label = spec.label(i);
    match (&spec.kind, &p.steps[i]) {
        (StepKind::KeyBy(keys), CompiledStep::KeyBy { names, .. }) => {
            let exprs: Vec<&crate::spec::ExprSpec> = match keys {
                KeySpec::Exprs(list) => list.iter().collect(),
                KeySpec::Named(list) => list.iter().map(|(_, e)| e).collect(),
            };
            let key = exprs
                .iter()
                .zip(names)
                .map(|(e, n)| {
                    Ok(KeyColumn { name: n.to_string(), sql: expressions::translate(e, &input.columns, approx)? })
                })
                .collect::<Result<Vec<_>, Refusal>>()?;
            Ok(Relation { key: Some(key), ..input })
        }
        (StepKind::Window(w), _) => {
            if !input.time {
                return Err(Refusal::new(
                    w.kind.span,
                    format!(
                        "step `{label}`: a processing-time window (the source has no `event_time`) is not exported"
                    ),
                    Some("give the source an `event_time`; processing-time results depend on timing"),
                ));
            }
            if let WindowKind::Count(_) = w.kind.value {
                return Err(Refusal::new(w.kind.span, format!("step `{label}`: Flink SQL has no count windows"), None));
            }
            if !w.allowed_lateness.is_zero() {
                let refusal = Refusal::new(
                    w.kind.span,
                    format!("step `{label}`: Flink's window TVFs have no allowed lateness (late updates)"),
                    Some("remove `allowed_lateness`"),
                );
                approx.allow(refusal, "records later than the watermark are dropped, not added as updates")?;
            }
            if let LatePolicy::Sink(sink) = &w.late.value {
                let refusal = Refusal::new(
                    w.late.span,
                    format!("step `{label}`: Flink's window TVFs drop late records; they cannot go to sink `{sink}`"),
                    Some("use `late: drop`"),
                );
                approx.allow(refusal, &format!("late records are dropped; sink `{sink}` gets none"))?;
            }
            if let WindowKind::Sliding { size, slide } = w.kind.value {
                if size.as_millis() % slide.as_millis() != 0 {
                    return Err(Refusal::new(
                        w.kind.span,
                        format!("step `{label}`: Flink's HOP windows need a size that is a multiple of the slide"),
                        None,
                    ));
                }
            }
            Ok(Relation { window: Some((w.kind.value.clone(), w.kind.span)), ..input })
        }
        (StepKind::Reduce(aggs), _) => reduce(p, i, &name, input, aggs, approx, out),
        (StepKind::Component(config), _) => {
            let kind = config.kind();
            if input.updating.is_some() {
                return Err(Refusal::new(
                    spec.span,
                    format!(
                        "step `{label}` reads the updates of a rolling reduce; the export only sends them to sinks"
                    ),
                    None,
                ));
            }
            let time = if input.time { format!(", {}", quote(TIME_COLUMN)) } else { String::new() };
            let from = quote(&input.name);
            match config.relational() {
                Relational::Filter(e) => {
                    let pred = expressions::predicate(e, &input.columns, approx)?;
                    view(format!("SELECT {}\nFROM {from}\nWHERE {}", input.select_list(), pred.text), out);
                    Ok(Relation { name, ..input })
                }
                Relational::Project(fields) => {
                    let mut columns = Vec::new();
                    let mut items = Vec::new();
                    for (n, e) in fields {
                        let sql = expressions::translate(e, &input.columns, approx)?;
                        items.push(format!("{} AS {}", sql.text, quote(&n.value)));
                        columns.push((n.value.clone(), sql));
                    }
                    keep_key(&input, &columns, spec.span, &label)?;
                    view(format!("SELECT {}{time}\nFROM {from}", items.join(", ")), out);
                    Ok(Relation { name, columns: typed(columns), ..input })
                }
                Relational::Assign(fields) => {
                    let mut columns: Vec<(String, Sql)> = input
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), Sql { text: quote(&c.name), ty: c.ty }))
                        .collect();
                    // Every expression reads the input record, then all are assigned.
                    let computed = fields
                        .iter()
                        .map(|(n, e)| Ok((n.value.clone(), expressions::translate(e, &input.columns, approx)?)))
                        .collect::<Result<Vec<_>, Refusal>>()?;
                    for (n, sql) in computed {
                        match columns.iter_mut().find(|(c, _)| *c == n) {
                            Some(slot) => slot.1 = sql,
                            None => columns.push((n, sql)),
                        }
                    }
                    keep_key(&input, &columns, spec.span, &label)?;
                    let items: Vec<String> =
                        columns.iter().map(|(n, s)| format!("{} AS {}", s.text, quote(n))).collect();
                    view(format!("SELECT {}{time}\nFROM {from}", items.join(", ")), out);
                    Ok(Relation { name, columns: typed(columns), ..input })
                }
                Relational::Remove(names) => {
                    let columns: Vec<(String, Sql)> = input
                        .columns
                        .iter()
                        .filter(|c| !names.iter().any(|n| n.value == c.name))
                        .map(|c| (c.name.clone(), Sql { text: quote(&c.name), ty: c.ty }))
                        .collect();
                    keep_key(&input, &columns, spec.span, &label)?;
                    let items: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
                    view(format!("SELECT {}{time}\nFROM {from}", items.join(", ")), out);
                    Ok(Relation { name, columns: typed(columns), ..input })
                }
                Relational::Dedup { key, within, keep_first } => {
                    if let Some(w) = within {
                        return Err(Refusal::new(
                            w.span,
                            format!(
                                "step `{label}`: flowctl's dedup intervals (`within`, closed by the watermark) have no \
                                 Flink SQL equivalent; Flink's deduplication keeps a key until a state TTL"
                            ),
                            Some("without `within`, `keep: first` exports as Flink's deduplication"),
                        ));
                    }
                    if !keep_first.value {
                        return Err(Refusal::new(
                            keep_first.span,
                            format!("step `{label}`: `keep: last` is not exported"),
                            None,
                        ));
                    }
                    if !input.ordered {
                        return Err(Refusal::new(
                            spec.span,
                            format!(
                                "step `{label}` keeps the first record in arrival order, which flowctl defines by \
                                 event time across sources and partitions and Flink does not"
                            ),
                            Some("dedup the records of one file source"),
                        ));
                    }
                    dedup(&name, &input, key, approx, out)
                }
                Relational::Unnest { each, as_field } => {
                    let list = expressions::split_list(each, &input.columns, approx)?;
                    let item = quote("flowctl_item");
                    let mut columns: Vec<(String, Sql)> = input
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), Sql { text: quote(&c.name), ty: c.ty }))
                        .collect();
                    let element = Sql { text: item.clone(), ty: list.ty };
                    match columns.iter_mut().find(|(c, _)| *c == as_field.value) {
                        Some(slot) => slot.1 = element,
                        None => columns.push((as_field.value.clone(), element)),
                    }
                    keep_key(&input, &columns, spec.span, &label)?;
                    let items: Vec<String> =
                        columns.iter().map(|(n, s)| format!("{} AS {}", s.text, quote(n))).collect();
                    view(
                        format!(
                            "SELECT {}{time}\nFROM {from} CROSS JOIN UNNEST({}) AS `flowctl_items`({item})",
                            items.join(", "),
                            list.text
                        ),
                        out,
                    );
                    Ok(Relation { name, columns: typed(columns), ..input })
                }
                Relational::Opaque => Err(Refusal::new(spec.span, opaque_reason(kind, &label), None)),
            }
        }
        _ => Err(Refusal::new(spec.span, format!("step `{label}` has no Flink SQL translation"), None)),
    }
}

fn opaque_reason(kind: &str, label: &str) -> String {
    format!("step `{label}`: `{kind}` has no Flink SQL translation")
}

/// `dedup` with `keep: first` and no `within`: Flink's deduplication on processing
/// time (arrival order), which keeps each key's first row forever and appends only.
fn dedup(
    name: &str,
    input: &Relation,
    own: &[crate::spec::ExprSpec],
    approx: &Approximations,
    out: &mut Vec<String>,
) -> Result<Relation, Refusal> {
    let mut partition: Vec<String> = input.key.iter().flatten().map(|k| k.sql.text.clone()).collect();
    for e in own {
        partition.push(expressions::translate(e, &input.columns, approx)?.text);
    }
    let arrival = format!("{name}_arrival");
    out.push(format!(
        "CREATE TEMPORARY VIEW {} AS\nSELECT {}, PROCTIME() AS `flowctl_arrival`\nFROM {};",
        quote(&arrival),
        input.select_list(),
        quote(&input.name)
    ));
    out.push(format!(
        "CREATE TEMPORARY VIEW {} AS\nSELECT {}\nFROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY `flowctl_arrival` ASC) AS `flowctl_row`\n  FROM {}\n)\nWHERE `flowctl_row` = 1;",
        quote(name),
        input.select_list(),
        partition.join(", "),
        quote(&arrival)
    ));
    Ok(Relation { name: name.to_string(), ..input.clone() })
}

/// The view name of step `i`: its id, or `<kind>_<n>`.
pub fn view_name(p: &ValidPipeline, i: usize) -> String {
    let spec = &p.spec.steps[i];
    match &spec.id {
        Some(id) => id.value.clone(),
        None => format!("{}_{}", spec.kind.name(), i + 1),
    }
}

fn typed(columns: Vec<(String, Sql)>) -> Vec<Column> {
    columns.into_iter().map(|(name, sql)| Column { name, ty: sql.ty }).collect()
}

/// A step between a `key_by` and its `reduce` must leave the key's columns as they
/// were: flowctl computed the key before the step, the export computes it at the reduce.
fn keep_key(
    input: &Relation,
    columns: &[(String, Sql)],
    at: crate::spec::node::Span,
    label: &str,
) -> Result<(), Refusal> {
    let Some(key) = &input.key else { return Ok(()) };
    for k in key {
        for c in &input.columns {
            let read = k.sql.text.contains(&quote(&c.name));
            let kept = columns.iter().any(|(n, s)| *n == c.name && s.text == quote(&c.name));
            if read && !kept {
                return Err(Refusal::new(
                    at,
                    format!("step `{label}` changes field `{}`, which the `key_by` before it keys by", c.name),
                    Some("move the step before the `key_by`"),
                ));
            }
        }
    }
    Ok(())
}

/// One relation from several inputs: the input itself, or a UNION ALL view `name` of them.
pub fn union_all(
    name: &str,
    at: crate::spec::node::Span,
    inputs: &[&Relation],
    out: &mut Vec<String>,
) -> Result<Relation, Refusal> {
    let first = inputs[0];
    if inputs.len() == 1 {
        return Ok(first.clone());
    }
    for other in &inputs[1..] {
        if other.columns != first.columns || other.time != first.time {
            return Err(Refusal::new(
                at,
                format!(
                    "the inputs `{}` and `{}` of `{name}` have different columns; Flink's UNION ALL needs the same",
                    first.name, other.name
                ),
                None,
            ));
        }
        if other.key.is_some()
            || other.window.is_some()
            || other.updating.is_some()
            || first.key.is_some()
            || first.window.is_some()
        {
            return Err(Refusal::new(at, format!("`{name}` reads several keyed, windowed or updating inputs"), None));
        }
    }
    let selects: Vec<String> =
        inputs.iter().map(|r| format!("SELECT {} FROM {}", r.select_list(), quote(&r.name))).collect();
    out.push(format!("CREATE TEMPORARY VIEW {} AS\n{};", quote(name), selects.join("\nUNION ALL\n")));
    Ok(Relation { name: name.to_string(), ordered: false, ..first.clone() })
}

/// Epoch milliseconds of a window TVF's TIMESTAMP(3) bound (the session is in UTC).
fn epoch_millis(column: &str) -> String {
    format!("(EXTRACT(EPOCH FROM {column}) * 1000 + EXTRACT(MILLISECOND FROM {column}))")
}

fn reduce(
    p: &ValidPipeline,
    i: usize,
    name: &str,
    input: Relation,
    aggs: &[(crate::spec::Spanned<String>, crate::spec::ExprSpec)],
    approx: &Approximations,
    out: &mut Vec<String>,
) -> Result<Relation, Refusal> {
    let spec = &p.spec.steps[i];
    let label = spec.label(i);
    if input.updating.is_some() {
        return Err(Refusal::new(
            spec.span,
            format!("step `{label}` aggregates the updates of a rolling reduce"),
            None,
        ));
    }
    let key = input.key.clone().unwrap_or_default();
    // Keys that are not plain columns are computed in a view of their own first.
    let plain = key.iter().all(|k| k.sql.text == quote(&k.name));
    let (from, key_refs): (Relation, Vec<String>) = if plain {
        (input.clone(), key.iter().map(|k| quote(&k.name)).collect())
    } else {
        let keyed = format!("{name}_keyed");
        let refs: Vec<String> = (1..=key.len()).map(|n| quote(&format!("flowctl_key_{n}"))).collect();
        let items: Vec<String> = key.iter().zip(&refs).map(|(k, r)| format!("{} AS {r}", k.sql.text)).collect();
        out.push(format!(
            "CREATE TEMPORARY VIEW {} AS\nSELECT {}, {}\nFROM {};",
            quote(&keyed),
            input.select_list(),
            items.join(", "),
            quote(&input.name)
        ));
        (Relation { name: keyed, ..input.clone() }, refs)
    };
    let mut columns: Vec<Column> = key.iter().map(|k| Column { name: k.name.clone(), ty: k.sql.ty }).collect();
    let mut items: Vec<String> = key.iter().zip(&key_refs).map(|(k, r)| format!("{r} AS {}", quote(&k.name))).collect();
    let mut agg_items = Vec::new();
    for (n, e) in aggs {
        let sql = expressions::aggregate(e, &from.columns, approx)?;
        agg_items.push(format!("{} AS {}", sql.text, quote(&n.value)));
        columns.push(Column { name: n.value.clone(), ty: sql.ty });
    }
    let source = quote(&from.name);
    match &input.window {
        Some((kind, window_span)) => {
            let t = quote(TIME_COLUMN);
            let tvf = match kind {
                WindowKind::Tumbling(size) => {
                    format!("TUMBLE(TABLE {source}, DESCRIPTOR({t}), {})", super::types::interval(*size))
                }
                WindowKind::Sliding { size, slide } => format!(
                    "HOP(TABLE {source}, DESCRIPTOR({t}), {}, {})",
                    super::types::interval(*slide),
                    super::types::interval(*size)
                ),
                WindowKind::Session { gap } => {
                    let partition = match key_refs.len() {
                        0 => String::new(),
                        1 => format!(" PARTITION BY {}", key_refs[0]),
                        _ => {
                            // Checked on Flink 2.2: a view's SESSION with `PARTITION BY (a, b)`
                            // fails to resolve `b` once the view is expanded.
                            return Err(Refusal::new(
                                *window_span,
                                format!(
                                    "step `{label}`: Flink 2.2 cannot read back a session window partitioned by \
                                     several keys from a view"
                                ),
                                Some("key the session window by one field or expression"),
                            ));
                        }
                    };
                    format!("SESSION(TABLE {source}{partition}, DESCRIPTOR({t}), {})", super::types::interval(*gap))
                }
                WindowKind::Count(_) => {
                    return Err(Refusal::new(
                        spec.span,
                        format!("step `{label}`: Flink SQL has no count windows"),
                        None,
                    ))
                }
            };
            let bounds = ["window_start", "window_end"];
            for b in bounds {
                items.push(format!("{} AS {}", epoch_millis(b), quote(b)));
            }
            let at = key.len();
            columns.splice(
                at..at,
                bounds.iter().map(|b| Column { name: b.to_string(), ty: super::types::SqlType::Bigint }),
            );
            items.extend(agg_items);
            items.push(format!("window_time AS {t}"));
            let group: Vec<String> =
                ["window_start", "window_end", "window_time"].iter().map(|s| s.to_string()).chain(key_refs).collect();
            out.push(format!(
                "CREATE TEMPORARY VIEW {} AS\nSELECT {}\nFROM TABLE({tvf})\nGROUP BY {};",
                quote(name),
                items.join(", "),
                group.join(", ")
            ));
            Ok(Relation {
                name: name.to_string(),
                columns,
                time: true,
                key: None,
                window: None,
                updating: None,
                ..input
            })
        }
        None => {
            items.extend(agg_items);
            let group = if key_refs.is_empty() { String::new() } else { format!("\nGROUP BY {}", key_refs.join(", ")) };
            out.push(format!(
                "-- `{label}` is a rolling reduce: an updating GROUP BY whose every change is an update of its key's\n\
                 -- row (a retraction and a new row); its sink must accept updates (print, jdbc with a key).\n\
                 CREATE TEMPORARY VIEW {} AS\nSELECT {}\nFROM {source}{group};",
                quote(name),
                items.join(", ")
            ));
            let keys = key.iter().map(|k| k.name.clone()).collect();
            Ok(Relation {
                name: name.to_string(),
                columns,
                time: false,
                key: None,
                window: None,
                updating: Some(keys),
                ..input
            })
        }
    }
}
