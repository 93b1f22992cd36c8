//! The physical plan: the one place where how a pipeline runs is decided. [`plan`] is
//! a pure function of the logical plan and [`PlanOptions`] (parallelism, whose
//! sources and sinks run); the runtime carries out the [`PhysicalPlan`] it returns
//! and decides nothing else. `flowctl plan` prints it (`plan/render.rs`).
//!
//! One meaning of `parallelism` per level:
//! - the run's `parallelism` (`--parallelism`, else the pipeline's `parallelism:`,
//!   else the number of cores; a keyed step's `parallelism:` overrides both): the
//!   keyed instances, the workers of a file split by data, or the threads reading a
//!   stateless pipeline's one source in blocks;
//! - a source's `parallelism:`: a `nexmark` source's lanes (generators), or a file
//!   source's decoding threads when the run does not read it in blocks itself.

use super::logical::LogicalPlan;
use super::projection;
use crate::diag::Diagnostics;
use crate::graph::NodeRef;
use crate::sources::SourceConfig;
use crate::spec::{ErrorPolicy, SourceKind};
use crate::steps::CompiledStep;
use std::sync::Arc;

/// Whose sources and sinks a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// The pipeline's own.
    Spec,
    /// Given records in, records out (`flowctl test`): nothing is read in blocks and
    /// no lines are encoded ahead of the sinks.
    Given,
}

/// What the physical plan depends on besides the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions {
    /// `--parallelism`.
    pub parallelism: Option<usize>,
    /// The number of cores: the parallelism when nothing else sets it.
    pub cores: usize,
    pub io: Io,
}

impl PlanOptions {
    /// A run of the pipeline's own sources and sinks on this machine's cores.
    pub fn on_this_machine(parallelism: Option<usize>) -> PlanOptions {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PlanOptions { parallelism, cores, io: Io::Spec }
    }
}

/// How the steps after the head run.
#[derive(Clone, Debug, PartialEq)]
pub enum Execution {
    /// Every step (but the head on the source lanes) on the executor's thread; `why`
    /// says what keeps them there.
    OneThread { why: &'static str },
    /// The keyed steps on `instances` instances, each owning the keys that hash to it,
    /// fed by the `key_by` steps `exchanges` (instance 0 on the executor's thread).
    KeyedInstances { instances: usize, exchanges: Vec<usize> },
    /// The one file source read by `workers` workers, each reading every N-th block
    /// through the head steps and `key_by`, keeping its own keys and handing the others
    /// to their owners (`runtime/split.rs`); no source thread, merge or executor.
    SplitByData { workers: usize, key_by: usize },
    /// A stateless pipeline's one source read in blocks by `threads` threads, each
    /// running the lane's whole work (event time, head steps, lines) on its blocks,
    /// handed on in block order (`runtime/block_lanes.rs`).
    BlockLanes { threads: usize },
}

/// How a source is read.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcePlacement {
    /// Its lanes (threads reading it, each ordered): None for one per Kafka partition,
    /// known when the run starts.
    pub lanes: Option<usize>,
    /// Threads decoding a file source's blocks for its one lane (1: the lane's own).
    pub decode_threads: usize,
    /// The sink its lanes encode lines of text for (a stateless pipeline into one sink
    /// that writes text): records are made, encoded and freed on the lane's thread.
    pub encodes_for: Option<usize>,
    /// CSV columns nothing reads, left NULL by the decoder (`plan/projection.rs`).
    pub unread_columns: Vec<Arc<str>>,
}

/// What happens to a record that cannot be decoded or processed (`on_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Stop the run naming the record.
    Fail,
    /// Count and drop it.
    Skip,
    /// Send an error record to this sink.
    Sink(usize),
}

/// How a pipeline runs: the threads, the operators on each, the exchanges.
#[derive(Debug)]
pub struct PhysicalPlan {
    pub logical: LogicalPlan,
    /// The run's parallelism (see the module header).
    pub parallelism: usize,
    pub execution: Execution,
    /// The stateless steps at the head of the pipeline, run on every source lane.
    pub head: Vec<usize>,
    /// Per step: whether the keyed instances or workers run it.
    pub keyed: Vec<bool>,
    /// One per source.
    pub sources: Vec<SourcePlacement>,
    pub on_error: OnError,
}

/// Decides how `logical` runs, or says why it cannot (a capability specified but not
/// built yet), with diagnostics at the lines that use it.
pub fn plan(logical: LogicalPlan, options: &PlanOptions) -> Result<PhysicalPlan, Diagnostics> {
    let refused = unsupported(&logical);
    if !refused.is_empty() {
        return Err(refused);
    }
    let parallelism = parallelism(&logical, options);
    let own_io = options.io == Io::Spec;
    let pipeline = &logical.pipeline;
    let spec = &pipeline.spec;
    let head = logical.lane_steps();
    let encodes_for: Vec<Option<usize>> = (0..spec.sources.len())
        .map(|i| logical.lane_sink(i).filter(|&sink| own_io && pipeline.sinks[sink].config.writes_lines()))
        .collect();

    let keyed = if parallelism > 1 { logical.keyed_steps() } else { Err("parallelism 1") };
    let execution = match &keyed {
        Ok(keyed) => match logical.split_key_by().filter(|_| own_io) {
            Some(key_by) => Execution::SplitByData { workers: parallelism, key_by },
            None => Execution::KeyedInstances { instances: parallelism, exchanges: exchanges(&logical, keyed) },
        },
        Err(why) => {
            let blocks = match (&pipeline.sources[..], &encodes_for[..]) {
                ([source], [Some(_)]) => parallelism > 1 && source.config.readable_in_blocks(),
                _ => false,
            };
            match blocks {
                true => Execution::BlockLanes { threads: parallelism },
                false => Execution::OneThread { why },
            }
        }
    };
    let keyed = keyed.unwrap_or_else(|_| vec![false; spec.steps.len()]);
    let read_in_blocks = matches!(execution, Execution::SplitByData { .. } | Execution::BlockLanes { .. });
    let sources = pipeline
        .sources
        .iter()
        .enumerate()
        .map(|(i, source)| SourcePlacement {
            lanes: source.config.lanes(),
            decode_threads: match &source.config {
                SourceConfig::File(file) if !read_in_blocks => file.parallelism,
                _ => 1,
            },
            encodes_for: encodes_for[i],
            unread_columns: projection::unread_columns(pipeline, i),
        })
        .collect();
    let on_error = match (&spec.on_error.value, pipeline.graph.error_sink) {
        (ErrorPolicy::Fail, _) => OnError::Fail,
        (ErrorPolicy::Skip, _) => OnError::Skip,
        (ErrorPolicy::Sink(_), Some(sink)) => OnError::Sink(sink),
        // Validation resolves the sink; a name it could not resolve is an error there.
        (ErrorPolicy::Sink(_), None) => OnError::Fail,
    };
    Ok(PhysicalPlan { logical, parallelism, execution, head, keyed, sources, on_error })
}

/// The run's parallelism: a keyed step's `parallelism:` (as a Flink operator's own
/// parallelism), else `--parallelism`, else the pipeline's `parallelism:`, else the
/// number of cores (at most the largest parallelism); given I/O (`flowctl test`) runs
/// at the parallelism it asks for.
fn parallelism(logical: &LogicalPlan, options: &PlanOptions) -> usize {
    if options.io == Io::Given {
        // Given records are compared with expected ones in order.
        return options.parallelism.unwrap_or(1).max(1);
    }
    let spec = &logical.pipeline.spec;
    let on_step = spec.steps.iter().find_map(|s| s.parallelism.as_ref()).map(|p| p.value as usize);
    on_step
        .or(options.parallelism)
        .or(spec.parallelism.as_ref().map(|p| p.value as usize))
        .unwrap_or(options.cores.min(crate::spec::fields::MAX_PARALLELISM as usize))
        .max(1)
}

/// The `key_by` steps outside the keyed part whose output goes to keyed steps.
fn exchanges(logical: &LogicalPlan, keyed: &[bool]) -> Vec<usize> {
    let p = &logical.pipeline;
    (0..p.steps.len())
        .filter(|&k| matches!(p.steps[k], CompiledStep::KeyBy { .. }) && !keyed[k])
        .filter(|&k| p.graph.consumers(NodeRef::Step(k)).iter().any(|r| matches!(r, NodeRef::Step(j) if keyed[*j])))
        .collect()
}

/// Capabilities that are specified and validated but not built yet: refused at the
/// line and column that uses them, never silently ignored.
fn unsupported(logical: &LogicalPlan) -> Diagnostics {
    let spec = &logical.pipeline.spec;
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
    // A window judges lateness by the pipeline watermark; results released late by a
    // step before it would need that watermark held back.
    let graph = &logical.pipeline.graph;
    for (i, step) in logical.pipeline.steps.iter().enumerate() {
        let CompiledStep::Component(held) = step else { continue };
        if held.holds_back().is_none() {
            continue;
        }
        let mut todo = vec![NodeRef::Step(i)];
        let mut seen = vec![false; spec.steps.len()];
        while let Some(node) = todo.pop() {
            for next in graph.consumers(node) {
                let NodeRef::Step(j) = next else { continue };
                if std::mem::replace(&mut seen[j], true) {
                    continue;
                }
                if matches!(spec.steps[j].kind, crate::spec::StepKind::Window(_)) {
                    refuse(
                        spec.steps[j].span,
                        format!(
                            "a window after `{}` (its results can be older than the watermark that releases them, and holding the watermark back is not built yet)",
                            spec.steps[i].label(i)
                        ),
                    );
                }
                todo.push(next);
            }
        }
    }
    // `parallelism` on a step sets the number of keyed instances; they are one set.
    let keyed = logical.keyed_steps();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceFile;
    use crate::validate::{validate_file, Options};

    fn physical(yaml: &str, options: PlanOptions) -> Result<PhysicalPlan, Diagnostics> {
        let file = SourceFile { path: "p.yaml".into(), text: yaml.to_string() };
        let options_v = Options { env: &|_| None, peek_fields: &|_| None, overrides: &[] };
        let pipeline = validate_file(&file, &options_v).unwrap_or_else(|d| panic!("{}", d.render("p.yaml", yaml)));
        plan(super::super::plan(pipeline), &options)
    }

    fn on(cores: usize, parallelism: Option<usize>) -> PlanOptions {
        PlanOptions { parallelism, cores, io: Io::Spec }
    }

    const FILE: &str = "sources:\n  in: {type: file, path: in.jsonl, event_time: ts, parallelism: 3}\n";
    const KEYED: &str =
        "steps:\n  - filter: a > 0\n  - key_by: k\n  - reduce: {n: count()}\nsinks:\n  out: {type: stdout}\n";
    const STATELESS: &str = "steps:\n  - filter: a > 0\nsinks:\n  out: {type: file, path: out.csv}\n";

    #[test]
    fn parallelism_is_a_keyed_steps_else_the_flags_else_the_pipelines_else_the_cores() {
        let yaml = format!("{FILE}{KEYED}");
        assert_eq!(physical(&yaml, on(4, None)).unwrap().parallelism, 4);
        assert_eq!(physical(&yaml, on(4, Some(2))).unwrap().parallelism, 2);
        let pinned = format!("parallelism: 3\n{yaml}");
        assert_eq!(physical(&pinned, on(4, None)).unwrap().parallelism, 3);
        assert_eq!(physical(&pinned, on(4, Some(2))).unwrap().parallelism, 2);
        let on_step = yaml.replace("count()}\n", "count()}\n    parallelism: 5\n");
        assert_eq!(physical(&on_step, on(4, Some(2))).unwrap().parallelism, 5);
        // Given records are compared in order: the parallelism asked for, 1 by default.
        let given = PlanOptions { parallelism: None, cores: 4, io: Io::Given };
        assert_eq!(physical(&on_step, given).unwrap().parallelism, 1);
    }

    #[test]
    fn a_file_into_one_key_by_is_split_by_data_and_its_decoding_threads_are_not_started() {
        let plan = physical(&format!("{FILE}{KEYED}"), on(2, None)).unwrap();
        assert_eq!(plan.execution, Execution::SplitByData { workers: 2, key_by: 1 });
        assert_eq!(plan.head, vec![0]);
        assert_eq!(plan.keyed, vec![false, false, true]);
        assert_eq!(plan.sources[0].decode_threads, 1);
        // At parallelism 1 the file's own decoding threads run.
        let one = physical(&format!("{FILE}{KEYED}"), on(1, None)).unwrap();
        assert_eq!(one.execution, Execution::OneThread { why: "parallelism 1" });
        assert_eq!(one.sources[0].decode_threads, 3);
        // Given I/O is not read in blocks: keyed instances instead.
        let given = PlanOptions { parallelism: Some(2), cores: 2, io: Io::Given };
        let plan = physical(&format!("{FILE}{KEYED}"), given).unwrap();
        assert_eq!(plan.execution, Execution::KeyedInstances { instances: 2, exchanges: vec![1] });
    }

    #[test]
    fn a_stateless_pipeline_into_a_text_sink_reads_its_source_in_blocks() {
        let plan = physical(&format!("{FILE}{STATELESS}"), on(2, None)).unwrap();
        assert_eq!(plan.execution, Execution::BlockLanes { threads: 2 });
        assert_eq!(plan.sources[0].encodes_for, Some(0));
        // Into a sink that takes records (Kafka): one thread after the lanes, no lines.
        let kafka = STATELESS.replace("{type: file, path: out.csv}", "{type: kafka, brokers: b, topic: t}");
        let plan = physical(&format!("{FILE}{kafka}"), on(2, None)).unwrap();
        assert!(matches!(plan.execution, Execution::OneThread { .. }), "{:?}", plan.execution);
        assert_eq!(plan.sources[0].encodes_for, None);
        // A paced Nexmark source cannot be cut ahead; an unpaced one can.
        let nexmark = "sources:\n  in: {type: nexmark, events: 10, rate: 5}\n";
        let plan = physical(&format!("{nexmark}{STATELESS}").replace("a > 0", "event_type = 'bid'"), on(2, None));
        assert!(matches!(plan.unwrap().execution, Execution::OneThread { .. }));
        let unpaced = nexmark.replace(", rate: 5", "");
        let plan = physical(&format!("{unpaced}{STATELESS}").replace("a > 0", "event_type = 'bid'"), on(2, None));
        assert_eq!(plan.unwrap().execution, Execution::BlockLanes { threads: 2 });
    }

    #[test]
    fn what_cannot_run_yet_is_refused_at_its_line() {
        let yaml = format!("{FILE}{KEYED}").replace("  - filter: a > 0\n", "  - filter: a > 0\n    parallelism: 2\n");
        let refused = physical(&yaml, on(2, None)).unwrap_err();
        let messages: Vec<&str> = refused.items().iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            ["not supported yet: `parallelism` on a step before `key_by` (it runs on the source threads)"]
        );
        assert_eq!(refused.items()[0].span.line, 5);
    }
}
