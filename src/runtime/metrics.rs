//! Run metrics, updated by the executor after each batch and served in the Prometheus
//! text format at `--metrics-addr host:port` (`/metrics`) by one HTTP thread.
//!
//! The server is a loop over non-blocking sockets on that one thread, holding at
//! most [`MAX_CONNECTIONS`]: a connection past that closes the one open longest, and
//! one that has not sent its request within [`REQUEST_TIMEOUT`] is closed. A thread
//! per connection (as tiny_http, used before, had) let 1,000 idle connections take
//! 1,000 threads, and under a process limit the endpoint died for the rest of the run.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections the metrics server holds at once (docs/limits.md).
pub const MAX_CONNECTIONS: usize = 32;
/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request head read (a scrape sends a few hundred bytes).
const MAX_REQUEST: usize = 16 * 1024;
/// How long the loop sleeps when nothing happened.
const IDLE_POLL: Duration = Duration::from_millis(5);

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
    let listener = TcpListener::bind(address).map_err(|e| format!("cannot serve metrics on {address}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot serve metrics on {address}: {e}"))?;
    let mut server = Server { listener, connections: Vec::new(), metrics, pipeline };
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || server.run())
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(())
}

struct Server {
    listener: TcpListener,
    connections: Vec<Connection>,
    metrics: Arc<Metrics>,
    pipeline: String,
}

/// A connection whose request has not fully arrived.
struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    opened: Instant,
}

impl Server {
    fn run(&mut self) {
        loop {
            let accepted = self.accept();
            let read = self.serve_requests();
            if !accepted && !read {
                std::thread::sleep(IDLE_POLL);
            }
        }
    }

    /// Takes every waiting connection, closing the oldest ones beyond the limit;
    /// true when there was one.
    fn accept(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    any = true;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.connections.len() >= MAX_CONNECTIONS {
                        // Connections are kept in the order they came: the first is the oldest.
                        self.connections.remove(0);
                    }
                    self.connections.push(Connection { stream, request: Vec::new(), opened: Instant::now() });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // WouldBlock: none waiting. Anything else (out of file descriptors, a
                // connection reset before it was taken) passes; the loop tries again.
                Err(_) => return any,
            }
        }
    }

    /// Reads what the connections sent and answers those whose request is complete
    /// (closing them); true when any sent something.
    fn serve_requests(&mut self) -> bool {
        let mut any = false;
        let (metrics, pipeline) = (&self.metrics, &self.pipeline);
        self.connections.retain_mut(|c| {
            let mut chunk = [0u8; 4096];
            loop {
                match c.stream.read(&mut chunk) {
                    // Closed by the client before its request was complete.
                    Ok(0) => return false,
                    Ok(n) => {
                        any = true;
                        c.request.extend_from_slice(&chunk[..n]);
                        if let Some(end) = head_end(&c.request) {
                            respond(&mut c.stream, &c.request[..end], metrics, pipeline);
                            return false;
                        }
                        if c.request.len() > MAX_REQUEST {
                            let _ = write_response(&mut c.stream, "431 Request Header Fields Too Large", "", false);
                            return false;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return c.opened.elapsed() < REQUEST_TIMEOUT,
                    Err(_) => return false,
                }
            }
        });
        any
    }
}

/// Where the head of an HTTP request ends (after its blank line), once it has.
fn head_end(request: &[u8]) -> Option<usize> {
    request.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).or_else(|| {
        // Lines ended by a bare newline, as some tools send them.
        request.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
    })
}

/// Answers one request: `GET /metrics` (or HEAD) with the metrics, anything else
/// with 404 or 405; the connection is closed after it.
fn respond(stream: &mut TcpStream, head: &[u8], metrics: &Metrics, pipeline: &str) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let head_only = method == "HEAD";
    let _ = match (method, path) {
        ("GET" | "HEAD", "/metrics") => write_response(stream, "200 OK", &metrics.render(pipeline), head_only),
        ("GET" | "HEAD", _) => {
            write_response(stream, "404 Not Found", "not found; metrics are at /metrics\n", head_only)
        }
        _ => write_response(stream, "405 Method Not Allowed", "only GET /metrics\n", false),
    };
}

fn write_response(stream: &mut TcpStream, status: &str, body: &str, head_only: bool) -> std::io::Result<()> {
    // A client that does not read gets a few seconds, not the server's thread forever.
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Write)
}
