//! Streaming behaviour that needs a live process: an idle source stops holding back
//! the watermark of a two-source union.

use super::common::{free_port, metric, scrape, write_pipeline};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The lines a child writes to stdout, as they come.
fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn idle_source_in_a_union_stops_holding_back_windows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "ts,user\n1000,ann\n2000,ann\n12000,bob\n").unwrap();
    let yaml = "sources:
  files:
    type: file
    path: a.csv
    event_time: ts
  live:
    type: stdin
    format: csv
    event_time: ts
    watermark: {idle_timeout: 300ms}
steps:
  - key_by: user
  - window: {tumbling: 10s}
  - reduce: {n: count()}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", &path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdin stays open and silent: without idle_timeout no window could fire.
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let rx = lines_of(stdout);
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("a window fires while stdin is still open");
    assert_eq!(first, r#"{"user":"ann","window_start":0,"window_end":10000,"n":2}"#);
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    let rest: Vec<String> = rx.iter().collect();
    assert_eq!(rest, [r#"{"user":"bob","window_start":10000,"window_end":20000,"n":1}"#]);
}

#[test]
fn socket_source_and_sink_carry_lines_over_tcp() {
    use std::net::TcpListener;
    let input = TcpListener::bind("127.0.0.1:0").unwrap();
    let output = TcpListener::bind("127.0.0.1:0").unwrap();
    let (in_port, out_port) = (input.local_addr().unwrap().port(), output.local_addr().unwrap().port());
    let feeder = std::thread::spawn(move || {
        let (mut conn, _) = input.accept().unwrap();
        std::io::Write::write_all(&mut conn, b"{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n").unwrap();
        // Closing the connection ends the source.
    });
    let collector = std::thread::spawn(move || {
        let (conn, _) = output.accept().unwrap();
        BufReader::new(conn).lines().map(|l| l.unwrap()).collect::<Vec<String>>()
    });
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "sources:\n  in: {{type: socket, address: '127.0.0.1:{in_port}', format: jsonl}}\nsteps:\n  - filter: n >= 2\n  - set: {{sq: n * n}}\nsinks:\n  out: {{type: socket, address: '127.0.0.1:{out_port}'}}\n"
    );
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let out = super::common::flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    feeder.join().unwrap();
    assert_eq!(collector.join().unwrap(), ["{\"n\":2,\"sq\":4}", "{\"n\":3,\"sq\":9}"]);
}

#[test]
fn socket_source_that_cannot_connect_names_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pipeline(
        dir.path(),
        "p.yaml",
        "sources:\n  in: {type: socket, address: '127.0.0.1:1'}\nsinks:\n  out: {type: stdout}\n",
    );
    let out = super::common::flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("source `in`: cannot connect to 127.0.0.1:1"), "{}", out.stderr);
}

#[test]
fn metrics_endpoint_shows_counters_moving_during_a_run() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: metered
sources:
  gen:
    type: datagen
    rate: 2000
    count: 5000
    fields: {n: {type: sequence}}
steps:
  - id: evens
    filter: n % 2 = 0
  - key_by: n % 10
  - id: per_key
    reduce: {c: count()}
sinks:
  out: {type: file, path: out.jsonl}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "--parallelism", "2", &path, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Scraped until the count has moved and the keyed step holds all its keys (a
    // loaded machine may scrape before the first records reached it).
    let (mut seen, mut body) = (Vec::new(), String::new());
    let keys = "flowctl_step_state_entries{pipeline=\"metered\",step=\"per_key\"}";
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        let Some(scraped) = scrape(port) else { continue };
        seen.extend(metric(&scraped, "flowctl_records_in_total{pipeline=\"metered\"}"));
        body = scraped;
        if seen.len() >= 2 && seen.last() > seen.first() && metric(&body, keys) == Some(5) {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(seen.len() >= 2 && seen.last() > seen.first(), "records_in moved: {seen:?}");
    assert!(body.contains("# TYPE flowctl_records_in_total counter"), "{body}");
    let per_part = |name: &str| metric(&body, name).unwrap_or_else(|| panic!("no {name} in {body}"));
    let into_filter = per_part("flowctl_step_records_in_total{pipeline=\"metered\",step=\"evens\"}");
    let out_of_filter = per_part("flowctl_step_records_out_total{pipeline=\"metered\",step=\"evens\"}");
    assert!(into_filter > 0 && out_of_filter <= into_filter / 2 + 1, "{body}");
    assert_eq!(per_part(keys), 5, "{body}");
    assert!(per_part("flowctl_source_records_in_total{pipeline=\"metered\",source=\"gen\"}") >= into_filter);
    assert!(body.contains("flowctl_sink_records_total{pipeline=\"metered\",sink=\"out\"}"), "{body}");
    assert!(body.contains("flowctl_channel_fill_ratio{pipeline=\"metered\",edge=\"source gen -> steps\"}"), "{body}");
    assert!(body.contains("flowctl_channel_fill_ratio{pipeline=\"metered\",edge=\"steps -> sink out\"}"), "{body}");
    assert!(
        body.contains("flowctl_channel_fill_ratio{pipeline=\"metered\",edge=\"steps -> keyed instance 1\"}"),
        "{body}"
    );
}

#[test]
fn an_open_socket_does_not_hold_back_a_file_in_the_same_union() {
    use std::net::TcpListener;
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = live.local_addr().unwrap().port();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = live.accept().unwrap();
        // Silent until released, then one line and close.
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        std::io::Write::write_all(&mut conn, b"from the socket\n").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "from the file\n").unwrap();
    let yaml = format!("sources:\n  file: {{type: file, path: a.txt}}\n  live: {{type: socket, address: '127.0.0.1:{port}'}}\nsinks:\n  out: {{type: stdout}}\n");
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", &path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let rx = lines_of(stdout);
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("the file's record while the socket is open");
    assert_eq!(first, r#"{"line":"from the file"}"#);
    release_tx.send(()).unwrap();
    server.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rx.iter().collect::<Vec<_>>(), [r#"{"line":"from the socket"}"#]);
}

/// `flowctl run PATH` with stdout piped to the test (and stderr dropped).
fn run_with_piped_stdout(path: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn append_to(file: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(file).unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
}

#[test]
fn follow_reads_appends_rotation_and_truncation_exactly_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "a1\na2\n").unwrap();
    let yaml = "name: follow
sources:
  log: {type: file, path: app.log, format: text, follow: true}
sinks:
  out: {type: stdout}
checkpoint: {interval: 50ms}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let start = || run_with_piped_stdout(&path);
    let append = |text: &str| append_to(&log, text);
    let expect = |rx: &mpsc::Receiver<String>, lines: &[&str]| {
        for want in lines {
            let got = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("waiting for {want}"));
            assert_eq!(got, format!("{{\"line\":\"{want}\"}}"));
        }
    };
    let mut child = start();
    let rx = lines_of(child.stdout.take().unwrap());
    expect(&rx, &["a1", "a2"]);
    append("a3\npart");
    expect(&rx, &["a3"]);
    append("ial\n");
    expect(&rx, &["partial"]);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&log, "b1\nb2\n").unwrap();
    expect(&rx, &["b1", "b2"]);
    std::fs::write(&log, "c1\n").unwrap(); // truncated: shorter than what was read
    expect(&rx, &["c1"]);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "nothing more before the restart");
    append("c2\n");
    let mut again = start();
    let rx = lines_of(again.stdout.take().unwrap());
    expect(&rx, &["c2"]);
    let _ = Command::new("kill").args(["-TERM", &again.id().to_string()]).status();
    assert_eq!(again.wait().unwrap().code(), Some(143));
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "every line exactly once");
}

#[test]
fn follow_reads_a_growing_csv_file_row_by_row_without_half_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    std::fs::write(&csv, "id,name\n1,ann\n").unwrap();
    let yaml = "name: follow_csv
sources:
  events: {type: file, path: events.csv, follow: true, schema: {id: int}}
sinks:
  out: {type: stdout}
checkpoint: {interval: 50ms}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let start = || run_with_piped_stdout(&path);
    let append = |text: &str| append_to(&csv, text);
    let expect = |rx: &mpsc::Receiver<String>, want: &[&str]| {
        for w in want {
            assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("waiting for {w}")), *w);
        }
    };
    let mut child = start();
    let rx = lines_of(child.stdout.take().unwrap());
    expect(&rx, &[r#"{"id":1,"name":"ann"}"#]);
    append("2,b");
    std::thread::sleep(Duration::from_millis(400));
    append("ob\n3,\"cy, jr\"\n");
    expect(&rx, &[r#"{"id":2,"name":"bob"}"#, r#"{"id":3,"name":"cy, jr"}"#]);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    append("4,dee\n");
    let mut again = start();
    let rx = lines_of(again.stdout.take().unwrap());
    expect(&rx, &[r#"{"id":4,"name":"dee"}"#]);
    let _ = Command::new("kill").args(["-TERM", &again.id().to_string()]).status();
    assert_eq!(again.wait().unwrap().code(), Some(143));
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "every row exactly once");
}

#[test]
fn follow_on_a_glob_picks_up_new_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app-1.log"), "one\n").unwrap();
    let yaml = "name: follow_glob
sources:
  logs: {type: file, path: 'app-*.log', format: text, follow: true}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let mut child = run_with_piped_stdout(&path);
    let rx = lines_of(child.stdout.take().unwrap());
    let next = || rx.recv_timeout(Duration::from_secs(20)).expect("a line");
    assert_eq!(next(), r#"{"line":"one"}"#);
    std::fs::write(dir.path().join("app-2.log"), "two\n").unwrap();
    assert_eq!(next(), r#"{"line":"two"}"#);
    std::fs::write(dir.path().join("app-3.log"), "three\n").unwrap();
    assert_eq!(next(), r#"{"line":"three"}"#);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert_eq!(child.wait().unwrap().code(), Some(143));
}

/// Resident memory of a process in KiB (`VmRSS` in /proc).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[test]
fn a_slow_sink_slows_the_source_and_memory_stays_bounded_at_parallelism_2() {
    use std::io::Read;
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // A generator far faster than the reader below; the rolling reduce emits a record per input.
    let yaml = format!(
        "sources:\n  gen:\n    type: datagen\n    count: 50000000\n    fields: {{n: {{type: sequence}}, pad: {{type: constant, value: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}}}}\nsteps:\n  - key_by: n % 1000\n  - reduce: {{c: count(), pad: last(pad)}}\nsinks:\n  out: {{type: socket, address: '127.0.0.1:{port}'}}\n"
    );
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "-q", "--parallelism", "2", &path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut received = 0usize;
    let mut peak = 0;
    let mut buf = vec![0u8; 16 * 1024];
    // About 1.6 MB/s for 3 s: a few hundred thousand of the 50M records.
    for _ in 0..300 {
        received += conn.read(&mut buf).unwrap();
        peak = peak.max(resident_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(received > 0, "the sink sent nothing");
    // Unbounded queues would hold millions of records (gigabytes) by now.
    assert!(peak > 0 && peak < 200 * 1024, "peak resident memory {peak} KiB with a slow sink");
}

/// The head steps (filter, flat_map) run on the source thread; dropped records still
/// advance the watermark (the ts-20000 record makes the ts-5000 one late) and the
/// outputs of one input share the watermark before it (the three outputs of the
/// ts-39999 record are all on time), at any parallelism.
#[test]
fn steps_on_source_threads_keep_the_per_record_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let a = "{\"ts\": 1000, \"keep\": true, \"items\": [1]}\n{\"ts\": 20000, \"keep\": false, \"items\": [1]}\n{\"ts\": 5000, \"keep\": true, \"items\": [1]}\n{\"ts\": 39999, \"keep\": true, \"items\": [1, 2, 3]}\n{\"ts\": 45000, \"keep\": true, \"items\": [8]}\n";
    std::fs::write(dir.path().join("a.jsonl"), a).unwrap();
    let yaml = "sources:\n  a: {type: file, path: a.jsonl, event_time: ts}\nsteps:\n  - filter: keep\n  - flat_map: {each: items, as: item}\n  - key_by: keep\n  - window: {tumbling: 10s}\n  - reduce: {n: count(), items: collect(item)}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    for p in ["1", "2"] {
        let out = super::common::flowctl(&["run", "--parallelism", p, &path], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.stdout,
            "{\"keep\":true,\"window_start\":0,\"window_end\":10000,\"n\":1,\"items\":[1]}\n\
             {\"keep\":true,\"window_start\":30000,\"window_end\":40000,\"n\":3,\"items\":[1,2,3]}\n\
             {\"keep\":true,\"window_start\":40000,\"window_end\":50000,\"n\":1,\"items\":[8]}\n"
        );
        assert!(out.stderr.contains("flowctl: 5 in, 3 out, 1 late"), "{}", out.stderr);
    }
}

/// A stateless pipeline into one sink that writes text has its lines encoded on the
/// source lanes' threads (`runtime/lane_lines.rs`); with a second sink on the same
/// step the records travel to the sinks instead. Both write the same lines in the
/// same order (two sources merged by event time, inputs dropped, multiplied and
/// failing in between) and count the same, at any batch size.
#[test]
fn lines_encoded_on_the_source_lanes_equal_records_encoded_by_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = String::new();
    let mut b = String::new();
    for i in 0..300i64 {
        let (keep, n, items) = (i % 7 != 3, i % 11, (0..i % 4).map(|k| k.to_string()).collect::<Vec<_>>());
        let line = format!(
            "{{\"id\": {i}, \"ts\": {}, \"keep\": {keep}, \"n\": {n}, \"items\": [{}]}}\n",
            i * 10 + i % 3 * 7,
            items.join(",")
        );
        if i % 3 == 0 {
            b.push_str(&line)
        } else {
            a.push_str(&line)
        }
    }
    std::fs::write(dir.path().join("a.jsonl"), a).unwrap();
    std::fs::write(dir.path().join("b.jsonl"), b).unwrap();
    let yaml = "on_error: skip\nsources:\n  a: {type: file, path: a.jsonl, event_time: ts}\n  b: {type: file, path: b.jsonl, event_time: ts}\nsteps:\n  - filter: keep\n  - flat_map: {each: items, as: item}\n  - id: last\n    map: {id: id, item: item, r: 100 / n}\nsinks:\n  out: {type: file, path: out.csv, format: csv}\n";
    let tee =
        yaml.replace("format: csv}\n", "format: csv}\n  copy: {type: file, path: copy.csv, format: csv, from: last}\n");
    let mut outputs = Vec::new();
    for (name, yaml) in [("lanes.yaml", yaml.to_string()), ("tee.yaml", tee)] {
        let path = write_pipeline(dir.path(), name, &yaml);
        for batch in ["1", "2", "1024"] {
            let out = super::common::flowctl(&["run", "--batch-size", batch, "-p", "1", &path], None, &[]);
            assert_eq!(out.code, 0, "{}", out.stderr);
            let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
            outputs.push((name, batch, text, super::common::summary_counts(&out.stderr)));
        }
    }
    let (_, _, first, counts) = &outputs[0];
    assert_eq!(first.lines().count(), 1 + 348, "{first}");
    assert_eq!(counts, "300 in, 348 out, 0 late, 36 skipped, 0 failed");
    for (name, batch, text, counts) in &outputs[1..] {
        assert_eq!(text, first, "{name} at batch size {batch}");
        let out = if *name == "tee.yaml" { "696 out" } else { "348 out" };
        assert_eq!(counts, &format!("300 in, {out}, 0 late, 36 skipped, 0 failed"), "{name} at batch size {batch}");
    }
}

/// A scrape that gives up after 10 seconds (an endpoint that hangs fails the test).
fn scrape_within(port: u16, path: &str) -> Option<String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(10)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    std::io::Write::write_all(
        &mut conn,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut body = String::new();
    std::io::Read::read_to_string(&mut conn, &mut body).ok()?;
    Some(body)
}

/// The threads of process `pid` (Linux).
fn threads_of(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

/// 500 idle connections to the metrics endpoint took a thread each (1,000 took 1,007
/// threads; under a process limit the endpoint died): the server holds at most 32
/// connections on its one thread, closing the oldest for a new one, so flowctl's
/// threads stay few and a scrape after them is answered; other paths get 404.
#[test]
fn metrics_endpoint_survives_many_idle_connections() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: idle\nsources:\n  gen: {type: datagen, rate: 100, fields: {n: {type: sequence}}}\nsinks:\n  out: {type: blackhole}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "-p", "1", &path, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = None;
    for _ in 0..100 {
        first = scrape_within(port, "/metrics");
        if first.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(first.is_some_and(|b| b.contains("flowctl_records_in_total")), "the endpoint never answered");
    let threads_before = threads_of(child.id()).unwrap_or(0);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let idle: Vec<std::net::TcpStream> =
        (0..500).filter_map(|_| std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()).collect();
    assert!(idle.len() >= 400, "opened {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let threads = threads_of(child.id()).unwrap_or(0);
    let body = scrape_within(port, "/metrics").unwrap_or_default();
    let answer = scrape_within(port, "/").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    drop(idle);
    assert!(
        body.starts_with("HTTP/1.1 200 OK") && body.contains("flowctl_records_in_total{pipeline=\"idle\"}"),
        "{body}"
    );
    assert!(threads <= threads_before + 2, "{threads} threads with idle connections, {threads_before} before");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
