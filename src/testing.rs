//! `flowctl test`: the `tests:` cases of a pipeline file, each run on its given input
//! records (instead of the real sources) into memory (instead of the real sinks), its
//! outputs compared with the expected records per sink or per step id.

use crate::error::{Error, Result};
use crate::graph::NodeRef;
use crate::plan;
use crate::record::{Record, Value};
use crate::runtime::{self, RunOptions};
use crate::sinks::memory::MemorySink;
use crate::sinks::{BuiltSink, SinkConfig};
use crate::sources::SourceConfig;
use crate::spec::node::Node;
use crate::spec::TestCaseSpec;
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
    pipeline.checkpoint = None;
    for (id, _) in &case.input {
        if !pipeline.sources.iter().any(|s| s.id == id.value) {
            return Err(Error::Usage(format!(
                "test `{}` (line {}): `{}` is not a source",
                case.name.value, id.span.line, id.value
            )));
        }
    }
    // The given records replace the sources, memory the sinks.
    for source in &mut pipeline.sources {
        let given = case.input.iter().find(|(id, _)| id.value == source.id).map(|(_, r)| r.as_slice()).unwrap_or(&[]);
        let records = given.iter().map(|n| record_of(n, "an input record")).collect::<Result<Vec<_>>>()?;
        source.config = SourceConfig::Memory(records);
    }
    let mut memories = Vec::new();
    for sink in &mut pipeline.sinks {
        let memory = MemorySink::default();
        sink.config = SinkConfig::Memory(memory.clone());
        memories.push(memory);
    }
    // Expectations on steps read them through extra memory sinks ("taps").
    let mut targets = Vec::new();
    for (id, expected) in &case.expect {
        let sink = pipeline.sinks.iter().position(|s| s.id == id.value);
        let step = pipeline.spec.steps.iter().position(|s| s.id.as_ref().is_some_and(|i| i.value == id.value));
        let index = match (sink, step) {
            (Some(i), _) => i,
            (None, Some(step)) => {
                let memory = MemorySink::default();
                pipeline.sinks.push(BuiltSink {
                    id: format!("test tap {}", id.value),
                    config: SinkConfig::Memory(memory.clone()),
                });
                pipeline.graph.sink_inputs.push(vec![NodeRef::Step(step)]);
                memories.push(memory);
                pipeline.sinks.len() - 1
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
    // One thread: expected records are compared in order.
    let plan_options = plan::PlanOptions { parallelism: Some(1), cores: 1, io: plan::Io::Given };
    let plan = plan::physical::plan(plan::plan(pipeline), &plan_options).map_err(|d| {
        let messages: Vec<&str> = d.items().iter().map(|i| i.message.as_str()).collect();
        Error::Usage(format!("the pipeline cannot run: {}", messages.join("; ")))
    })?;
    runtime::run(&plan, &RunOptions::default())?;
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
