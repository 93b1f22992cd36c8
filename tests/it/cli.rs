//! The command line: exit codes, several files, JSON diagnostics, plan, schema,
//! broken pipes and refused features.

use super::common::{execution, execution_mode, flowctl, summary_counts, write_pipeline};

const TWO_MISTAKES: &str = "sources:\n  in:\n    type: file\n    pth: x.csv\nsinks:\n  out:\n    type: stdot\n";

#[test]
fn valid_file_exits_0_and_says_ok() {
    let out = flowctl(&["validate", "pipelines/quickstart.yaml"], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "pipelines/quickstart.yaml: ok\n");
}

#[test]
fn several_mistakes_are_all_reported_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pipeline(dir.path(), "bad.yaml", TWO_MISTAKES);
    let out = flowctl(&["validate", &path], None, &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("{path}:4:5: error: unknown field `pth`")), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `path`?"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{path}:3:5: error: missing required field `path`")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{path}:7:11: error: unknown type `stdot`")), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `stdout`?"), "{}", out.stderr);
}

#[test]
fn json_format_prints_one_array_for_all_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_pipeline(dir.path(), "bad.yaml", TWO_MISTAKES);
    let out = flowctl(&["validate", "--format", "json", "pipelines/quickstart.yaml", &bad], None, &[]);
    assert_eq!(out.code, 2);
    let items: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    let items = items.as_array().expect("array");
    assert_eq!(items.len(), 3, "{}", out.stdout);
    let first = &items[0];
    assert_eq!(first["file"], bad.as_str());
    assert_eq!(first["line"], 3);
    assert_eq!(first["column"], 5);
    assert!(first["message"].as_str().unwrap().contains("missing required field `path`"));
    assert!(first["hint"].is_null());
    assert_eq!(items[1]["hint"], "did you mean `path`?");
}

#[test]
fn valid_files_in_json_give_an_empty_array() {
    let out = flowctl(&["validate", "--format", "json", "pipelines/quickstart.yaml"], None, &[]);
    assert_eq!((out.code, out.stdout.trim()), (0, "[]"));
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = flowctl(&["run", "does/not/exist.yaml"], None, &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cannot read does/not/exist.yaml"), "{}", out.stderr);
}

#[test]
fn missing_input_file_is_a_runtime_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pipeline(
        dir.path(),
        "p.yaml",
        "sources:\n  in: {type: file, path: nowhere.csv}\nsinks:\n  out: {type: stdout}\n",
    );
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("source `in`") && out.stderr.contains("nowhere.csv"), "{}", out.stderr);
}

#[test]
fn unknown_command_line_options_exit_2() {
    assert_eq!(flowctl(&["run", "--nope", "x.yaml"], None, &[]).code, 2);
    assert_eq!(flowctl(&["frobnicate"], None, &[]).code, 2);
}

#[test]
fn help_explains_the_commands() {
    let out = flowctl(&["--help"], None, &[]);
    assert_eq!(out.code, 0);
    for word in ["run", "validate", "plan", "schema", "Exit codes"] {
        assert!(out.stdout.contains(word), "help lacks {word}:\n{}", out.stdout);
    }
}

#[test]
fn plan_shows_operators_threads_and_sinks() {
    let out = flowctl(&["plan", "-p", "2", "pipelines/fan_out.yaml"], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("plan_fan_out", out.stdout);
}

#[test]
fn plan_says_whether_keyed_steps_run_on_parallel_instances() {
    let split = execution("pipelines/w1.yaml", "2");
    assert_eq!(split, serde_json::json!({"mode": "split_by_data", "workers": 2, "key_by": "key_by #2"}));
    assert_eq!(execution_mode("pipelines/w1.yaml", "1"), "one_thread");
    let dir = tempfile::tempdir().unwrap();
    // Not a file: the source's thread feeds keyed instances.
    let yaml = "sources:\n  in: {type: stdin}\nsteps:\n  - key_by: a\n  - reduce: {n: count()}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "one.yaml", yaml);
    let instances = execution(&path, "3");
    assert_eq!(instances, serde_json::json!({"mode": "keyed_instances", "instances": 3, "exchanges": ["key_by #1"]}));
    let out = flowctl(&["plan", "-p", "3", &path], None, &[]);
    assert!(
        out.stdout.contains("runs: keyed steps on 3 instances, partitioned by the key of `key_by #1`"),
        "{}",
        out.stdout
    );
    let yaml = "sources:\n  in: {type: stdin}\nsteps:\n  - key_by: a\n  - reduce: {n: count()}\n  - key_by: n\n  - reduce: {m: count()}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let one = execution(&path, "2");
    assert_eq!(
        one,
        serde_json::json!({"mode": "one_thread", "why": "a second `key_by` after a keyed step (a second exchange)"})
    );
    // It still runs, on one thread, with the results of a single thread.
    let out = flowctl(&["run", "--parallelism", "2", &path], Some("{\"a\": 1}\n{\"a\": 2}\n{\"a\": 1}\n"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"n\":1,\"m\":1}\n{\"n\":1,\"m\":2}\n{\"n\":2,\"m\":1}\n");
}

#[test]
fn parallelism_on_a_keyed_step_sets_the_instances_and_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let steps =
        "steps:\n  - filter: a > 0\n    parallelism: 2\n  - key_by: a\n  - reduce: {n: count()}\n    parallelism: 3\n";
    let yaml = format!("sources:\n  in: {{type: stdin}}\n{steps}sinks:\n  out: {{type: stdout}}\n");
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let out = flowctl(&["run", &path], Some(""), &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("{path}:5:18: error: not supported yet: `parallelism` on a step before `key_by`")),
        "{}",
        out.stderr
    );
    let yaml = yaml.replace("    parallelism: 2\n", "");
    let path = write_pipeline(dir.path(), "q.yaml", &yaml);
    assert_eq!(execution(&path, "1")["instances"], 3);
    let out = flowctl(&["run", "--parallelism", "1", &path], Some("{\"a\": 1}\n{\"a\": 1}\n"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"a\":1,\"n\":1}\n{\"a\":1,\"n\":2}\n");
    let yaml = yaml.replace("sinks:", "  - set: {m: n * 2}\n    parallelism: 2\nsinks:");
    let path = write_pipeline(dir.path(), "r.yaml", &yaml);
    let out = flowctl(&["run", &path], Some(""), &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("different `parallelism` on keyed steps (3 and 2): they run on one set of instances"),
        "{}",
        out.stderr
    );
}

#[test]
fn schema_is_json_schema_covering_the_format() {
    let out = flowctl(&["schema"], None, &[]);
    assert_eq!(out.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(schema["type"], "object");
    for key in ["sources", "steps", "sinks", "checkpoint", "on_error"] {
        assert!(schema["properties"][key].is_object(), "schema lacks {key}");
    }
    let sources = schema["properties"]["sources"]["additionalProperties"]["oneOf"].as_array().expect("source variants");
    let kinds: Vec<&str> = sources.iter().map(|v| v["properties"]["type"]["const"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["file", "stdin", "socket", "kafka", "datagen", "nexmark"]);
}

#[test]
fn stdin_pipeline_reads_standard_input() {
    let out =
        flowctl(&["run", "pipelines/log_errors.yaml"], Some("2024-01-01 00:00:00 ERROR boom on db-9\nfine\n"), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"time\":\"2024-01-01T00:00:00.000Z\",\"message\":\"boom on db-9\",\"host\":\"db-9\"}\n");
    assert_eq!(summary_counts(&out.stderr), "2 in, 1 out, 0 late, 0 skipped, 0 failed");
}

/// A pipeline copying 200,000 text lines to the given sink.
fn big_text_pipeline(sink: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.path().join("big.txt"), data).unwrap();
    let yaml = format!("sources:\n  in: {{type: file, path: big.txt}}\nsinks:\n  out: {sink}\n");
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    (dir, path)
}

#[test]
fn broken_pipe_on_stdout_ends_the_run_cleanly() {
    let (_dir, path) = big_text_pipeline("{type: stdout}");
    let script = format!("{} run {path} | head -n 1; exit ${{PIPESTATUS[0]}}", env!("CARGO_BIN_EXE_flowctl"));
    let out = std::process::Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"line\":\"line 0\"}\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn features_not_built_yet_are_refused_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        "sources:\n  in: {type: stdin}\nsteps:\n  - filter: a > 1\n    parallelism: 2\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    // `validate`, `plan`, `test` and `run` accept and refuse the same pipelines.
    for command in ["validate", "plan", "test", "run"] {
        let out = flowctl(&[command, &path], Some(""), &[]);
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{path}:5:18: error: not supported yet: `parallelism` on a step of a pipeline that runs on one thread"
            )),
            "{command}: {}",
            out.stderr
        );
    }
}

#[test]
fn file_sink_leaves_nothing_under_the_final_name_when_the_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"a\": 1}\n{\"a\": 0}\n").unwrap();
    let yaml = "sources:\n  in: {type: file, path: in.jsonl}\nsteps:\n  - map: {x: 10 / a}\nsinks:\n  out: {type: file, path: out.csv}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(!names.iter().any(|n| n.contains("out.csv")), "left behind: {names:?}");
}

#[test]
fn env_variables_are_interpolated_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:\n  in: {type: stdin, format: text}\nsteps:\n  - map: {tag: \"'${TAG:-none}'\", line: line}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    assert_eq!(flowctl(&["run", &path], Some("x\n"), &[]).stdout, "{\"tag\":\"none\",\"line\":\"x\"}\n");
    assert_eq!(flowctl(&["run", &path], Some("x\n"), &[("TAG", "blue")]).stdout, "{\"tag\":\"blue\",\"line\":\"x\"}\n");
}

#[test]
fn set_overrides_any_spec_value_and_is_validated_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "ts,user_id,url,bytes,status\n1,u1,/a,2000,404\n2,u2,/b,3000,200\n").unwrap();
    let path_override = format!("sources.clicks.path={}", input.display());
    let out = flowctl(
        &["run", "pipelines/quickstart.yaml", "--set", &path_override, "--set", "steps.0.filter=status = 404"],
        None,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"user\":\"u1\",\"page\":\"/a\",\"kb\":1.953125}\n");
    let bad = flowctl(&["run", "pipelines/quickstart.yaml", "--set", "sinks.out.format=xml"], None, &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("`format` of sink `out` must be one of jsonl, csv, table, found `xml`"),
        "{}",
        bad.stderr
    );
    let unusable = flowctl(&["run", "pipelines/quickstart.yaml", "--set", "nonsense"], None, &[]);
    assert_eq!(unusable.code, 2);
}

#[test]
fn completions_are_printed_for_shells() {
    let out = flowctl(&["completions", "bash"], None, &[]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("flowctl") && out.stdout.contains("validate") && out.stdout.contains("--fresh"));
    assert_eq!(flowctl(&["completions", "fish"], None, &[]).code, 0);
}

#[test]
fn test_command_runs_cases_and_shows_a_diff_on_failure() {
    let out = flowctl(&["test", "pipelines/windows_session.yaml"], None, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with("2 passed, 0 failed\n"), "{}", out.stdout);
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:
  in: {type: stdin}
steps:
  - id: doubled
    map: {x: x * 2}
sinks:
  out: {type: stdout}
tests:
  - name: doubles
    input:
      in: [{x: 1}, {x: 2}]
    expect:
      doubled: [{x: 2}, {x: 5}]
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let failed = flowctl(&["test", &path], None, &[]);
    assert_eq!(failed.code, 1);
    assert!(failed.stdout.contains("FAILED: doubles"), "{}", failed.stdout);
    assert!(failed.stdout.contains("    - {\"x\":5}\n    + {\"x\":4}"), "{}", failed.stdout);
    assert!(failed.stdout.ends_with("0 passed, 1 failed\n"), "{}", failed.stdout);
}

#[test]
fn logs_are_plain_lines_or_json_and_verbose_shows_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a\nb\n").unwrap();
    let yaml = "sources:\n  in: {type: file, path: in.txt}\nsinks:\n  out: {type: file, path: out.jsonl}\ncheckpoint: {interval: 1s}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let first = flowctl(&["run", "-v", &path], None, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("flowctl: debug: checkpoint 1 written"), "{}", first.stderr);
    let second = flowctl(&["run", "--log-format", "json", &path], None, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let event: serde_json::Value =
        serde_json::from_str(second.stderr.lines().next().unwrap()).expect("a JSON log line");
    assert_eq!(event["level"], "INFO");
    assert!(event["fields"]["message"].as_str().unwrap().starts_with("resuming from checkpoint 1"), "{event}");
    let quiet = flowctl(&["run", "-q", &path], None, &[]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""));
}

#[test]
fn progress_bar_shows_on_a_terminal_and_never_in_a_pipe() {
    let (_dir, path) = big_text_pipeline("{type: file, path: out.jsonl}");
    // `script` runs flowctl on a pseudo-terminal and copies what it drew.
    let command = format!("{} run {path}", env!("CARGO_BIN_EXE_flowctl"));
    let tty = std::process::Command::new("script").args(["-qec", &command, "/dev/null"]).output().unwrap();
    let drawn = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{drawn}");
    assert!(drawn.contains("KiB/") || drawn.contains("MiB/"), "a byte progress bar on the terminal: {drawn:?}");
    assert!(drawn.contains("200000 records"), "{drawn:?}");
    let piped = flowctl(&["run", &path], None, &[]);
    assert_eq!(piped.code, 0);
    assert!(
        !piped.stderr.contains("records,") && !piped.stderr.contains("iB/"),
        "nothing but the summary in a pipe: {}",
        piped.stderr
    );
    assert_eq!(piped.stderr.lines().count(), 1, "{}", piped.stderr);
}

#[test]
fn progress_always_prints_plain_lines_into_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:\n  gen: {type: datagen, rate: 1000, count: 3000, fields: {n: {type: sequence}}}\nsinks:\n  out: {type: file, path: out.jsonl}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", "--progress", "always", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("flowctl: progress: ")).collect();
    assert!(!lines.is_empty() && lines[0].contains(" records, watermark "), "{}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "no terminal escapes in a pipe: {:?}", out.stderr);
}

#[test]
fn a_memory_limit_stops_the_run_naming_the_step_with_the_most_state() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: growing
sources:
  gen: {type: datagen, count: 20000000, fields: {n: {type: sequence}}}
steps:
  - key_by: n
  - id: per_n
    reduce: {c: count()}
sinks:
  out: {type: blackhole}
memory_limit: 64MiB
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("flowctl: error: memory limit of 64 MiB exceeded: "), "{}", out.stderr);
    assert!(out.stderr.contains("step `per_n` holds the most state ("), "{}", out.stderr);
    let overridden = flowctl(&["run", &path, "--memory-limit", "48MiB"], None, &[]);
    assert!(overridden.stderr.contains("memory limit of 48 MiB exceeded"), "{}", overridden.stderr);
}

/// With `--log-format json` every line on stderr is a JSON object: the log events,
/// and also the run summary (with its counts as fields), the checkpoint line, a
/// runtime error and each error of an invalid spec (with file, line and column),
/// which were plain text before.
#[test]
fn json_logs_cover_the_summary_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a\nb\n").unwrap();
    let yaml = "sources:\n  in: {type: file, path: in.txt}\nsinks:\n  out: {type: file, path: out.jsonl}\ncheckpoint: {interval: 1s}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let objects = |stderr: &str| -> Vec<serde_json::Value> {
        stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}")))
            .collect()
    };
    let out = flowctl(&["run", "--log-format", "json", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = objects(&out.stderr);
    let summary = events.iter().find(|e| e["fields"]["records_in"].is_u64()).expect("a summary object");
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["fields"]["records_out"], 2);
    assert!(summary["fields"]["message"].as_str().unwrap().starts_with("2 in, 2 out, 0 late"), "{summary}");
    assert!(events.iter().any(|e| e["fields"]["checkpoints_written"] == 1), "{}", out.stderr);

    std::fs::write(dir.path().join("in.txt"), "a\nb\n").unwrap();
    let failing = write_pipeline(
        dir.path(),
        "f.yaml",
        "sources:\n  in: {type: file, path: missing.txt}\nsinks:\n  out: {type: stdout}\n",
    );
    let out = flowctl(&["run", "--log-format", "json", &failing], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = objects(&out.stderr);
    let error = events.last().unwrap();
    assert_eq!(error["level"], "ERROR");
    assert_eq!(error["fields"]["exit_code"], 1);
    assert!(error["fields"]["message"].as_str().unwrap().contains("missing.txt"), "{error}");

    let invalid = write_pipeline(
        dir.path(),
        "i.yaml",
        "sources:\n  in: {type: stdin, parallelism: 0}\nsinks:\n  out: {type: stdout}\n",
    );
    let out = flowctl(&["run", "--log-format", "json", &invalid], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let events = objects(&out.stderr);
    let first = &events[0];
    assert_eq!((first["fields"]["line"].as_u64(), first["fields"]["column"].as_u64()), (Some(2), Some(34)), "{first}");
    assert!(first["fields"]["file"].as_str().unwrap().ends_with("i.yaml"), "{first}");
    assert_eq!(events.last().unwrap()["fields"]["errors"], 1);
    // Text stays text.
    let out = flowctl(&["run", &invalid], None, &[]);
    assert!(out.stderr.contains("i.yaml:2:34: error:"), "{}", out.stderr);
}
