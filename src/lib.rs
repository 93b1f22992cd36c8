//! flowctl: a single-binary stream and batch processor driven by YAML pipeline files.
//!
//! ```text
//! YAML text --spec::parse--> PipelineSpec (every node keeps its file:line:col span)
//!           --validate-----> ValidPipeline  or  Diagnostics (all of them, rendered like rustc)
//!           --plan---------> LogicalPlan { chains of fused operators, Forward / Partition(key) edges }
//!           --physical-----> PhysicalPlan { execution mode, threads, what runs where }
//!           --runtime::run-> sources -> chains -> sinks
//! ```
//! `flowctl validate` stops after planning (it refuses what `run` would), `flowctl plan`
//! prints the physical plan. Nothing depends on `cli`.

pub mod checkpoint;
pub mod cli;
pub mod diag;
pub mod error;
pub mod export;
pub mod expr;
pub mod format;
pub mod graph;
pub mod kafka;
pub mod plan;
pub mod record;
pub mod runtime;
pub mod sinks;
pub mod sources;
pub mod spec;
pub mod steps;
pub mod testing;
pub mod validate;
