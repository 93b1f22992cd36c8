//! A spec fuzzer: pipeline files mutated from the corpus (pipelines/ and
//! tests/fixtures/) go through loading, validation, planning, every plan rendering and
//! the Flink SQL export in-process, and none may panic, overflow the stack or hang: each gets diagnostics or
//! a plan. It runs for `FLOWCTL_FUZZ_SECONDS` (default 20; `.ci/run` gives it 60; run it
//! longer by hand) from the seed `FLOWCTL_FUZZ_SEED` (default: a fixed one, so a CI run
//! is reproducible; the seed of a failure is printed).

use super::common::root;
use flowctl::plan::{self, PlanFormat, PlanOptions};
use flowctl::spec::SourceFile;
use flowctl::validate::{validate_file, Options};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every YAML file under `dir`.
fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
}

/// Fragments that have broken parsers before: deep nesting, huge and odd numbers,
/// aliases, odd unicode, expressions at their limits.
const FRAGMENTS: &[&str] = &[
    "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
    "9223372036854775807",
    "-9223372036854775808",
    "1e400",
    "NaN",
    "&a [*a]",
    "*undefined",
    "{a: {b: {c: {d: [1, [2, [3, [4]]]]}}}}",
    "'\u{0}\u{feff}\u{202e}'",
    "${UNSET_VARIABLE}",
    "a AND b AND c OR d + 1 * 2 / 0",
    "CAST(x AS DECIMAL(99, 100))",
    "regexp_replace(a, '(', '${1}')",
    "split(a, '')[9223372036854775807]",
    "0s",
    "1d",
    "999999999999999d",
    "[]",
    "{}",
    "~",
    "|\n  multi\n  line",
    "\"unterminated",
    "sliding: {size: 1d, slide: 1ms}",
];

/// One mutation of `text`, drawing from `corpus` and [`FRAGMENTS`].
fn mutate(text: &str, corpus: &[String], rng: &mut SmallRng) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..lines.len());
        match rng.gen_range(0..7) {
            0 => {
                lines.remove(at);
                if lines.is_empty() {
                    lines.push(String::new());
                }
            }
            1 => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                let donor: Vec<&str> = other.lines().collect();
                if !donor.is_empty() {
                    lines.insert(at, donor[rng.gen_range(0..donor.len())].to_string());
                }
            }
            2 => {
                // Replace a value after `: ` by a fragment.
                let line = &lines[at];
                if let Some(colon) = line.find(": ") {
                    let fragment = FRAGMENTS[rng.gen_range(0..FRAGMENTS.len())];
                    lines[at] = format!("{}: {fragment}", &line[..colon]);
                }
            }
            3 => {
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            4 => {
                // Cut a line at a random byte (on a char boundary).
                let line = &lines[at];
                let cut =
                    (0..=line.len()).filter(|i| line.is_char_boundary(*i)).nth(rng.gen_range(0..=line.chars().count()));
                lines[at] = line[..cut.unwrap_or(0)].to_string();
            }
            5 => {
                let indent = " ".repeat(rng.gen_range(0..6));
                lines[at] = format!("{indent}{}", lines[at].trim_start());
            }
            _ => {
                let fragment = FRAGMENTS[rng.gen_range(0..FRAGMENTS.len())];
                lines.insert(at, format!("  - filter: {fragment}"));
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Loads, validates, plans and renders one file in every format (the plan at two
/// parallelisms and for given I/O) and exports it to Flink SQL, strictly and
/// approximately. Whether the file was valid.
fn exercise(text: &str) -> bool {
    let file = SourceFile { path: "fuzz.yaml".into(), text: text.to_string() };
    let env = |name: &str| (name != "UNSET_VARIABLE").then(|| "1".to_string());
    let options = Options { env: &env, peek_fields: &|_| None, overrides: &[] };
    let Ok(valid) = validate_file(&file, &options) else { return false };
    for approximate in [false, true] {
        let _ = flowctl::export::flink_sql(&valid, approximate);
    }
    for options in [
        PlanOptions { parallelism: Some(1), cores: 2, io: plan::Io::Spec },
        PlanOptions { parallelism: Some(3), cores: 2, io: plan::Io::Spec },
        PlanOptions { parallelism: None, cores: 2, io: plan::Io::Given },
    ] {
        if let Ok(physical) = plan::physical::plan(plan::plan(valid.clone()), &options) {
            for format in [PlanFormat::Text, PlanFormat::Json, PlanFormat::Dot, PlanFormat::Mermaid] {
                let _ = plan::render(&physical, format);
            }
        }
    }
    true
}

#[test]
fn mutated_pipeline_files_never_panic_overflow_or_hang() {
    let mut paths = Vec::new();
    yaml_files(&root().join("pipelines"), &mut paths);
    yaml_files(&root().join("tests/fixtures"), &mut paths);
    paths.sort();
    let corpus: Vec<String> = paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect();
    assert!(corpus.len() >= 40, "the corpus: {} files", corpus.len());
    let seconds: u64 = std::env::var("FLOWCTL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("FLOWCTL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut cases, mut valid) = (0u64, 0u64);
    while Instant::now() < deadline {
        let base = &corpus[rng.gen_range(0..corpus.len())];
        let mut text = base.clone();
        for _ in 0..rng.gen_range(1..4) {
            text = mutate(&text, &corpus, &mut rng);
        }
        // A case on a thread of its own, with the binary's main-thread stack: a panic
        // is caught and named, a hang noticed (a stack overflow aborts the run).
        let (done, finished) = std::sync::mpsc::channel();
        let case = text.clone();
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                let _ = done.send(exercise(&case));
            })
            .expect("a fuzz thread starts");
        match finished.recv_timeout(Duration::from_secs(20)) {
            Ok(was_valid) => valid += u64::from(was_valid),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("a case took over 20 s (seed {seed}, case {cases}):\n{text}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("a case panicked (seed {seed}, case {cases}):\n{text}")
            }
        }
        cases += 1;
    }
    eprintln!("fuzz: {cases} cases ({valid} valid, planned and drawn) in {seconds} s (seed {seed})");
    assert!(valid > 0 && valid < cases, "{valid} of {cases} cases valid: the mutations reach neither side");
}
