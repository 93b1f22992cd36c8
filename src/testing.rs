//! `flowctl test`: the `tests:` cases of a pipeline file, each run on its given input
//! records (instead of the real sources) into memory (instead of the real sinks), its
//! outputs compared with the expected records per sink or per step id.

use crate::error::{Error, Result};
use crate::graph::NodeRef;
use crate::plan;
use crate::record::{Record, Value};
use crate::runtime::{self, RunOptions};
use crate::sinks::memory::MemorySink;
use crate::sinks::Sink;
use crate::sources::memory::MemorySource;
use crate::sources::Source;
use crate::spec::node::Node;
use crate::spec::{SinkKind, SinkSpec, Spanned, StdoutFormat, TestCaseSpec};
use crate::validate::ValidPipeline;

/// The outcome of one case: empty `failures` when it passed.
pub struct CaseResult {
    pub name: String,
    pub failures: Vec<String>,
}

fn record_of(node: &Node, what: &str) -> Result<Record> {
    match node.to_value() {
        Value::Map(fields) => Ok(Record::from_pairs(fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())),
        other => Err(Error::Usage(format!(
            "line {}: {what} must be a mapping of fields, found {}",
            node.span.line,
            other.type_name()
        ))),
    }
}

fn json(record: &Record) -> String {
    record.to_json()
}

/// Runs every case of the pipeline.
pub fn run_cases(valid: &ValidPipeline) -> Result<Vec<CaseResult>> {
    valid.spec.tests.iter().map(|case| run_case(valid, case)).collect()
}

fn run_case(valid: &ValidPipeline, case: &TestCaseSpec) -> Result<CaseResult> {
    let mut pipeline = valid.clone();
    pipeline.spec.checkpoint = None;
    for (id, _) in &case.input {
        if !pipeline.spec.sources.iter().any(|s| s.id.value == id.value) {
            return Err(Error::Usage(format!(
                "test `{}` (line {}): `{}` is not a source",
                case.name.value, id.span.line, id.value
            )));
        }
    }
    // Expectations on steps read them through extra sinks ("taps").
    let mut targets = Vec::new();
    for (id, expected) in &case.expect {
        let sink = pipeline.spec.sinks.iter().position(|s| s.id.value == id.value);
        let step = pipeline.spec.steps.iter().position(|s| s.id.as_ref().is_some_and(|i| i.value == id.value));
        let index = match (sink, step) {
            (Some(i), _) => i,
            (None, Some(step)) => {
                pipeline.spec.sinks.push(SinkSpec {
                    id: Spanned::new(format!("test tap {}", id.value), id.span),
                    type_span: id.span,
                    from: None,
                    kind: SinkKind::Stdout { format: StdoutFormat::Jsonl },
                });
                pipeline.graph.sink_inputs.push(vec![NodeRef::Step(step)]);
                pipeline.spec.sinks.len() - 1
            }
            (None, None) => {
                return Err(Error::Usage(format!(
                    "test `{}` (line {}): `{}` is not a sink or a step id",
                    case.name.value, id.span.line, id.value
                )))
            }
        };
        let expected = expected.iter().map(|n| record_of(n, "an expected record")).collect::<Result<Vec<_>>>()?;
        targets.push((id.value.clone(), index, expected));
    }
    let sources: Vec<Box<dyn Source>> = pipeline
        .spec
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let given =
                case.input.iter().find(|(id, _)| id.value == s.id.value).map(|(_, r)| r.as_slice()).unwrap_or(&[]);
            let records = given.iter().map(|n| record_of(n, "an input record")).collect::<Result<Vec<_>>>()?;
            Ok(Box::new(MemorySource::new(records, i)) as Box<dyn Source>)
        })
        .collect::<Result<_>>()?;
    let memories: Vec<MemorySink> = pipeline.spec.sinks.iter().map(|_| MemorySink::default()).collect();
    let sinks: Vec<Box<dyn Sink>> = memories.iter().map(|m| Box::new(m.clone()) as Box<dyn Sink>).collect();
    // One thread: expected records are compared in order.
    let plan_options = plan::PlanOptions { parallelism: Some(1), cores: 1, io: plan::Io::Given };
    let plan = plan::physical::plan(plan::plan(pipeline), &plan_options).map_err(|d| {
        let messages: Vec<&str> = d.items().iter().map(|i| i.message.as_str()).collect();
        Error::Usage(format!("the pipeline cannot run: {}", messages.join("; ")))
    })?;
    runtime::run_with(&plan, &RunOptions::default(), Some(runtime::Io { sources, sinks }))?;
    let mut failures = Vec::new();
    for (id, index, expected) in targets {
        let actual: Vec<Record> = memories[index].records.lock().map(|r| r.clone()).unwrap_or_default();
        let (want, got): (Vec<String>, Vec<String>) =
            (expected.iter().map(json).collect(), actual.iter().map(json).collect());
        if want != got {
            let mut diff = format!("`{id}`: expected {} records, got {}", want.len(), got.len());
            for i in 0..want.len().max(got.len()) {
                match (want.get(i), got.get(i)) {
                    (Some(w), Some(g)) if w == g => diff.push_str(&format!("\n      {w}")),
                    (w, g) => {
                        if let Some(w) = w {
                            diff.push_str(&format!("\n    - {w}"));
                        }
                        if let Some(g) = g {
                            diff.push_str(&format!("\n    + {g}"));
                        }
                    }
                }
            }
            failures.push(diff);
        }
    }
    Ok(CaseResult { name: case.name.value.clone(), failures })
}
