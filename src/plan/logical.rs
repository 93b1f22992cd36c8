//! The logical plan: a [`ValidPipeline`] as a graph of operators fused into chains
//! joined by forward or partition edges. The fusion rule lives in [`plan`]; what the
//! graph's shape allows (keyed steps, head steps on the source lanes, a file split by
//! data) is read off here, and `plan/physical.rs` decides from it how a run executes.

use crate::graph::NodeRef;
use crate::sources::SourceConfig;
use crate::spec::StepKind;
use crate::steps::CompiledStep;
use crate::validate::ValidPipeline;

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
pub struct LogicalPlan {
    pub pipeline: ValidPipeline,
    pub chains: Vec<Chain>,
}

/// Fusion rule: every step joins the chain of its first input, so stateless steps run
/// as direct calls on the producer's thread, except that a step reading a `key_by`
/// starts a new chain behind a partition edge (records move to the instance that owns
/// their key).
pub fn plan(pipeline: ValidPipeline) -> LogicalPlan {
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
    LogicalPlan { pipeline, chains }
}

impl LogicalPlan {
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
        let stateless = |i: usize| steps[i].stateless();
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
        let one_file = match &p.sources[..] {
            [source] => matches!(&source.config, SourceConfig::File(file) if !file.follow),
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

    /// A node's name as the user wrote it (a step's `id:` or `<kind> #<n>`).
    pub fn node_name(&self, r: NodeRef) -> String {
        let spec = &self.pipeline.spec;
        match r {
            NodeRef::Source(i) => spec.sources[i].id.value.clone(),
            NodeRef::Step(i) => spec.steps[i].label(i),
            NodeRef::Sink(i) => spec.sinks[i].id.value.clone(),
        }
    }
}
