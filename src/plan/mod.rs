//! The planner: a [`ValidPipeline`] becomes chains of fused operators joined by
//! forward or partition edges. The fusion rule lives in [`plan`].

pub mod projection;

use crate::spec::{duration::format_duration, ErrorPolicy, SinkKind, SourceKind, StepKind};
use crate::validate::{CompiledStep, NodeRef, ValidPipeline};
use std::fmt::Write as _;

/// How records reach a chain.
#[derive(Clone, Debug, PartialEq)]
pub enum Edge {
    /// In order, on the same thread as the producer.
    Forward,
    /// Hash-partitioned by the key the named `key_by` step computes.
    Partition { key_by: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    /// Step indexes, in execution order.
    pub steps: Vec<usize>,
    pub edge: Edge,
}

#[derive(Debug)]
pub struct Plan {
    pub pipeline: ValidPipeline,
    pub chains: Vec<Chain>,
}

/// Fusion rule: every step joins the chain of its first input, so stateless steps run
/// as direct calls on the producer's thread, except that a step reading a `key_by`
/// starts a new chain behind a partition edge (records move to the instance that owns
/// their key).
pub fn plan(pipeline: ValidPipeline) -> Plan {
    let mut chains: Vec<Chain> = Vec::new();
    let mut chain_of: Vec<Option<usize>> = vec![None; pipeline.spec.steps.len()];
    for &i in &pipeline.graph.step_order {
        let inputs = &pipeline.graph.step_inputs[i];
        let key_by = inputs.iter().find_map(|r| match r {
            NodeRef::Step(j) if matches!(pipeline.spec.steps[*j].kind, StepKind::KeyBy(_)) => Some(*j),
            _ => None,
        });
        let upstream = inputs.iter().find_map(|r| match r {
            NodeRef::Step(j) => chain_of[*j],
            _ => None,
        });
        let chain = match (key_by, upstream) {
            (Some(k), _) => {
                chains.push(Chain { steps: Vec::new(), edge: Edge::Partition { key_by: k } });
                chains.len() - 1
            }
            (None, Some(c)) => c,
            (None, None) => match chains.iter().position(|c| c.edge == Edge::Forward) {
                Some(c) => c,
                None => {
                    chains.push(Chain { steps: Vec::new(), edge: Edge::Forward });
                    chains.len() - 1
                }
            },
        };
        chains[chain].steps.push(i);
        chain_of[i] = Some(chain);
    }
    Plan { pipeline, chains }
}

impl Plan {
    /// The steps that run on parallel keyed instances (the steps of partition chains),
    /// with the reason when the graph's shape keeps every step on one thread. Parallel
    /// instances need one exchange: every keyed step reads only keyed steps or one
    /// `key_by` outside them, and no other step reads a keyed step (their output goes
    /// to sinks only).
    pub fn keyed_steps(&self) -> Result<Vec<bool>, &'static str> {
        let graph = &self.pipeline.graph;
        let mut keyed = vec![false; self.pipeline.spec.steps.len()];
        for chain in self.chains.iter().filter(|c| matches!(c.edge, Edge::Partition { .. })) {
            for &i in &chain.steps {
                keyed[i] = true;
            }
        }
        if !keyed.contains(&true) {
            return Err("no step after a `key_by`");
        }
        let is_key_by = |j: usize| matches!(self.pipeline.spec.steps[j].kind, StepKind::KeyBy(_));
        for (i, inputs) in graph.step_inputs.iter().enumerate() {
            let from_keyed = inputs.iter().filter(|r| matches!(r, NodeRef::Step(j) if keyed[*j])).count();
            if !keyed[i] {
                if from_keyed > 0 {
                    return Err("a step outside the keyed part reads a keyed step");
                }
                continue;
            }
            let exchanges: Vec<usize> = inputs
                .iter()
                .filter_map(|r| match r {
                    NodeRef::Step(j) if !keyed[*j] => Some(*j),
                    _ => None,
                })
                .collect();
            let reads_source = inputs.iter().any(|r| matches!(r, NodeRef::Source(_)));
            let one_exchange = exchanges.len() == 1 && from_keyed == 0 && is_key_by(exchanges[0]);
            if reads_source || !(one_exchange || (exchanges.is_empty() && from_keyed > 0)) {
                return Err("a keyed step reads more than one `key_by` or unkeyed input");
            }
            if is_key_by(i) {
                return Err("a second `key_by` after a keyed step (a second exchange)");
            }
        }
        Ok(keyed)
    }

    /// The stateless steps at the head of the pipeline that run on every source lane's
    /// own thread: a chain of filter/map/set/drop/flat_map starting with the one step
    /// that reads every source (and is the only reader of them), each step read only
    /// by the next one. Empty when the graph has no such head.
    pub fn lane_steps(&self) -> Vec<usize> {
        let (graph, steps) = (&self.pipeline.graph, &self.pipeline.steps);
        let stateless = |i: usize| {
            matches!(
                steps[i],
                CompiledStep::Filter(_)
                    | CompiledStep::Map { .. }
                    | CompiledStep::Set { .. }
                    | CompiledStep::Drop(_)
                    | CompiledStep::FlatMap { .. }
            )
        };
        let sources = self.pipeline.spec.sources.len();
        let mut first = None;
        for s in 0..sources {
            match graph.consumers(NodeRef::Source(s))[..] {
                [NodeRef::Step(i)] if first.is_none_or(|f| f == i) => first = Some(i),
                _ => return Vec::new(),
            }
        }
        let Some(mut current) = first else { return Vec::new() };
        if graph.step_inputs[current].len() != sources || !stateless(current) {
            return Vec::new();
        }
        let mut chain = vec![current];
        while let [NodeRef::Step(next)] = graph.consumers(NodeRef::Step(current))[..] {
            if graph.step_inputs[next].len() != 1 || !stateless(next) {
                break;
            }
            chain.push(next);
            current = next;
        }
        chain
    }

    /// The sink that alone reads what a source's lanes send on (the output of the head
    /// steps when there are any, else the source's records): those lanes can encode
    /// their records for it themselves.
    pub fn lane_sink(&self, source: usize) -> Option<usize> {
        let from = self.lane_steps().last().map_or(NodeRef::Source(source), |&i| NodeRef::Step(i));
        match self.pipeline.graph.consumers(from)[..] {
            [NodeRef::Sink(sink)] => Some(sink),
            _ => None,
        }
    }

    /// The `key_by` step whose keyed steps' workers read the input themselves, split by
    /// data (`runtime/split.rs`), when the pipeline has that shape: one bounded file
    /// source with event time, read by the stateless head steps (or directly) into one
    /// `key_by` whose readers are all keyed steps, and every other step keyed.
    pub fn split_key_by(&self) -> Option<usize> {
        let p = &self.pipeline;
        let one_file = match &p.spec.sources[..] {
            [source] => matches!(&source.kind, SourceKind::File { follow, .. } if !follow.value),
            _ => false,
        };
        if !one_file || p.event_times.first().is_none_or(Option::is_none) {
            return None;
        }
        let keyed = self.keyed_steps().ok()?;
        let head = self.lane_steps();
        let key_by = match p.graph.consumers(head.last().map_or(NodeRef::Source(0), |&i| NodeRef::Step(i)))[..] {
            [NodeRef::Step(next)] => next,
            _ => return None,
        };
        let only_keyed_readers =
            p.graph.consumers(NodeRef::Step(key_by)).iter().all(|r| matches!(r, NodeRef::Step(j) if keyed[*j]));
        let every_step_placed = (0..keyed.len()).all(|i| keyed[i] || i == key_by || head.contains(&i));
        (matches!(p.steps[key_by], CompiledStep::KeyBy { .. })
            && !keyed[key_by]
            && only_keyed_readers
            && every_step_placed)
            .then_some(key_by)
    }

    /// The text `flowctl plan` prints.
    pub fn describe(&self) -> String {
        let spec = &self.pipeline.spec;
        let mut out = String::new();
        let _ = writeln!(out, "pipeline `{}` ({})", spec.name, spec.path.display());
        let _ = writeln!(out, "sources:");
        for (index, s) in spec.sources.iter().enumerate() {
            let what = match &s.kind {
                SourceKind::File { path, decoding, follow } => {
                    format!(
                        "file {} ({}{})",
                        path.value,
                        decoding.format.value.name(),
                        if follow.value { ", follow" } else { "" }
                    )
                }
                SourceKind::Stdin { decoding } => format!("stdin ({})", decoding.format.value.name()),
                other => other.type_name().to_string(),
            };
            let _ = writeln!(out, "  {}: {what}", s.id.value);
            let _ = writeln!(out, "    {}", describe_time(s));
            let unread = projection::unread_columns(&self.pipeline, index);
            if !unread.is_empty() {
                let names: Vec<&str> = unread.iter().map(|c| &**c).collect();
                let _ = writeln!(out, "    columns nothing reads, left NULL: {}", names.join(", "));
            }
        }
        let keyed = self.keyed_steps();
        for (n, chain) in self.chains.iter().enumerate() {
            let input = match &chain.edge {
                Edge::Forward => "sources".to_string(),
                Edge::Partition { key_by } => {
                    let instances = match &keyed {
                        Ok(_) if self.split_key_by() == Some(*key_by) => {
                            "`parallelism` workers reading the file split by data".to_string()
                        }
                        Ok(_) => "`parallelism` instances".to_string(),
                        Err(why) => format!("one thread: {why}"),
                    };
                    format!("partition by key of `{}` ({instances})", spec.steps[*key_by].label(*key_by))
                }
            };
            let _ = writeln!(out, "chain {} <- {input}", n + 1);
            for &i in &chain.steps {
                let step = &spec.steps[i];
                let _ = writeln!(out, "  {}: {}", step.label(i), describe_step(&step.kind));
            }
        }
        let _ = writeln!(out, "sinks:");
        for (i, sink) in spec.sinks.iter().enumerate() {
            let what = match &sink.kind {
                SinkKind::Stdout { format } => format!("stdout ({})", format!("{format:?}").to_lowercase()),
                SinkKind::File { path, format, .. } => format!("file {} ({})", path.value, format.value.name()),
                SinkKind::Sql { table, key, .. } => {
                    let mode = if key.is_empty() {
                        "append".to_string()
                    } else {
                        format!("upsert on {}", key.iter().map(|k| k.value.as_str()).collect::<Vec<_>>().join(", "))
                    };
                    format!("{} table {} ({mode})", sink.kind.type_name(), table.value)
                }
                other => other.type_name().to_string(),
            };
            let inputs: Vec<String> = self.pipeline.graph.sink_inputs[i].iter().map(|r| self.node_name(*r)).collect();
            let mut reads = if inputs.is_empty() { String::new() } else { format!(" <- {}", inputs.join(", ")) };
            if self.pipeline.graph.error_sink == Some(i) {
                reads.push_str(" (bad records)");
            }
            if self.pipeline.graph.late_sinks.values().any(|s| *s == i) {
                reads.push_str(" (late records)");
            }
            let _ = writeln!(out, "  {}: {what}{reads}", sink.id.value);
        }
        let policy = match &spec.on_error.value {
            ErrorPolicy::Fail => "fail".to_string(),
            ErrorPolicy::Skip => "skip".to_string(),
            ErrorPolicy::Sink(s) => format!("send to sink `{s}`"),
        };
        let _ = writeln!(out, "on_error: {policy}");
        out
    }

    fn node_name(&self, r: NodeRef) -> String {
        let spec = &self.pipeline.spec;
        match r {
            NodeRef::Source(i) => spec.sources[i].id.value.clone(),
            NodeRef::Step(i) => spec.steps[i].label(i),
            NodeRef::Sink(i) => spec.sinks[i].id.value.clone(),
        }
    }
}

/// Event time and watermark settings of a source, for `flowctl plan`.
fn describe_time(source: &crate::spec::SourceSpec) -> String {
    use crate::spec::{TimeFormat, TimeSource};
    let Some(et) = &source.event_time else {
        return "processing time (no event_time)".into();
    };
    let from = match &et.source {
        TimeSource::Field(f) => format!("field `{}`", f.value),
        TimeSource::Expr(e) => format!("`{}`", e.text),
    };
    let format = match &et.format {
        None => "epoch_millis or rfc3339".to_string(),
        Some(TimeFormat::EpochMillis) => "epoch_millis".into(),
        Some(TimeFormat::EpochSeconds) => "epoch_seconds".into(),
        Some(TimeFormat::Rfc3339) => "rfc3339".into(),
        Some(TimeFormat::Strftime(p)) => format!("`{p}`"),
    };
    let idle = match source.watermark.idle_timeout {
        Some(d) => format!("idle after {}", format_duration(d)),
        None => "no idle timeout (bounded input; 30s for unbounded)".into(),
    };
    format!(
        "event time from {from} ({format}); watermark = max event time - {}; {idle}",
        format_duration(source.watermark.max_out_of_orderness)
    )
}

pub(crate) fn describe_step(kind: &StepKind) -> String {
    let names = |fields: &[(crate::spec::Spanned<String>, crate::spec::ExprSpec)]| {
        fields.iter().map(|(n, e)| format!("{} = {}", n.value, e.text)).collect::<Vec<_>>().join(", ")
    };
    match kind {
        StepKind::Filter(e) => e.text.clone(),
        StepKind::Map(f) | StepKind::Set(f) => names(f),
        StepKind::Reduce(f) => names(f),
        StepKind::Drop(f) => f.iter().map(|n| n.value.clone()).collect::<Vec<_>>().join(", "),
        StepKind::FlatMap { each, as_field } => format!("each {} as {}", each.text, as_field.value),
        StepKind::KeyBy(k) => match k {
            crate::spec::KeySpec::Exprs(e) => e.iter().map(|e| e.text.clone()).collect::<Vec<_>>().join(", "),
            crate::spec::KeySpec::Named(f) => names(f),
        },
        StepKind::Window(w) => {
            let mut s = w.kind.value.describe();
            if !w.allowed_lateness.is_zero() {
                let _ = write!(s, ", allowed lateness {}", format_duration(w.allowed_lateness));
            }
            s
        }
    }
}
