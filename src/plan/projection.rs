//! Projection pushdown: the columns of a CSV source that nothing reads, which its
//! decoder then leaves NULL instead of building values no one looks at (as Flink's
//! planner pushes a projection into a table source).
//!
//! A column is read when any step's expression or the source's event time names it.
//! Records reach outputs whole in three ways, and then every column is kept: a sink
//! (or a window's `late:` sink) reading the source through steps that keep their input
//! fields (anything but `map` and `reduce`), and an `on_error` sink, whose `input` is
//! the failing record.

use crate::format::DataFormat;
use crate::graph::NodeRef;
use crate::sources::decode::ValueType;
use crate::sources::{FileConfig, SocketConfig, SourceConfig, StdinConfig};
use crate::validate::ValidPipeline;
use std::collections::HashSet;
use std::sync::Arc;

/// The columns of source `source` its decoder need not build, in column order: those
/// nothing reads that are untyped or declared strings (so leaving them out cannot hide
/// a bad record). Empty when its columns are not known before reading, when it is not CSV read by flowctl's
/// own decoder (files, stdin, sockets), or when its records can reach an output whole.
pub fn unread_columns(pipeline: &ValidPipeline, source: usize) -> Vec<Arc<str>> {
    let decoding = match &pipeline.sources[source].config {
        SourceConfig::File(FileConfig { decoding, .. })
        | SourceConfig::Stdin(StdinConfig { decoding })
        | SourceConfig::Socket(SocketConfig { decoding, .. }) => decoding,
        _ => return Vec::new(),
    };
    let Some(columns) = pipeline.source_fields[source].as_ref().filter(|_| decoding.format == DataFormat::Csv) else {
        return Vec::new();
    };
    if pipeline.graph.error_sink.is_some() || reaches_an_output_whole(pipeline, NodeRef::Source(source)) {
        return Vec::new();
    }
    let event_time = pipeline.event_times[source].iter().map(|t| &t.expr);
    let read: HashSet<&Arc<str>> =
        pipeline.steps.iter().flat_map(|s| s.exprs()).chain(event_time).flat_map(|e| e.fields()).collect();
    // A declared int, float, bool or timestamp is still parsed: a bad value in it is
    // a bad record whether or not anything reads it.
    let may_fail = |c: &Arc<str>| decoding.schema.iter().any(|(n, t)| **n == **c && *t != ValueType::String);
    columns.iter().filter(|c| !read.contains(c) && !may_fail(c)).cloned().collect()
}

/// Whether records of `node` reach a sink or a late sink with their fields intact.
fn reaches_an_output_whole(pipeline: &ValidPipeline, node: NodeRef) -> bool {
    let graph = &pipeline.graph;
    let mut seen = HashSet::new();
    let mut todo = vec![node];
    while let Some(node) = todo.pop() {
        for next in graph.consumers(node) {
            match next {
                NodeRef::Sink(_) => return true,
                NodeRef::Step(i) if graph.late_sinks.contains_key(&i) => return true,
                NodeRef::Step(i) if !pipeline.steps[i].makes_new_records() && seen.insert(i) => todo.push(next),
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceFile;
    use crate::validate::{validate_file, Options};

    fn unread(yaml: &str) -> Vec<String> {
        let file = SourceFile { path: "p.yaml".into(), text: yaml.to_string() };
        // The CSV header, as `flowctl run` reads it from the file.
        let header = |_: &_| Some(["ts", "a", "b", "c", "d"].map(String::from).to_vec());
        let options = Options { env: &|_| None, peek_fields: &header, overrides: &[] };
        let pipeline = validate_file(&file, &options).unwrap_or_else(|d| panic!("{}", d.render("p.yaml", yaml)));
        unread_columns(&pipeline, 0).iter().map(|c| c.to_string()).collect()
    }

    const SOURCE: &str = "sources:\n  in:\n    type: file\n    path: in.csv\n    schema: {ts: int, a: string, b: string, c: float, d: string}\n";

    #[test]
    fn columns_read_by_steps_or_event_time_or_of_a_type_that_may_fail_are_decoded() {
        let steps = "steps:\n  - filter: lower(a) = 'x'\n  - map: {n: ts + 1}\nsinks:\n  out: {type: stdout}\n";
        assert_eq!(unread(&format!("{SOURCE}{steps}")), ["b", "d"]);
        let timed = SOURCE.replace("path: in.csv", "path: in.csv\n    event_time: d");
        assert_eq!(unread(&format!("{timed}{steps}")), ["b"]);
        let keyed = "steps:\n  - key_by: b\n  - reduce: {s: sum(c)}\nsinks:\n  out: {type: stdout}\n";
        assert_eq!(unread(&format!("{SOURCE}{keyed}")), ["a", "d"]);
    }

    #[test]
    fn records_reaching_an_output_through_steps_that_keep_fields_keep_every_column() {
        let passing = "steps:\n  - filter: a = 'x'\n  - set: {n: 1}\n  - drop: [b]\nsinks:\n  out: {type: stdout}\n";
        assert!(unread(&format!("{SOURCE}{passing}")).is_empty());
        assert!(unread(&format!("{SOURCE}sinks:\n  out: {{type: stdout}}\n")).is_empty());
        let json = SOURCE.replace("in.csv", "in.jsonl");
        assert!(unread(&format!("{json}steps:\n  - map: {{n: a}}\nsinks:\n  out: {{type: stdout}}\n")).is_empty());
    }
}
