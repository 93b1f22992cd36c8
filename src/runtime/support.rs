//! What the runtime can run today. A pipeline using a capability that is specified
//! but not built yet is refused before anything starts, with an error at the line and
//! column that uses it — never silently ignored.

use crate::diag::Diagnostics;
use crate::spec::{PipelineSpec, SourceKind};

pub fn unsupported(spec: &PipelineSpec) -> Diagnostics {
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
            (Some(_), SourceKind::File { .. }) | (None, _) => {}
            (Some(p), _) => refuse(
                p.span,
                "`parallelism` on this source (file sources decode in parallel; Kafka reads each partition on its own thread)"
                    .into(),
            ),
        }
    }
    for step in &spec.steps {
        if let Some(p) = &step.parallelism {
            refuse(p.span, "`parallelism` on steps".into());
        }
    }
    d.sorted()
}
