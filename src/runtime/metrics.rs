//! Run metrics, updated by the executor after each batch and served in the Prometheus
//! text format at `--metrics-addr host:port` (`/metrics`) by a small HTTP thread
//! (`tiny_http`, its only user).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Metrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub late: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub watermark_ms: AtomicI64,
    pub checkpoints: AtomicU64,
    pub checkpoint_bytes: AtomicU64,
    pub checkpoint_last_ms: AtomicU64,
    pub checkpoint_last_unix_ms: AtomicI64,
    pub open_windows_peak: AtomicU64,
    /// Per source, step, sink and channel: replaced by the executor after each batch.
    pub detail: Mutex<Detail>,
}

/// Metrics per part of the pipeline.
#[derive(Clone, Debug, Default)]
pub struct Detail {
    /// Per source: id, records read, watermark (ms).
    pub sources: Vec<(String, u64, i64)>,
    /// Per step: label, records in, records out, state entries (keys or open windows).
    pub steps: Vec<(String, u64, u64, Option<usize>)>,
    /// Per sink: id, records sent to it.
    pub sinks: Vec<(String, u64)>,
    /// Per channel: its edge (`source orders -> steps`), batches queued, capacity.
    pub channels: Vec<(String, usize, usize)>,
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn seconds(ms: i64) -> f64 {
    if ms == i64::MIN || ms == i64::MAX {
        0.0
    } else {
        ms as f64 / 1000.0
    }
}

impl Detail {
    /// The per-part families, each sample labelled with the pipeline and the part.
    fn render(&self, pipeline_label: &str) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String, f64)>| {
            if samples.is_empty() {
                return;
            }
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (label, value, v) in samples {
                out.push_str(&format!("{name}{{{pipeline_label},{label}=\"{}\"}} {v}\n", escape(&value)));
            }
        };
        let per = |items: Vec<(&str, &String, f64)>| {
            items.into_iter().map(|(l, v, x)| (l.to_string(), v.clone(), x)).collect::<Vec<_>>()
        };
        family(
            "flowctl_source_records_in_total",
            "counter",
            "Records read, per source.",
            per(self.sources.iter().map(|(id, n, _)| ("source", id, *n as f64)).collect()),
        );
        family(
            "flowctl_source_watermark_seconds",
            "gauge",
            "Event-time watermark per source (minimum over its partitions), Unix seconds.",
            per(self.sources.iter().map(|(id, _, wm)| ("source", id, seconds(*wm))).collect()),
        );
        family(
            "flowctl_source_watermark_lag_seconds",
            "gauge",
            "Wall-clock time minus the source's watermark.",
            per(self
                .sources
                .iter()
                .map(|(id, _, wm)| ("source", id, if seconds(*wm) == 0.0 { 0.0 } else { (now - wm) as f64 / 1000.0 }))
                .collect()),
        );
        family(
            "flowctl_step_records_in_total",
            "counter",
            "Records into each step.",
            per(self.steps.iter().map(|(id, n, _, _)| ("step", id, *n as f64)).collect()),
        );
        family(
            "flowctl_step_records_out_total",
            "counter",
            "Records out of each step.",
            per(self.steps.iter().map(|(id, _, n, _)| ("step", id, *n as f64)).collect()),
        );
        family(
            "flowctl_step_state_entries",
            "gauge",
            "State held by a stateful step: keys (rolling reduce) or open windows.",
            per(self.steps.iter().filter_map(|(id, _, _, s)| s.map(|s| ("step", id, s as f64))).collect()),
        );
        family(
            "flowctl_sink_records_total",
            "counter",
            "Records sent to each sink.",
            per(self.sinks.iter().map(|(id, n)| ("sink", id, *n as f64)).collect()),
        );
        family(
            "flowctl_channel_fill_ratio",
            "gauge",
            "Batches queued on a channel over its capacity (1 = full: the reader is the bottleneck).",
            per(self
                .channels
                .iter()
                .map(|(edge, queued, cap)| ("edge", edge, *queued as f64 / (*cap).max(1) as f64))
                .collect()),
        );
        out
    }
}

impl Metrics {
    /// The Prometheus text exposition of the current values.
    pub fn render(&self, pipeline: &str) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        let wm = self.watermark_ms.load(Ordering::Relaxed);
        let lag = if seconds(wm) == 0.0 { 0.0 } else { (now - wm) as f64 / 1000.0 };
        let last = self.checkpoint_last_unix_ms.load(Ordering::Relaxed);
        let age = if last == 0 { 0.0 } else { (now - last) as f64 / 1000.0 };
        let label = format!("pipeline=\"{}\"", escape(pipeline));
        let counter = |name: &str, help: &str, v: u64| {
            format!("# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{label}}} {v}\n")
        };
        let gauge = |name: &str, help: &str, v: f64| {
            format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{label}}} {v}\n")
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            counter("flowctl_records_in_total", "Records read by all sources.", get(&self.records_in)),
            counter("flowctl_records_out_total", "Records written to sinks.", get(&self.records_out)),
            counter("flowctl_late_records_total", "Records too late for their windows.", get(&self.late)),
            counter("flowctl_skipped_records_total", "Bad records skipped (on_error: skip).", get(&self.skipped)),
            counter("flowctl_failed_records_total", "Bad records sent to the on_error sink.", get(&self.failed)),
            gauge("flowctl_watermark_seconds", "Event-time watermark, Unix seconds.", seconds(wm)),
            gauge("flowctl_watermark_lag_seconds", "Wall-clock time minus the watermark.", lag),
            counter("flowctl_checkpoints_total", "Checkpoints written.", get(&self.checkpoints)),
            gauge("flowctl_checkpoint_bytes", "Size of the last checkpoint.", get(&self.checkpoint_bytes) as f64),
            gauge(
                "flowctl_checkpoint_duration_seconds",
                "Pause of the last checkpoint.",
                get(&self.checkpoint_last_ms) as f64 / 1000.0,
            ),
            gauge("flowctl_checkpoint_age_seconds", "Time since the last checkpoint.", age),
            gauge("flowctl_open_windows_peak", "Most windows open at once.", get(&self.open_windows_peak) as f64),
            self.detail.lock().map(|d| d.render(&label)).unwrap_or_default(),
        ]
        .concat()
    }
}

/// Serves `/metrics` on `address` from a background thread.
pub fn serve(address: &str, metrics: Arc<Metrics>, pipeline: String) -> Result<(), String> {
    let server = tiny_http::Server::http(address).map_err(|e| format!("cannot serve metrics on {address}: {e}"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url() == "/metrics" {
                    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain; version=0.0.4"[..]);
                    let body = tiny_http::Response::from_string(metrics.render(&pipeline));
                    match header {
                        Ok(h) => body.with_header(h),
                        Err(()) => body,
                    }
                } else {
                    tiny_http::Response::from_string("not found; metrics are at /metrics\n").with_status_code(404)
                };
                let _ = request.respond(response);
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(())
}
