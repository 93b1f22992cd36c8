//! Numbers as written: NaN and the infinities are doubles, as in Flink SQL, never
//! written as NULL (so what `IS NULL` says and what a sink writes agree), the same words
//! in CSV and JSON lines; an integer beyond 64 bits in JSON lines is a bad record, not a
//! float that silently changed.

use super::common::{flowctl, write_pipeline};

#[test]
fn nan_and_infinity_are_values_written_alike_in_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "x\n1e400\n-1e400\n2.5\n").unwrap();
    let yaml = "sources:
  in: {type: file, path: in.csv, schema: {x: float}}
steps:
  - id: values
    map: {x: x, root: sqrt(x - 3), x_null: x IS NULL, root_null: sqrt(x - 3) IS NULL}
sinks:
  json: {type: file, path: out.jsonl, from: values}
  csv: {type: file, path: out.csv, from: values}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(
        json,
        concat!(
            "{\"x\":\"Infinity\",\"root\":\"Infinity\",\"x_null\":false,\"root_null\":false}\n",
            "{\"x\":\"-Infinity\",\"root\":\"NaN\",\"x_null\":false,\"root_null\":false}\n",
            "{\"x\":2.5,\"root\":\"NaN\",\"x_null\":false,\"root_null\":false}\n",
        )
    );
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(
        csv,
        "x,root,x_null,root_null\nInfinity,Infinity,false,false\n-Infinity,NaN,false,false\n2.5,NaN,false,false\n"
    );
}

#[test]
fn an_integer_beyond_64_bits_in_json_lines_is_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let lines = "{\"id\": 99999999999999999999}\n{\"id\": 18446744073709551615}\n{\"id\": 1e20}\n{\"id\": 7}\n";
    std::fs::write(dir.path().join("in.jsonl"), lines).unwrap();
    let yaml = "on_error: skip\nsources:\n  in: {type: file, path: in.jsonl}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1e20}\n{\"id\":7}\n");
    assert!(out.stderr.contains("4 in, 2 out, 0 late, 2 skipped"), "{}", out.stderr);
    let strict = write_pipeline(dir.path(), "q.yaml", &yaml.replace("on_error: skip\n", ""));
    let out = flowctl(&["run", &strict], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("`99999999999999999999` is an integer beyond 64 bits"), "{}", out.stderr);
}
