//! `strata verify-isolation` against a real server, in both tenancy modes.

use crate::common;

use std::path::Path;

use common::*;

/// Roles, policies and the row count of every user table: what the probe must leave as it found it.
fn footprint(conn: &str) -> Vec<Vec<Option<String>>> {
    // Roles are cluster-wide and the other tests of this binary create their
    // app roles concurrently: only strata's own roles are compared.
    let mut rows = sql(conn, "SELECT 'role', rolname FROM pg_roles WHERE rolname LIKE 'strata%' ORDER BY 2");
    rows.extend(sql(
        conn,
        "SELECT 'policy', schemaname || '.' || tablename || '.' || policyname || ':' || coalesce(qual, '') FROM pg_policies ORDER BY 2",
    ));
    // Row counts one table at a time (query_to_xml needs a server built with libxml).
    for t in sql(
        conn,
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    ) {
        let table = t[0].clone().unwrap_or_default();
        let count = value(conn, &format!("SELECT count(*) FROM {table}"));
        rows.push(vec![Some(format!("rows {table}")), Some(count)]);
    }
    rows
}

fn verify(ws: &Workspace, slug: &str) -> (Run, serde_json::Value) {
    let run = ws.strata(&["verify-isolation", "--tenant", slug, "--format", "json"]);
    let json = run.json();
    (run, json)
}

/// The (table, check) pairs reported as leaks.
fn leaks(json: &serde_json::Value) -> Vec<(String, String)> {
    json["tenants"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "leak")
        .map(|f| (f["object"].as_str().unwrap().to_string(), f["check"].as_str().unwrap().to_string()))
        .collect()
}

fn skipped(json: &serde_json::Value) -> Vec<String> {
    json["tenants"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "skipped")
        .map(|f| f.to_string())
        .collect()
}

#[track_caller]
fn assert_leak(json: &serde_json::Value, table: &str, check: &str) {
    let l = leaks(json);
    assert!(
        l.iter().any(|(t, c)| t == table && c == check),
        "expected a {check} leak on {table}, got {l:?}"
    );
}

/// What the faults are built from in one tenancy mode.
struct Mode<'a> {
    /// The scope key column and the table it references.
    key: &'a str,
    parent: &'a str,
    /// A scoped table of the schema.
    table: &'a str,
    app: &'a str,
    /// The session setting the policies read.
    setting: &'a str,
}

/// The three faults, applied one at a time to a verified-clean tenant.
fn faults(ws: &Workspace, slug: &str, conn: &str, mode: &Mode) {
    let Mode {
        key,
        parent,
        table,
        app,
        setting,
    } = *mode;
    let ctx = format!("nullif(current_setting('{setting}', true), '')::uuid");

    // A permissive USING (true) policy ORs away the scoped one.
    sql(
        conn,
        &format!("CREATE POLICY strata_test_open ON {table} FOR SELECT TO {app} USING (true)"),
    );
    let (run, json) = verify(ws, slug);
    run.expect(1);
    assert_leak(&json, table, "select");
    sql(conn, &format!("DROP POLICY strata_test_open ON {table}"));

    // A policy that ignores the tenant key.
    sql(
        conn,
        &format!(
            "CREATE TABLE strata_test_notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), {key} uuid NOT NULL REFERENCES {parent} (id), body text);
             ALTER TABLE strata_test_notes ENABLE ROW LEVEL SECURITY; ALTER TABLE strata_test_notes FORCE ROW LEVEL SECURITY;
             CREATE POLICY notes_any ON strata_test_notes FOR ALL TO {app} USING (body IS NOT NULL) WITH CHECK (body IS NOT NULL);
             GRANT SELECT, INSERT, UPDATE, DELETE ON strata_test_notes TO {app};"
        ),
    );
    let (run, json) = verify(ws, slug);
    run.expect(1);
    for check in ["select", "update", "delete", "insert"] {
        assert_leak(&json, "strata_test_notes", check);
    }
    sql(conn, "DROP TABLE strata_test_notes");

    // No FORCE ROW LEVEL SECURITY on a table the application role owns.
    sql(
        conn,
        &format!(
            "CREATE TABLE strata_test_owned (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), {key} uuid NOT NULL REFERENCES {parent} (id), body text);
             ALTER TABLE strata_test_owned ENABLE ROW LEVEL SECURITY;
             CREATE POLICY owned_scoped ON strata_test_owned FOR ALL TO {app} USING ({key} = {ctx}) WITH CHECK ({key} = {ctx});
             GRANT REFERENCES ON {parent} TO {app};
             ALTER TABLE strata_test_owned OWNER TO {app};"
        ),
    );
    let (run, json) = verify(ws, slug);
    run.expect(1);
    assert_leak(&json, "strata_test_owned", "rls-forced");
    assert_leak(&json, "strata_test_owned", "select");
    sql(conn, "DROP TABLE strata_test_owned");

    let (run, json) = verify(ws, slug);
    run.expect(0);
    assert!(leaks(&json).is_empty());
}

#[test]
fn database_per_tenant_agency_is_isolated_and_faults_are_caught() {
    let conn = database("iso_agency");
    let ws = Workspace::new(&[tenant("agency", Some("agency"), conn.clone())]);
    ws.strata(&["migrate", "--tenant", "agency"]).expect(0);

    let before = footprint(&conn);
    let text = ws.strata(&["verify-isolation", "--tenant", "agency"]);
    text.expect(0);
    assert!(
        text.stdout.contains("messages") && text.stdout.contains("0 leak(s)"),
        "{}",
        text.all()
    );
    let (run, json) = verify(&ws, "agency");
    run.expect(0);
    assert!(leaks(&json).is_empty(), "{}", run.stdout);
    // Values meet the simple CHECKs (orbis_state.events.kind is a regular
    // expression): every table under row level security is proven.
    assert!(skipped(&json).is_empty(), "{:?}", skipped(&json));
    let coverage = &json["tenants"][0]["coverage"];
    assert_eq!(coverage["proven"], coverage["under_rls"], "{coverage}");
    let events_proven = json["tenants"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["object"] == "orbis_state.events" && f["check"] == "insert" && f["outcome"] == "pass");
    assert!(events_proven, "{}", run.stdout);
    assert!(text.stdout.contains("coverage"), "{}", text.stdout);
    ws.strata(&["verify-isolation", "--tenant", "agency", "--require-full-coverage"])
        .expect(0);
    // A CHECK no generated value meets: the table is not proven, which only
    // --require-full-coverage makes a failure.
    sql(
        &conn,
        "CREATE TABLE strata_test_sealed (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             container_id uuid NOT NULL REFERENCES containers (id), body text NOT NULL CHECK (length(body) > 5000));
         ALTER TABLE strata_test_sealed ENABLE ROW LEVEL SECURITY; ALTER TABLE strata_test_sealed FORCE ROW LEVEL SECURITY;
         CREATE POLICY sealed_scoped ON strata_test_sealed FOR ALL TO orbis_app
             USING (container_id = nullif(current_setting('orbis.container_id', true), '')::uuid)
             WITH CHECK (container_id = nullif(current_setting('orbis.container_id', true), '')::uuid);
         GRANT SELECT, INSERT, UPDATE, DELETE ON strata_test_sealed TO orbis_app;",
    );
    let (partial, json) = verify(&ws, "agency");
    partial.expect(0);
    let coverage = &json["tenants"][0]["coverage"];
    assert_eq!(coverage["unproven"], serde_json::json!(["strata_test_sealed"]), "{coverage}");
    let strict = ws.strata(&["verify-isolation", "--tenant", "agency", "--require-full-coverage"]);
    strict.expect(1);
    assert!(strict.stdout.contains("not proven: strata_test_sealed"), "{}", strict.stdout);
    // The text table fits the terminal; the long seeding error goes below it.
    let narrow = Run::from(
        ws.command(&["verify-isolation", "--tenant", "agency"])
            .env("COLUMNS", "80")
            .output()
            .unwrap(),
    );
    narrow.expect(0);
    let table_lines = narrow.stdout.lines().filter(|l| l.starts_with(['│', '┌', '└', '╞', '├']));
    for line in table_lines {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line}\n{}", narrow.stdout);
    }
    assert!(
        narrow
            .stdout
            .lines()
            .any(|l| l.starts_with("[1] could not seed") && l.contains("check constraint")),
        "{}",
        narrow.stdout
    );
    sql(&conn, "DROP TABLE strata_test_sealed");
    for table in ["messages", "knowledge_items", "container_members"] {
        for check in ["select", "update", "delete", "insert"] {
            let found = json["tenants"][0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["object"] == table && f["check"] == check && f["outcome"] == "pass");
            assert!(found, "{table} {check} must be probed:\n{}", run.stdout);
        }
    }
    assert_eq!(
        footprint(&conn),
        before,
        "verify-isolation must leave no role, row or policy behind"
    );

    let mode = Mode {
        key: "container_id",
        parent: "containers",
        table: "messages",
        app: "orbis_app",
        setting: "orbis.container_id",
    };
    faults(&ws, "agency", &conn, &mode);
    assert_eq!(footprint(&conn), before);

    // Every row is the tenant's here, so the probe cannot see a policy that
    // opens a table to PUBLIC: the policy rules of `strata check` judge it.
    sql(&conn, "CREATE POLICY leak ON contacts FOR SELECT USING (true)");
    let (run, json) = verify(&ws, "agency");
    run.expect(1);
    assert_leak(&json, "contacts", "policy-always-true");
    let text = ws.strata(&["verify-isolation", "--tenant", "agency"]);
    text.expect(1);
    assert!(text.stdout.contains("policy `leak`"), "{}", text.stdout);
    sql(&conn, "DROP POLICY leak ON contacts");
    assert_eq!(footprint(&conn), before);
}

fn shared_workspace(conn: &str) -> Workspace {
    let dir = tempfile::Builder::new().prefix("strata-ws-").tempdir().unwrap();
    let ws = Workspace { dir };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/isolation-shared");
    ws.write("strata.toml", &std::fs::read_to_string(fixture.join("strata.toml")).unwrap());
    let migration = "schema/core/0001_orgs_and_projects.sql";
    ws.write(migration, &std::fs::read_to_string(fixture.join(migration)).unwrap());
    ws.write("tenants.toml", &format!("[[tenant]]\nslug = \"shared\"\ndatabase = \"{conn}\"\n"));
    ws
}

#[test]
fn shared_mode_is_isolated_and_faults_are_caught() {
    let conn = database("iso_shared");
    let ws = shared_workspace(&conn);
    ws.strata(&["migrate", "--tenant", "shared"]).expect(0);
    let before = footprint(&conn);
    let (run, json) = verify(&ws, "shared");
    run.expect(0);
    assert!(skipped(&json).is_empty(), "{:?}", skipped(&json));
    for table in ["projects", "tasks"] {
        for check in ["select", "update", "delete", "insert"] {
            let found = json["tenants"][0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["object"] == table && f["check"] == check && f["outcome"] == "pass");
            assert!(found, "{table} {check} must be probed:\n{}", run.stdout);
        }
    }
    assert_eq!(footprint(&conn), before);
    let mode = Mode {
        key: "org_id",
        parent: "orgs",
        table: "projects",
        app: "app_user",
        setting: "app.org_id",
    };
    faults(&ws, "shared", &conn, &mode);
    assert_eq!(footprint(&conn), before);
}

#[test]
fn unreachable_tenant_is_a_tool_error() {
    let ws = Workspace::new(&[tenant("gone", None, server().conn("test_iso_does_not_exist"))]);
    let run = ws.strata(&["verify-isolation", "--tenant", "gone"]);
    run.expect(2);
    ws.strata(&["verify-isolation"]).expect(2);
}

/// A table in a schema whose name holds a dot (`"tenant.data"`) is probed
/// like any other: without an app role the probe role is granted each
/// schema as it is quoted, not a piece of `"tenant.data".notes` split on its
/// first dot (which made the probe's own SQL fail).
#[test]
fn a_schema_whose_name_holds_a_dot_is_probed() {
    let conn = database("iso_dotted_schema");
    let ws = Workspace::new(&[tenant("dotted", Some("agency"), conn.clone())]);
    ws.strata(&["migrate", "--tenant", "dotted"]).expect(0);
    sql(
        &conn,
        r#"CREATE SCHEMA "tenant.data";
         CREATE TABLE "tenant.data".notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
             container_id uuid NOT NULL REFERENCES containers (id), body text NOT NULL);
         ALTER TABLE "tenant.data".notes ENABLE ROW LEVEL SECURITY; ALTER TABLE "tenant.data".notes FORCE ROW LEVEL SECURITY;
         CREATE POLICY notes_scoped ON "tenant.data".notes FOR ALL TO PUBLIC
             USING (container_id = nullif(current_setting('orbis.container_id', true), '')::uuid)
             WITH CHECK (container_id = nullif(current_setting('orbis.container_id', true), '')::uuid);"#,
    );
    // No app role: the probe role gets its privileges directly.
    let toml = ws.read("strata.toml").replace("app_role = \"orbis_app\"", "app_role = \"\"");
    ws.write("strata.toml", &toml);
    let run = ws.strata(&["verify-isolation", "--tenant", "dotted", "--format", "json"]);
    assert_ne!(run.code, 2, "{}", run.all());
    let json = run.json();
    for check in ["select", "update", "delete", "insert"] {
        let passed = json["tenants"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["object"].as_str().is_some_and(|o| o.contains("tenant.data")) && f["check"] == check && f["outcome"] == "pass");
        assert!(passed, "\"tenant.data\".notes {check} must be proven:\n{}", run.stdout);
    }
}
