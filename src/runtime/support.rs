//! What the runtime can run today. A pipeline using a capability that is specified
//! but not built yet is refused before anything starts, with an error at the line and
//! column that uses it — never silently ignored.

use crate::diag::Diagnostics;
use crate::plan::Plan;
use crate::spec::SourceKind;

pub fn unsupported(plan: &Plan) -> Diagnostics {
    let spec = &plan.pipeline.spec;
    let mut d = Diagnostics::default();
    let mut refuse = |span, feature: String| {
        d.error(
            span,
            format!("not supported yet: {feature}"),
            Some(
                "this part of the format is specified and validated, but this version of flowctl cannot run it".into(),
            ),
        )
    };
    for s in &spec.sources {
        match &s.kind {
            SourceKind::File { .. }
            | SourceKind::Stdin { .. }
            | SourceKind::Datagen { .. }
            | SourceKind::Socket { .. }
            | SourceKind::Kafka { .. }
            | SourceKind::Nexmark { .. } => {}
        }
        match (&s.parallelism, &s.kind) {
            (Some(p), SourceKind::File { follow, .. }) if follow.value && p.value > 1 => {
                refuse(p.span, "`parallelism` on a followed file (it is read by one thread)".into())
            }
            (Some(_), SourceKind::File { .. } | SourceKind::Nexmark { .. }) | (None, _) => {}
            (Some(p), _) => refuse(
                p.span,
                "`parallelism` on this source (file sources decode in parallel, nexmark generates on lanes; Kafka reads each partition on its own thread)"
                    .into(),
            ),
        }
    }
    // `parallelism` on a step sets the number of keyed instances; they are one set.
    let keyed = plan.keyed_steps();
    let mut instances: Option<u64> = None;
    for (i, step) in spec.steps.iter().enumerate() {
        let Some(p) = &step.parallelism else { continue };
        match &keyed {
            Ok(keyed) if keyed[i] => match instances {
                Some(n) if n != p.value => refuse(
                    p.span,
                    format!(
                        "different `parallelism` on keyed steps ({n} and {}): they run on one set of instances",
                        p.value
                    ),
                ),
                _ => instances = Some(p.value),
            },
            Ok(_) => refuse(p.span, "`parallelism` on a step before `key_by` (it runs on the source threads)".into()),
            Err(why) => {
                refuse(p.span, format!("`parallelism` on a step of a pipeline that runs on one thread ({why})"))
            }
        }
    }
    d.sorted()
}
