//! NaN and the infinities are doubles, as in Flink SQL: never written as NULL (so what
//! `IS NULL` says and what a sink writes agree), the same words in CSV and JSON lines.

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
