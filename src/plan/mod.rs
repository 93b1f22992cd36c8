//! The planner: a [`ValidPipeline`](crate::validate::ValidPipeline) becomes a
//! [`LogicalPlan`] (operators fused into chains, forward and partition edges), and
//! that, with the run's options, a [`PhysicalPlan`]: the one place where how a
//! pipeline runs is decided. `flowctl plan` renders the physical plan.

pub mod logical;
pub mod physical;
pub mod projection;
pub mod render;

pub use logical::{plan, Chain, Edge, LogicalPlan};
pub use physical::{Execution, Io, PhysicalPlan, PlanOptions};
pub use render::{describe_step, render, PlanFormat};
