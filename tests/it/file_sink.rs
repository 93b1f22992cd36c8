//! A file sink writes a new file and renames it into place: a target that is not a
//! regular file (a device such as /dev/null, a named pipe) is refused, never replaced.

use super::common::{flowctl, write_pipeline};

#[test]
fn a_file_sink_onto_a_pipe_or_device_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let yaml = "sources:\n  in: {type: stdin}\nsinks:\n  out: {type: file, path: pipe, format: jsonl}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], Some("{\"a\": 1}\n"), &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is not a regular file"), "{}", out.stderr);
    assert!(out.stderr.contains("blackhole"), "{}", out.stderr);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe is still a pipe");
}
