//! Graph rules: unique, well-formed ids; `from:` references that resolve to sources or
//! steps; no cycles; every sink fed; `late:` and `on_error:` naming sinks. Produces
//! the resolved [`Graph`] the planner runs.

use crate::diag::{did_you_mean, Diagnostics};
use crate::spec::check::is_valid_id;
use crate::spec::{ErrorPolicy, LatePolicy, PipelineSpec, Spanned, StepKind};
use std::collections::HashMap;

pub use crate::graph::{Graph, NodeRef};

pub fn resolve(spec: &PipelineSpec, diags: &mut Diagnostics) -> Graph {
    let mut ids: HashMap<&str, (NodeRef, &Spanned<String>)> = HashMap::new();
    let mut all: Vec<(NodeRef, &Spanned<String>, &str)> = Vec::new();
    for (i, s) in spec.sources.iter().enumerate() {
        all.push((NodeRef::Source(i), &s.id, "source"));
    }
    for (i, s) in spec.steps.iter().enumerate() {
        if let Some(id) = &s.id {
            all.push((NodeRef::Step(i), id, "step"));
        }
    }
    for (i, s) in spec.sinks.iter().enumerate() {
        all.push((NodeRef::Sink(i), &s.id, "sink"));
    }
    for (_, id, what) in &all {
        if *what != "step" && !is_valid_id(&id.value) {
            diags.error(
                id.span,
                format!("invalid {what} id `{}`", id.value),
                Some("ids are lower case: a letter, then letters, digits or `_`".into()),
            );
        }
    }
    for (node, id, what) in all {
        match ids.get(id.value.as_str()) {
            Some((_, first)) => diags.error(
                id.span,
                format!("duplicate id `{}`: {what} ids must be unique among sources, steps and sinks", id.value),
                Some(format!("first used at line {}", first.span.line)),
            ),
            None => {
                ids.insert(id.value.as_str(), (node, id));
            }
        }
    }
    // A missing `sources:` or `sinks:` key was reported by the shape check.
    if let (true, Some(span)) = (spec.sources.is_empty(), spec.sources_span) {
        diags.error(
            span,
            "the pipeline has no sources",
            Some("add one under `sources:`, e.g. `input: {type: stdin}`".into()),
        );
    }
    if let (true, Some(span)) = (spec.sinks.is_empty(), spec.sinks_span) {
        diags.error(
            span,
            "the pipeline has no sinks",
            Some("add one under `sinks:`, e.g. `out: {type: stdout}`".into()),
        );
    }

    let candidates: Vec<&str> = ids.keys().copied().collect();
    let lookup = |r: &Spanned<String>, diags: &mut Diagnostics| -> Option<NodeRef> {
        match ids.get(r.value.as_str()) {
            Some((NodeRef::Sink(_), _)) => {
                diags.error(r.span, format!("`{}` is a sink; `from:` names sources or steps", r.value), None);
                None
            }
            Some((node, _)) => Some(*node),
            None => {
                diags.error(
                    r.span,
                    format!("`from:` names `{}`, which is not a source or a step id", r.value),
                    did_you_mean(&r.value, candidates.iter().copied()),
                );
                None
            }
        }
    };
    let all_sources: Vec<NodeRef> = (0..spec.sources.len()).map(NodeRef::Source).collect();
    let step_inputs: Vec<Vec<NodeRef>> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| match &step.from {
            Some(refs) => refs.iter().filter_map(|r| lookup(r, diags)).collect(),
            None if i == 0 => all_sources.clone(),
            None => vec![NodeRef::Step(i - 1)],
        })
        .collect();

    let sink_index = |name: &str| spec.sinks.iter().position(|s| s.id.value == name);
    let mut special_sinks = Vec::new();
    let error_sink = match &spec.on_error.value {
        ErrorPolicy::Sink(name) => match sink_index(name) {
            Some(i) => {
                special_sinks.push(i);
                Some(i)
            }
            None => {
                diags.error(
                    spec.on_error.span,
                    format!("`on_error` names `{name}`, which is not a sink"),
                    did_you_mean(name, spec.sinks.iter().map(|s| s.id.value.as_str()))
                        .or_else(|| Some("use `fail`, `skip` or a sink id".into())),
                );
                None
            }
        },
        _ => None,
    };
    let mut late_sinks = HashMap::new();
    for (i, step) in spec.steps.iter().enumerate() {
        if let StepKind::Window(w) = &step.kind {
            if let LatePolicy::Sink(name) = &w.late.value {
                match sink_index(name) {
                    Some(s) => {
                        special_sinks.push(s);
                        late_sinks.insert(i, s);
                    }
                    None => diags.error(
                        w.late.span,
                        format!("`late` names `{name}`, which is not a sink"),
                        did_you_mean(name, spec.sinks.iter().map(|s| s.id.value.as_str()))
                            .or_else(|| Some("use `drop` or a sink id".into())),
                    ),
                }
            }
        }
    }
    let last = if spec.steps.is_empty() { all_sources } else { vec![NodeRef::Step(spec.steps.len() - 1)] };
    let sink_inputs: Vec<Vec<NodeRef>> = spec
        .sinks
        .iter()
        .enumerate()
        .map(|(i, sink)| match &sink.from {
            Some(refs) => refs.iter().filter_map(|r| lookup(r, diags)).collect(),
            None if special_sinks.contains(&i) => Vec::new(),
            None => last.clone(),
        })
        .collect();

    let step_order = topological_order(spec, &step_inputs, diags);
    let graph = Graph { step_inputs, sink_inputs, step_order, error_sink, late_sinks };
    check_reachable(spec, &graph, &special_sinks, diags);
    graph
}

/// Kahn's algorithm; steps left over sit on a cycle.
fn topological_order(spec: &PipelineSpec, inputs: &[Vec<NodeRef>], diags: &mut Diagnostics) -> Vec<usize> {
    let n = inputs.len();
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    loop {
        let ready: Vec<usize> = (0..n)
            .filter(|&i| !done[i] && inputs[i].iter().all(|r| !matches!(r, NodeRef::Step(j) if !done[*j])))
            .collect();
        if ready.is_empty() {
            break;
        }
        for i in ready {
            done[i] = true;
            order.push(i);
        }
    }
    if let Some(first) = (0..n).find(|&i| !done[i]) {
        let members: Vec<String> =
            (0..n).filter(|&i| !done[i]).map(|i| format!("`{}`", spec.steps[i].label(i))).collect();
        diags.error(
            spec.steps[first].span,
            format!("the steps form a cycle: {}", members.join(" -> ")),
            Some("a step's `from:` must name an earlier step or a source".into()),
        );
    }
    order
}

fn check_reachable(spec: &PipelineSpec, graph: &Graph, special_sinks: &[usize], diags: &mut Diagnostics) {
    let mut fed = vec![false; spec.steps.len()];
    for &i in &graph.step_order {
        fed[i] = graph.step_inputs[i].iter().any(|r| match r {
            NodeRef::Source(_) => true,
            NodeRef::Step(j) => fed[*j],
            NodeRef::Sink(_) => false,
        });
    }
    for (i, sink) in spec.sinks.iter().enumerate() {
        let reached = graph.sink_inputs[i].iter().any(|r| match r {
            NodeRef::Source(_) => true,
            NodeRef::Step(j) => fed[*j],
            NodeRef::Sink(_) => false,
        });
        if !reached && !special_sinks.contains(&i) && !spec.sources.is_empty() {
            diags.error(
                sink.id.span,
                format!("sink `{}` receives no records: no source reaches it", sink.id.value),
                Some("check its `from:` and the steps it names".into()),
            );
        }
    }
}
