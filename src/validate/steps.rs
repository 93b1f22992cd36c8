//! Expression rules and compilation: every expression in the file is parsed and
//! compiled here, against the fields its input can have, so that a typo in a field or
//! a function is a validation error at its line and column, and the runtime receives
//! ready-to-run [`CompiledStep`]s.

use super::graph::{Graph, NodeRef};
use crate::diag::{did_you_mean, Diagnostics};
use crate::expr::{self, Expr, Scope};
use crate::record::Schema;
use crate::sources::EventTime as CompiledEventTime;
use crate::spec::{ExprSpec, KeySpec, PipelineSpec, StepKind, StepSpec, TimeSource};
use crate::steps::aggregate::{AggFunc, Aggregate};
use crate::steps::component::{Output, StepInput};
use crate::steps::window::WindowConfig;
use crate::steps::CompiledStep;
use std::sync::Arc;

/// What is known about the records on an edge.
#[derive(Clone, Debug, Default)]
struct Stream {
    /// The exact top-level fields, when known.
    fields: Option<Vec<Arc<str>>>,
    /// The shared schema records will usually have, for index resolution.
    schema: Option<Arc<Schema>>,
    keys: Option<(Vec<Arc<str>>, Vec<Expr>)>,
    window: Option<(WindowConfig, usize)>,
}

impl Stream {
    /// A source's stream. The schema is the very `Arc` the source's records carry, so
    /// compiled field accesses take their index fast path.
    fn of_schema(schema: Arc<Schema>) -> Stream {
        Stream { fields: Some(schema.names().to_vec()), schema: Some(schema), keys: None, window: None }
    }
}

pub struct Compiled {
    pub steps: Vec<Option<CompiledStep>>,
    pub event_times: Vec<Option<CompiledEventTime>>,
}

/// Compiles every expression; `source_schemas` gives the known layout per source.
pub fn compile(
    spec: &PipelineSpec,
    graph: &Graph,
    source_schemas: &[Option<Arc<Schema>>],
    diags: &mut Diagnostics,
) -> Compiled {
    let source_streams: Vec<Stream> =
        source_schemas.iter().map(|s| s.clone().map(Stream::of_schema).unwrap_or_default()).collect();
    let event_times = spec
        .sources
        .iter()
        .zip(&source_streams)
        .map(|(source, stream)| {
            let et = source.event_time.as_ref()?;
            let expr = match &et.source {
                TimeSource::Expr(e) => compile_expr(e, stream, diags)?,
                TimeSource::Field(f) => {
                    let quoted = format!("\"{}\"", f.value.replace('"', "\"\"").replace('.', "\".\""));
                    match expr::compile(&quoted, &scope(stream)) {
                        Ok(e) => e,
                        Err(errors) => {
                            for e in errors {
                                diags.error(f.span, format!("event_time: {}", e.message), e.hint);
                            }
                            return None;
                        }
                    }
                }
            };
            Some(CompiledEventTime { expr, format: et.format.clone() })
        })
        .collect();

    let mut outputs: Vec<Stream> = vec![Stream::default(); spec.steps.len()];
    let mut steps: Vec<Option<CompiledStep>> = vec![None; spec.steps.len()];
    for &i in &graph.step_order {
        let input = merge(graph.step_inputs[i].iter().map(|r| match r {
            NodeRef::Source(s) => source_streams[*s].clone(),
            NodeRef::Step(s) => outputs[*s].clone(),
            NodeRef::Sink(_) => Stream::default(),
        }));
        let (step, out) = compile_step(i, &spec.steps[i], &input, diags);
        steps[i] = step;
        outputs[i] = out;
    }
    Compiled { steps, event_times }
}

fn merge(mut streams: impl Iterator<Item = Stream>) -> Stream {
    let Some(first) = streams.next() else { return Stream::default() };
    streams.fold(first, |acc, s| {
        let fields = match (acc.fields, s.fields) {
            (Some(mut a), Some(b)) => {
                for f in b {
                    if !a.contains(&f) {
                        a.push(f);
                    }
                }
                Some(a)
            }
            _ => None,
        };
        Stream { fields, schema: None, keys: acc.keys.or(s.keys), window: acc.window.or(s.window) }
    })
}

fn scope(stream: &Stream) -> Scope<'_> {
    Scope { fields: stream.fields.as_deref(), schema: stream.schema.clone() }
}

fn compile_expr(e: &ExprSpec, input: &Stream, diags: &mut Diagnostics) -> Option<Expr> {
    match expr::compile(&e.text, &scope(input)) {
        Ok(x) => Some(x),
        Err(errors) => {
            for err in errors {
                let len = 0;
                diags.error(e.span_at(err.offset, len), err.message, err.hint);
            }
            None
        }
    }
}

fn compile_all<'a>(
    items: impl Iterator<Item = &'a ExprSpec>,
    input: &Stream,
    diags: &mut Diagnostics,
) -> Option<Vec<Expr>> {
    let compiled: Vec<Option<Expr>> = items.map(|e| compile_expr(e, input, diags)).collect();
    compiled.into_iter().collect()
}

fn name(s: &str) -> Arc<str> {
    Arc::from(s)
}

/// The output field name of a key expression: a field keeps its (last) name.
fn key_name(e: &Expr, i: usize, count: usize) -> Arc<str> {
    match e.field_path().and_then(|p| p.last()) {
        Some(last) => last.clone(),
        None if count == 1 => name("key"),
        None => name(&format!("key{}", i + 1)),
    }
}

fn compile_step(
    index: usize,
    step: &StepSpec,
    input: &Stream,
    diags: &mut Diagnostics,
) -> (Option<CompiledStep>, Stream) {
    let passthrough = input.clone();
    match &step.kind {
        StepKind::Component(config) => {
            let step_input = StepInput {
                fields: input.fields.as_deref(),
                schema: input.schema.clone(),
                key_by: input.keys.as_ref().map(|(names, exprs)| (names.as_slice(), exprs.as_slice())),
                span: step.span,
            };
            let Some(compiled) = config.compile(&step_input, diags) else { return (None, passthrough) };
            let out = match compiled.output {
                Output::Input => passthrough,
                Output::Schema(schema) => Stream::of_schema(schema),
                Output::Fields(fields) => Stream { schema: fields.clone().map(Schema::new), fields, ..passthrough },
            };
            (Some(CompiledStep::Component(compiled.step)), out)
        }
        StepKind::KeyBy(keys) => {
            let (names, exprs) = match keys {
                KeySpec::Exprs(list) => match compile_all(list.iter(), input, diags) {
                    Some(exprs) => {
                        (exprs.iter().enumerate().map(|(i, e)| key_name(e, i, exprs.len())).collect::<Vec<_>>(), exprs)
                    }
                    None => return (None, passthrough),
                },
                KeySpec::Named(list) => match compile_all(list.iter().map(|(_, e)| e), input, diags) {
                    Some(exprs) => (list.iter().map(|(n, _)| name(&n.value)).collect(), exprs),
                    None => return (None, passthrough),
                },
            };
            let mut out = passthrough;
            out.keys = Some((names.clone(), exprs.clone()));
            (Some(CompiledStep::KeyBy { names, exprs }), out)
        }
        StepKind::Window(w) => {
            let window = WindowConfig { kind: w.kind.value.clone(), allowed_lateness: w.allowed_lateness };
            let mut out = passthrough;
            out.window = Some((window.clone(), index));
            (Some(CompiledStep::Window(window)), out)
        }
        StepKind::Reduce(aggs) => {
            let (keys, key_exprs) = input.keys.clone().unwrap_or_default();
            let mut fields = keys.clone();
            if input.window.is_some() {
                fields.push(name("window_start"));
                fields.push(name("window_end"));
            }
            let mut aggregates = Vec::new();
            let mut ok = true;
            // Output names are columns: one taken twice is ambiguous (as in SQL).
            if let Some(taken) = keys.iter().find(|k| input.window.is_some() && is_window_column(k)) {
                diags.error(
                    step.span,
                    format!("the key `{taken}` has the name of a window column: the results would have two `{taken}` fields"),
                    Some(format!("name the key in its `key_by`, e.g. `key_by: {{start: {taken}}}`")),
                );
                ok = false;
            }
            for (out_name, e) in aggs {
                if fields.iter().any(|f| **f == *out_name.value) {
                    let what = match is_window_column(&out_name.value) && input.window.is_some() {
                        true => "a window column",
                        false => "a key or an earlier aggregate",
                    };
                    diags.error(
                        out_name.span,
                        format!("`{}` is already the name of {what} in this step's results", out_name.value),
                        Some("give the aggregate another name".into()),
                    );
                    ok = false;
                }
                fields.push(name(&out_name.value));
                match compile_aggregate(out_name.value.as_str(), e, input, diags) {
                    Some(a) => aggregates.push(a),
                    None => ok = false,
                }
            }
            let window = input.window.as_ref().map(|(w, _)| w.clone());
            let written: Vec<(&str, &str)> = aggs.iter().map(|(n, e)| (n.value.as_str(), e.text.as_str())).collect();
            let step = ok.then(|| CompiledStep::Reduce {
                fingerprint: crate::steps::reduce::fingerprint(&written, &key_exprs, window.as_ref()),
                aggregates,
                keys,
                key_exprs,
                window,
                window_step: input.window.as_ref().map(|(_, i)| *i),
            });
            (step, Stream::of_schema(Schema::new(fields)))
        }
    }
}

/// Whether a name is one of the columns a windowed `reduce` adds.
fn is_window_column(name: &str) -> bool {
    name == "window_start" || name == "window_end"
}

fn compile_aggregate(out_name: &str, e: &ExprSpec, input: &Stream, diags: &mut Diagnostics) -> Option<Aggregate> {
    let call = match expr::compile_call(&e.text, &scope(input)) {
        Ok(c) => c,
        Err(errors) => {
            for err in errors {
                diags.error(e.span_at(err.offset, 0), err.message, err.hint);
            }
            return None;
        }
    };
    let name_span = e.span_at(call.name_offset, call.name.len());
    let Some(func) = AggFunc::parse(&call.name) else {
        let names = AggFunc::ALL.iter().map(|(n, _, _)| *n);
        diags.error(
            name_span,
            format!("unknown aggregate `{}`", call.name),
            did_you_mean(&call.name, names).or_else(|| {
                Some(format!(
                    "aggregates are: {}",
                    AggFunc::ALL.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
                ))
            }),
        );
        return None;
    };
    let max_args = 1;
    let min_args = if func == AggFunc::Count { 0 } else { 1 };
    if call.args.len() < min_args || call.args.len() > max_args {
        let wanted = if min_args == 0 { "0 or 1 argument".to_string() } else { "1 argument".to_string() };
        diags.error(name_span, format!("aggregate `{}` takes {wanted}, got {}", call.name, call.args.len()), None);
        return None;
    }
    Some(Aggregate { name: name(out_name), func, arg: call.args.into_iter().next() })
}
