//! PgBouncer (Debian's package) in front of the TLS server's cluster,
//! started here with a config written here: in session mode every command
//! works and the migrator lock holds; in transaction mode strata refuses to
//! migrate, naming the pool mode, rather than trust a session lock.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::commands::{all_succeeded, Scenario};
use super::servers;
use crate::common;

const INSTALL: &str = "install it with `apt-get install -y pgbouncer` (.ci/run does)";

struct Bouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("pgbouncer not found: {INSTALL}"))
}

fn postgres_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam's result is read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

impl Bouncer {
    fn start(pool_mode: &str) -> Bouncer {
        let cluster = servers::tls().cluster;
        let dir = tempfile::Builder::new().prefix("strata-pgbouncer-").tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.path();
        std::fs::write(d.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            d.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={} port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\npool_mode = {pool_mode}\nmax_client_conn = 200\n\
                 default_pool_size = 20\nserver_reset_query = DISCARD ALL\nignore_startup_parameters = extra_float_digits\n\
                 logfile = {}\npidfile = {}\n",
                cluster.socket_dir().display(),
                cluster.port(),
                d.join("users.txt").display(),
                d.join("pgbouncer.log").display(),
                d.join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg(d.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = postgres_ids() {
            // PgBouncer refuses to run as root.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
            cmd.uid(uid).gid(gid);
        }
        // SAFETY: prctl is async-signal-safe: the pooler dies with the test.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start pgbouncer ({e}): {INSTALL}"));
        let mut b = Bouncer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || b.child.try_wait().unwrap().is_some() {
                let log = std::fs::read_to_string(b.dir.path().join("pgbouncer.log")).unwrap_or_default();
                panic!("pgbouncer did not start:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn conn(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={db} sslmode=disable", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_sql(q: &str) {
    common::sql(&servers::tls().admin("postgres"), q);
}

#[test]
fn session_mode_runs_every_command_and_the_lock_holds() {
    let bouncer = Bouncer::start("session");
    let conn = |db: &str| bouncer.conn(db);
    let scenario = Scenario {
        name: "bouncer_session",
        conn: &conn,
        admin_sql: &admin_sql,
        role: "postgres",
        env: Vec::new(),
    };
    let (ws, runs) = scenario.run_every_command();
    all_succeeded(&runs);
    all_succeeded(&scenario.reshape(&ws, "reshape", None));
    // Another migrator holds the lock (directly): strata, through the
    // pooler, sees it and waits, then names the holder.
    ws.write("schema/core/0006_notes_index.sql", "CREATE INDEX notes_body ON notes (body);\n");
    let direct = servers::tls().admin("bouncer_session_a");
    common::rt().block_on(async {
        let holder = common::connect(&direct).await;
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&strata::pg::lock::lock_key()])
            .await
            .unwrap();
        let env = [("TENANT_A", bouncer.conn("bouncer_session_a"))];
        let blocked = scenario.strata(&ws, &["migrate", "--all", "--lock-wait", "1", "--format", "json"], &env);
        assert_eq!(blocked.1.code, 1, "{}", blocked.1.all());
        assert!(
            blocked.1.stdout.contains("another migrator holds the strata lock"),
            "{}",
            blocked.1.all()
        );
        drop(holder);
    });
    assert!(!common::has_table(&direct, "notes_body"));
}

#[test]
fn transaction_mode_is_refused_naming_the_pool_mode() {
    let bouncer = Bouncer::start("transaction");
    let db = "bouncer_tx";
    admin_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    admin_sql(&format!("CREATE DATABASE {db}"));
    let ws = common::Workspace::new(&[common::tenant("tx", None, "env:TX_DB".into())]);
    let run = common::Run::from(
        ws.command(&["migrate", "--all", "--format", "json"])
            .env("TX_DB", bouncer.conn(db))
            .output()
            .unwrap(),
    );
    run.expect(1);
    let error = run.json()["tenants"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("pool_mode = transaction") && error.contains("pool_mode = session"),
        "{error}"
    );
    // Nothing was applied, not even the history table.
    let direct = servers::tls().admin(db);
    assert!(!common::has_table(&direct, "strata.schema_history"));
}
