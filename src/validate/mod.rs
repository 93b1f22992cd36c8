//! Pure checks over a [`PipelineSpec`], all appending to one diagnostics list, and the
//! only way to build a [`ValidPipeline`] ("parse, don't validate"): the planner and
//! runtime never re-check configuration.

pub mod components;
pub mod graph;
pub mod order;
pub mod steps;

pub use graph::{Graph, NodeRef};

use crate::diag::Diagnostics;
use crate::sinks::BuiltSink;
use crate::sources::BuiltSource;
use crate::spec::{self, PipelineSpec, SourceFile};
use std::sync::Arc;

/// A pipeline that passed every check, with its graph resolved and its expressions
/// compiled.
#[derive(Debug, Clone)]
pub struct ValidPipeline {
    pub spec: PipelineSpec,
    pub graph: Graph,
    /// One per `spec.steps`.
    pub steps: Vec<crate::steps::CompiledStep>,
    /// One per step: how messages, metrics and checkpoints name it.
    pub step_names: Vec<StepName>,
    /// The pipeline's `name:` (or its file's stem).
    pub name: String,
    /// One per `spec.sources`, built: what the planner and the runtime read.
    pub sources: Vec<crate::sources::BuiltSource>,
    /// One per `spec.sinks`, built.
    pub sinks: Vec<crate::sinks::BuiltSink>,
    pub checkpoint: Option<crate::checkpoint::Config>,
    /// `memory_limit:` in bytes.
    pub memory_limit: Option<u64>,
    /// One per `spec.sources`.
    pub event_times: Vec<Option<crate::sources::EventTime>>,
    /// The fields each source is known to produce (declared schema or CSV header).
    pub source_fields: Vec<Option<Vec<Arc<str>>>>,
    /// The same as record layouts, shared by the compiled expressions and the sources'
    /// records (so field accesses resolve by index).
    pub source_schemas: Vec<Option<Arc<crate::record::Schema>>>,
}

/// A step's name (its `id:`, or `<kind> #<n>`) and kind.
#[derive(Debug, Clone, PartialEq)]
pub struct StepName {
    pub label: String,
    pub kind: &'static str,
}

/// What validation may look at besides the file itself.
pub struct Options<'a> {
    /// Reads `${VAR}`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Fields a source produces that only its input can tell (a CSV header); `flowctl
    /// validate` opens no inputs, `flowctl run` does.
    pub peek_fields: &'a dyn Fn(&crate::sources::SourceConfig) -> Option<Vec<String>>,
    /// `--set path=value` overrides.
    pub overrides: &'a [spec::overrides::Override],
}

/// Validates a parsed spec.
pub fn validate(spec: PipelineSpec, options: &Options) -> Result<ValidPipeline, Diagnostics> {
    let mut diags = Diagnostics::default();
    let graph = graph::resolve(&spec, &mut diags);
    order::check_order(&spec, &graph, &mut diags);
    let sources: Vec<_> = spec.sources.iter().map(|s| components::source(&spec, s)).collect();
    let source_fields: Vec<Option<Vec<Arc<str>>>> = sources
        .iter()
        .map(|s| {
            let declared = s.config.declared_fields();
            declared
                .or_else(|| (options.peek_fields)(&s.config).map(|f| f.iter().map(|n| Arc::from(n.as_str())).collect()))
        })
        .collect();
    let source_schemas: Vec<_> = source_fields.iter().map(|f| f.clone().map(crate::record::Schema::new)).collect();
    let compiled = steps::compile(&spec, &graph, &source_schemas, &mut diags);
    check_sink_expressions(&spec, &mut diags);
    let sinks: Vec<_> = spec.sinks.iter().map(|s| components::sink(&spec, s)).collect();
    check_components(&spec, &sources, &sinks, &mut diags);
    if !diags.is_empty() {
        return Err(diags.sorted());
    }
    let steps = compiled.steps.into_iter().flatten().collect::<Vec<_>>();
    if steps.len() != spec.steps.len() {
        // Every failed compilation added a diagnostic, so this is unreachable; stay safe.
        let mut d = Diagnostics::default();
        d.error(spec.steps_span, "internal error: a step failed to compile without a diagnostic", None);
        return Err(d);
    }
    let step_names =
        spec.steps.iter().enumerate().map(|(i, s)| StepName { label: s.label(i), kind: s.kind.name() }).collect();
    Ok(ValidPipeline {
        name: spec.name.clone(),
        sinks,
        checkpoint: components::checkpoint(&spec),
        memory_limit: spec.memory_limit,
        sources,
        spec,
        graph,
        steps,
        step_names,
        event_times: compiled.event_times,
        source_fields,
        source_schemas,
    })
}

/// Sink expressions (a Kafka sink's `key` and `partition_by`) must compile; their
/// fields are looked up by name on each record.
fn check_sink_expressions(spec: &PipelineSpec, diags: &mut Diagnostics) {
    for sink in &spec.sinks {
        if let spec::SinkKind::Kafka { key, partition_by, .. } = &sink.kind {
            for e in [key, partition_by].into_iter().flatten() {
                if let Err(errors) = crate::expr::compile(&e.text, &crate::expr::Scope::open()) {
                    for err in errors {
                        diags.error(e.span_at(err.offset, 0), err.message, err.hint);
                    }
                }
            }
        }
    }
}

/// Each source's and sink's own checks (`SourceConfig::check`, `SinkConfig::check`:
/// a socket's `address`, a SQL sink's `url`), reported at the setting they are about.
fn check_components(spec: &PipelineSpec, sources: &[BuiltSource], sinks: &[BuiltSink], diags: &mut Diagnostics) {
    for (source, built) in spec.sources.iter().zip(sources) {
        if let Err(problem) = built.config.check() {
            let at = match &source.kind {
                spec::SourceKind::Socket { address, .. } => address.span,
                _ => source.type_span,
            };
            diags.error(at, problem.message, problem.hint);
        }
    }
    for (sink, built) in spec.sinks.iter().zip(sinks) {
        if let Err(problem) = built.config.check() {
            let at = match &sink.kind {
                spec::SinkKind::Socket { address, .. } => address.span,
                spec::SinkKind::Sql { url, .. } => url.span,
                _ => sink.type_span,
            };
            diags.error(at, problem.message, problem.hint);
        }
    }
}

/// Loads, checks and validates one file: every diagnostic of every stage at once.
pub fn validate_file(file: &SourceFile, options: &Options) -> Result<ValidPipeline, Diagnostics> {
    let (spec, mut diags) = spec::parse(file, options.env, options.overrides);
    let Some(spec) = spec else { return Err(diags.sorted()) };
    match validate(spec, options) {
        Ok(valid) if diags.is_empty() => Ok(valid),
        Ok(_) => Err(diags.sorted()),
        Err(more) => {
            diags.extend(more);
            Err(diags.sorted())
        }
    }
}
