//! flowctl: a single-binary stream and batch processor driven by YAML pipeline files.
//!
//! ```text
//! YAML text --spec::parse--> PipelineSpec (every node keeps its file:line:col span)
//!           --validate-----> ValidPipeline  or  Diagnostics (all of them, rendered like rustc)
//!           --plan---------> Plan { chains of fused operators, Forward / Partition(key) edges }
//!           --runtime::run-> sources -> chains -> sinks
//! ```
//! `flowctl validate` stops after validate, `flowctl plan` after plan. Nothing depends
//! on `cli`.

pub mod checkpoint;
pub mod cli;
pub mod diag;
pub mod error;
pub mod expr;
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
