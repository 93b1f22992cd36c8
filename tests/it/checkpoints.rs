//! Checkpoints through the binary: kill -9 at random moments and resume until done
//! gives exactly the output of an uninterrupted run; the same with SIGTERM (a final
//! checkpoint, exit 143); a corrupted newest checkpoint falls back to the one before;
//! a finished bounded run that is run again after its input grew processes only the
//! new input; an edited pipeline is refused unless state loss is allowed. Kill tests
//! run at parallelism 2 (keyed instances) against a reference on one thread, and with
//! the parallelism changing from run to run (keyed state re-split on restore).

use super::common::{flowctl, write_pipeline};
use super::w1::generate;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PIPELINE: &str = "name: cp
sources:
  clicks:
    type: file
    path: input.csv
    schema: {ts: int, user_id: string, url: string, bytes: int, status: int}
    event_time: ts
    watermark: {max_out_of_orderness: 2s}
steps:
  - filter: status = 200
  - key_by: user_id
  - window: {tumbling: 10s}
  - reduce: {count: count(), bytes: sum(bytes), urls: count_distinct(url)}
sinks:
  out: {type: file, path: out.csv}
checkpoint:
  interval: 20ms
  keep: 3
";

/// A small deterministic generator for kill times.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn setup(rows: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), generate(rows, 1).0).unwrap();
    let path = write_pipeline(dir.path(), "p.yaml", PIPELINE);
    (dir, path)
}

fn sorted_output(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

/// The output of one uninterrupted run (in its own directory).
fn reference(rows: usize) -> Vec<String> {
    let (dir, path) = setup(rows);
    let out = flowctl(&["run", "--parallelism", "1", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    sorted_output(dir.path())
}

/// Starts a run (at parallelism 2), stops it with `signal` after `after`; returns the exit code.
fn run_and_stop(path: &str, after: Duration, signal: &str) -> i32 {
    run_at_and_stop(path, after, signal, "2")
}

fn run_at_and_stop(path: &str, after: Duration, signal: &str, parallelism: &str) -> i32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "-q", "--parallelism", parallelism, path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
    child.wait().unwrap().code().unwrap_or(-9)
}

/// Stops runs with `signal` at random moments until one finishes by itself; returns
/// how many were stopped.
fn interrupt_until_done(path: &str, signal: &str, seed: u64, stops: usize) -> usize {
    interrupt_at_until_done(path, signal, seed, stops, &["2"])
}

/// [`interrupt_until_done`], the runs taking their parallelism from `parallelism` in turn.
fn interrupt_at_until_done(path: &str, signal: &str, seed: u64, stops: usize, parallelism: &[&str]) -> usize {
    let mut rng = Rng(seed);
    let mut stopped = 0;
    loop {
        // Short lives first, so that at least `stops` runs are stopped, then longer
        // ones so that the run finishes.
        let ms = if stopped < stops { 5 + rng.below(45) } else { 200 + rng.below(800) };
        let p = parallelism[stopped % parallelism.len()];
        match run_at_and_stop(path, Duration::from_millis(ms), signal, p) {
            0 => return stopped,
            -9 | 143 => stopped += 1,
            other => panic!("a run ended with exit code {other}"),
        }
        assert!(stopped < 500, "the run never finished");
    }
}

// The interrupted tests read enough rows that their short-lived runs (5-50 ms each) do
// not finish the input before the number of stops they count on.
#[test]
fn kill_9_at_random_moments_then_resume_gives_exactly_the_uninterrupted_output() {
    let rows = 400_000;
    let expected = reference(rows);
    let (dir, path) = setup(rows);
    let kills = interrupt_until_done(&path, "-KILL", 0x9e37_79b9_7f4a_7c15, 20);
    assert!(kills >= 20, "only {kills} kills");
    assert_eq!(sorted_output(dir.path()), expected);
}

/// A stateless pipeline into one file: its source lane encodes the lines itself
/// (`runtime/lane_lines.rs`), read in blocks on 2 or 3 threads (`runtime/block_lanes.rs`)
/// or on one. Killed at random moments and resumed at another parallelism, it writes
/// exactly the lines of one uninterrupted run on one thread, in the same order.
#[test]
fn kill_9_of_a_stateless_pipeline_encoding_on_its_source_thread_resumes_exactly_in_order() {
    let stateless = PIPELINE.replace(
        "  - key_by: user_id\n  - window: {tumbling: 10s}\n  - reduce: {count: count(), bytes: sum(bytes), urls: count_distinct(url)}\n",
        "  - map: {ts: ts, user_id: user_id, kb: bytes / 1024.0}\n",
    );
    assert_ne!(stateless, PIPELINE);
    let rows = 400_000;
    let make = || {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.csv"), generate(rows, 1).0).unwrap();
        let path = write_pipeline(dir.path(), "p.yaml", &stateless);
        (dir, path)
    };
    // On one thread; the killed runs read the file in blocks on every core.
    let (once, once_path) = make();
    let out = flowctl(&["run", "--parallelism", "1", &once_path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = std::fs::read_to_string(once.path().join("out.csv")).unwrap();
    assert!(expected.lines().count() > rows / 2, "{}", out.stderr);
    let (dir, path) = make();
    let kills = interrupt_at_until_done(&path, "-KILL", 0x2545_f491_4f6c_dd1d, 20, &["2", "3", "1"]);
    assert!(kills >= 20, "only {kills} kills");
    assert!(std::fs::read_to_string(dir.path().join("out.csv")).unwrap() == expected, "the resumed output differs");
}

#[test]
fn kill_9_with_the_parallelism_changing_between_runs_gives_exactly_the_uninterrupted_output() {
    let rows = 400_000;
    let expected = reference(rows);
    let (dir, path) = setup(rows);
    let kills = interrupt_at_until_done(&path, "-KILL", 0x2545_f491_4f6c_dd1d, 12, &["2", "3", "1"]);
    assert!(kills >= 12, "only {kills} kills");
    assert_eq!(sorted_output(dir.path()), expected);
}

#[test]
fn kill_9_with_the_file_decoded_on_three_threads_gives_exactly_the_uninterrupted_output() {
    let rows = 400_000;
    let expected = reference(rows);
    let (dir, _) = setup(rows);
    let yaml = PIPELINE.replace("    path: input.csv\n", "    path: input.csv\n    parallelism: 3\n");
    let path = write_pipeline(dir.path(), "p3.yaml", &yaml);
    let kills = interrupt_until_done(&path, "-KILL", 0x5851_f42d_4c95_7f2d, 10);
    assert!(kills >= 10, "only {kills} kills");
    assert_eq!(sorted_output(dir.path()), expected);
}

#[test]
fn sigterm_takes_a_final_checkpoint_and_exits_143_then_resumes_exactly() {
    // Enough input that five more short runs (5-50 ms each) cannot finish it after the
    // first one's 150 ms.
    let rows = 600_000;
    let expected = reference(rows);
    let (dir, path) = setup(rows);
    let code = run_and_stop(&path, Duration::from_millis(150), "-TERM");
    assert_eq!(code, 143);
    let stops = interrupt_until_done(&path, "-TERM", 42, 5);
    assert!(stops >= 5, "only {stops} stops");
    assert_eq!(sorted_output(dir.path()), expected);
}

#[test]
fn a_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used() {
    let rows = 300_000;
    let expected = reference(rows);
    let (dir, path) = setup(rows);
    assert_eq!(run_and_stop(&path, Duration::from_millis(300), "-TERM"), 143);
    let cp_dir = dir.path().join(".flowctl/cp");
    let mut files: Vec<_> = std::fs::read_dir(&cp_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "need two checkpoints, found {files:?}");
    let newest = files.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(newest, bytes).unwrap();
    let verify = flowctl(&["checkpoints", "verify", cp_dir.to_str().unwrap()], None, &[]);
    assert_eq!(verify.code, 1);
    assert!(verify.stdout.contains("BAD: checksum mismatch"), "{}", verify.stdout);
    let resumed = flowctl(&["run", &path], None, &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("is unusable (checksum mismatch"), "{}", resumed.stderr);
    assert!(resumed.stderr.contains("flowctl: resuming from checkpoint"), "{}", resumed.stderr);
    assert_eq!(sorted_output(dir.path()), expected);
}

#[test]
fn a_finished_bounded_run_picks_up_only_new_input_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: cron
sources:
  log: {type: file, path: app.log}
steps:
  - filter: line LIKE '%ERROR%'
  - reduce: {errors: count(), last: last(line)}
sinks:
  out: {type: file, path: errors.jsonl}
checkpoint: {interval: 1s}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    std::fs::write(dir.path().join("app.log"), "ok\nERROR one\nok\n").unwrap();
    let first = flowctl(&["run", &path], None, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("3 in, 1 out"), "{}", first.stderr);
    let ls = flowctl(&["checkpoints", "ls", dir.path().join(".flowctl/cron").to_str().unwrap()], None, &[]);
    assert!(ls.stdout.contains(" yes "), "the last checkpoint records completion:\n{}", ls.stdout);
    let mut log = std::fs::OpenOptions::new().append(true).open(dir.path().join("app.log")).unwrap();
    std::io::Write::write_all(&mut log, b"ERROR two\nok\n").unwrap();
    let second = flowctl(&["run", &path], None, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("resuming from checkpoint"), "{}", second.stderr);
    assert!(second.stderr.contains("2 in, 1 out"), "only the new lines are read: {}", second.stderr);
    let out = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    assert_eq!(out, "{\"errors\":1,\"last\":\"ERROR one\"}\n{\"errors\":2,\"last\":\"ERROR two\"}\n");
    let third = flowctl(&["run", "--fresh", &path], None, &[]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stderr.contains("moved the old checkpoints to"), "{}", third.stderr);
    assert!(third.stderr.contains("5 in, 2 out"), "{}", third.stderr);
}

#[test]
fn an_edited_step_is_refused_unless_state_loss_is_allowed() {
    let (dir, path) = setup(5_000);
    assert_eq!(flowctl(&["run", &path], None, &[]).code, 0);
    let edited = PIPELINE.replace("urls: count_distinct(url)", "biggest: max(bytes)");
    std::fs::write(&path, edited).unwrap();
    let plan = flowctl(&["plan", &path], None, &[]);
    assert!(plan.stdout.contains("changed: its state cannot be restored"), "{}", plan.stdout);
    let refused = flowctl(&["run", &path], None, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("the pipeline changed since checkpoint"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--allow-state-loss"), "{}", refused.stderr);
    let allowed = flowctl(&["run", "--allow-state-loss", &path], None, &[]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    drop(dir);
}

#[test]
fn nexmark_lanes_resume_each_from_its_own_position_and_only_at_the_same_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: bids
sources:
  events: {type: nexmark, events: 1000, parallelism: 2}
steps:
  - filter: event_type = 'bid'
  - map: {auction: auction, price: price}
sinks:
  out: {type: file, path: bids.jsonl}
checkpoint: {interval: 1s}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let first = flowctl(&["run", &path], None, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("1000 in, 920 out"), "{}", first.stderr);
    let refused = flowctl(&["run", &path, "--set", "sources.events.parallelism=1"], None, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("source `events`: the checkpoint holds positions for lanes `0/2`, `1/2`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("`parallelism` changed since the checkpoint"), "{}", refused.stderr);
    let more = flowctl(&["run", &path, "--set", "sources.events.events=1500"], None, &[]);
    assert_eq!(more.code, 0, "{}", more.stderr);
    assert!(more.stderr.contains("500 in, 460 out"), "each lane continues after its own position: {}", more.stderr);
    let lines = std::fs::read_to_string(dir.path().join("bids.jsonl")).unwrap();
    let mut got: Vec<&str> = lines.lines().collect();
    let fresh = tempfile::tempdir().unwrap();
    let once = write_pipeline(fresh.path(), "p.yaml", &yaml.replace("events: 1000", "events: 1500"));
    assert_eq!(flowctl(&["run", &once], None, &[]).code, 0);
    let expected_text = std::fs::read_to_string(fresh.path().join("bids.jsonl")).unwrap();
    let mut expected: Vec<&str> = expected_text.lines().collect();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "two runs give what one run of all events gives");
}

#[test]
fn a_checkpoint_written_by_format_version_1_still_resumes() {
    let fixture = super::common::root().join("tests/fixtures/checkpoint_v1");
    let dir = tempfile::tempdir().unwrap();
    for name in ["pipeline.yaml", "orders.csv", "totals.jsonl"] {
        std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::create_dir(dir.path().join("state")).unwrap();
    for entry in std::fs::read_dir(fixture.join("state")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join("state").join(entry.file_name())).unwrap();
    }
    let mut input = std::fs::OpenOptions::new().append(true).open(dir.path().join("orders.csv")).unwrap();
    std::io::Write::write_all(&mut input, b"4000,US,dave,7\n").unwrap();
    let path = dir.path().join("pipeline.yaml");
    let out = flowctl(&["run", path.to_str().unwrap()], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming from checkpoint 1"), "{}", out.stderr);
    let totals = std::fs::read_to_string(dir.path().join("totals.jsonl")).unwrap();
    assert_eq!(
        totals.lines().last(),
        Some(r#"{"country":"US","orders":2,"revenue":27,"customers":["bob","dave"]}"#),
        "{totals}"
    );
    assert_eq!(totals.lines().count(), 4);
}

/// Step state fingerprints through the library: the text checkpoints compare.
mod fingerprints {
    use flowctl::runtime::checkpointing::step_keys;
    use flowctl::spec::SourceFile;
    use flowctl::validate::{validate_file, Options};

    fn keys(path: &str, text: &str) -> Vec<(String, String)> {
        let file = SourceFile { path: path.into(), text: text.to_string() };
        let options = Options { env: &|_| None, peek_fields: &|_| None, overrides: &[] };
        let valid = validate_file(&file, &options).unwrap_or_else(|d| panic!("{}", d.render(path, text)));
        step_keys(&flowctl::plan::plan(valid))
    }

    /// Fingerprints are compared as text with those of checkpoints already written:
    /// the committed version 1 checkpoint's must come out the same.
    #[test]
    fn fingerprints_are_those_the_version_1_checkpoint_holds() {
        let fixture = super::super::common::root().join("tests/fixtures/checkpoint_v1");
        let text = std::fs::read_to_string(fixture.join("pipeline.yaml")).expect("fixture pipeline");
        let bytes = std::fs::read(fixture.join("state/epoch-0000000001.checkpoint")).expect("fixture checkpoint");
        let saved = flowctl::checkpoint::format::decode(&bytes).expect("fixture decodes");
        let saved: Vec<(String, String)> = saved.steps.into_iter().map(|s| (s.key, s.fingerprint)).collect();
        assert_eq!(keys("pipeline.yaml", &text), saved);
    }

    #[test]
    fn a_windowed_reduce_fingerprints_its_aggregates_key_and_windows() {
        let yaml = "sources:\n  in: {type: stdin, format: jsonl, event_time: ts}\nsteps:\n  - key_by: {k: lower(user)}\n  - window: {sliding: {size: 1m, slide: 10s}, allowed_lateness: 5s}\n  - reduce: {n: count(), total: sum( amount )}\nsinks:\n  out: {type: stdout}\n";
        let want = [
            ("key_by #1", "key_by: lower(user)"),
            ("window #2", "window: sliding 1m every 10s, allowed lateness 5s"),
            (
                "reduce #3",
                "reduce: n = count(), total = sum( amount ) | key: lower(user) | window: sliding 1m every 10s, lateness 5000ms",
            ),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(k, f)| (k.to_string(), f.to_string())).collect();
        assert_eq!(keys("p.yaml", yaml), want);
    }
}
