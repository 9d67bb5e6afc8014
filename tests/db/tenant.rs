//! `strata tenant create` and the control plane against a real server.

use crate::common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn tenant_create_gaku_creates_migrates_and_registers() {
    let solo = database("create_solo");
    let ws = Workspace::new(&[tenant("solo", None, solo)]);
    let before = ws.read("tenants.toml");
    let srv = server();
    sql(srv.admin(), "DROP DATABASE IF EXISTS test_create_gaku WITH (FORCE)");
    let conn = srv.conn("test_create_gaku");
    let run = ws.strata(&[
        "tenant",
        "create",
        "gaku",
        "--vertical",
        "agency",
        "--database",
        &conn,
        "--label",
        "wave=early",
    ]);
    run.expect(0);
    assert!(
        run.stdout.contains("tenant gaku: database") && run.stdout.contains("(created)"),
        "{}",
        run.all()
    );
    assert_eq!(history(&conn).len(), migrations_of(&["core", "verticals/agency"]));
    assert!(has_table(&conn, "deals"));
    let after = ws.read("tenants.toml");
    assert!(after.starts_with(&before), "existing content must be kept:\n{after}");
    assert!(
        after.ends_with(&format!(
            "\n[[tenant]]\nslug = \"gaku\"\ndatabase = \"{conn}\"\nvertical = \"agency\"\nlabels = {{ wave = \"early\" }}\n"
        )),
        "{after}"
    );
    let ls = ws.strata(&["ls", "--tenant", "gaku"]);
    ls.expect(0);
    assert!(ls.stdout.contains("vertical: agency"), "{}", ls.stdout);
    ws.strata(&["status", "--tenant", "gaku"]).expect(0);

    // Registered once only; slugs are validated; passwords never land in tenants.toml.
    let again = ws.strata(&["tenant", "create", "gaku", "--vertical", "agency", "--database", &conn]);
    again.expect(2);
    assert!(again.stderr.contains("already in tenants.toml"), "{}", again.all());
    ws.strata(&["tenant", "create", "Bad_Slug", "--database", &conn]).expect(2);
    let pw = ws.strata(&["tenant", "create", "pw", "--database", "postgres://u:secret@localhost/x"]);
    pw.expect(2);
    assert!(!pw.all().contains("secret"), "{}", pw.all());
    assert_eq!(ws.read("tenants.toml"), after);
}

#[test]
fn tenant_create_stops_before_creating_anything_when_an_extension_is_missing() {
    // A made-up extension, so that no server can have it installed.
    let ws = Workspace::new(&[]);
    ws.write(
        "schema/core/0006_needs_extension.sql",
        "CREATE EXTENSION IF NOT EXISTS strata_no_such_extension;\n",
    );
    let srv = server();
    sql(srv.admin(), "DROP DATABASE IF EXISTS test_create_lab WITH (FORCE)");
    let conn = srv.conn("test_create_lab");
    let run = ws.strata(&["tenant", "create", "lab", "--database", &conn]);
    run.expect(2);
    assert!(
        run.stderr
            .contains("extension strata_no_such_extension is not available on this server: install the package providing"),
        "{}",
        run.all()
    );
    assert_eq!(
        value(srv.admin(), "SELECT count(*) FROM pg_database WHERE datname = 'test_create_lab'"),
        "0"
    );
    assert!(!ws.read("tenants.toml").contains("lab"));
}

#[test]
fn two_processes_share_one_rollout_through_the_control_plane() {
    let names = ["c1", "c2", "c3", "c4", "c5", "c6"];
    let tenants: Vec<TestTenant> = names.iter().map(|n| tenant(n, None, database(&format!("cp_{n}")))).collect();
    let cp = database("control_plane");
    let ws = Workspace::new(&tenants);
    ws.top_level("control_plane = \"env:STRATA_TEST_CONTROL_PLANE\"");
    ws.write("schema/core/0006_slow.sql", "SELECT pg_sleep(0.7);\n");
    let spawn = || {
        ws.command(&["migrate", "--all", "--concurrency", "2", "--format", "json"])
            .env("STRATA_TEST_CONTROL_PLANE", &cp)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b): (Run, Run) = (a.wait_with_output().unwrap().into(), b.wait_with_output().unwrap().into());
    a.expect(0);
    b.expect(0);
    let mine = |r: &Run| -> BTreeSet<String> {
        r.json()["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["status"], "ok", "{t}");
                t["tenant"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let (ma, mb) = (mine(&a), mine(&b));
    assert!(ma.is_disjoint(&mb), "a tenant was migrated by both: {ma:?} {mb:?}");
    let union: BTreeSet<String> = ma.union(&mb).cloned().collect();
    assert_eq!(union, names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    assert!(
        !ma.is_empty() && !mb.is_empty(),
        "both runners should share the work: {ma:?} {mb:?}"
    );
    // One run, every tenant done once, by two runners.
    assert_eq!(value(&cp, "SELECT count(*) FROM strata.runs"), "1");
    assert_eq!(value(&cp, "SELECT status FROM strata.runs"), "done");
    assert_eq!(value(&cp, "SELECT count(*) FROM strata.run_tenants WHERE status = 'done'"), "6");
    assert_eq!(value(&cp, "SELECT count(DISTINCT claimed_by) FROM strata.run_tenants"), "2");
    for t in &tenants {
        assert_eq!(history(&t.conn).len(), 6, "{}", t.slug);
    }
    // A later rollout of the same release finds nothing to do.
    let c = ws
        .command(&["migrate", "--all"])
        .env("STRATA_TEST_CONTROL_PLANE", &cp)
        .output()
        .unwrap();
    let again = Run::from(c);
    again.expect(0);
    assert!(again.stdout.contains("6 up-to-date"), "{}", again.stdout);
}
