//! `flowctl plan`: a [`PhysicalPlan`] as text (the default), JSON (what tests
//! snapshot), Graphviz dot and Mermaid. All four are drawn from one [`View`]: the
//! nodes with where they run, the edges, and the threads.

use super::logical::Edge;
use super::physical::{Execution, PhysicalPlan};
use crate::graph::NodeRef;
use crate::spec::{duration::format_duration, ErrorPolicy, SinkKind, SourceKind, SourceSpec, StepKind};
use crate::steps::CompiledStep;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// `flowctl plan --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
    Dot,
    Mermaid,
}

/// Renders the plan in `format`.
pub fn render(plan: &PhysicalPlan, format: PlanFormat) -> String {
    let view = View::of(plan);
    match format {
        PlanFormat::Text => text(plan, &view),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json(plan, &view)).unwrap_or_default();
            s.push('\n');
            s
        }
        PlanFormat::Dot => dot(&view),
        PlanFormat::Mermaid => mermaid(&view),
    }
}

/// One source, step or sink as the plan shows it.
struct Node {
    /// An identifier safe in dot and Mermaid (`source_0`, `step_2`, `sink_1`).
    key: String,
    /// The user's name (a source or sink id, a step's `id:` or `<kind> #<n>`).
    name: String,
    /// What it is: `file`, `filter`, `window_reduce`, ...
    kind: String,
    /// What it does, in one line.
    what: String,
    /// The threads it runs on (an entry of `View::threads`).
    runs_on: usize,
    /// What it keeps between records.
    state: &'static str,
}

struct Arrow {
    from: String,
    to: String,
    /// `forward` or `partition by key`.
    edge: &'static str,
}

/// A group of threads doing the same work.
struct Threads {
    name: String,
    /// None: one per Kafka partition, known at start.
    count: Option<usize>,
    does: String,
}

struct View {
    nodes: Vec<Node>,
    arrows: Vec<Arrow>,
    threads: Vec<Threads>,
}

impl View {
    fn of(plan: &PhysicalPlan) -> View {
        let p = &plan.logical.pipeline;
        let spec = &p.spec;
        let mut threads: Vec<Threads> = Vec::new();
        let mut add = |name: String, count: Option<usize>, does: String| {
            threads.push(Threads { name, count, does });
            threads.len() - 1
        };
        let head_names = || plan.head.iter().map(|&i| spec.steps[i].label(i)).collect::<Vec<_>>().join(", ");
        let encodes =
            |i: usize| plan.sources[i].encodes_for.map(|s| format!(", encode lines for `{}`", spec.sinks[s].id.value));
        let stamps = |i: usize| if spec.sources[i].event_time.is_some() { ", event time" } else { "" };
        let mut source_threads = Vec::new();
        let (lanes, keyed, executor);
        match &plan.execution {
            Execution::SplitByData { workers, key_by } => {
                add("reader".into(), Some(1), format!("cut `{}` into blocks", spec.sources[0].id.value));
                let work = add(
                    "worker".into(),
                    Some(*workers),
                    format!(
                        "one block in {workers}: decode, event time{}, hash by `{}`; exchange records by key; run the keyed steps on the keys it owns",
                        if plan.head.is_empty() { String::new() } else { format!(", {}", head_names()) },
                        spec.steps[*key_by].label(*key_by)
                    ),
                );
                let main =
                    add("main".into(), Some(1), "checkpoint barriers at block boundaries, signals, metrics".into());
                source_threads.push(work);
                (lanes, keyed, executor) = (work, work, main);
            }
            Execution::BlockLanes { threads } => {
                let source = &spec.sources[0];
                if matches!(source.kind, SourceKind::File { .. }) {
                    add("reader".into(), Some(1), format!("cut `{}` into blocks", source.id.value));
                }
                let steps = if plan.head.is_empty() { String::new() } else { format!(", {}", head_names()) };
                let block = add(
                    format!("block-{}", source.id.value),
                    Some(*threads),
                    format!("one block in {threads}: decode{}{steps}{}", stamps(0), encodes(0).unwrap_or_default()),
                );
                add("forwarder".into(), Some(1), "hand the blocks on in order".into());
                let exec =
                    add("executor".into(), Some(1), "merge, watermark, checkpoints, post lines to the sink".into());
                source_threads.push(block);
                (lanes, keyed, executor) = (block, exec, exec);
            }
            execution => {
                for (i, source) in spec.sources.iter().enumerate() {
                    let placement = &plan.sources[i];
                    if placement.decode_threads > 1 {
                        add(
                            format!("decode-{}", source.id.value),
                            Some(placement.decode_threads),
                            "decode blocks".into(),
                        );
                    }
                    let steps = if plan.head.is_empty() { String::new() } else { format!(", {}", head_names()) };
                    let lane = add(
                        format!("source-{}", source.id.value),
                        placement.lanes,
                        format!("read{}{steps}{}", stamps(i), encodes(i).unwrap_or_default()),
                    );
                    source_threads.push(lane);
                }
                let exec = add("executor".into(), Some(1), "merge by event time, watermark, checkpoints".into());
                keyed = match execution {
                    Execution::KeyedInstances { instances, .. } => add(
                        "instance".into(),
                        Some(*instances),
                        "the keyed steps for the keys that hash to it (instance 0 on the executor's thread)".into(),
                    ),
                    _ => exec,
                };
                (lanes, executor) = (source_threads.first().copied().unwrap_or(exec), exec);
            }
        }
        let sink_threads: Vec<usize> =
            spec.sinks.iter().map(|s| add(format!("sink-{}", s.id.value), Some(1), "write".into())).collect();

        let mut nodes = Vec::new();
        for (i, s) in spec.sources.iter().enumerate() {
            nodes.push(Node {
                key: format!("source_{i}"),
                name: s.id.value.clone(),
                kind: s.kind.type_name().into(),
                what: describe_source(s),
                runs_on: source_threads.get(i).copied().unwrap_or(lanes),
                state: "position",
            });
        }
        for (i, step) in spec.steps.iter().enumerate() {
            let runs_on = if plan.head.contains(&i) {
                lanes
            } else if plan.keyed[i] {
                keyed
            } else {
                match plan.execution {
                    Execution::SplitByData { .. } => lanes,
                    _ => executor,
                }
            };
            nodes.push(Node {
                key: format!("step_{i}"),
                name: step.label(i),
                kind: operator_kind(&p.steps[i], step.kind.name()).into(),
                what: describe_step(&step.kind),
                runs_on,
                state: match &p.steps[i] {
                    CompiledStep::Reduce { window: Some(_), .. } => "windows per key",
                    CompiledStep::Reduce { window: None, .. } => "aggregates per key",
                    CompiledStep::Component(c) => c.state(),
                    _ => "none",
                },
            });
        }
        for (i, sink) in spec.sinks.iter().enumerate() {
            nodes.push(Node {
                key: format!("sink_{i}"),
                name: sink.id.value.clone(),
                kind: sink.kind.type_name().into(),
                what: describe_sink(&sink.kind),
                runs_on: sink_threads[i],
                state: "committed output",
            });
        }
        let key = |r: NodeRef| match r {
            NodeRef::Source(i) => format!("source_{i}"),
            NodeRef::Step(i) => format!("step_{i}"),
            NodeRef::Sink(i) => format!("sink_{i}"),
        };
        let partition_from = |r: NodeRef| {
            plan.logical
                .chains
                .iter()
                .any(|c| matches!((&c.edge, r), (Edge::Partition { key_by }, NodeRef::Step(k)) if *key_by == k))
        };
        let mut arrows = Vec::new();
        for (i, inputs) in p.graph.step_inputs.iter().enumerate() {
            for &from in inputs {
                let edge = if partition_from(from) { "partition by key" } else { "forward" };
                arrows.push(Arrow { from: key(from), to: key(NodeRef::Step(i)), edge });
            }
        }
        for (i, inputs) in p.graph.sink_inputs.iter().enumerate() {
            for &from in inputs {
                arrows.push(Arrow { from: key(from), to: key(NodeRef::Sink(i)), edge: "forward" });
            }
        }
        if let Some(sink) = p.graph.error_sink {
            arrows.push(Arrow { from: "errors".into(), to: key(NodeRef::Sink(sink)), edge: "bad records" });
        }
        let mut late: Vec<_> = p.graph.late_sinks.iter().collect();
        late.sort();
        for (&step, &sink) in late {
            let reader = (0..p.steps.len())
                .find(|&r| matches!(p.steps[r], CompiledStep::Reduce { window_step: Some(w), .. } if w == step))
                .unwrap_or(step);
            arrows.push(Arrow { from: key(NodeRef::Step(reader)), to: key(NodeRef::Sink(sink)), edge: "late records" });
        }
        View { nodes, arrows, threads }
    }
}

fn operator_kind(step: &CompiledStep, kind: &'static str) -> &'static str {
    match step {
        CompiledStep::KeyBy { .. } => "key_by",
        CompiledStep::Window(_) => "window",
        CompiledStep::Reduce { window: Some(_), .. } => "window_reduce",
        CompiledStep::Reduce { window: None, .. } => "rolling_reduce",
        CompiledStep::Component(_) => kind,
    }
}

fn execution_json(plan: &PhysicalPlan) -> Value {
    let label = |i: usize| plan.logical.pipeline.spec.steps[i].label(i);
    match &plan.execution {
        Execution::OneThread { why } => json!({"mode": "one_thread", "why": why}),
        Execution::KeyedInstances { instances, exchanges } => json!({
            "mode": "keyed_instances",
            "instances": instances,
            "exchanges": exchanges.iter().map(|&k| label(k)).collect::<Vec<_>>(),
        }),
        Execution::SplitByData { workers, key_by } => {
            json!({"mode": "split_by_data", "workers": workers, "key_by": label(*key_by)})
        }
        Execution::BlockLanes { threads } => json!({"mode": "block_lanes", "threads": threads}),
    }
}

fn execution_text(plan: &PhysicalPlan) -> String {
    let label = |i: usize| plan.logical.pipeline.spec.steps[i].label(i);
    match &plan.execution {
        Execution::OneThread { why } => format!("one thread runs the steps after the sources ({why})"),
        Execution::KeyedInstances { instances, exchanges } => format!(
            "keyed steps on {instances} instances, partitioned by the key of {}",
            exchanges.iter().map(|&k| format!("`{}`", label(k))).collect::<Vec<_>>().join(", ")
        ),
        Execution::SplitByData { workers, key_by } => {
            format!(
                "the file split by data between {workers} workers, exchanging records by the key of `{}`",
                label(*key_by)
            )
        }
        Execution::BlockLanes { threads } => {
            format!("the source read in blocks by {threads} threads, each running every step")
        }
    }
}

fn count_json(count: Option<usize>) -> Value {
    count.map_or(json!("one per partition"), |n| json!(n))
}

fn json(plan: &PhysicalPlan, view: &View) -> Value {
    let spec = &plan.logical.pipeline.spec;
    let name_of = |key: &str| view.nodes.iter().find(|n| n.key == key).map_or(key.to_string(), |n| n.name.clone());
    let inputs = |key: &str| -> Vec<Value> {
        view.arrows.iter().filter(|a| a.to == key).map(|a| json!({"from": name_of(&a.from), "edge": a.edge})).collect()
    };
    let node_json = |n: &Node| {
        json!({
            "id": n.name,
            "kind": n.kind,
            "does": n.what,
            "inputs": inputs(&n.key),
            "runs_on": view.threads[n.runs_on].name,
            "state": n.state,
        })
    };
    let sources: Vec<Value> = spec
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let placement = &plan.sources[i];
            json!({
                "id": s.id.value,
                "type": s.kind.type_name(),
                "does": view.nodes[i].what,
                "lanes": count_json(placement.lanes),
                "decode_threads": placement.decode_threads,
                "event_time": s.event_time.is_some(),
                "encodes_lines_for": placement.encodes_for.map(|k| spec.sinks[k].id.value.clone()),
                "unread_columns": placement.unread_columns.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "runs_on": view.threads[view.nodes[i].runs_on].name,
            })
        })
        .collect();
    let steps: Vec<Value> = view.nodes.iter().filter(|n| n.key.starts_with("step_")).map(node_json).collect();
    let sinks: Vec<Value> = view.nodes.iter().filter(|n| n.key.starts_with("sink_")).map(node_json).collect();
    let threads: Vec<Value> =
        view.threads.iter().map(|t| json!({"name": t.name, "count": count_json(t.count), "does": t.does})).collect();
    json!({
        "pipeline": spec.name,
        "parallelism": plan.parallelism,
        "execution": execution_json(plan),
        "sources": sources,
        "steps": steps,
        "sinks": sinks,
        "threads": threads,
    })
}

fn text(plan: &PhysicalPlan, view: &View) -> String {
    let p = &plan.logical.pipeline;
    let spec = &p.spec;
    let mut out = String::new();
    let _ = writeln!(out, "pipeline `{}` ({})", spec.name, spec.path.display());
    let _ = writeln!(out, "runs: {}; parallelism {}", execution_text(plan), plan.parallelism);
    let group = |runs_on: usize| {
        let t = &view.threads[runs_on];
        match t.count {
            Some(1) => format!("[{}]", t.name),
            Some(n) => format!("[{} x{n}]", t.name),
            None => format!("[{} per partition]", t.name),
        }
    };
    let inputs = |key: &str| {
        let list: Vec<String> = view
            .arrows
            .iter()
            .filter(|a| a.to == key)
            .map(|a| {
                let from = view.nodes.iter().find(|n| n.key == a.from).map_or(a.from.as_str(), |n| n.name.as_str());
                match a.edge {
                    "forward" => from.to_string(),
                    edge => format!("{from} ({edge})"),
                }
            })
            .collect();
        if list.is_empty() {
            String::new()
        } else {
            format!(" <- {}", list.join(", "))
        }
    };
    let _ = writeln!(out, "sources:");
    for (i, s) in spec.sources.iter().enumerate() {
        let n = &view.nodes[i];
        let _ = writeln!(out, "  {}: {} {}", n.name, n.what, group(n.runs_on));
        let _ = writeln!(out, "    {}", describe_time(s));
        let unread = &plan.sources[i].unread_columns;
        if !unread.is_empty() {
            let names: Vec<&str> = unread.iter().map(|c| &**c).collect();
            let _ = writeln!(out, "    columns nothing reads, left NULL: {}", names.join(", "));
        }
    }
    let _ = writeln!(out, "steps:");
    for &i in &p.graph.step_order {
        let n = &view.nodes[spec.sources.len() + i];
        let state = if n.state == "none" { String::new() } else { format!(" (state: {})", n.state) };
        let _ = writeln!(out, "  {}: {}{} {}{state}", n.name, n.what, inputs(&n.key), group(n.runs_on));
    }
    let _ = writeln!(out, "sinks:");
    for n in &view.nodes[spec.sources.len() + spec.steps.len()..] {
        let _ = writeln!(out, "  {}: {}{} {}", n.name, n.what, inputs(&n.key), group(n.runs_on));
    }
    let _ = writeln!(out, "threads:");
    for t in &view.threads {
        let count = t.count.map_or(" per partition".to_string(), |n| format!(" x{n}"));
        let _ = writeln!(out, "  {}{count}: {}", t.name, t.does);
    }
    let policy = match &spec.on_error.value {
        ErrorPolicy::Fail => "fail".to_string(),
        ErrorPolicy::Skip => "skip".to_string(),
        ErrorPolicy::Sink(s) => format!("send to sink `{s}`"),
    };
    let _ = writeln!(out, "on_error: {policy}");
    out
}

/// Quotes a label for dot and Mermaid.
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "'")
}

impl View {
    /// The thread groups that run nodes: index, label (`name xN`) and nodes.
    fn groups(&self) -> impl Iterator<Item = (usize, String, Vec<&Node>)> {
        self.threads.iter().enumerate().filter_map(|(t, threads)| {
            let members: Vec<&Node> = self.nodes.iter().filter(|n| n.runs_on == t).collect();
            let count = threads.count.map_or("per partition".to_string(), |n| format!("x{n}"));
            (!members.is_empty()).then(|| (t, quoted(&format!("{} {count}", threads.name)), members))
        })
    }
}

fn dot(view: &View) -> String {
    let mut out = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (t, label, members) in view.groups() {
        let _ = writeln!(out, "  subgraph cluster_{t} {{\n    label=\"{label}\";");
        for n in members {
            let _ = writeln!(out, "    {} [label=\"{}\\n{}\"];", n.key, quoted(&n.name), quoted(&n.kind));
        }
        out.push_str("  }\n");
    }
    if view.arrows.iter().any(|a| a.from == "errors") {
        out.push_str("  errors [shape=note, label=\"bad records\"];\n");
    }
    for a in &view.arrows {
        let style = match a.edge {
            "forward" => String::new(),
            edge => format!(" [label=\"{edge}\", style=dashed]"),
        };
        let _ = writeln!(out, "  {} -> {}{style};", a.from, a.to);
    }
    out.push_str("}\n");
    out
}

fn mermaid(view: &View) -> String {
    let mut out = String::from("flowchart LR\n");
    for (t, label, members) in view.groups() {
        let _ = writeln!(out, "  subgraph thread_{t}[\"{label}\"]");
        for n in members {
            let _ = writeln!(out, "    {}[\"{}<br/>{}\"]", n.key, quoted(&n.name), quoted(&n.kind));
        }
        out.push_str("  end\n");
    }
    if view.arrows.iter().any(|a| a.from == "errors") {
        out.push_str("  errors([bad records])\n");
    }
    for a in &view.arrows {
        match a.edge {
            "forward" => {
                let _ = writeln!(out, "  {} --> {}", a.from, a.to);
            }
            edge => {
                let _ = writeln!(out, "  {} -. {edge} .-> {}", a.from, a.to);
            }
        }
    }
    out
}

fn describe_source(s: &SourceSpec) -> String {
    match &s.kind {
        SourceKind::File { path, decoding, follow } => {
            format!("file {} ({}{})", path.value, decoding.format.name(), if follow.value { ", follow" } else { "" })
        }
        SourceKind::Stdin { decoding } => format!("stdin ({})", decoding.format.name()),
        other => other.type_name().to_string(),
    }
}

fn describe_sink(kind: &SinkKind) -> String {
    match kind {
        SinkKind::Stdout { format } => format!("stdout ({})", format!("{format:?}").to_lowercase()),
        SinkKind::File { path, format, .. } => format!("file {} ({})", path.value, format.value.name()),
        SinkKind::Sql { table, key, .. } => {
            let mode = if key.is_empty() {
                "append".to_string()
            } else {
                format!("upsert on {}", key.iter().map(|k| k.value.as_str()).collect::<Vec<_>>().join(", "))
            };
            format!("{} table {} ({mode})", kind.type_name(), table.value)
        }
        other => other.type_name().to_string(),
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

pub fn describe_step(kind: &StepKind) -> String {
    let names = |fields: &[(crate::spec::Spanned<String>, crate::spec::ExprSpec)]| {
        fields.iter().map(|(n, e)| format!("{} = {}", n.value, e.text)).collect::<Vec<_>>().join(", ")
    };
    match kind {
        StepKind::Reduce(f) => names(f),
        StepKind::Component(c) => c.describe(),
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
