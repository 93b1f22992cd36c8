//! The servers the integration tests talk to: MariaDB/MySQL, PostgreSQL and a Kafka
//! broker. A database test uses the server at its usual address (127.0.0.1:3306 and
//! 127.0.0.1:5432, or the URL in `FLOWCTL_TEST_MYSQL_URL` / `FLOWCTL_TEST_POSTGRES_URL`);
//! when nothing answers there, a throwaway server is started from the installed binaries
//! (mariadbd / postgres on PATH or in the usual Debian places) on a free port in a
//! temporary directory, once per test process, and removed when the process ends. When
//! neither is possible the test is skipped with one line naming what to install, except
//! under `CI=true`, where it fails instead.

use super::common::{free_port, root};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A database server the tests may use: its URL for flowctl and how to reach it with
/// the command-line client.
#[derive(Debug, Clone)]
pub struct Db {
    /// The URL flowctl connects to (`mysql://…` or `postgres://…`).
    pub url: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// The command-line client (`mysql` or `psql`).
    pub client: PathBuf,
}

impl Db {
    /// `host:port`, as a TCP proxy would dial it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// True when the tests run under CI, where a missing service fails instead of skipping.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (returning `None`) with one line on the real stderr, printed once per reason,
/// or panics under `CI=true`.
fn unavailable<T>(reason: &str) -> Option<T> {
    assert!(!under_ci(), "{reason} (CI=true: not skipping)");
    static SAID: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let said = SAID.get_or_init(Default::default);
    let mut said = said.lock().unwrap();
    if !said.iter().any(|s| s == reason) {
        // Straight to the process's stderr: the test harness captures eprintln!.
        let _ = writeln!(std::io::stderr(), "flowctl tests: skipping: {reason}");
        said.push(reason.to_string());
    }
    None
}

/// Parses `scheme://user[:password]@host:port/database`.
fn parse_url(url: &str, default_port: u16) -> Option<(String, Option<String>, String, u16, String)> {
    let (_, rest) = url.split_once("://")?;
    let (auth, rest) = rest.rsplit_once('@')?;
    let (user, password) = match auth.split_once(':') {
        Some((u, p)) => (u.to_string(), Some(p.to_string())),
        None => (auth.to_string(), None),
    };
    let (hostport, database) = rest.split_once('/')?;
    let database = database.split('?').next().unwrap_or_default().to_string();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()?),
        None => (hostport.to_string(), default_port),
    };
    Some((user, password, host, port, database))
}

fn reachable(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else { return false };
    addrs.into_iter().any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// Directories searched for server binaries after PATH: the usual Debian places, the
/// newest PostgreSQL first.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/libexec"].map(PathBuf::from));
    let mut pg: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    pg.sort_by_key(|p| {
        std::cmp::Reverse(p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0))
    });
    dirs.extend(pg);
    dirs
}

/// The first of `names` found as an executable file in `dirs`.
fn find(dirs: &[PathBuf], names: &[&str]) -> Option<PathBuf> {
    for dir in dirs {
        for name in names {
            let path = dir.join(name);
            if path.metadata().is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0) {
                return Some(path);
            }
        }
    }
    None
}

/// The uid and gid a server that refuses to run as root runs as: the `postgres` user,
/// else `nobody`; `None` when the tests do not run as root.
fn unprivileged_user(preferred: &str) -> Option<(u32, u32)> {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let entry = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    entry(preferred).or_else(|| entry("nobody"))
}

/// Runs a command to completion; `Err` carries its output when it fails.
fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Starts `server` in the background under a watchdog shell that stops it (SIGTERM,
/// then SIGKILL) and removes `dir` once this test process has ended.
fn launch_with_watchdog(dir: &Path, server: &Path, args: &[String], user: Option<(u32, u32)>) -> Result<(), String> {
    const WATCHDOG: &str = r#"parent=$1; dir=$2; shift 2
"$@" > "$dir/server.log" 2>&1 < /dev/null &
server=$!
while [ -d "/proc/$parent" ] && kill -0 "$server" 2>/dev/null; do sleep 1; done
kill -TERM "$server" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$server" 2>/dev/null || break; sleep 1; done
kill -KILL "$server" 2>/dev/null
wait "$server" 2>/dev/null
rm -rf "$dir""#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(WATCHDOG).arg("sh").arg(std::process::id().to_string()).arg(dir).arg(server).args(args);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd.spawn().map(drop).map_err(|e| format!("cannot start {}: {e}", server.display()))
}

/// Waits until `ready` succeeds, for at most 60 s; the error names the server's log.
fn wait_until(dir: &Path, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    Err(format!(
        "the throwaway {what} did not come up within 60 s; its log ends:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

/// A fresh temporary directory kept after the test process (the watchdog removes it),
/// owned by `user` when given.
fn server_dir(prefix: &str, user: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().map_err(|e| e.to_string())?.keep();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// The MariaDB/MySQL server for the tests, or `None` (after one line on stderr) when
/// there is none and none can be started.
pub fn mysql() -> Option<Db> {
    static DB: OnceLock<Result<Db, String>> = OnceLock::new();
    match DB.get_or_init(|| {
        let url = std::env::var("FLOWCTL_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let (user, password, host, port, database) =
            parse_url(&url, 3306).ok_or_else(|| format!("FLOWCTL_TEST_MYSQL_URL `{url}` is not mysql://user@host:port/db"))?;
        let dirs = search_dirs();
        let client = find(&dirs, &["mysql", "mariadb"]).ok_or(
            "the MySQL tests need the `mysql` client: install mariadb-client (Debian/Ubuntu: apt-get install mariadb-server mariadb-client)",
        )?;
        let db = Db { url, host, port, user, password, database, client };
        if reachable(&db.host, db.port) {
            return Ok(db);
        }
        throwaway_mysql(&dirs, db.client.clone(), &db.address()).map_err(|e| {
            format!("nothing listens on {} for the MySQL tests and no throwaway server could be started: {e}", db.address())
        })
    }) {
        Ok(db) => Some(db.clone()),
        Err(reason) => unavailable(reason),
    }
}

fn throwaway_mysql(dirs: &[PathBuf], client: PathBuf, usual: &str) -> Result<Db, String> {
    const INSTALL: &str = "install mariadb-server (Debian/Ubuntu: apt-get install mariadb-server mariadb-client)";
    let server = find(dirs, &["mariadbd", "mysqld"]).ok_or(format!("no mariadbd or mysqld found; {INSTALL}"))?;
    let install_db = find(dirs, &["mariadb-install-db", "mysql_install_db"])
        .ok_or(format!("no mariadb-install-db found; {INSTALL}"))?;
    let as_root = unprivileged_user("mysql").is_some();
    let dir = server_dir("flowctl-test-mariadb-", None)?;
    let data = dir.join("data");
    let mut init = Command::new(&install_db);
    init.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if as_root {
        init.arg("--user=root");
    }
    if let Err(e) = run(&mut init) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let port = free_port();
    let mut args = vec![
        "--no-defaults".to_string(),
        format!("--datadir={}", data.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--socket={}", dir.join("mysqld.sock").display()),
        format!("--pid-file={}", dir.join("mysqld.pid").display()),
        "--skip-log-bin".into(),
        "--innodb-buffer-pool-size=32M".into(),
        "--innodb-flush-log-at-trx-commit=0".into(),
    ];
    if as_root {
        args.push("--user=root".into());
    }
    launch_with_watchdog(&dir, &server, &args, None)?;
    let db = Db {
        url: format!("mysql://root@127.0.0.1:{port}/test"),
        host: "127.0.0.1".into(),
        port,
        user: "root".into(),
        password: None,
        database: "test".into(),
        client,
    };
    let admin = |sql: &str| {
        run(Command::new(&db.client).args(["-uroot", "-h127.0.0.1", &format!("-P{port}"), "-N", "-B", "-e", sql]))
    };
    wait_until(&dir, "MariaDB", || admin("SELECT 1").is_ok())?;
    admin("CREATE DATABASE IF NOT EXISTS test")?;
    let _ = writeln!(
        std::io::stderr(),
        "flowctl tests: nothing listens on {usual}; started a throwaway MariaDB ({}) on 127.0.0.1:{port} in {}",
        server.display(),
        dir.display()
    );
    Ok(db)
}

/// The PostgreSQL server for the tests, or `None` (after one line on stderr) when there
/// is none and none can be started.
pub fn postgres() -> Option<Db> {
    static DB: OnceLock<Result<Db, String>> = OnceLock::new();
    match DB.get_or_init(|| {
        let url =
            std::env::var("FLOWCTL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (user, password, host, port, database) = parse_url(&url, 5432)
            .ok_or_else(|| format!("FLOWCTL_TEST_POSTGRES_URL `{url}` is not postgres://user@host:port/db"))?;
        let dirs = search_dirs();
        let client = find(&dirs, &["psql"]).ok_or(
            "the PostgreSQL tests need the `psql` client: install postgresql-client (Debian/Ubuntu: apt-get install postgresql postgresql-client)",
        )?;
        let db = Db { url, host, port, user, password, database, client };
        if reachable(&db.host, db.port) {
            return Ok(db);
        }
        throwaway_postgres(&dirs, db.client.clone(), &db.address()).map_err(|e| {
            format!(
                "nothing listens on {} for the PostgreSQL tests and no throwaway server could be started: {e}",
                db.address()
            )
        })
    }) {
        Ok(db) => Some(db.clone()),
        Err(reason) => unavailable(reason),
    }
}

fn throwaway_postgres(dirs: &[PathBuf], client: PathBuf, usual: &str) -> Result<Db, String> {
    const INSTALL: &str = "install postgresql (Debian/Ubuntu: apt-get install postgresql postgresql-client)";
    // initdb and postgres live together (Debian keeps them off PATH).
    let initdb = find(dirs, &["initdb"]).ok_or(format!("no initdb found; {INSTALL}"))?;
    let bin = initdb.canonicalize().unwrap_or(initdb.clone());
    let server = bin
        .parent()
        .map(|d| d.join("postgres"))
        .filter(|p| p.is_file())
        .ok_or(format!("no postgres next to {}; {INSTALL}", bin.display()))?;
    // PostgreSQL refuses to run as root.
    let user = unprivileged_user("postgres");
    let dir = server_dir("flowctl-test-postgres-", user)?;
    let data = dir.join("data");
    let mut init = Command::new(&bin);
    init.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--no-locale"]);
    if let Some((uid, gid)) = user {
        init.uid(uid).gid(gid);
    }
    if let Err(e) = run(&mut init) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let port = free_port();
    let args = [
        "-D".to_string(),
        data.display().to_string(),
        "-p".into(),
        port.to_string(),
        "-k".into(),
        dir.display().to_string(),
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        "-c".into(),
        "fsync=off".into(),
        "-c".into(),
        "synchronous_commit=off".into(),
        "-c".into(),
        "full_page_writes=off".into(),
        "-c".into(),
        "max_connections=200".into(),
    ];
    launch_with_watchdog(&dir, &server, &args, user)?;
    let db = Db {
        url: format!("postgres://postgres@127.0.0.1:{port}/test"),
        host: "127.0.0.1".into(),
        port,
        user: "postgres".into(),
        password: None,
        database: "test".into(),
        client,
    };
    let admin = |sql: &str| {
        run(Command::new(&db.client)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
            .args(["-Atq", "-c", sql]))
    };
    wait_until(&dir, "PostgreSQL", || admin("SELECT 1").is_ok())?;
    admin("CREATE DATABASE test")?;
    let _ = writeln!(
        std::io::stderr(),
        "flowctl tests: nothing listens on {usual}; started a throwaway PostgreSQL ({}) on 127.0.0.1:{port} in {}",
        server.display(),
        dir.display()
    );
    Ok(db)
}

/// Whether the Kafka-compatible broker (tansu) is installed or can be installed without
/// a long build: `scripts/kafka-broker install`, once per test process. Without it the
/// broker tests are skipped (one line on stderr), except under `CI=true`, where the
/// script may build it and a failure fails the tests.
pub fn kafka_broker_installed() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let result = OK.get_or_init(|| {
        let mut cmd = Command::new(root().join("scripts/kafka-broker"));
        cmd.arg("install").stdout(Stdio::null()).stderr(Stdio::piped());
        if !under_ci() {
            cmd.env("FLOWCTL_KAFKA_NO_BUILD", "1");
        }
        let out = cmd.output().map_err(|e| format!("cannot run scripts/kafka-broker: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "the Kafka broker tests need tansu: run `scripts/kafka-broker install` (builds it once, 10-30 minutes) ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    match result {
        Ok(()) => true,
        Err(reason) => unavailable::<()>(reason).is_some(),
    }
}
