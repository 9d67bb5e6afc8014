//! Shared helpers of the integration tests.
//!
//! Running the binary (`strata_command`, `strata_in`, `Run`) and copying
//! fixture folders (`copy_dir`) serve every test binary. The rest is the
//! harness of the database tests (`tests/db`, one binary; see its
//! `main.rs` for how to add a file to it).
//!
//! One PostgreSQL server per test binary: `STRATA_TEST_PG` (a connection
//! string to an existing server's maintenance database, as a superuser), or
//! else a throwaway cluster started with the same code as `--scratch auto`
//! (`strata::pg::cluster::TempCluster`). The cluster lives in a static and is
//! stopped by an atexit handler; its postmaster also has a parent-death
//! signal, so not even a killed test binary leaves a server behind.
//! Missing PostgreSQL binaries make the tests fail, never skip.
//!
//! Each test gets its own databases (`test_<name>`) and its own copy of the
//! bundled workspace in a temporary folder, so the repository's tenants.toml
//! is never touched.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

use strata::pg::cluster::{ClusterOptions, TempCluster};

pub struct Server {
    /// A connection string to the maintenance database.
    admin: String,
}

/// The server of this test binary (started on first use).
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("STRATA_TEST_PG") {
            return Server { admin: url };
        }
        let cluster = TempCluster::start_with(&cluster_options())
            .unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL for the tests: {e}\n(or set STRATA_TEST_PG to a server's URL)"))
            .leak_until_exit();
        Server {
            admin: cluster.conn_string("postgres"),
        }
    })
}

/// `STRATA_TEST_PG_BIN`: the folder of the server binaries the tests run on
/// (`scripts/pg-binaries --bin 13`), else the system's (`find_bindir`). The
/// strata processes the tests start get it as `STRATA_PG_BINDIR`, so their
/// own throwaway clusters (`--scratch auto`, `--shadow auto`) are of the
/// same major.
pub fn test_bindir() -> Option<PathBuf> {
    std::env::var_os("STRATA_TEST_PG_BIN").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The options every cluster a test starts begins from: the binaries of
/// `STRATA_TEST_PG_BIN` (so the TLS, password and pooler servers run on the
/// major under test too) and the data under memory where there is some.
pub fn cluster_options() -> ClusterOptions {
    ClusterOptions {
        bindir: test_bindir(),
        parent: cluster_parent(),
        ..Default::default()
    }
}

/// The folder of the test cluster's data: memory (`/dev/shm`) where there is
/// one. The one cluster of the database tests ends with over a gigabyte of
/// databases; on a disk mounted with `discard`, deleting them took minutes.
fn cluster_parent() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    let writable = tempfile::Builder::new().prefix("strata-probe-").tempdir_in(shm).is_ok();
    writable.then(|| shm.to_path_buf())
}

impl Server {
    /// A connection string to database `db` of this server.
    pub fn conn(&self, db: &str) -> String {
        if self.admin.contains("://") {
            // URL: replace the path.
            let (base, query) = match self.admin.split_once('?') {
                Some((b, q)) => (b, format!("?{q}")),
                None => (self.admin.as_str(), String::new()),
            };
            let scheme_end = base.find("://").unwrap() + 3;
            let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
            format!("{}/{db}{query}", &base[..host_end])
        } else {
            // key=value: a later dbname wins.
            format!("{} dbname={db}", self.admin)
        }
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }
}

/// The PostgreSQL major of the test server (`server_version_num / 10000`).
pub fn server_major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let num: u32 = value(server().admin(), "SHOW server_version_num")
            .parse()
            .expect("server_version_num is a number");
        num / 10000
    })
}

/// The test server's version as strata shows it ("15.18").
pub fn server_version() -> String {
    value(server().admin(), "SHOW server_version")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The second major of the tests of a fleet or a move across majors:
/// 13, or 18 when the suite itself runs on 13.
pub fn other_major() -> u32 {
    if server_major() == 13 {
        18
    } else {
        13
    }
}

/// A throwaway cluster of PostgreSQL `major`, for the tests across majors
/// (`#[ignore]`d: `.ci/run` runs them with `--ignored` after
/// `scripts/pg-binaries 13 18`). Its binaries are found where strata looks
/// for a major (`find_bindir_for`: the cache of `scripts/pg-binaries` among
/// others); when they are missing the test fails, saying how to install them.
pub fn cluster_of_major(major: u32) -> TempCluster {
    let bindir = strata::pg::cluster::find_bindir_for(major).unwrap_or_else(|e| {
        panic!("this test needs PostgreSQL {major}: run `scripts/pg-binaries {major}` (it fetches it into the cache strata looks in)\n{e}")
    });
    TempCluster::start_with(&ClusterOptions {
        bindir: Some(bindir),
        parent: cluster_parent(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("a PostgreSQL {major} cluster: {e}"))
}

/// A fresh database `name` on a cluster of the test's own (dropped first if it exists).
pub fn database_in(cluster: &TempCluster, name: &str) -> String {
    let admin = cluster.conn_string("postgres");
    sql(&admin, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    sql(&admin, &format!("CREATE DATABASE \"{name}\""));
    cluster.conn_string(name)
}

/// Runs SQL on a connection string: every row of the last statement as text.
pub fn sql(conn: &str, query: &str) -> Vec<Vec<Option<String>>> {
    rt().block_on(async {
        let client = connect(conn).await;
        let msgs = client.simple_query(query).await.unwrap_or_else(|e| panic!("{query}: {e:?}"));
        let mut rows = Vec::new();
        for m in msgs {
            match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                }
                tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {}
                _ => {}
            }
        }
        rows
    })
}

/// The single value of a query.
pub fn value(conn: &str, query: &str) -> String {
    sql(conn, query)
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub async fn connect(conn: &str) -> tokio_postgres::Client {
    let target = strata::pg::Target::parse(conn).unwrap();
    strata::pg::connect(&target).await.unwrap_or_else(|e| panic!("{e}"))
}

/// One statement of a [`Writer`]'s round: `$1` is `param(i)` for round
/// `i` (1, 2, ...); `None` skips the statement in that round.
pub struct Write {
    pub sql: &'static str,
    pub param: fn(i64) -> Option<i64>,
}

/// A writer on its own thread, as an application keeps writing during a
/// cutover: on each of its databases, every round runs its statements, then
/// pauses, until [`Writer::stop`]. A failed statement fails the test.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rounds: std::sync::Arc<std::sync::atomic::AtomicU64>,
    handle: std::thread::JoinHandle<()>,
}

impl Writer {
    pub fn start(dbs: &[String], writes: Vec<Write>, pause: std::time::Duration) -> Writer {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let rounds = std::sync::Arc::new(AtomicU64::new(0));
        let (s, r, dbs) = (stop.clone(), rounds.clone(), dbs.to_vec());
        let handle = std::thread::spawn(move || {
            rt().block_on(async {
                let mut clients = Vec::new();
                for db in &dbs {
                    clients.push(connect(db).await);
                }
                let mut i = 0i64;
                while !s.load(Ordering::Relaxed) {
                    i += 1;
                    for c in &clients {
                        for w in &writes {
                            if let Some(p) = (w.param)(i) {
                                c.execute(w.sql, &[&p]).await.unwrap_or_else(|e| panic!("writer: {e}\n{}", w.sql));
                            }
                        }
                    }
                    r.fetch_add(1, Ordering::Relaxed);
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            })
        });
        Writer { stop, rounds, handle }
    }

    /// Stops the writer; returns the rounds it wrote (it failed the test if a statement failed).
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("the writer failed");
        self.rounds.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A fresh, empty database `test_<name>` (dropped first if a previous run left it).
///
/// The test files share one server: a name asked for by two files would let
/// their tests drop each other's database, so that panics.
#[track_caller]
pub fn database(name: &str) -> String {
    static OWNERS: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let caller = std::panic::Location::caller().file();
    {
        let mut owners = OWNERS.lock().unwrap_or_else(|p| p.into_inner());
        let owner = *owners.get_or_insert_with(HashMap::new).entry(name.to_string()).or_insert(caller);
        assert_eq!(owner, caller, "database test_{name} is used by two test files: rename one");
    }
    let srv = server();
    let db = format!("test_{name}");
    sql(srv.admin(), &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
    sql(srv.admin(), &format!("CREATE DATABASE \"{db}\""));
    srv.conn(&db)
}

/// Held for the whole length of a test that uses logical replication
/// (subscriptions, slots, publications): those tests run one at a time.
/// A subscription holds one of the cluster's few logical replication
/// workers, and `drop_replication` removes every idle table-sync slot.
pub fn replication_serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A tenant of a test workspace.
pub struct TestTenant<'a> {
    pub slug: &'a str,
    pub vertical: Option<&'a str>,
    pub bespoke: Option<&'a str>,
    pub conn: String,
}

pub fn tenant<'a>(slug: &'a str, vertical: Option<&'a str>, conn: String) -> TestTenant<'a> {
    TestTenant {
        slug,
        vertical,
        bespoke: None,
        conn,
    }
}

/// A copy of the bundled workspace (strata.toml, schema, rules) in a temp dir.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

/// Copies a folder tree (fixtures and examples are never edited in place).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap_or_else(|err| panic!("copy {}: {err}", e.path().display()));
        }
    }
}

/// The strata binary, without colors and with stdin closed.
pub fn strata_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env("NO_COLOR", "1").stdin(Stdio::null());
    if let Some(dir) = test_bindir() {
        c.env("STRATA_PG_BINDIR", dir);
    }
    c
}

/// One field of every diagnostic of a `--format json` report, in order.
pub fn diagnostic_fields(json: &str, field: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[field].as_str().unwrap().to_string())
        .collect()
}

/// Runs `strata ARGS` in `cwd` to completion.
pub fn strata_in(cwd: &Path, args: &[&str]) -> Run {
    Run::from(strata_command().args(args).current_dir(cwd).output().expect("run strata"))
}

impl Workspace {
    pub fn new(tenants: &[TestTenant]) -> Workspace {
        let dir = tempfile::Builder::new().prefix("strata-ws-").tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(repo.join("strata.toml"), dir.path().join("strata.toml")).unwrap();
        copy_dir(&repo.join("schema"), &dir.path().join("schema"));
        copy_dir(&repo.join("rules"), &dir.path().join("rules"));
        let ws = Workspace { dir };
        let mut text = String::from("# test fleet\n");
        for t in tenants {
            text.push_str(&format!("\n[[tenant]]\nslug = \"{}\"\ndatabase = \"{}\"\n", t.slug, t.conn));
            if let Some(v) = t.vertical {
                text.push_str(&format!("vertical = \"{v}\"\n"));
            }
            if let Some(b) = t.bespoke {
                text.push_str(&format!("bespoke = \"{b}\"\n"));
            }
        }
        ws.write("tenants.toml", &text);
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap()
    }

    /// Replaces the [runner] settings of strata.toml.
    pub fn runner(&self, lock_timeout: &str, lock_retries: u32) {
        let text = self.read("strata.toml");
        let start = text.find("[runner]").expect("strata.toml has [runner]");
        let end = text[start + 1..].find("\n[").map_or(text.len(), |i| start + 1 + i);
        let new = format!(
            "{}[runner]\nlock_timeout = \"{lock_timeout}\"\nstatement_timeout = \"1min\"\nlock_retries = {lock_retries}\n{}",
            &text[..start],
            &text[end..]
        );
        self.write("strata.toml", &new);
    }

    /// Sets a top-level key of strata.toml (before the first table).
    pub fn top_level(&self, line: &str) {
        let text = self.read("strata.toml");
        self.write("strata.toml", &format!("{line}\n{text}"));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = strata_command();
        c.arg("--workspace").arg(self.path()).args(args);
        c
    }

    /// Runs strata to completion.
    pub fn strata(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().unwrap();
        Run::from(out)
    }
}

/// A finished strata process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.all()))
    }

    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code {} (expected {code}):\n{}", self.code, self.all());
        self
    }
}

/// `layer/version` of every applied history row, in order.
pub fn history(conn: &str) -> Vec<String> {
    sql(
        conn,
        "SELECT layer || '/' || version || ':' || status FROM strata.schema_history ORDER BY layer, version",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap_or_default())
    .collect()
}

/// Whether a relation exists.
pub fn has_table(conn: &str, name: &str) -> bool {
    value(conn, &format!("SELECT to_regclass('{name}') IS NOT NULL")) == "t"
}

/// Number of migrations of the bundled layers.
pub fn migrations_of(layers: &[&str]) -> usize {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    layers
        .iter()
        .map(|l| {
            std::fs::read_dir(repo.join(l))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
                .count()
        })
        .sum()
}

/// Creates the `orbis_app` role (cluster-wide, so tolerant of a parallel
/// test creating it too) and applies the bundled schema/core files in order.
pub fn orbis_core(conn: &str) {
    sql(
        conn,
        "DO $$ BEGIN CREATE ROLE orbis_app NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    );
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/core");
    let mut files: Vec<PathBuf> = std::fs::read_dir(core)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    for f in files {
        sql(conn, &std::fs::read_to_string(&f).unwrap());
    }
}

/// Drops the subscription `name` on the target, the slot `name` (and any
/// table-sync slot) and the publication `name` on the source: the cleanup of
/// a move test, also when it failed, since a leaked slot holds WAL. Never
/// panics (it runs from destructors, maybe while a test unwinds).
pub fn drop_replication(source: &str, target: &str, name: &str) -> Result<(), String> {
    let fallible = |conn: &str| {
        let conn = conn.to_string();
        async move {
            let t = strata::pg::Target::parse(&conn).map_err(|e| e.to_string())?;
            strata::pg::connect(&t).await.map_err(|e| e.to_string())
        }
    };
    rt().block_on(async {
        let e = |e: tokio_postgres::Error| e.to_string();
        if let Ok(dst) = fallible(target).await {
            if dst
                .query_opt("SELECT 1 FROM pg_subscription WHERE subname = $1", &[&name])
                .await
                .map_err(e)?
                .is_some()
            {
                dst.batch_execute(&format!(
                    "ALTER SUBSCRIPTION \"{name}\" DISABLE; ALTER SUBSCRIPTION \"{name}\" SET (slot_name = NONE); DROP SUBSCRIPTION \"{name}\""
                ))
                .await
                .map_err(e)?;
            }
        }
        let src = fallible(source).await?;
        for _ in 0..100 {
            // A slot still held by a walsender that is shutting down is dropped on a later round.
            src.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE (slot_name = $1 OR slot_name LIKE 'pg\\_%\\_sync\\_%') AND NOT active",
                &[&name],
            )
            .await
            .map_err(e)?;
            let left: i64 = src
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 OR slot_name LIKE 'pg\\_%\\_sync\\_%'",
                    &[&name],
                )
                .await
                .map_err(e)?
                .get(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        src.batch_execute(&format!("DROP PUBLICATION IF EXISTS \"{name}\"")).await.map_err(e)
    })
}

/// The replication name (publication, slot, subscription) of the latest run
/// of a move in control plane `cp`: `strata_<cutover>_<run token>`.
pub fn replication_name(cp: &str, cutover: &str) -> String {
    let base = format!("strata_{}", cutover.replace('-', "_"));
    // The tables exist once a command opened the control plane.
    if value(cp, "SELECT to_regclass('strata.cutover_runs') IS NULL") == "t" {
        return base;
    }
    let token = value(
        cp,
        &format!("SELECT coalesce((SELECT token FROM strata.cutover_runs WHERE cutover = '{cutover}' ORDER BY id DESC LIMIT 1), '')"),
    );
    if token.is_empty() {
        base
    } else {
        format!("{base}_{token}")
    }
}

/// The steps a `strata cutover status --format json` output records as done
/// (of its first run: a move, or the first tenant).
pub fn steps_done(status: &serde_json::Value) -> Vec<String> {
    status[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "done")
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

/// A psql client: the test server's own, else the system's (the binaries of
/// `scripts/pg-binaries` have none; any psql talks to every major).
pub fn psql() -> PathBuf {
    let has = |d: &Path| d.join("psql").is_file();
    test_bindir()
        .filter(|d| has(d))
        .or_else(|| strata::pg::cluster::find_bindir().ok().filter(|d| has(d)))
        .map(|d| d.join("psql"))
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// Fills a database holding examples/cutovers/nova-leon/schema.sql with the
/// example's generator (`psql -v users=N -v messages=M -f generate.sql`).
pub fn generate_nova_leon(conn: &str, users: u32, messages: u32) {
    let psql = psql();
    let out = Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v"])
        .arg(format!("users={users}"))
        .arg("-v")
        .arg(format!("messages={messages}"))
        .arg("-d")
        .arg(conn)
        .arg("-f")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cutovers/nova-leon/generate.sql"))
        .output()
        .unwrap();
    assert!(out.status.success(), "generate.sql: {}", String::from_utf8_lossy(&out.stderr));
}

/// The row of `tenant` in the `tenants` array of a fleet command's JSON.
pub fn tenant_row<'a>(json: &'a serde_json::Value, tenant: &str) -> &'a serde_json::Value {
    json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no tenant {tenant} in {json}"))
}
