//! What the metrics say of each part: undecodable input counts as read by its source
//! (as in the summary), the records read in all are the sum of the sources' counts,
//! and a channel that carries a lane's lines straight to its sink is named after the
//! sink, not after steps that do not run there.

use super::common::{free_port, metric, scrape, write_pipeline};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn undecodable_input_counts_as_read_by_its_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"a\": 1}\nnot json\n{\"a\": 2}\n{oops\n{\"a\": 3}\n").unwrap();
    let yaml = "name: counted
on_error: skip
sources:
  in: {type: file, path: in.jsonl, follow: true}
steps:
  - filter: a > 1
sinks:
  out: {type: file, path: out.jsonl}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", &path, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let all = "flowctl_records_in_total{pipeline=\"counted\"}";
    let source = "flowctl_source_records_in_total{pipeline=\"counted\",source=\"in\"}";
    let mut body = String::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        body = scrape(port).unwrap_or_default();
        if metric(&body, all) == Some(5) && metric(&body, source) == Some(5) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((metric(&body, all), metric(&body, source)), (Some(5), Some(5)), "{body}");
}

#[test]
fn a_channel_of_lines_is_named_after_the_sink_that_fills_it() {
    let body = scrape_lanes_into_a_slow_sink(|body| body.contains("flowctl_channel_fill_ratio"));
    assert!(body.contains("edge=\"source in -> sink out (lines)\""), "{body}");
    assert!(!body.contains("edge=\"source in -> steps\""), "{body}");
}

/// Lanes that count what they read as they read it: the run's count of records read
/// is their sum at every scrape, not what has reached the executor (which trails it
/// by the batches queued for a slow sink).
#[test]
fn records_read_in_all_are_the_sum_of_the_sources_counts() {
    let all = "flowctl_records_in_total{pipeline=\"lines\"}";
    let source = "flowctl_source_records_in_total{pipeline=\"lines\",source=\"in\"}";
    let body = scrape_lanes_into_a_slow_sink(|body| metric(body, source).is_some_and(|n| n > 20_000));
    assert_eq!(metric(&body, all), metric(&body, source), "{body}");
}

/// Runs a stateless pipeline whose file is read in blocks by two lanes encoding for a
/// socket sink read slowly, and scrapes its metrics until `enough` says so (at most
/// ten seconds); the last body.
fn scrape_lanes_into_a_slow_sink(enough: impl Fn(&str) -> bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..400_000).map(|i| format!("{i},u{}\n", i % 97)).collect();
    std::fs::write(dir.path().join("in.csv"), format!("n,user\n{rows}")).unwrap();
    // A slow reader keeps the run going while it is scraped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buffer) {
            if n == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let yaml = format!(
        "name: lines\nsources:\n  in: {{type: file, path: in.csv}}\nsteps:\n  - filter: n % 2 = 0\nsinks:\n  out: {{type: socket, address: '{address}'}}\n"
    );
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "-p", "2", &path, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        body = scrape(port).unwrap_or_default();
        if enough(&body) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(reader.join());
    body
}
