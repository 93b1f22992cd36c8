//! Decoding one file on several threads (`parallelism:` on a file source) gives the
//! very records, in the very order, of decoding it on one: outputs are byte-identical,
//! late records and bad records included, for CSV (with quoted newlines across block
//! boundaries and stray quotes in unquoted fields), JSON lines and globs of several
//! files, and a killed run resumes exactly.

use super::common::{flowctl, write_pipeline};
use super::w1::generate;
use std::fmt::Write as _;

/// Runs `yaml` (with `{readers}` replaced) at source parallelism 1 and 3 and returns both
/// outputs (stdout and the run summary's first line).
fn run_both(dir: &std::path::Path, yaml: &str) -> [(String, String); 2] {
    ["1", "3"].map(|readers| {
        let path = write_pipeline(dir, &format!("p{readers}.yaml"), &yaml.replace("{readers}", readers));
        let out = flowctl(&["run", "--parallelism", "1", &path], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        (out.stdout, out.stderr.lines().next().unwrap_or_default().split(" in ").next().unwrap_or_default().to_string())
    })
}

#[test]
fn csv_decoded_on_three_threads_gives_identical_windows_and_late_records() {
    let dir = tempfile::tempdir().unwrap();
    // About 4.5 MB: many 256 KiB blocks.
    let (mut csv, _) = generate(150_000, 2);
    csv.push_str("not,a,valid,row\n1700000000000,u1,/,notanumber,200\n");
    std::fs::write(dir.path().join("in.csv"), &csv).unwrap();
    let yaml = "sources:\n  in:\n    type: file\n    path: in.csv\n    parallelism: {readers}\n    schema: {ts: int, user_id: string, url: string, bytes: int, status: int}\n    event_time: ts\n    watermark: {max_out_of_orderness: 2s}\non_error: skip\nsteps:\n  - filter: status = 200\n  - key_by: user_id\n  - window: {tumbling: 10s}\n  - reduce: {n: count(), bytes: sum(bytes), first_url: first(url)}\nsinks:\n  out: {type: stdout, format: csv}\n";
    let [one, three] = run_both(dir.path(), yaml);
    assert!(one.0.lines().count() > 1000, "{}", one.1);
    assert!(one.1.contains("150002 in"), "{}", one.1);
    assert_eq!(three, one);
}

#[test]
fn quoted_newlines_across_block_boundaries_and_globs_and_jsonl_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for part in 0..3 {
        let mut csv = String::from("id,note\n");
        for i in 0..40_000 {
            // Every seventh note spans lines and holds quotes.
            if i % 7 == 0 {
                let _ = writeln!(csv, "{part}{i:06},\"line one\nline \"\"two\"\",\n{}\"", "x".repeat(i % 50));
            } else if i % 11 == 0 {
                // A stray quote in an unquoted field is a plain character.
                let _ = writeln!(csv, "{part}{i:06},5\" screen {}", "w".repeat(i % 20));
            } else {
                let _ = writeln!(csv, "{part}{i:06},plain {}", "y".repeat(i % 30));
            }
        }
        std::fs::write(dir.path().join(format!("notes-{part}.csv")), csv).unwrap();
    }
    let yaml = "sources:\n  in: {type: file, path: 'notes-*.csv', parallelism: {readers}}\nsteps:\n  - set: {len: length(note)}\nsinks:\n  out: {type: stdout}\n";
    let [one, three] = run_both(dir.path(), yaml);
    assert!(one.1.contains("120000 in"), "{}", one.1);
    assert_eq!(three, one);

    let mut jsonl = String::new();
    for i in 0..100_000 {
        let _ = writeln!(jsonl, "{{\"i\": {i}, \"s\": \"{}\"}}", "z".repeat(i % 40));
    }
    std::fs::write(dir.path().join("in.jsonl"), jsonl).unwrap();
    let yaml = "sources:\n  in: {type: file, path: in.jsonl, parallelism: {readers}}\nsinks:\n  out: {type: stdout}\n";
    let [one, three] = run_both(dir.path(), yaml);
    assert!(one.1.contains("100000 in"), "{}", one.1);
    assert_eq!(three, one);
}

#[test]
fn parallelism_on_a_followed_file_or_another_source_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "x\n").unwrap();
    let yaml =
        "sources:\n  in: {type: file, path: a.txt, follow: true, parallelism: 2}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not supported yet: `parallelism` on a followed file"), "{}", out.stderr);
    let yaml = "sources:\n  in: {type: stdin, parallelism: 2}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "q.yaml", yaml);
    let out = flowctl(&["run", &path], Some(""), &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not supported yet: `parallelism` on this source"), "{}", out.stderr);
}
