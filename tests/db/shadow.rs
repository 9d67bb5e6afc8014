//! `strata check --shadow`: `auto` (a throwaway cluster, no server needed:
//! those tests never start the shared test server) and a server URL.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// A private TMPDIR for the strata process (readable by the `postgres` OS
/// user), so that what the run leaves behind can be counted exactly.
fn private_tmp() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("strata-shadow-test-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        })
        .count()
}

/// Writes `sql` as the next core migration and checks it with `--shadow auto`.
fn shadow(sql: &str) -> (Run, serde_json::Value) {
    shadow_after(&[], sql)
}

/// Writes `history` (shown path, text) as applied-before migrations, then
/// `sql` as the next core migration, and checks that one with `--shadow auto`.
fn shadow_after(history: &[(&str, &str)], sql: &str) -> (Run, serde_json::Value) {
    let ws = Workspace::new(&[]);
    for (path, text) in history {
        ws.write(path, text);
    }
    let file = format!("schema/core/{:04}_under_review.sql", 6 + history.len());
    ws.write(&file, sql);
    let tmp = private_tmp();
    let path = ws.file(&file);
    let out = ws
        .command(&[
            "check",
            "--no-cache",
            "--format",
            "json",
            "--shadow",
            "auto",
            path.to_str().unwrap(),
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temp files left behind:\n{}",
        run.all()
    );
    assert_eq!(
        processes_mentioning(&tmp.path().display().to_string()),
        0,
        "a server was left running"
    );
    let json = if run.code == 2 { serde_json::Value::Null } else { run.json() };
    (run, json)
}

/// (rule, line, message) of every diagnostic.
fn findings(json: &serde_json::Value) -> Vec<(String, u64, String)> {
    json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["rule"].as_str().unwrap().to_string(),
                d["start"]["line"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn of<'a>(f: &'a [(String, u64, String)], rule: &str) -> Vec<&'a (String, u64, String)> {
    f.iter().filter(|(r, _, _)| r == rule).collect()
}

#[test]
fn table_created_in_a_do_block_without_rls_is_caught() {
    // The table's name is a variable: only the shadow run can know it.
    let (run, json) = shadow(
        "-- Notes, created dynamically.\nDO $$\nDECLARE t text := 'notes';\nBEGIN\n  EXECUTE format('CREATE TABLE %I (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id), wa_lid text)', t);\nEND\n$$;\n",
    );
    run.expect(1);
    let f = findings(&json);
    let rls = of(&f, "rls-missing");
    assert_eq!(rls.len(), 1, "{f:#?}");
    assert_eq!(rls[0].1, 2, "the span of the DO statement: {f:#?}");
    assert!(rls[0].2.contains("notes"), "{f:#?}");
    assert_eq!(of(&f, "lid-column").len(), 1, "{f:#?}");
    // Statically it is SQL strata cannot read.
    assert_eq!(lines_of(&f, "opaque-sql"), vec![5], "{f:#?}");
}

#[test]
fn a_constant_execute_in_a_do_block_is_reported_once_inside_the_body() {
    // The static pass reads the constant string; the shadow run sees the
    // same table appear during the DO statement: one finding, in the body.
    let (run, json) = shadow(
        "-- Notes.\nDO $$\nBEGIN\n  EXECUTE 'CREATE TABLE notes (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id), wa_lid text)';\nEND\n$$;\n",
    );
    run.expect(1);
    let f = findings(&json);
    assert_eq!(lines_of(&f, "rls-missing"), vec![4], "{f:#?}");
    assert!(of(&f, "rls-missing")[0].2.contains("notes"), "{f:#?}");
    assert_eq!(lines_of(&f, "lid-column"), vec![4], "{f:#?}");
    assert!(of(&f, "opaque-sql").is_empty(), "{f:#?}");
}

#[test]
fn alter_column_type_rewrites_a_populated_table() {
    let (run, json) = shadow("-- Body lengths only.\nALTER TABLE messages ALTER COLUMN body TYPE integer USING length(body);\n");
    run.expect(1);
    let f = findings(&json);
    let rewrite = of(&f, "table-rewrite");
    assert_eq!(rewrite.len(), 1, "{f:#?}");
    assert!(rewrite[0].2.contains("`messages`"), "{f:#?}");
    assert!(
        of(&f, "lock-taken")
            .iter()
            .any(|(_, l, m)| *l == 2 && m.contains("ACCESS EXCLUSIVE") && m.contains("`messages`")),
        "{f:#?}"
    );
}

#[test]
fn plain_create_index_takes_a_share_lock() {
    let (run, json) = shadow("-- Search by body.\nCREATE INDEX messages_body_idx ON messages (body);\n");
    run.expect(1);
    let f = findings(&json);
    assert_one_share_lock(&f, 2, "messages");
    assert!(of(&f, "table-rewrite").is_empty(), "{f:#?}");
}

#[test]
fn concurrent_index_in_a_no_transaction_file_reports_nothing() {
    let (_run, json) =
        shadow("-- strata: no-transaction\n-- Search by body.\nCREATE INDEX CONCURRENTLY messages_body_idx ON messages (body);\n");
    let f = findings(&json);
    assert!(of(&f, "lock-taken").is_empty() && of(&f, "table-rewrite").is_empty(), "{f:#?}");
}

#[test]
fn failing_statement_is_a_tool_error_and_leaves_nothing_behind() {
    let (run, _) = shadow("-- Broken.\nALTER TABLE no_such_table ADD COLUMN x integer;\n");
    run.expect(2);
    assert!(run.stderr.contains("0006_under_review.sql:2"), "{}", run.all());
}

#[test]
fn shadow_needs_files_under_review() {
    let ws = Workspace::new(&[]);
    let run = ws.strata(&["check", "--shadow", "auto"]);
    run.expect(2);
    assert!(Path::new(&ws.file("strata.toml")).exists());
}

#[test]
fn shadow_on_a_server_url_drops_its_scratch_database() {
    let srv = server();
    let ws = Workspace::new(&[]);
    let file = "schema/core/0006_under_review.sql";
    ws.write(file, "-- Search by body.\nCREATE INDEX messages_body_idx ON messages (body);\n");
    let path = ws.file(file);
    let run = ws.strata(&[
        "check",
        "--no-cache",
        "--format",
        "json",
        "--shadow",
        srv.admin(),
        path.to_str().unwrap(),
    ]);
    run.expect(1);
    let f = findings(&run.json());
    assert_eq!(of(&f, "lock-taken").len(), 1, "{f:#?}");
    assert_eq!(
        value(srv.admin(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'strata_shadow_%'"),
        "0"
    );
}

#[test]
fn rls_without_force_or_policy_in_a_function_is_caught() {
    let (run, json) = shadow(
        "-- Made by a helper function.\nCREATE FUNCTION make_notes() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  CREATE TABLE notes (id uuid PRIMARY KEY);\n  ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\nEND\n$$;\nSELECT make_notes();\n",
    );
    run.expect(1);
    let f = findings(&json);
    let forced = of(&f, "rls-not-forced");
    assert_eq!(forced.len(), 1, "{f:#?}");
    assert_eq!(forced[0].1, 8, "the span of the statement that made the table appear: {f:#?}");
    assert!(of(&f, "rls-missing").is_empty(), "{f:#?}");
}

/// Objects made by dynamic SQL (names in variables, which the static pass
/// cannot read) or by a function a later statement calls; the comments say
/// which line makes what.
const DYNAMIC: &str = "-- Everything here is made by dynamic SQL.
DO $$ DECLARE t text := 'notes';
BEGIN
  EXECUTE format('CREATE TABLE %I (id uuid PRIMARY KEY, body text)', t);
END
$$;
CREATE FUNCTION make_tags() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  CREATE TABLE tags (id uuid PRIMARY KEY);
END
$$;
SELECT make_tags();
DO $$ DECLARE c text := 'sender_lid'; BEGIN EXECUTE 'ALTER TABLE messages ADD COLUMN ' || quote_ident(c) || ' text'; END $$;
DO $$ DECLARE t text := 'sync_state'; BEGIN EXECUTE format('CREATE TABLE %I (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id))', t); END $$;
DO $$ DECLARE f text := 'whoami'; BEGIN EXECUTE format('CREATE FUNCTION %I() RETURNS text LANGUAGE sql SECURITY DEFINER AS ''SELECT current_user::text''', f); END $$;
";

/// The lines `rule` reported, sorted.
/// Exactly one `lock-taken` finding: SHARE on `table`, at `line`.
#[track_caller]
fn assert_one_share_lock(f: &[(String, u64, String)], line: u64, table: &str) {
    let locks = of(f, "lock-taken");
    assert_eq!(locks.len(), 1, "{f:#?}");
    assert_eq!(locks[0].1, line, "{f:#?}");
    assert!(locks[0].2.contains(&format!("takes SHARE on `{table}`")), "{f:#?}");
}

fn lines_of(f: &[(String, u64, String)], rule: &str) -> Vec<u64> {
    let mut lines: Vec<u64> = of(f, rule).iter().map(|(_, l, _)| *l).collect();
    lines.sort();
    lines
}

#[test]
fn governance_rules_run_on_what_dynamic_sql_created() {
    let (run, json) = shadow(DYNAMIC);
    run.expect(1);
    let f = findings(&json);
    // The DO block (notes), the SELECT that called the function (tags), and
    // the DO block that made sync_state.
    assert_eq!(lines_of(&f, "rls-missing"), vec![2, 12, 14], "{f:#?}");
    assert!(
        of(&f, "rls-missing").iter().any(|(_, l, m)| *l == 12 && m.contains("tags")),
        "{f:#?}"
    );
    // A LID column added by dynamic SQL to a table of the history.
    assert_eq!(lines_of(&f, "lid-column"), vec![13], "{f:#?}");
    assert!(of(&f, "lid-column")[0].2.contains("messages.sender_lid"), "{f:#?}");
    // Rules the old four-rule live check did not have: ad-hoc state,
    // SECURITY DEFINER without search_path, the container wall.
    assert_eq!(lines_of(&f, "bespoke-table"), vec![14], "{f:#?}");
    assert!(of(&f, "bespoke-table")[0].2.contains("sync_state"), "{f:#?}");
    assert_eq!(lines_of(&f, "security-definer-search-path"), vec![15], "{f:#?}");
    assert!(of(&f, "security-definer-search-path")[0].2.contains("whoami"), "{f:#?}");
    assert_eq!(lines_of(&f, "container-scope"), vec![14], "{f:#?}");
}

#[test]
fn a_well_formed_dynamic_table_passes_the_live_rules() {
    // RLS, FORCE, a foreign key to containers with its index and a policy
    // pinning container_id, all made inside a DO block: the live catalog
    // (with the server's own text of the policy) satisfies the same rules.
    let (_run, json) = shadow(
        "-- A walled-garden table made dynamically.
DO $$
BEGIN
  EXECUTE 'CREATE TABLE pins (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id))';
  EXECUTE 'CREATE INDEX pins_container_idx ON pins (container_id)';
  EXECUTE 'ALTER TABLE pins ENABLE ROW LEVEL SECURITY';
  EXECUTE 'ALTER TABLE pins FORCE ROW LEVEL SECURITY';
  EXECUTE $p$CREATE POLICY pins_container ON pins FOR ALL TO orbis_app
    USING (container_id = (SELECT current_setting('orbis.container_id')::uuid))
    WITH CHECK (container_id = (SELECT current_setting('orbis.container_id')::uuid))$p$;
END
$$;
",
    );
    let f = findings(&json);
    for rule in [
        "rls-missing",
        "rls-not-forced",
        "policy-missing",
        "container-scope",
        "fk-missing-index",
        "no-primary-key",
    ] {
        assert!(of(&f, rule).is_empty(), "{rule}: {f:#?}");
    }
}

#[test]
fn policies_made_by_dynamic_sql_are_judged_by_the_policy_rules() {
    // RLS forced and a policy present, so only the policy rules can object:
    // one policy lets every row through, the other ignores the container.
    let (run, json) = shadow(
        "-- Policies made dynamically.
DO $$ DECLARE t text := 'pins';
BEGIN
  EXECUTE format('CREATE TABLE %I (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id))', t);
  EXECUTE format('CREATE INDEX pins_container_idx ON %I (container_id)', t);
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
  EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
  EXECUTE format('CREATE POLICY pins_open ON %I FOR SELECT USING (true)', t);
END
$$;
DO $$ DECLARE t text := 'pins'; BEGIN EXECUTE format('CREATE POLICY pins_any ON %I FOR UPDATE TO orbis_app USING (id IS NOT NULL)', t); END $$;
",
    );
    run.expect(1);
    let f = findings(&json);
    assert_eq!(lines_of(&f, "policy-always-true"), [2], "{f:#?}");
    assert!(lines_of(&f, "policy-not-tenant-scoped").contains(&11), "{f:#?}");
    assert!(of(&f, "rls-missing").is_empty() && of(&f, "policy-missing").is_empty(), "{f:#?}");
}

#[test]
fn json_of_a_live_finding_points_at_the_creating_statement() {
    let (run, json) = shadow(DYNAMIC);
    run.expect(1);
    let d = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == "security-definer-search-path")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(d["file"], "schema/core/0006_under_review.sql", "{d:#}");
    assert_eq!(d["start"]["line"], 15, "{d:#}");
    assert_eq!(d["start"]["col"], 1, "{d:#}");
    assert_eq!(d["severity"], "error", "{d:#}");
    assert!(d["message"].as_str().unwrap().contains("whoami"), "{d:#}");
}

#[test]
fn suppressions_apply_to_live_findings() {
    let (_run, json) = shadow(
        "-- Legacy helper.
-- strata-ignore security-definer-search-path: reviewed, it reads nothing by name
DO $$ DECLARE f text := 'whoami'; BEGIN EXECUTE format('CREATE FUNCTION %I() RETURNS text LANGUAGE sql SECURITY DEFINER AS ''SELECT 1::text''', f); END $$;
",
    );
    let f = findings(&json);
    assert!(of(&f, "security-definer-search-path").is_empty(), "{f:#?}");
    // The static pass alone finds nothing to suppress; the shadow finding
    // makes the comment used.
    assert!(of(&f, "unused-suppression").is_empty(), "{f:#?}");
}

#[test]
fn plain_create_index_in_a_no_transaction_file_takes_a_share_lock() {
    let (run, json) = shadow("-- strata: no-transaction\n-- Search by body.\nCREATE INDEX messages_body_idx ON messages (body);\n");
    run.expect(1);
    let f = findings(&json);
    assert_one_share_lock(&f, 3, "messages");
}

#[test]
fn vacuum_full_in_a_no_transaction_file_is_seen_by_the_observer() {
    // VACUUM cannot run in a transaction block: only the observer can see
    // its ACCESS EXCLUSIVE lock.
    let (run, json) = shadow("-- strata: no-transaction\n-- Compact.\nVACUUM FULL messages;\n");
    run.expect(1);
    let f = findings(&json);
    assert!(
        of(&f, "lock-taken")
            .iter()
            .any(|(_, l, m)| *l == 3 && m.contains("takes ACCESS EXCLUSIVE on `messages`")),
        "{f:#?}"
    );
    assert_eq!(lines_of(&f, "table-rewrite"), vec![3], "{f:#?}");
}

#[test]
fn tables_with_a_composite_foreign_key_are_seeded() {
    let history = [(
        "schema/core/0006_boards.sql",
        "-- Boards and cards, keyed per container.
CREATE TABLE boards (
    container_id uuid NOT NULL REFERENCES containers (id),
    id uuid NOT NULL,
    title text NOT NULL,
    PRIMARY KEY (container_id, id)
);
CREATE TABLE cards (
    id uuid PRIMARY KEY,
    container_id uuid NOT NULL,
    board_id uuid NOT NULL,
    FOREIGN KEY (container_id, board_id) REFERENCES boards (container_id, id)
);
CREATE TABLE sealed (id uuid PRIMARY KEY, CONSTRAINT sealed_never CHECK (false));
",
    )];
    let (run, json) = shadow_after(
        &history,
        "-- The review needs cards to have rows.
DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM cards) THEN RAISE EXCEPTION 'cards is empty'; END IF; END $$;
CREATE INDEX cards_board_idx ON cards (board_id);
",
    );
    run.expect(1);
    for table in ["boards", "cards"] {
        assert!(!run.stderr.contains(&format!("could not seed `{table}`")), "{}", run.all());
    }
    assert!(
        run.stderr.contains("could not seed `sealed`"),
        "a table that takes no row is named: {}",
        run.all()
    );
    let f = findings(&json);
    assert_one_share_lock(&f, 3, "cards");
}

#[test]
fn plain_ddl_is_reported_once_by_the_static_and_the_live_pass() {
    let (run, json) = shadow("-- Notes.\nCREATE TABLE notes (\n    id uuid PRIMARY KEY,\n    wa_lid text\n);\n");
    run.expect(1);
    let f = findings(&json);
    assert_eq!(lines_of(&f, "rls-missing"), vec![2], "{f:#?}");
    assert_eq!(lines_of(&f, "lid-column"), vec![4], "{f:#?}");
}

#[test]
fn a_bespoke_layer_is_replayed_on_top_of_its_tenants_vertical() {
    // dreamlink's views read the agency vertical's tables.
    let ws = Workspace::new(&[TestTenant {
        slug: "dreamlink",
        vertical: Some("agency"),
        bespoke: Some("dreamlink"),
        conn: "postgres://localhost/dreamlink".into(),
    }]);
    let path = ws.file("schema/bespoke/dreamlink");
    let run = ws.strata(&[
        "check",
        "--no-cache",
        "--format",
        "json",
        "--shadow",
        "auto",
        path.to_str().unwrap(),
    ]);
    if server_major() < 15 {
        // Its views are security_invoker, which PostgreSQL 15 introduced: the
        // replay stops at that file and says why.
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(
            run.stderr.contains("0001_dashboard_views.sql") && run.stderr.contains("security_invoker"),
            "{}",
            run.all()
        );
        return;
    }
    assert_ne!(run.code, 2, "{}", run.all());
    assert!(run.json()["summary"]["files"].as_u64().unwrap() > 0, "{}", run.all());
}
