//! Projection pushdown: a CSV column that no step reads and no output sees is left
//! NULL by the decoder. Results never change: the same job with the column read gives
//! the same output, and wherever records reach an output whole (a sink reading them,
//! a late sink, an error sink) every column is decoded.

use super::common::{flowctl, write_pipeline, Output};

const CSV: &str = "ts,user,url,bytes,status\n\
1000,a,/home,10,200\n\
2000,b,/docs,20,200\n\
3000,a,/home,30,404\n\
12000,a,/site,40,200\n\
4000,b,/late,50,200\n\
15000,b,/api,60,0\n\
25000,a,/end,70,200\n";

/// A W1-like job over `CSV`; `filter` and `extra` change what reads the columns.
fn job(filter: &str, extra: &str, sinks: &str) -> String {
    format!(
        "{extra}sources:\n  clicks:\n    type: file\n    path: in.csv\n    schema: {{ts: int, user: string, url: string, bytes: int, status: int}}\n    event_time: ts\n\
steps:\n  - filter: {filter}\n  - key_by: user\n  - window:\n      tumbling: 10s\n      late: {late}\n  - reduce:\n      n: count()\n      bytes: sum(bytes * 100 / status)\n\
sinks:\n  out: {{type: stdout, format: csv}}\n{sinks}",
        late = if sinks.contains("late_out") { "late_out" } else { "drop" },
    )
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), CSV).unwrap();
    dir
}

fn plan_and_run(dir: &tempfile::TempDir, name: &str, yaml: &str) -> (String, Output) {
    let path = write_pipeline(dir.path(), name, yaml);
    let plan = flowctl(&["plan", &path], None, &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    (plan.stdout, flowctl(&["run", "--parallelism", "1", &path], None, &[]))
}

const UNREAD: &str = "columns nothing reads, left NULL: url";

#[test]
fn an_unread_column_is_left_out_and_the_results_are_those_of_reading_it() {
    let dir = setup();
    let (plan, out) = plan_and_run(&dir, "unread.yaml", &job("status > 0", "", ""));
    assert!(plan.contains(UNREAD), "{plan}");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("1 late"), "{}", out.stderr);
    let (plan, read) = plan_and_run(&dir, "read.yaml", &job("status > 0 AND url IS NOT NULL", "", ""));
    assert!(!plan.contains("left NULL"), "{plan}");
    assert_eq!(read.code, 0, "{}", read.stderr);
    assert_eq!(out.stdout, read.stdout);
    assert_eq!(
        out.stdout,
        "user,window_start,window_end,n,bytes\na,0,10000,2,12\nb,0,10000,1,10\na,10000,20000,1,20\na,20000,30000,1,35\n"
    );
}

#[test]
fn records_that_reach_an_output_whole_keep_every_column() {
    let dir = setup();
    // A late sink receives the late records themselves.
    let late = "  late_out: {type: file, path: late.jsonl}\n";
    let (plan, out) = plan_and_run(&dir, "late.yaml", &job("status > 0", "", late));
    assert!(!plan.contains("left NULL"), "{plan}");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let late = std::fs::read_to_string(dir.path().join("late.jsonl")).unwrap();
    assert_eq!(late, "{\"ts\":4000,\"user\":\"b\",\"url\":\"/late\",\"bytes\":50,\"status\":200}\n");
    // An error sink's `input` is the failing record (here `bytes / status` with status 0).
    let errors = "  errors: {type: file, path: errors.jsonl}\n";
    let (plan, out) = plan_and_run(&dir, "errors.yaml", &job("status >= 0", "on_error: errors\n", errors));
    assert!(!plan.contains("left NULL"), "{plan}");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let errors = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    assert!(errors.contains("\"url\":\"/api\""), "{errors}");
    // A sink reading the filter sees whole records.
    let yaml = "sources:\n  clicks:\n    type: file\n    path: in.csv\n    schema: {ts: int, user: string, url: string, bytes: int, status: int}\n\
steps:\n  - id: ok\n    filter: status = 404\n  - map: {user: user}\nsinks:\n  users: {type: stdout, format: csv}\n  whole: {type: file, path: whole.csv, from: ok}\n";
    let (plan, out) = plan_and_run(&dir, "fan.yaml", yaml);
    assert!(!plan.contains("left NULL"), "{plan}");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "user\na\n");
    let whole = std::fs::read_to_string(dir.path().join("whole.csv")).unwrap();
    assert_eq!(whole, "ts,user,url,bytes,status\n3000,a,/home,30,404\n");
}

#[test]
fn an_unread_column_is_still_checked() {
    let dir = setup();
    // Not UTF-8 in the unread `url`: the same error as when it is read.
    let mut bytes = b"ts,user,url,bytes,status\n1000,a,/home,10,200\n2000,b,/\xff,20,200\n".to_vec();
    bytes.extend_from_slice(b"3000,a,/x,30,200\n");
    std::fs::write(dir.path().join("in.csv"), bytes).unwrap();
    let (plan, out) = plan_and_run(&dir, "unread.yaml", &job("status > 0", "", ""));
    assert!(plan.contains(UNREAD), "{plan}");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("in.csv:3): column `url` is not valid UTF-8"), "{}", out.stderr);
    // A declared int nothing reads is still parsed: `x` is not an int.
    std::fs::write(dir.path().join("in.csv"), "ts,user,url,bytes,status\n1000,a,/home,x,200\n").unwrap();
    let yaml = job("status > 0", "", "").replace("bytes: sum(bytes * 100 / status)", "first: first(url)");
    let (plan, out) = plan_and_run(&dir, "int.yaml", &yaml);
    assert!(!plan.contains("left NULL"), "{plan}");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("column `bytes`: `x` is not an int"), "{}", out.stderr);
}
