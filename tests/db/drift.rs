//! `strata drift` and `strata status --drift` against a real server.

use crate::common;

use common::*;

#[test]
fn a_manual_alter_is_drift_and_clean_tenants_are_not() {
    let clean = database("drift_clean");
    let dirty = database("drift_dirty");
    let ws = Workspace::new(&[
        tenant("clean", Some("crm"), clean.clone()),
        tenant("dirty", Some("crm"), dirty.clone()),
    ]);
    ws.strata(&["migrate", "--all"]).expect(0);
    ws.strata(&["drift"]).expect(0);

    sql(
        &dirty,
        "ALTER TABLE contacts ADD COLUMN rogue text;
         ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY;
         ALTER TABLE contacts ADD CONSTRAINT contacts_rogue_check CHECK (rogue <> '') NOT VALID;",
    );
    let run = ws.strata(&["drift"]);
    run.expect(1);
    let out = &run.stdout;
    assert!(out.contains("clean: no drift"), "{out}");
    assert!(out.contains("dirty: DRIFT"), "{out}");
    assert!(out.contains("+    column rogue text"), "{out}");
    assert!(out.contains("-    row level security enabled, forced"), "{out}");
    assert!(out.contains("+    row level security enabled, not forced"), "{out}");
    assert!(
        out.contains("+    constraint contacts_rogue_check CHECK (rogue <> ''::text) NOT VALID"),
        "{out}"
    );
    assert!(out.contains("--- expected") && out.contains("+++ live (dirty)"), "{out}");
    // --all says the default, as migrate and verify-isolation take it.
    let all = ws.strata(&["drift", "--all"]);
    all.expect(1);
    assert!(
        all.stdout.contains("clean: no drift") && all.stdout.contains("dirty: DRIFT"),
        "{}",
        all.all()
    );
    ws.strata(&["drift", "--all", "--tenant", "clean"]).expect(2);

    ws.strata(&["drift", "--tenant", "clean"]).expect(0);
    let json = ws.strata(&["drift", "--tenant", "dirty", "--format", "json"]);
    json.expect(1);
    assert_eq!(json.json()["drift"], true);

    let status = ws.strata(&["status", "--drift"]);
    status.expect(1);
    assert!(
        status.stdout.contains("DRIFT") && status.stdout.contains("clean"),
        "{}",
        status.stdout
    );

    // The same comparison with the expected schema built on a throwaway cluster.
    ws.strata(&["drift", "--tenant", "clean", "--scratch", "auto"]).expect(0);
    ws.strata(&["drift", "--tenant", "dirty", "--scratch", "auto"]).expect(1);
}

#[test]
fn pending_migrations_are_not_drift() {
    let conn = database("drift_pending");
    let ws = Workspace::new(&[tenant("solo", None, conn.clone())]);
    ws.strata(&["migrate", "--tenant", "solo"]).expect(0);
    ws.write("schema/core/0006_later.sql", "CREATE TABLE later (id int);\n");
    let run = ws.strata(&["drift"]);
    run.expect(0);
    assert!(
        run.stdout.contains(&format!("solo: no drift on PostgreSQL {}", server_version()))
            && run.stdout.contains("(1 pending migrations not counted"),
        "{}",
        run.stdout
    );
    let status = ws.strata(&["status", "--format", "json"]);
    status.expect(1);
    assert_eq!(status.json()["tenants"][0]["pending"], 1);
}
