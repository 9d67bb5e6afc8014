//! A server that stops answering mid-migration (a proxy that stops
//! forwarding) ends in a clear failure within the configured timeouts, and
//! the database stays at its previous version. And a connection the server
//! ends says why it was lost.

use std::time::{Duration, Instant};

use super::proxy::Proxy;
use super::servers::{self, ADMIN_PASSWORD};
use crate::common::{self, history, tenant, Workspace};

#[test]
fn a_stalled_server_fails_the_migration_and_keeps_the_previous_version() {
    let srv = servers::tls();
    common::sql(&srv.admin("postgres"), "DROP DATABASE IF EXISTS stall_test WITH (FORCE)");
    common::sql(&srv.admin("postgres"), "CREATE DATABASE stall_test");
    let proxy = Proxy::start(srv.port());
    let through_proxy = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=stall_test sslmode=verify-full sslrootcert={}",
        proxy.port,
        srv.pki.path("root.crt").display()
    );
    let ws = Workspace::new(&[tenant("stalls", None, "env:STALL_DB".into())]);
    ws.runner("1s", 0);
    let toml = ws
        .read("strata.toml")
        .replace("statement_timeout = \"1min\"", "statement_timeout = \"2s\"");
    ws.write("strata.toml", &toml);
    ws.write(
        "schema/core/0006_stall.sql",
        "CREATE TABLE stall_before (id bigint PRIMARY KEY);\nSELECT pg_sleep(1);\nCREATE TABLE stall_after (id bigint PRIMARY KEY);\n",
    );
    let mut child = ws
        .command(&["migrate", "--all", "--format", "json"])
        .env("STALL_DB", &through_proxy)
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stall once the migration is inside its sleep.
    let admin = srv.admin("stall_test");
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::value(
        &admin,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1)%' AND state = 'active'",
    ) == "0"
    {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let run = common::Run::from(child.wait_with_output().unwrap());
            panic!("the migration never reached its sleep:\n{}", run.all());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.stall();
    let stalled_at = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        if stalled_at.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("strata hung on a stalled server");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let waited = stalled_at.elapsed();
    let run = common::Run::from(out);
    run.expect(1);
    let json = run.json();
    let t = &json["tenants"][0];
    assert_eq!(t["status"], "failed", "{json}");
    let error = t["error"].as_str().unwrap();
    assert!(error.contains("0006_stall.sql") && error.contains("sent nothing for 4s"), "{error}");
    assert!(error.contains("previous version"), "{error}");
    // statement_timeout 2s plus its margin: well under the 60 s of a hang.
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    // The stalled transaction was never committed.
    assert!(!common::has_table(&admin, "stall_before"));
    let applied = history(&admin);
    assert_eq!(applied.len(), 5, "{applied:?}");
    assert!(applied
        .iter()
        .all(|h| h.starts_with("core/000") && h.ends_with(":applied") && !h.contains("0006")));
    drop(proxy);
}

#[test]
fn a_connection_the_server_ends_says_why() {
    let srv = servers::tls();
    let conn = srv.conn("postgres", "postgres", &format!("password={ADMIN_PASSWORD}"));
    common::rt().block_on(async {
        let target = strata::pg::Target::parse(&conn).unwrap();
        let client = strata::pg::connect(&target).await.unwrap();
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        let killer = common::connect(&srv.admin("postgres")).await;
        killer.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
        // The session ends while idle; the next call learns why.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let err = client
            .query_one("SELECT 1", &[])
            .await
            .map_err(strata::pg::conn::sql_error(&target, "probing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("terminating connection due to administrator command"), "{err}");
    });
}
