//! MySQL (MariaDB) and PostgreSQL sinks against real servers (127.0.0.1:3306 root and
//! 127.0.0.1:5432 postgres, database `test`, or throwaway servers: see `services`):
//! windowed results equal the file sink's; kill -9 and resume, and connections cut by a
//! proxy, leave exactly the rows of an uninterrupted run, in upsert and append mode.
//! Each test uses its own tables.

use super::common::{flowctl, write_pipeline};
use super::services::{self, Db};
use super::w1::generate;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Both servers, or `None` when the test is to be skipped (`services` said why).
fn servers() -> Option<(Db, Db)> {
    Some((services::mysql()?, services::postgres()?))
}

fn my_db() -> Db {
    services::mysql().expect("the test checked for MySQL at its start")
}

fn pg_db() -> Db {
    services::postgres().expect("the test checked for PostgreSQL at its start")
}

fn mysql(sql: &str) -> String {
    mysql_in(&my_db().database, sql)
}

/// Runs `sql` in `database` of the MySQL server.
fn mysql_in(database: &str, sql: &str) -> String {
    let db = my_db();
    let mut cmd = Command::new(&db.client);
    cmd.args([format!("-u{}", db.user), format!("-h{}", db.host), format!("-P{}", db.port), database.to_string()]);
    cmd.args(["-N", "-B", "-e", sql]);
    if let Some(password) = &db.password {
        cmd.env("MYSQL_PWD", password);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "mysql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn psql(sql: &str) -> String {
    psql_in(&pg_db().database, sql)
}

/// Runs `sql` in `database` of the PostgreSQL server.
fn psql_in(database: &str, sql: &str) -> String {
    let db = pg_db();
    let mut cmd = Command::new(&db.client);
    cmd.args(["-h", &db.host, "-p", &db.port.to_string(), "-U", &db.user, "-d", database]);
    cmd.args(["-At", "-F", "\t", "-q", "-c", sql]);
    if let Some(password) = &db.password {
        cmd.env("PGPASSWORD", password);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn table(name: &str) -> String {
    format!("t_{name}_{}", std::process::id())
}

fn drop_tables(tables: &[&str]) {
    for t in tables {
        mysql(&format!("DROP TABLE IF EXISTS {t}"));
        psql(&format!("DROP TABLE IF EXISTS {t}"));
    }
}

fn drop_pg_tables(tables: &[&str]) {
    for t in tables {
        psql(&format!("DROP TABLE IF EXISTS {t}"));
    }
}

/// Rows of a table as sorted tab-separated lines (floats are not involved).
fn rows(db: &str, t: &str) -> Vec<String> {
    let sql = format!("SELECT user_id, window_start, window_end, requests, bytes FROM {t}");
    let text = if db == "mysql" { mysql(&sql) } else { psql(&sql) };
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

fn pipeline(name: &str, input: &str, sinks: &str, checkpoint: bool) -> String {
    let cp = if checkpoint { "checkpoint: {interval: 30ms, keep: 2}\n" } else { "" };
    format!(
        "name: {name}
sources:
  clicks:
    type: file
    path: {input}
    schema: {{ts: int, user_id: string, url: string, bytes: int, status: int}}
    event_time: ts
    watermark: {{max_out_of_orderness: 2s}}
steps:
  - filter: status = 200
  - key_by: user_id
  - window: {{tumbling: 10s}}
  - id: totals
    reduce: {{requests: count(), bytes: sum(bytes)}}
sinks:
{sinks}{cp}"
    )
}

fn sql_sink(id: &str, kind: &str, url: &str, t: &str, upsert: bool) -> String {
    let key = if upsert { "\n    key: [user_id, window_start]" } else { "" };
    format!(
        "  {id}:\n    type: {kind}\n    url: {url}\n    table: {t}{key}\n    create_table: true\n    from: totals\n"
    )
}

#[test]
fn windowed_results_in_both_databases_equal_the_file_sink() {
    let Some((my_db, pg_db)) = servers() else { return };
    let (my, pg) = (table("w1_my"), table("w1_pg"));
    drop_tables(&[&my, &pg]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), generate(20_000, 0).0).unwrap();
    let sinks = format!(
        "{}{}  file: {{type: file, path: out.csv, header: false, format: csv, from: totals}}\n",
        sql_sink("my", "mysql", &my_db.url, &my, true),
        sql_sink("pg", "postgres", &pg_db.url, &pg, true)
    );
    let path = write_pipeline(dir.path(), "p.yaml", &pipeline("sql_equal", "input.csv", &sinks, false));
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut expected: Vec<String> =
        std::fs::read_to_string(dir.path().join("out.csv")).unwrap().lines().map(|l| l.replace(',', "\t")).collect();
    expected.sort();
    assert!(expected.len() > 1000);
    assert_eq!(rows("mysql", &my), expected);
    assert_eq!(rows("postgres", &pg), expected);
    let plan = flowctl(&["plan", &path], None, &[]);
    assert!(
        !plan.stdout.contains(&my_db.url) && !plan.stderr.contains(&pg_db.url),
        "plan shows no URL: {}",
        plan.stdout
    );
    drop_tables(&[&my, &pg]);
}

/// Four sinks: append and upsert into each database.
fn four_sinks(suffix: &str) -> (String, Vec<(String, &'static str)>) {
    let t = |n: &str| table(&format!("{n}_{suffix}"));
    let list = vec![(t("my_app"), "mysql"), (t("my_up"), "mysql"), (t("pg_app"), "postgres"), (t("pg_up"), "postgres")];
    let sinks = format!(
        "{}{}{}{}",
        sql_sink("my_app", "mysql", &my_db().url, &list[0].0, false),
        sql_sink("my_up", "mysql", &my_db().url, &list[1].0, true),
        sql_sink("pg_app", "postgres", &pg_db().url, &list[2].0, false),
        sql_sink("pg_up", "postgres", &pg_db().url, &list[3].0, true)
    );
    (sinks, list)
}

fn reference_rows(input: &str, name: &str) -> Vec<Vec<String>> {
    let (sinks, tables) = four_sinks(&format!("{name}_ref"));
    drop_tables(&tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), input).unwrap();
    let path = write_pipeline(dir.path(), "p.yaml", &pipeline(&format!("{name}_ref"), "input.csv", &sinks, true));
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let result = tables.iter().map(|(t, db)| rows(db, t)).collect();
    drop_tables(&tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>());
    result
}

#[test]
fn kill_9_and_resume_leaves_exactly_the_uninterrupted_rows() {
    if servers().is_none() {
        return;
    }
    let input = generate(40_000, 0).0;
    let expected = reference_rows(&input, "sql_kill");
    let (sinks, tables) = four_sinks("kill");
    drop_tables(&tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), &input).unwrap();
    let path = write_pipeline(dir.path(), "p.yaml", &pipeline("sql_kill", "input.csv", &sinks, true));
    let mut state: u64 = 0x5851_f42d_4c95_7f2d;
    let mut kills = 0;
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .args(["run", "-q", &path])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wait = if kills < 10 { 30 + state % 200 } else { 5_000 };
        std::thread::sleep(Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        assert!(kills < 200, "the run never finished");
    }
    assert!(kills >= 10, "only {kills} kills");
    for ((t, db), want) in tables.iter().zip(&expected) {
        assert_eq!(&rows(db, t), want, "table {t} after {kills} kills");
    }
    drop_tables(&tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>());
}

/// A TCP proxy that cuts every connection every `period`.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: String, period: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, o) = (stop.clone(), open.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(period);
                for c in o.lock().unwrap().drain(..) {
                    let _ = c.shutdown(Shutdown::Both);
                }
            }
        });
        let s = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else { continue };
                open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn connections_cut_mid_run_are_survived_without_loss_or_duplicates() {
    let Some((my_db, pg_db)) = servers() else { return };
    let input = generate(40_000, 0).0;
    let expected = reference_rows(&input, "sql_cut");
    let my_proxy = Proxy::start(my_db.address(), Duration::from_millis(1000));
    let pg_proxy = Proxy::start(pg_db.address(), Duration::from_millis(1000));
    let (mut sinks, tables) = four_sinks("cut");
    sinks = sinks
        .replace(&format!("@{}/", my_db.address()), &format!("@127.0.0.1:{}/", my_proxy.port))
        .replace(&format!("@{}/", pg_db.address()), &format!("@127.0.0.1:{}/", pg_proxy.port));
    drop_tables(&tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), &input).unwrap();
    let path = write_pipeline(dir.path(), "p.yaml", &pipeline("sql_cut", "input.csv", &sinks, true));
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for ((t, db), want) in tables.iter().zip(&expected) {
        assert_eq!(&rows(db, t), want, "table {t}");
    }
    drop_tables(&tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>());
}

#[test]
fn a_row_the_database_rejects_is_named_in_the_error() {
    let Some(pg_db) = services::postgres() else { return };
    let t = table("reject");
    drop_pg_tables(&[&t]);
    psql(&format!(
        "CREATE TABLE {t} (user_id TEXT, window_start BIGINT, window_end BIGINT, requests BIGINT, bytes BIGINT CHECK (bytes < 5000))"
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), generate(2_000, 0).0).unwrap();
    let sinks = format!("  pg:\n    type: postgres\n    url: {}\n    table: {t}\n    from: totals\n", pg_db.url);
    let path = write_pipeline(dir.path(), "p.yaml", &pipeline("sql_reject", "input.csv", &sinks, false));
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("sink `pg`: the database rejected the row {\"user_id\":"), "{}", out.stderr);
    assert!(out.stderr.contains("check constraint"), "{}", out.stderr);
    drop_pg_tables(&[&t]);
}

#[test]
fn rejected_rows_follow_on_error_to_a_sink() {
    let Some(pg_db) = services::postgres() else { return };
    let t = table("reject_sink");
    drop_pg_tables(&[&t]);
    psql(&format!(
        "CREATE TABLE {t} (user_id TEXT, window_start BIGINT, window_end BIGINT, requests BIGINT, bytes BIGINT CHECK (bytes < 5000))"
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.csv"), generate(2_000, 0).0).unwrap();
    let sinks = format!(
        "  pg:\n    type: postgres\n    url: {}\n    table: {t}\n    from: totals\n  rejects: {{type: file, path: rejects.jsonl}}\n  all: {{type: file, path: all.csv, header: false, from: totals}}\n",
        pg_db.url
    );
    let yaml = format!("on_error: rejects\n{}", pipeline("sql_reject_sink", "input.csv", &sinks, false));
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let all = std::fs::read_to_string(dir.path().join("all.csv")).unwrap();
    let too_big = all.lines().filter(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap() >= 5000).count();
    assert!(too_big > 0);
    let rejects = std::fs::read_to_string(dir.path().join("rejects.jsonl")).unwrap();
    assert_eq!(rejects.lines().count(), too_big, "{rejects}");
    let first: serde_json::Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(first["step"], "sink pg");
    assert!(first["error"].as_str().unwrap().contains("check constraint"));
    assert!(first["input"]["bytes"].as_i64().unwrap() >= 5000);
    let count = psql(&format!("SELECT count(*) FROM {t}"));
    assert_eq!(count.trim().parse::<usize>().unwrap(), all.lines().count() - too_big);
    assert!(out.stderr.contains(&format!("0 skipped, {too_big} failed")), "{}", out.stderr);
    drop_pg_tables(&[&t]);
}

/// Two independent runs of one pipeline name (their own checkpoint directories and
/// tables): the second must not make the first, when it runs again from its
/// checkpoint, write its checkpoint's rows a second time (issue 23, item 1). The runs
/// use databases of their own whose `flowctl_commits` has the older shape, keyed by
/// pipeline and sink only: it is migrated, and its row stays.
#[test]
fn another_run_of_the_same_pipeline_name_does_not_make_a_resumed_run_write_twice() {
    let Some((my_db, pg_db)) = servers() else { return };
    let database = format!("flowctl_twins_{}", std::process::id());
    let old_table = "CREATE TABLE flowctl_commits (pipeline VARCHAR(191) NOT NULL, sink VARCHAR(191) NOT NULL, lineage VARCHAR(64) NOT NULL, epoch BIGINT NOT NULL, PRIMARY KEY (pipeline, sink))";
    let old_row = "INSERT INTO flowctl_commits VALUES ('elsewhere', 'my', 'an-old-lineage', 7)";
    mysql(&format!("DROP DATABASE IF EXISTS {database}"));
    mysql(&format!("CREATE DATABASE {database}"));
    psql(&format!("DROP DATABASE IF EXISTS {database}"));
    psql(&format!("CREATE DATABASE {database}"));
    for sql in [old_table, old_row] {
        mysql_in(&database, sql);
        psql_in(&database, sql);
    }
    let url = |db: &Db| format!("{}/{database}", db.url.rsplit_once('/').unwrap().0);
    let (my_url, pg_url) = (url(&my_db), url(&pg_db));
    let input = generate(20_000, 0).0;
    let rows = |db: &str, t: &str| {
        let sql = format!("SELECT user_id, window_start, window_end, requests, bytes FROM {t}");
        let text = if db == "mysql" { mysql_in(&database, &sql) } else { psql_in(&database, &sql) };
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let run = |dir: &std::path::Path, my: &str, pg: &str| {
        std::fs::write(dir.join("input.csv"), &input).unwrap();
        let sinks = format!(
            "{}{}",
            sql_sink("my", "mysql", &my_url, my, false),
            sql_sink("pg", "postgres", &pg_url, pg, false)
        );
        let path = write_pipeline(dir, "p.yaml", &pipeline("sql_twins", "input.csv", &sinks, true));
        let out = flowctl(&["run", &path], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path(), "a_my", "a_pg");
    let (first_my, first_pg) = (rows("mysql", "a_my"), rows("postgres", "a_pg"));
    assert!(first_my.len() > 1000 && first_my == first_pg);
    run(b.path(), "b_my", "b_pg");
    run(a.path(), "a_my", "a_pg");
    for (db, t, first) in [("mysql", "a_my", &first_my), ("postgres", "a_pg", &first_pg)] {
        let now = rows(db, t);
        assert!(
            &now == first,
            "{db}: run A's table has {} rows after run B and A again, {} before",
            now.len(),
            first.len()
        );
    }
    let markers = "SELECT pipeline, sink, epoch FROM flowctl_commits ORDER BY pipeline, sink, lineage";
    for text in [mysql_in(&database, markers), psql_in(&database, markers)] {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "the old row and one marker per run: {text}");
        assert_eq!(lines[0], "elsewhere\tmy\t7", "{text}");
    }
    mysql(&format!("DROP DATABASE {database}"));
    psql(&format!("DROP DATABASE {database}"));
}
