//! `strata migrate` against a real PostgreSQL server (see tests/common).

use crate::common;

use std::time::{Duration, Instant};

use common::*;

fn vector_available() -> bool {
    value(
        server().admin(),
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'",
    ) != "0"
}

#[test]
fn every_vertical_migrates_to_head_and_reruns_apply_nothing() {
    let tenants = vec![
        TestTenant {
            slug: "dreamlink",
            vertical: Some("agency"),
            bespoke: Some("dreamlink"),
            conn: database("fleet_dreamlink"),
        },
        tenant("alpenrose", Some("crm"), database("fleet_alpenrose")),
        tenant("kiosk", Some("messaging"), database("fleet_kiosk")),
        tenant("nova", Some("travel"), database("fleet_nova")),
        tenant("atelier", Some("ai"), database("fleet_atelier")),
        tenant("solo", None, database("fleet_solo")),
    ];
    let ws = Workspace::new(&tenants);
    let first = ws.strata(&["migrate", "--all", "--concurrency", "3", "--format", "json"]);
    let json = first.json();
    let expected = [
        ("dreamlink", migrations_of(&["core", "verticals/agency", "bespoke/dreamlink"])),
        ("alpenrose", migrations_of(&["core", "verticals/crm"])),
        ("kiosk", migrations_of(&["core", "verticals/messaging"])),
        ("nova", migrations_of(&["core", "verticals/travel"])),
        ("solo", migrations_of(&["core"])),
    ];
    // dreamlink's views are security_invoker (PostgreSQL 15 and later):
    // an older server rejects the file and the tenant stays before it.
    let invoker_views = server_major() >= 15;
    for (slug, n) in expected {
        let t = tenant_row(&json, slug);
        if slug == "dreamlink" && !invoker_views {
            assert_eq!(t["status"], "failed", "{slug}: {t}");
            let error = t["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("0001_dashboard_views.sql") && error.contains("security_invoker"),
                "{t}"
            );
            assert_eq!(t["applied"].as_array().unwrap().len(), n - 1, "{slug}: {t}");
            continue;
        }
        assert_eq!(t["status"], "ok", "{slug}: {t}");
        assert_eq!(t["applied"].as_array().unwrap().len(), n, "{slug}: {t}");
    }
    let atelier = tenant_row(&json, "atelier");
    if vector_available() && invoker_views {
        first.expect(0);
        assert_eq!(atelier["status"], "ok", "{atelier}");
    } else if vector_available() {
        first.expect(1);
        assert_eq!(atelier["status"], "ok", "{atelier}");
    } else {
        // pgvector is not installed here: the preflight must say so before
        // anything is applied.
        first.expect(1);
        assert_eq!(atelier["status"], "preflight-failed", "{atelier}");
        assert_eq!(
            atelier["error"].as_str().unwrap(),
            "extension vector is not available on this server: install pgvector"
        );
        assert!(!has_table(&tenants[4].conn, "strata.schema_history"));
        assert!(!has_table(&tenants[4].conn, "contacts"), "nothing may be applied to atelier");
    }
    // The app role was created NOLOGIN for the policies.
    assert_eq!(
        value(server().admin(), "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'orbis_app'"),
        "f"
    );

    // A re-run applies nothing (to the tenants at head).
    let at_head: Vec<&str> = ["dreamlink", "alpenrose", "kiosk", "nova", "solo"]
        .into_iter()
        .filter(|slug| invoker_views || *slug != "dreamlink")
        .collect();
    let others: Vec<&str> = at_head.iter().flat_map(|slug| ["--tenant", *slug]).collect();
    let mut args = vec!["migrate"];
    args.extend(&others);
    let second = ws.strata(&args);
    second.expect(0);
    assert!(second.stdout.contains("up-to-date"), "{}", second.stdout);
    let summary = format!("{0} tenants: {0} up-to-date", at_head.len());
    assert!(second.stdout.contains(&summary), "{}", second.stdout);

    // Status: every migrated tenant at head.
    let mut args = vec!["status", "--format", "json"];
    args.extend(&others);
    let status = ws.strata(&args);
    status.expect(0);
    let json = status.json();
    assert_eq!(json["at_head"], true, "{json}");
    for t in json["tenants"].as_array().unwrap() {
        assert_eq!(t["pending"], 0, "{t}");
        assert!(t["layers"].as_array().unwrap().iter().all(|l| l["applied"] == l["head"]), "{t}");
    }
    let text = ws.strata(&["status"]);
    assert!(text.stdout.contains("verticals/agency 0002"), "{}", text.stdout);
    // The ai tenant is behind (or at head where pgvector exists).
    if !vector_available() || !invoker_views {
        text.expect(1);
    }
}

#[test]
fn a_missing_extension_fails_the_preflight_before_anything_runs() {
    let conn = database("missing_ext");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    ws.write(
        "schema/core/0006_needs_extension.sql",
        "CREATE EXTENSION IF NOT EXISTS strata_no_such_extension;\n",
    );
    let run = ws.strata(&["migrate", "--tenant", "solo"]);
    run.expect(1);
    assert!(
        run.stdout
            .contains("extension strata_no_such_extension is not available on this server: install the package providing"),
        "{}",
        run.all()
    );
    assert!(!has_table(&conn, "contacts"));
}

#[test]
fn dry_run_changes_nothing() {
    let conn = database("dry_run");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    let run = ws.strata(&["migrate", "--tenant", "solo", "--dry-run"]);
    run.expect(0);
    assert!(
        run.stdout.contains("would apply:") && run.stdout.contains("schema/core/0001_schemas_and_types.sql"),
        "{}",
        run.stdout
    );
    assert!(!has_table(&conn, "strata.schema_history"));
}

/// Adds a slow core migration whose first and last statements are tables,
/// so a half-applied migration would show as one without the other.
fn add_slow_migration(ws: &Workspace, seconds: f32) {
    ws.write(
        "schema/core/0006_slow.sql",
        &format!("CREATE TABLE slow_a (id int);\nSELECT pg_sleep({seconds});\nCREATE TABLE slow_b (id int);\n"),
    );
}

#[test]
fn sigkill_in_the_middle_of_a_fleet_run_then_rerun_converges() {
    let names = ["k1", "k2", "k3", "k4", "k5", "k6"];
    let tenants: Vec<TestTenant> = names.iter().map(|n| tenant(n, None, database(&format!("kill_{n}")))).collect();
    let ws = Workspace::new(&tenants);
    add_slow_migration(&ws, 1.5);
    let mut child = ws
        .command(&["migrate", "--all", "--concurrency", "2"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some tenant is inside the slow migration, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = tenants.iter().any(|t| {
            has_table(&t.conn, "strata.schema_history")
                && value(
                    &t.conn,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep%' \
                     AND state = 'active' AND pid <> pg_backend_pid()",
                ) != "0"
        });
        if busy {
            break;
        }
        assert!(Instant::now() < deadline, "the fleet run never reached the slow migration");
        assert!(child.try_wait().unwrap().is_none(), "strata finished before it could be killed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Atomicity: a tenant has slow_a exactly when 0006 is recorded, and never slow_a without slow_b.
    for t in &tenants {
        let h = if has_table(&t.conn, "strata.schema_history") {
            history(&t.conn)
        } else {
            Vec::new()
        };
        // A killed session's open transaction is invisible (and rolls back):
        // the tables exist exactly when the history row does.
        let recorded = h.iter().any(|r| r.starts_with("core/0006"));
        assert_eq!(recorded, has_table(&t.conn, "slow_a"), "{}: {h:?}", t.slug);
        assert_eq!(recorded, has_table(&t.conn, "slow_b"), "{}: {h:?}", t.slug);
    }
    let rerun = ws.strata(&["migrate", "--all", "--concurrency", "3", "--lock-wait", "30"]);
    rerun.expect(0);
    for t in &tenants {
        let h = history(&t.conn);
        assert_eq!(h.len(), 6, "{}: {h:?}", t.slug);
        let distinct: std::collections::BTreeSet<&String> = h.iter().collect();
        assert_eq!(distinct.len(), 6, "a migration recorded twice: {h:?}");
        assert!(h.iter().all(|r| r.ends_with(":applied")), "{h:?}");
        assert!(has_table(&t.conn, "slow_a") && has_table(&t.conn, "slow_b"));
    }
}

#[test]
fn two_migrators_on_one_database_apply_each_migration_once() {
    let conn = database("two_migrators");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    add_slow_migration(&ws, 1.0);
    let spawn = || {
        ws.command(&["migrate", "--tenant", "solo", "--format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b): (Run, Run) = (a.wait_with_output().unwrap().into(), b.wait_with_output().unwrap().into());
    a.expect(0);
    b.expect(0);
    let applied = |r: &Run| r.json()["tenants"][0]["applied"].as_array().unwrap().len();
    assert_eq!(applied(&a) + applied(&b), 6, "{}\n{}", a.stdout, b.stdout);
    assert_eq!(history(&conn).len(), 6);
    assert_eq!(value(&conn, "SELECT count(*) FROM strata.schema_history"), "6");
}

#[test]
fn a_held_migrator_lock_names_its_holder() {
    let conn = database("lock_holder");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    let holder = format!("{conn} application_name=deploy-bot");
    rt().block_on(async {
        let client = connect(&holder).await;
        client
            .query_one("SELECT pg_advisory_lock($1)", &[&strata::pg::lock::lock_key()])
            .await
            .unwrap();
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        let run = ws.strata(&["migrate", "--tenant", "solo", "--lock-wait", "1"]);
        run.expect(1);
        assert!(run.stdout.contains("another migrator holds the strata lock"), "{}", run.all());
        assert!(run.stdout.contains(&format!("pid {pid}")), "{}", run.all());
        assert!(run.stdout.contains("application_name 'deploy-bot'"), "{}", run.all());
    });
    assert!(!has_table(&conn, "contacts"));
}

#[test]
fn an_edited_applied_migration_is_refused() {
    let conn = database("edited");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    ws.strata(&["migrate", "--tenant", "solo"]).expect(0);
    let rel = "schema/core/0002_contacts.sql";
    let original = ws.read(rel);
    let before = strata::workspace::sum::sha256_hex(original.as_bytes());
    ws.write(rel, &format!("{original}\n-- an innocent edit\n"));
    let after = strata::workspace::sum::sha256_hex(ws.read(rel).as_bytes());
    let run = ws.strata(&["migrate", "--tenant", "solo"]);
    run.expect(1);
    let all = run.all();
    assert!(all.contains(rel), "{all}");
    assert!(all.contains(&before) && all.contains(&after), "both checksums expected:\n{all}");
    // After review, the operator may proceed.
    let allowed = ws.strata(&["migrate", "--tenant", "solo", "--allow-changed"]);
    allowed.expect(0);
    assert!(allowed.stdout.contains("warning: solo: allowed"), "{}", allowed.stdout);
    // A vanished applied file is refused too.
    ws.write(rel, &original);
    std::fs::remove_file(ws.file("schema/core/0005_state.sql")).unwrap();
    let run = ws.strata(&["migrate", "--tenant", "solo"]);
    run.expect(1);
    assert!(run.stdout.contains("core/0005 (state) is recorded as applied"), "{}", run.all());
}

#[test]
fn a_lock_timeout_is_retried_then_fails_and_the_database_stays_put() {
    let conn = database("lock_timeout");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    ws.runner("200ms", 2);
    ws.strata(&["migrate", "--tenant", "solo"]).expect(0);
    ws.write(
        "schema/core/0006_nickname.sql",
        "CREATE TABLE lt_marker (id int);\nALTER TABLE contacts ADD COLUMN nickname text;\n",
    );
    rt().block_on(async {
        let blocker = connect(&conn).await;
        blocker
            .batch_execute("BEGIN; LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let started = Instant::now();
        let run = ws.strata(&["migrate", "--tenant", "solo"]);
        run.expect(1);
        let all = run.all();
        assert!(
            all.contains("lock timeout, retry 1") && all.contains("lock timeout, retry 2"),
            "{all}"
        );
        assert!(
            all.contains("schema/core/0006_nickname.sql:2: still blocked by another session's lock after 3 attempts"),
            "{all}"
        );
        assert!(started.elapsed() >= Duration::from_millis(600), "three attempts of 200 ms at least");
        blocker.batch_execute("ROLLBACK").await.unwrap();
    });
    // Still at the previous version, nothing half-applied.
    assert!(!history(&conn).iter().any(|h| h.starts_with("core/0006")));
    assert!(!has_table(&conn, "lt_marker"));
    assert_eq!(
        value(
            &conn,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'contacts'::regclass AND attname = 'nickname'"
        ),
        "0"
    );
    let status = ws.strata(&["status", "--format", "json"]);
    let last = status.json()["tenants"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(last.contains("core/0006") && last.contains("still blocked"), "{last}");
    // Unblocked, it applies.
    ws.strata(&["migrate", "--tenant", "solo"]).expect(0);
    assert!(has_table(&conn, "lt_marker"));
}

#[test]
fn a_failed_no_transaction_migration_is_not_run_again_blindly() {
    let conn = database("no_tx");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    ws.write(
        "schema/core/0006_concurrent.sql",
        "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY contacts_created_nt_idx ON contacts (created_at);\nSELECT 1 / 0;\n",
    );
    let run = ws.strata(&["migrate", "--tenant", "solo"]);
    run.expect(1);
    assert!(run.stdout.contains("0006_concurrent.sql:3: division by zero"), "{}", run.all());
    // The index was built (no transaction to roll back) and the row says failed.
    assert!(has_table(&conn, "contacts_created_nt_idx"));
    assert!(history(&conn).contains(&"core/0006:failed".to_string()));
    let again = ws.strata(&["migrate", "--tenant", "solo"]);
    again.expect(1);
    assert!(again.stdout.contains("may be half-applied"), "{}", again.all());
    // A no-transaction file that succeeds is recorded as applied.
    ws.write(
        "schema/core/0006_concurrent.sql",
        "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS contacts_created_nt_idx ON contacts (created_at);\n",
    );
    sql(&conn, "DELETE FROM strata.schema_history WHERE version = '0006'");
    ws.strata(&["migrate", "--tenant", "solo"]).expect(0);
    assert!(history(&conn).contains(&"core/0006:applied".to_string()));
}

#[test]
fn max_failures_stops_starting_tenants() {
    let tenants: Vec<TestTenant> = ["m1", "m2", "m3"]
        .iter()
        .map(|n| tenant(n, None, database(&format!("maxfail_{n}"))))
        .collect();
    let ws = Workspace::new(&tenants);
    ws.write("schema/core/0006_broken.sql", "SELECT 1 / 0;\n");
    let run = ws.strata(&["migrate", "--all", "--concurrency", "1", "--max-failures", "1", "--format", "json"]);
    run.expect(1);
    let json = run.json();
    assert_eq!(json["summary"]["failed"], 1, "{json}");
    assert_eq!(json["summary"]["not-started"], 2, "{json}");
    // Waves: a failing canary wave stops the rest.
    let tenants2: Vec<TestTenant> = ["w1", "w2"]
        .iter()
        .map(|n| tenant(n, None, database(&format!("waves_{n}"))))
        .collect();
    let ws2 = Workspace::new(&tenants2);
    let text = ws2
        .read("tenants.toml")
        .replacen("slug = \"w1\"", "slug = \"w1\"\nlabels = { wave = \"canary\" }", 1);
    ws2.write("tenants.toml", &text);
    ws2.write("schema/core/0006_broken.sql", "SELECT 1 / 0;\n");
    let run = ws2.strata(&["migrate", "--wave", "canary", "--wave", "*", "--format", "json"]);
    run.expect(1);
    let json = run.json();
    assert_eq!(tenant_row(&json, "w1")["status"], "failed");
    assert_eq!(tenant_row(&json, "w2")["status"], "not-started");
    assert!(!has_table(&tenants2[1].conn, "contacts"));
}
