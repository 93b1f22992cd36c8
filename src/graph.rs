//! The pipeline's topology: who reads whom, resolved by validation from defaults and
//! `from:`, and read by the planner and the runtime.

use std::collections::HashMap;

/// A node of the pipeline graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeRef {
    Source(usize),
    Step(usize),
    Sink(usize),
}

/// Who reads whom, resolved from defaults and `from:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub step_inputs: Vec<Vec<NodeRef>>,
    pub sink_inputs: Vec<Vec<NodeRef>>,
    /// Steps in an order where every step comes after its inputs.
    pub step_order: Vec<usize>,
    /// Sink index receiving bad records (`on_error: <sink>`).
    pub error_sink: Option<usize>,
    /// Sink index receiving late records, per step index (windows with `late: <sink>`).
    pub late_sinks: HashMap<usize, usize>,
}

impl Graph {
    /// The nodes that read `node`.
    pub fn consumers(&self, node: NodeRef) -> Vec<NodeRef> {
        let steps =
            self.step_inputs.iter().enumerate().filter(|(_, ins)| ins.contains(&node)).map(|(i, _)| NodeRef::Step(i));
        let sinks =
            self.sink_inputs.iter().enumerate().filter(|(_, ins)| ins.contains(&node)).map(|(i, _)| NodeRef::Sink(i));
        steps.chain(sinks).collect()
    }
}
