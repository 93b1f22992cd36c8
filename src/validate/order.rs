//! Order rules: steps that only make sense together stay together. `key_by` feeds a
//! `window` or a `reduce`; a `window` feeds a `reduce`. Without these rules a window
//! would silently do nothing and a key would be computed and thrown away.

use super::graph::{Graph, NodeRef};
use crate::diag::Diagnostics;
use crate::spec::{PipelineSpec, StepKind};

pub fn check_order(spec: &PipelineSpec, graph: &Graph, diags: &mut Diagnostics) {
    for (i, step) in spec.steps.iter().enumerate() {
        let consumers = graph.consumers(NodeRef::Step(i));
        let kind_of = |r: &NodeRef| match r {
            NodeRef::Step(j) => Some(spec.steps[*j].kind.name()),
            _ => None,
        };
        match &step.kind {
            StepKind::KeyBy(_) => {
                let keyed = |r: &NodeRef| match r {
                    NodeRef::Step(j) => match &spec.steps[*j].kind {
                        StepKind::Window(_) | StepKind::Reduce(_) => true,
                        StepKind::Component(c) => c.keyed(),
                        _ => false,
                    },
                    _ => false,
                };
                if consumers.is_empty() || !consumers.iter().all(keyed) {
                    diags.error(
                        step.span,
                        "`key_by` must be followed by `window`, `reduce` or another step that keeps state per key",
                        Some("keys matter only to windows and aggregates; put filters and maps before `key_by`".into()),
                    );
                }
            }
            StepKind::Window(_) => {
                if consumers.is_empty() || consumers.iter().any(|c| kind_of(c) != Some("reduce")) {
                    diags.error(
                        step.span,
                        "`window` must be followed by `reduce`",
                        Some("add a step such as `- reduce: {n: count()}` after the window".into()),
                    );
                }
            }
            StepKind::Reduce(_) | StepKind::Component(_) => {}
        }
        let inputs = &graph.step_inputs[i];
        if matches!(step.kind, StepKind::Window(_) | StepKind::Reduce(_)) && inputs.len() > 1 {
            let keyed = |r: &NodeRef| matches!(kind_of(r), Some("key_by" | "window"));
            if inputs.iter().any(keyed) {
                diags.error(
                    step.span,
                    format!("`{}` reads a keyed stream and must have exactly one input", step.kind.name()),
                    Some("union the inputs before `key_by`".into()),
                );
            }
        }
    }
}
