//! Hostile and extreme input (issue 23): event times that are not finite or beyond
//! what a timestamp can hold, 64-bit overflow, corrupt checkpoints, resource bombs in
//! specs and expressions, closed standard streams. Each is a clear error or a counted
//! bad record, never a silent wrong answer, a panic or an abort.

use super::common::{flowctl, summary_counts, write_pipeline};

/// `epoch_seconds` values that are infinite, NaN or beyond 64-bit milliseconds are bad
/// records (skipped and counted), so the watermark never jumps to +inf and the good
/// records after them are still windowed.
#[test]
fn non_finite_and_huge_epoch_seconds_are_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "ts,user\n1,a\ninf,b\nNaN,c\n1e300,d\n-inf,e\n2,f\n3,g\n").unwrap();
    let yaml = "on_error: skip
sources:
  data:
    type: file
    path: in.csv
    schema: {ts: float, user: string}
    event_time: {field: ts, format: epoch_seconds}
steps:
  - key_by: 'true'
  - window: {tumbling: 10s}
  - reduce: {n: count()}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"n\":3"), "{}", out.stdout);
    assert_eq!(summary_counts(&out.stderr), "7 in, 1 out, 0 late, 4 skipped, 0 failed");
    let fail = write_pipeline(dir.path(), "f.yaml", &yaml.replace("on_error: skip", "on_error: fail"));
    let out = flowctl(&["run", &fail], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("in.csv:3") && out.stderr.contains("not a finite number of epoch seconds"),
        "{}",
        out.stderr
    );
}

/// 64-bit overflow is a bad record, never a wrapped value: an event time near
/// i64::MAX (whose window would end at a negative time), a datagen sequence or
/// timestamp running past i64::MAX, `round` to 19 places left of the point.
#[test]
fn overflowing_values_are_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "ts,user\n9223372036854775000,a\n1000,b\n").unwrap();
    let windows = "on_error: skip
sources:
  data: {type: file, path: in.csv, event_time: ts}
steps:
  - key_by: user
  - window: {tumbling: 10s}
  - reduce: {n: count()}
sinks:
  out: {type: stdout}
";
    let out = flowctl(&["run", &write_pipeline(dir.path(), "w.yaml", windows)], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"user\":\"b\",\"window_start\":0,\"window_end\":10000,\"n\":1}\n");
    assert_eq!(summary_counts(&out.stderr), "2 in, 1 out, 0 late, 1 skipped, 0 failed");

    let datagen = "on_error: skip
sources:
  gen:
    type: datagen
    count: 4
    fields:
      n: {type: sequence, start: 9223372036854775806, step: 1}
      ts: {type: timestamp, start: 1000, step: 1}
sinks:
  out: {type: stdout}
";
    let out = flowctl(&["run", &write_pipeline(dir.path(), "d.yaml", datagen)], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("9223372036854775807") && !out.stdout.contains("-9223372036854775808"),
        "{}",
        out.stdout
    );
    assert_eq!(summary_counts(&out.stderr), "4 in, 2 out, 0 late, 2 skipped, 0 failed");
    let failing = write_pipeline(dir.path(), "df.yaml", &datagen.replace("on_error: skip", "on_error: fail"));
    let out = flowctl(&["run", &failing], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("field `n`: 9223372036854775806 + 2 × 1 overflows a 64-bit integer"), "{}", out.stderr);
    let timestamps = datagen.replace("start: 9223372036854775806, step: 1}", "start: 0, step: 1}").replace(
        "ts: {type: timestamp, start: 1000, step: 1}",
        "ts: {type: timestamp, start: 1000, step: 4611686018427387903}",
    );
    let out = flowctl(&["run", &write_pipeline(dir.path(), "t.yaml", &timestamps)], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary_counts(&out.stderr), "4 in, 1 out, 0 late, 3 skipped, 0 failed");

    let round = "sources:
  gen: {type: datagen, count: 1, fields: {x: {type: constant, value: 9223372036854775807}}}
steps:
  - map: {a: 'round(x, -18)', b: 'round(x - 5000000000000000000, -19)', c: 'round(x, -25)'}
  - map: {d: 'round(9223372036854775807, -19)'}
sinks:
  out: {type: stdout}
";
    let out = flowctl(&["run", &write_pipeline(dir.path(), "r.yaml", round)], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("integer overflow in `round`"), "{}", out.stderr);
    let out = flowctl(
        &[
            "run",
            &write_pipeline(
                dir.path(),
                "r2.yaml",
                &round.replace("  - map: {d: 'round(9223372036854775807, -19)'}\n", ""),
            ),
        ],
        None,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"a\":9000000000000000000,\"b\":0,\"c\":0}\n");
}

/// Configuration that would overflow is a validation error at its line and column:
/// a uniform_int with min above max, a window longer than the limit.
#[test]
fn overflowing_configuration_is_a_validation_error() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:
  gen:
    type: datagen
    count: 3
    fields:
      x: {type: uniform_int, min: 10, max: 1}
steps:
  - key_by: x
  - window: {tumbling: 2000000d}
  - reduce: {n: count()}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["validate", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("p.yaml:6:44: error: `uniform_int` needs `min` at most `max`; found min 10 and max 1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("p.yaml:9:24: error: a window duration must be at most 1000000d"), "{}", out.stderr);
}

/// The checkpoint files of a directory, oldest first.
fn checkpoint_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"))
        .collect();
    files.sort();
    files
}

/// When every checkpoint is corrupt, `run` refuses (exit 2) and names them, instead of
/// silently starting from zero; `--allow-state-loss` starts from the beginning with the
/// unusable files moved aside, `--fresh` starts over. A checkpoint whose file name and
/// content disagree on the epoch is not trusted.
#[test]
fn all_checkpoints_corrupt_is_refused_unless_state_loss_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "id\n1\n2\n3\n").unwrap();
    let yaml = "sources:
  data: {type: file, path: in.csv}
sinks:
  out: {type: stdout}
checkpoint: {dir: cp, interval: 1h, keep: 3}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let cp = dir.path().join("cp");
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3);
    let files = checkpoint_files(&cp);
    assert!(!files.is_empty());
    let good = std::fs::read(files.last().unwrap()).unwrap();

    // A checkpoint renamed to a later epoch is not trusted; the real one is used.
    let renamed = cp.join("epoch-0000000099.checkpoint");
    std::fs::write(&renamed, &good).unwrap();
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("its name says epoch 99 but it holds epoch"), "{}", out.stderr);
    assert_eq!(out.stdout, "", "resumed from the completed checkpoint: nothing new to read");
    std::fs::remove_file(&renamed).unwrap();

    for f in checkpoint_files(&cp) {
        std::fs::write(f, b"not a checkpoint at all").unwrap();
    }
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no usable checkpoint in"), "{}", out.stderr);
    assert!(out.stderr.contains("--allow-state-loss") && out.stderr.contains("--fresh"), "{}", out.stderr);
    assert_eq!(out.stdout, "", "nothing ran");

    let out = flowctl(&["run", "--allow-state-loss", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("every checkpoint is unusable; starting from the beginning"), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "read again from the beginning");
    // The unusable files were moved aside, so the new checkpoints are the ones used.
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");

    for f in checkpoint_files(&cp) {
        std::fs::write(f, b"garbage").unwrap();
    }
    let out = flowctl(&["run", "--fresh", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3);
}

/// A YAML alias bomb (nested aliases, each copying the one before ten times) is
/// refused at the alias that crosses the node limit, with its line and column,
/// instead of expanding into gigabytes.
#[test]
fn a_yaml_alias_bomb_is_an_error_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("name: bomb\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..7 {
        yaml.push_str(&format!("x{i}: &x{i} [{}]\n", vec![format!("*x{}", i - 1); 10].join(", ")));
    }
    yaml.push_str("sources:\n  s: {type: stdin}\nsinks:\n  out: {type: stdout}\n");
    let path = write_pipeline(dir.path(), "bomb.yaml", &yaml);
    let started = std::time::Instant::now();
    let out = flowctl(&["validate", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // With the levels before it, x4's seventh alias crosses 100,000 nodes.
    assert!(
        out.stderr.contains("bomb.yaml:6:45: error")
            && out.stderr.contains("more than 100000 nodes with its aliases expanded"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let deep = format!("name: deep\nx: {}{}\n", "[".repeat(200), "]".repeat(200));
    let out = flowctl(&["validate", &write_pipeline(dir.path(), "deep.yaml", &deep)], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("deep.yaml:2:") && out.stderr.contains("nested more than 128 deep"), "{}", out.stderr);
}

/// 10,000 `AND` terms or 20,000 `+` terms overflowed the stack (exit 134); an
/// expression with more than 500 operators is now a validation error pointing at the
/// first operator past the limit.
#[test]
fn an_expression_with_too_many_operators_is_an_error_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let and = vec!["x = 1"; 10_000].join(" AND ");
    let plus = vec!["x"; 20_000].join(" + ");
    let yaml = format!(
        "sources:\n  s: {{type: stdin, schema: {{x: int}}}}\nsteps:\n  - filter: \"{and}\"\n  - map: {{y: \"{plus}\"}}\nsinks:\n  out: {{type: stdout}}\n"
    );
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let out = flowctl(&["validate", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr.chars().take(2000).collect::<String>());
    // Operators alternate `=`, `AND`: the 501st is the `=` of term 251, 10 characters
    // per term, in an expression that starts at column 14.
    let and_col = 14 + 250 * 10 + 2;
    // The 501st `+`, 4 characters per term, in an expression that starts at column 15.
    let plus_col = 15 + 500 * 4 + 2;
    for at in [format!("p.yaml:4:{and_col}: error:"), format!("p.yaml:5:{plus_col}: error:")] {
        assert!(out.stderr.contains(&format!("{at} the expression has more than 500 operators")), "{at}");
    }
    let ok = yaml.replace(&and, &vec!["x = 1"; 200].join(" AND ")).replace(&plus, &vec!["x"; 400].join(" + "));
    let out = flowctl(&["run", &write_pipeline(dir.path(), "ok.yaml", &ok)], Some("{\"x\": 1}\n"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"y\":400}\n");
}

/// Runs flowctl with stdout or stderr (or both) a pipe whose reader is already gone
/// (`true` has exited 200 ms before flowctl starts); returns the exit code and
/// whatever reached the other stream.
fn with_closed(stdout_closed: bool, stderr_closed: bool, args: &[&str]) -> (i32, String) {
    use std::process::{Command, Stdio};
    let code_file = tempfile::NamedTempFile::new().unwrap();
    let redirect = match (stdout_closed, stderr_closed) {
        (true, false) => "2>&4",
        (false, true) => "2>&1 >&3",
        _ => "2>&1",
    };
    let script = format!(r#"exec 3>&1 4>&2; {{ sleep 0.2; "$@" {redirect}; echo $? > "$CODE"; }} | true"#);
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_flowctl"))
        .args(args)
        .env("CODE", code_file.path())
        .current_dir(super::common::root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = std::fs::read_to_string(code_file.path()).unwrap().trim().parse().unwrap();
    let other = if stdout_closed { &out.stderr } else { &out.stdout };
    (code, String::from_utf8_lossy(other).into_owned())
}

/// A reader that went away (`flowctl plan p.yaml | head -1`) is not a crash: `plan`,
/// `validate`, `checkpoints ls` and `completions` end with their own exit code and no
/// panic; `run` survives a closed stderr at its summary.
#[test]
fn closed_stdout_and_stderr_are_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "id\n1\n2\n").unwrap();
    let yaml = "sources:\n  data: {type: file, path: in.csv}\nsinks:\n  out: {type: file, path: out.jsonl}\ncheckpoint: {dir: cp}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let bad = write_pipeline(dir.path(), "bad.yaml", "sources: {}\nsinks: {}\nnope: 1\n");
    let cp = dir.path().join("cp").display().to_string();

    let (code, stderr) = with_closed(false, true, &["run", &path]);
    assert_eq!(code, 0, "run with stderr closed: {stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap().lines().count(), 2);
    for (args, want) in [
        (vec!["plan", path.as_str()], 0),
        (vec!["validate", path.as_str()], 0),
        (vec!["validate", "--format", "json", path.as_str()], 0),
        (vec!["validate", bad.as_str()], 2),
        (vec!["checkpoints", "ls", cp.as_str()], 0),
        (vec!["checkpoints", "inspect", cp.as_str()], 0),
        (vec!["completions", "bash"], 0),
    ] {
        let (code, stderr) = with_closed(true, false, &args);
        assert_eq!(code, want, "{args:?} with stdout closed: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let (code, _) = with_closed(true, true, &args);
        assert_eq!(code, want, "{args:?} with stdout and stderr closed");
    }
}

/// `CAST` to a narrower integer type checks its range (it gave 100000 for SMALLINT),
/// `DECIMAL(p, s)` rounds to its scale and checks its precision (it was ignored),
/// an impossible DECIMAL is a validation error; TRY_CAST gives NULL instead.
#[test]
fn casts_to_narrow_types_check_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "on_error: skip
sources:
  s: {type: stdin, schema: {x: float}}
steps:
  - map: {x: x, s: CAST(x AS SMALLINT), d: 'CAST(x AS DECIMAL(3,1))', t: TRY_CAST(x AS TINYINT)}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], Some("{\"x\": 12.345}\n{\"x\": 100000}\n{\"x\": 99.96}\n{\"x\": -5}\n"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "{\"x\":12.345,\"s\":12,\"d\":12.3,\"t\":12}\n{\"x\":-5,\"s\":-5,\"d\":-5.0,\"t\":-5}\n",
        "{}",
        out.stderr
    );
    assert_eq!(summary_counts(&out.stderr), "4 in, 2 out, 0 late, 2 skipped, 0 failed");
    let failing = write_pipeline(dir.path(), "f.yaml", &yaml.replace("on_error: skip\n", ""));
    let out = flowctl(&["run", &failing], Some("{\"x\": 100000}\n"), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("100000 is out of range for SMALLINT"), "{}", out.stderr);
    let bad = write_pipeline(dir.path(), "b.yaml", &yaml.replace("DECIMAL(3,1)", "DECIMAL(3,5)"));
    let out = flowctl(&["validate", &bad], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("DECIMAL(3,5): the precision must be 1 to 38 and the scale 0 to the precision"),
        "{}",
        out.stderr
    );
}

/// Records that were silently wrong: a header `a,a,c` gave a record (and JSON) with
/// two `a` keys; a UTF-8 byte-order mark made line 1 of a JSON lines file bad; an
/// unterminated quote swallowed the rest of a CSV file into one field; an integer
/// beyond 64 bits became a float that lost its last digits.
#[test]
fn csv_and_json_lines_edge_cases_are_read_faithfully() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, content: &[u8], extra: &str| {
        std::fs::write(dir.path().join(name), content).unwrap();
        let yaml = format!("{extra}sources:\n  d: {{type: file, path: {name}}}\nsinks:\n  out: {{type: stdout}}\n");
        flowctl(&["run", &write_pipeline(dir.path(), &format!("{name}.yaml"), &yaml)], None, &[])
    };
    let out = run("dup.csv", b"a,a,c,a_2\n1,2,3,4\n", "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"a\":1,\"a_3\":2,\"c\":3,\"a_2\":4}\n");
    assert!(
        out.stderr.contains("the CSV header repeats the column `a`: this one is the field `a_3`"),
        "{}",
        out.stderr
    );

    let out = run("bom.jsonl", b"\xef\xbb\xbf{\"a\": 1}\n{\"a\": 2}\n", "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"a\":1}\n{\"a\":2}\n");

    let out = run("quote.csv", b"id,name\n1,\"ok\"\n2,\"never closed\n3,x\n4,y\n", "on_error: skip\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1,\"name\":\"ok\"}\n");
    assert_eq!(summary_counts(&out.stderr), "2 in, 1 out, 0 late, 1 skipped, 0 failed");
    let out = run("quote2.csv", b"id,name\n1,\"ok\"\n2,\"never closed\n3,x\n4,y\n", "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("quote2.csv:3): a quoted field opened in this record never closes"), "{}", out.stderr);
    // Quotes that close, doubled quotes and a quoted last line without a newline are fine.
    let out = run("fine.csv", b"id,name\n1,\"say \"\"hi\"\"\"\n2,\"two\nlines\"\n3,\"last\"", "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);

    let out = run("big.csv", b"id\n99999999999999999999\n1\n", "on_error: skip\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1}\n");
    let out = run("big2.csv", b"id\n99999999999999999999\n1\n", "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("`99999999999999999999` is an integer beyond 64 bits"), "{}", out.stderr);
}

/// `${name}` in a `regexp_replace` replacement is the named capture group: it was
/// replaced from the environment (a variable `w` changed what the expression did; an
/// unset one was a validation error). Elsewhere `${VAR}` still comes from the
/// environment.
#[test]
fn a_regexp_replace_group_reference_is_not_an_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:
  s: {type: stdin, format: text}
steps:
  - map: {t: \"regexp_replace(line, '(?P<w>[a-z]+)', '<${w}>') || '${SUFFIX:-!}'\"}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], Some("abc 12\n"), &[("w", "INJECTED"), ("SUFFIX", "?")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"t\":\"<abc> 12?\"}\n");
    let out = flowctl(&["run", &path], Some("abc 12\n"), &[]);
    assert_eq!(out.code, 0, "an unset `w` is not an error: {}", out.stderr);
    assert_eq!(out.stdout, "{\"t\":\"<abc> 12!\"}\n");
}

/// `parallelism` is at most 256 wherever it is set: the pipeline's, a keyed step's and
/// a source's `parallelism:` are validation errors at their value, `-p` of `run` and
/// `plan` a usage error (exit 2). -p 2000 took 4 GB and -p 10000 was OOM-killed; 256
/// runs, split by data, with the results of one thread.
#[test]
fn parallelism_is_bounded_and_the_bound_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("ts,user\n");
    for i in 0..5000 {
        csv.push_str(&format!("{i},u{}\n", i % 37));
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let yaml = "parallelism: 1000
sources:
  data: {type: file, path: in.csv, event_time: ts, parallelism: 300}
steps:
  - key_by: user
  - window: {tumbling: 1s}
  - reduce: {n: count()}
    parallelism: 257
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["validate", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for at in [
        "p.yaml:1:14: error: `parallelism` must be an integer from 1 to 256, found `1000`",
        "p.yaml:3:65: error: `parallelism` of source `data` must be an integer from 1 to 256, found `300`",
        "p.yaml:8:18: error: `parallelism` of step 3 must be an integer from 1 to 256, found `257`",
    ] {
        assert!(out.stderr.contains(at), "{at}\n{}", out.stderr);
    }
    let ok =
        yaml.replace("parallelism: 1000\n", "").replace(", parallelism: 300", "").replace("    parallelism: 257\n", "");
    let ok = write_pipeline(dir.path(), "ok.yaml", &ok);
    for command in ["run", "plan"] {
        let out = flowctl(&[command, "-p", "257", &ok], None, &[]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("257 is not in 1..=256"), "{}", out.stderr);
    }
    let out = flowctl(&["run", "--set", "parallelism=100000", &ok], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("must be an integer from 1 to 256, found `100000`"), "{}", out.stderr);

    assert_eq!(super::common::execution_mode(&ok, "256"), "split_by_data");
    let sorted = |out: &super::common::Output| {
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    let one = flowctl(&["run", "-p", "1", &ok], None, &[]);
    let many = flowctl(&["run", "-p", "256", &ok], None, &[]);
    assert_eq!((one.code, many.code), (0, 0), "{}\n{}", one.stderr, many.stderr);
    assert_eq!(one.stdout.lines().count(), 5 * 37);
    assert_eq!(sorted(&many), sorted(&one));
}

/// A sliding window of 1d every 1ms put each record in 86,400,000 windows (gigabytes for
/// the first record): more than 10,000 windows per record is a validation error at the
/// `sliding:` value, saying how short the slide may be.
#[test]
fn a_sliding_window_opening_too_many_windows_per_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:
  s: {type: stdin, event_time: ts}
steps:
  - key_by: user
  - window: {sliding: {size: 1d, slide: 1ms}}
  - reduce: {n: count()}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let started = std::time::Instant::now();
    let out = flowctl(&["run", &path], Some("{\"ts\": 1, \"user\": \"a\"}\n"), &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "p.yaml:5:23: error: a sliding window of 1d every 1ms puts each record in 86400000 windows; at most 10000 are allowed"
        ) && out.stderr.contains("help: make `slide` at least 8s640ms"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // 10,000 windows per record is the most allowed.
    let most = write_pipeline(dir.path(), "most.yaml", &yaml.replace("slide: 1ms", "slide: 8s640ms"));
    let out = flowctl(&["run", &most], Some("{\"ts\": 1, \"user\": \"a\"}\n"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 10_000);
}

/// The memory limit holds against sudden growth: it was read every 16 batches, so
/// batches whose records each open hundreds of windows could grow by gigabytes
/// before the first reading. It is now read after any batch once 10 ms have passed
/// since the last reading: here after the first batch or two, far below what the
/// whole input takes (about 250 MiB).
#[test]
fn the_memory_limit_stops_sudden_growth_early() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:
  gen:
    type: datagen
    count: 3000
    fields:
      user: {type: sequence, start: 0, step: 1}
      ts: {type: constant, value: 1000}
    event_time: ts
steps:
  - key_by: user
  - window: {sliding: {size: 300s, slide: 1s}}
  - reduce: {n: count()}
sinks:
  out: {type: blackhole}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", "-p", "1", "--memory-limit", "64MiB", &path], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let message = out.stderr.lines().find(|l| l.contains("memory limit of 64 MiB exceeded: ")).unwrap_or_default();
    let resident: f64 = message
        .split("exceeded: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no memory limit error: {}", out.stderr));
    assert!(resident < 200.0, "stopped only at {resident} MiB: {message}");
    assert!(message.contains("step `reduce #3` holds the most state"), "{message}");
}

/// A line longer than the source's `max_line_length` (16 MiB unless set) stops the
/// run naming the source, file and line, whether the file is read on one thread or
/// cut into blocks for several, from a file, stdin or a socket; before, a 100 MB line
/// took time quadratic in its length (blocks were rescanned and regrown each 256 KiB)
/// and a socket peer sending no newline grew memory without bound.
#[test]
fn lines_longer_than_the_limit_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{{\"a\": 1}}\n{{\"a\": 2}}\n{{\"a\": \"{}\"}}\n{{\"a\": 4}}\n", "x".repeat(2000));
    std::fs::write(dir.path().join("in.jsonl"), &long).unwrap();
    std::fs::write(dir.path().join("in.csv"), long.replace("{\"a\": ", "").replace('}', "")).unwrap();
    for file in ["in.jsonl", "in.csv"] {
        let header = if file == "in.csv" { ", csv: {header: false}" } else { "" };
        let yaml = format!(
            "sources:\n  d: {{type: file, path: {file}, max_line_length: 1KiB{header}}}\nsinks:\n  out: {{type: stdout}}\n"
        );
        let path = write_pipeline(dir.path(), "p.yaml", &yaml);
        for parallelism in ["1", "2"] {
            let out = flowctl(&["run", "-p", parallelism, &path], None, &[]);
            assert_eq!(out.code, 1, "{}", out.stderr);
            assert!(
                out.stderr.contains(&format!(
                    "source `d`: line 3 of {} is longer than 1 KiB (the source's `max_line_length`",
                    dir.path().join(file).display()
                )),
                "{file} at -p {parallelism}: {}",
                out.stderr
            );
        }
        let larger = write_pipeline(dir.path(), "ok.yaml", &yaml.replace("1KiB", "4KiB"));
        let out = flowctl(&["run", &larger], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout.lines().count(), 4);
    }

    // The default, 16 MiB, on a file without a newline: refused quickly on one thread
    // and in blocks; 32 MiB lets it through.
    std::fs::write(dir.path().join("huge.txt"), "y".repeat(17 << 20)).unwrap();
    let yaml = "sources:\n  d: {type: file, path: huge.txt}\nsteps:\n  - map: {n: length(line)}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "huge.yaml", yaml);
    for parallelism in ["1", "2"] {
        let started = std::time::Instant::now();
        let out = flowctl(&["run", "-p", parallelism, &path], None, &[]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("huge.txt is longer than 16 MiB"), "{}", out.stderr);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    }
    let allowed =
        write_pipeline(dir.path(), "allowed.yaml", &yaml.replace("huge.txt}", "huge.txt, max_line_length: 32MiB}"));
    for parallelism in ["1", "2"] {
        let out = flowctl(&["run", "-p", parallelism, &allowed], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, format!("{{\"n\":{}}}\n", 17 << 20));
    }

    let stdin = write_pipeline(
        dir.path(),
        "stdin.yaml",
        "sources:\n  s: {type: stdin, format: text, max_line_length: 1KiB}\nsinks:\n  out: {type: stdout}\n",
    );
    let out = flowctl(&["run", &stdin], Some(&format!("short\n{}\n", "z".repeat(5000))), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("cannot read <stdin>: line 2 is longer than 1 KiB"), "{}", out.stderr);
    let bad = write_pipeline(
        dir.path(),
        "bad.yaml",
        "sources:\n  s: {type: stdin, max_line_length: 0}\nsinks:\n  out: {type: stdout}\n",
    );
    let out = flowctl(&["validate", &bad], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("bad.yaml:2:37: error: `max_line_length` must be more than 0"), "{}", out.stderr);
}

/// A socket peer that sends and sends without a newline: the run stops at the limit
/// (it grew to 887 MB on 300 MB before).
#[test]
fn a_socket_peer_sending_no_newline_is_stopped_at_the_limit() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let chunk = vec![b'q'; 1 << 20];
        // Up to 200 MiB; flowctl closing the connection ends it sooner.
        let mut sent = 0;
        while sent < 200 && std::io::Write::write_all(&mut conn, &chunk).is_ok() {
            sent += 1;
        }
        sent
    });
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        format!("sources:\n  s: {{type: socket, address: '127.0.0.1:{port}'}}\nsinks:\n  out: {{type: stdout}}\n");
    let out = flowctl(&["run", &write_pipeline(dir.path(), "p.yaml", &yaml)], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("cannot read tcp://127.0.0.1:{port}: line 1 is longer than 16 MiB")),
        "{}",
        out.stderr
    );
    let sent = peer.join().unwrap();
    assert!(sent < 200, "flowctl read all {sent} MiB");
}

/// The stdout `table` format held the whole stream and printed it at the end (never,
/// for an unbounded source): it prints a page of 1,000 rows at a time, the header
/// again when a page widens a column.
#[test]
fn a_table_on_stdout_is_printed_page_by_page() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:\n  s: {type: stdin, format: text}\nsinks:\n  out: {type: stdout, format: table}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", &path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let rows: String = (0..1000).map(|i| format!("row {i}\n")).collect();
    stdin.write_all(rows.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The first page arrives while stdin is still open.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut first_page = Vec::new();
    while first_page.len() < 1002 {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => first_page.push(line),
            Err(_) => break,
        }
    }
    assert_eq!(first_page.len(), 1002, "the first page did not come before the end of input: {first_page:?}");
    assert_eq!(first_page[..3], ["line", "-------", "row 0"]);
    // A wider row: the header again, as wide as it.
    stdin.write_all(b"a much longer row\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(rest, ["line", "-----------------", "a much longer row"]);
}

/// A run without checkpoints killed with SIGKILL left its `.out.jsonl.<pid>.inprogress`
/// behind for good (989 MB once): the next run to that target removes the in-progress
/// files of processes that are gone, and nothing else (a live process's, the
/// checkpointed `.out.jsonl.inprogress`, other names).
#[test]
fn stale_in_progress_files_of_killed_runs_are_removed() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let endless = "sources:\n  gen: {type: datagen, rate: 1000, fields: {n: {type: sequence}}}\nsinks:\n  out: {type: file, path: out/o.jsonl}\n";
    let endless = write_pipeline(dir.path(), "endless.yaml", endless);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "-q", &endless])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = out.join(format!(".o.jsonl.{}.inprogress", child.id()));
    for _ in 0..100 {
        if killed.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(killed.exists(), "the run never created {}", killed.display());
    let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
    child.wait().unwrap();
    assert!(killed.exists(), "left behind by kill -9");

    let alive = out.join(format!(".o.jsonl.{}.inprogress", std::process::id()));
    let keep = [
        alive.clone(),
        out.join(".o.jsonl.inprogress"),
        out.join(".o.jsonl.abc.inprogress"),
        out.join(".other.jsonl.999999999.inprogress"),
    ];
    for f in &keep {
        std::fs::write(f, "x").unwrap();
    }
    // Beyond the largest pid Linux allows: certainly gone.
    let gone = out.join(".o.jsonl.999999999.inprogress");
    std::fs::write(&gone, "x").unwrap();

    std::fs::write(dir.path().join("in.csv"), "id\n1\n2\n").unwrap();
    let bounded = "sources:\n  d: {type: file, path: in.csv}\nsinks:\n  out: {type: file, path: out/o.jsonl}\n";
    let run = flowctl(&["run", &write_pipeline(dir.path(), "p.yaml", bounded)], None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!killed.exists() && !gone.exists(), "stale files remain: {}", run.stderr);
    assert!(run.stderr.contains("which is no longer running"), "{}", run.stderr);
    for f in &keep {
        assert!(f.exists(), "{} was removed", f.display());
    }
    assert_eq!(std::fs::read_to_string(out.join("o.jsonl")).unwrap(), "{\"id\":1}\n{\"id\":2}\n");
}

/// `checkpoints inspect` showed `"keys": null` for state saved by parallel instances,
/// and exited 1 when the newest checkpoint was corrupt: it sums the instances' keys
/// and windows, and shows the newest usable checkpoint (the one `run` resumes from),
/// naming the unusable ones; `--epoch` of a corrupt one is still an error.
#[test]
fn checkpoints_inspect_counts_parallel_state_and_skips_a_corrupt_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("ts,user\n");
    for i in 0..3000 {
        csv.push_str(&format!("{},u{}\n", i * 10, i % 7));
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let yaml = "sources:
  d: {type: file, path: in.csv, event_time: ts}
steps:
  - key_by: user
  - id: rolling
    reduce: {n: count()}
  - key_by: n % 3
  - window: {tumbling: 100s}
  - id: windowed
    reduce: {c: count()}
sinks:
  out: {type: blackhole}
checkpoint: {dir: cp}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let cp = dir.path().join("cp");
    let cp_arg = cp.display().to_string();
    let step = |json: &serde_json::Value, id: &str| {
        json["steps"].as_array().unwrap().iter().find(|s| s["step"] == id).cloned().unwrap_or_default()
    };
    for parallelism in ["1", "2"] {
        let _ = std::fs::remove_dir_all(&cp);
        let out = flowctl(&["run", "-p", parallelism, &path], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = flowctl(&["checkpoints", "inspect", "--format", "json", &cp_arg], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(step(&json, "rolling")["keys"], 7, "-p {parallelism}: {}", out.stdout);
        assert_eq!(step(&json, "windowed")["windows"], 0, "-p {parallelism}: {}", out.stdout);
        assert!(step(&json, "windowed")["keys"].is_u64(), "-p {parallelism}: {}", out.stdout);
        let out = flowctl(&["checkpoints", "inspect", &cp_arg], None, &[]);
        assert!(out.stdout.contains("step rolling: ") && out.stdout.contains(", 7 keys"), "{}", out.stdout);
    }

    // A newer checkpoint that is corrupt, one whose name and content disagree.
    let good = std::fs::read(cp.join("epoch-0000000001.checkpoint")).unwrap();
    std::fs::write(cp.join("epoch-0000000002.checkpoint"), &good).unwrap();
    std::fs::write(cp.join("epoch-0000000003.checkpoint"), b"garbage").unwrap();
    let out = flowctl(&["checkpoints", "inspect", &cp_arg], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("checkpoint 1 of `p`"), "{}", out.stdout);
    assert!(out.stderr.contains("epoch-0000000003.checkpoint is unusable (no header line)"), "{}", out.stderr);
    assert!(out.stderr.contains("its name says epoch 2 but it holds epoch 1"), "{}", out.stderr);
    let out = flowctl(&["checkpoints", "inspect", "--epoch", "3", &cp_arg], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for f in ["epoch-0000000001.checkpoint", "epoch-0000000002.checkpoint"] {
        std::fs::write(cp.join(f), b"garbage").unwrap();
    }
    let out = flowctl(&["checkpoints", "inspect", &cp_arg], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no usable checkpoint in"), "{}", out.stderr);
}

/// Mistakes only `run` found, without a position, are validation errors at their
/// value: a datagen `min: x`, `max: 1.5` for integers, `values: []`; a socket
/// address without a port; a SQL `url` its driver cannot read (the value is not
/// shown: it may hold a password).
#[test]
fn configuration_found_only_by_run_is_a_validation_error() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:
  gen:
    type: datagen
    count: 3
    fields:
      a: {type: uniform_int, min: x}
      b: {type: uniform_int, max: 1.5}
      c: {type: choice, values: []}
  sock: {type: socket, address: no-port-here}
sinks:
  out: {type: socket, address: 'localhost:99999'}
  db: {type: postgres, url: 'not a url', table: t}
  my: {type: mysql, url: '${MY_URL}', table: t}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["validate", &path], None, &[("MY_URL", "mysql://user:hunter2@db:notaport/x")]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for at in [
        "p.yaml:6:35: error: `min` of a `uniform_int` generator must be an integer, found `x`",
        "p.yaml:7:35: error: `max` of a `uniform_int` generator must be an integer, found `1.5`",
        "p.yaml:8:33: error: `values` of a `choice` generator must list at least one value",
        "p.yaml:9:33: error: `address` must be host:port, found `no-port-here`: no `:port`",
        "p.yaml:11:32: error: `address` must be host:port, found `localhost:99999`",
        "p.yaml:12:29: error: `url` of sink `db` is not a connection URL: it must start with postgres://",
        "p.yaml:13:26: error: `url` of sink `my` is not a connection URL: error with configuration: invalid port number",
    ] {
        assert!(out.stderr.contains(at), "{at}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert!(out.stderr.contains("p.yaml has 7 errors"), "{}", out.stderr);
}

/// One unset `${VAR}` gave five errors with the real one third: the empty value it
/// leaves made later checks fail too (no format from the extension, unknown fields,
/// no port). An unset variable is now the only kind of error reported.
#[test]
fn an_unset_variable_is_reported_without_its_follow_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let unset = "sources:
  s: {type: file, path: '${INPUT}'}
steps:
  - filter: x > 1
sinks:
  out: {type: socket, address: '${PEER}'}
";
    let path = write_pipeline(dir.path(), "u.yaml", unset);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(first.ends_with("u.yaml:2:25: error: environment variable `INPUT` is not set"), "{}", out.stderr);
    assert!(out.stderr.contains("u.yaml:6:32: error: environment variable `PEER` is not set"), "{}", out.stderr);
    assert!(out.stderr.contains("u.yaml has 2 errors"), "only the causes: {}", out.stderr);
}
