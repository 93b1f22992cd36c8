//! `flowctl export flink-sql`: a validated pipeline as a Flink SQL script that runs the
//! same logic on a Flink cluster. Sources and sinks become tables (`sources.rs`,
//! `sinks.rs`), steps views (`steps.rs`) over expressions translated from their parsed
//! trees (`expressions.rs`); what has no faithful Flink SQL equivalent is refused
//! with a diagnostic at its line and column, never translated approximately.

mod expressions;
mod sinks;
mod sources;
mod steps;
mod types;

use crate::diag::Diagnostics;
use crate::graph::NodeRef;
use crate::spec::ErrorPolicy;
use crate::validate::ValidPipeline;
use types::{config_duration, literal, Approximations, Refusal, Relation};

/// The Flink SQL script of a pipeline, or every refusal found. With
/// `allow_approximate`, what has a near equivalent is exported with a comment saying
/// how it differs, at the statement concerned.
pub fn flink_sql(p: &ValidPipeline, allow_approximate: bool) -> Result<String, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut refused = |r: Refusal| diags.error(r.span, r.message, r.hint);
    let approx = Approximations::new(allow_approximate);
    let spec = &p.spec;
    if spec.on_error.value != ErrorPolicy::Fail {
        let refusal = Refusal::new(
            spec.on_error.span,
            "`on_error` other than `fail`: a Flink job fails on a record it cannot read or evaluate",
            Some("remove `on_error` (Flink's formats can skip unparsable rows with `ignore-parse-errors`, not failed expressions)"),
        );
        if let Err(r) = approx.allow(refusal, "the job fails at such a record") {
            refused(r);
        }
    }
    // Notes not tied to one statement go at the top.
    let mut header = approx.take();
    let mut tables = Vec::new();
    let sources: Vec<Option<Relation>> = spec
        .sources
        .iter()
        .map(|s| match sources::table(spec, s, &approx) {
            Ok(t) => {
                tables.push(noted(approx.take(), t.ddl));
                Some(t.relation)
            }
            Err(r) => {
                refused(r);
                None
            }
        })
        .collect();
    let mut views = Vec::new();
    let mut pending = Vec::new();
    let mut steps: Vec<Option<Relation>> = vec![None; spec.steps.len()];
    let relation = |r: &NodeRef, steps: &[Option<Relation>]| -> Option<Relation> {
        match r {
            NodeRef::Source(i) => sources[*i].clone(),
            NodeRef::Step(i) => steps[*i].clone(),
            NodeRef::Sink(_) => None,
        }
    };
    for &i in &p.graph.step_order {
        // An input that was refused has been reported; what reads it is not translated.
        let Some(inputs) = p.graph.step_inputs[i].iter().map(|r| relation(r, &steps)).collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let inputs: Vec<&Relation> = inputs.iter().collect();
        let first = views.len();
        match steps::step(p, i, &inputs, &approx, &mut views) {
            Ok(r) => {
                // A `window` step writes nothing: its notes go with the `reduce` view.
                pending.extend(approx.take());
                if views.len() > first {
                    views[first] = noted(std::mem::take(&mut pending), std::mem::take(&mut views[first]));
                }
                steps[i] = Some(r)
            }
            Err(mut r) => {
                // Every refusal names the step it is in.
                let label = spec.steps[i].label(i);
                if !r.message.starts_with(&format!("step `{label}`")) {
                    r.message = format!("step `{label}`: {}", r.message);
                }
                refused(r)
            }
        }
    }
    header.append(&mut pending);
    let mut sink_tables = Vec::new();
    let mut inserts = Vec::new();
    for (i, sink) in spec.sinks.iter().enumerate() {
        let inputs = &p.graph.sink_inputs[i];
        if inputs.is_empty() {
            // Only `late:` or `on_error:` feed it; both are refused where they are set.
            continue;
        }
        let Some(input) = inputs.iter().map(|r| relation(r, &steps)).collect::<Option<Vec<_>>>() else { continue };
        let input = match input.as_slice() {
            [one] => one.clone(),
            several => {
                let refs: Vec<&Relation> = several.iter().collect();
                match sink_union(&sink.id.value, sink.type_span, &refs, &mut views) {
                    Ok(r) => r,
                    Err(r) => {
                        refused(r);
                        continue;
                    }
                }
            }
        };
        match sinks::table(spec, sink, &input) {
            Ok(t) => {
                sink_tables.push(t.ddl);
                inserts.push(t.insert);
            }
            Err(r) => refused(r),
        }
    }
    if !diags.is_empty() {
        return Err(diags.sorted());
    }
    Ok(script(p, &header, &tables, &views, &sink_tables, &inserts))
}

/// A statement with the comment lines of its approximations before it.
fn noted(notes: Vec<String>, statement: String) -> String {
    if notes.is_empty() {
        return statement;
    }
    format!("{}\n{statement}", notes.join("\n"))
}

/// Several inputs of a sink, as one UNION ALL view.
fn sink_union(
    id: &str,
    at: crate::spec::node::Span,
    inputs: &[&Relation],
    views: &mut Vec<String>,
) -> Result<Relation, Refusal> {
    let name = format!("{id}_input");
    steps::union_all(&name, at, inputs, views)
}

fn script(
    p: &ValidPipeline,
    header: &[String],
    tables: &[String],
    views: &[String],
    sinks: &[String],
    inserts: &[String],
) -> String {
    let spec = &p.spec;
    let mut out = format!(
        "-- Flink SQL for the flowctl pipeline `{}` ({}), exported by flowctl {}.\n\
         -- Runs in Flink 2.x's SQL client (sql-client.sh -f) and statement by statement through\n\
         -- TableEnvironment.execute_sql. Watermarks are periodic in Flink: input later than the\n\
         -- watermark delay may be dropped where flowctl kept it, or the other way round.\n",
        spec.name,
        spec.path.display(),
        env!("CARGO_PKG_VERSION")
    );
    for note in header {
        out.push_str(note);
        out.push('\n');
    }
    let mut set = |k: &str, v: &str| out.push_str(&format!("SET {} = {};\n", literal(k), literal(v)));
    set("execution.runtime-mode", "streaming");
    set("table.local-time-zone", "UTC");
    set("pipeline.name", &spec.name);
    if let Some(n) = &spec.parallelism {
        set("parallelism.default", &n.value.to_string());
    }
    if let Some(c) = &spec.checkpoint {
        set("execution.checkpointing.interval", &config_duration(c.interval));
    }
    for block in [tables, views, sinks] {
        for statement in block {
            out.push('\n');
            out.push_str(statement);
            out.push('\n');
        }
    }
    out.push_str("\nEXECUTE STATEMENT SET\nBEGIN\n");
    for insert in inserts {
        out.push_str(insert);
        out.push('\n');
    }
    out.push_str("END;\n");
    out
}
