//! `strata check --shadow`: `auto` (a throwaway cluster, no server needed:
//! those tests never start the shared test server) and a server URL.

mod common;

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
    let ws = Workspace::new(&[]);
    let file = "schema/core/0006_under_review.sql";
    ws.write(file, sql);
    let tmp = private_tmp();
    let path = ws.file(file);
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
    let (run, json) = shadow(
        "-- Notes, created dynamically.\nDO $$\nBEGIN\n  EXECUTE 'CREATE TABLE notes (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id), wa_lid text)';\nEND\n$$;\n",
    );
    run.expect(1);
    let f = findings(&json);
    let rls = of(&f, "rls-missing");
    assert_eq!(rls.len(), 1, "{f:#?}");
    assert_eq!(rls[0].1, 2, "the span of the DO statement: {f:#?}");
    assert!(rls[0].2.contains("notes"), "{f:#?}");
    assert_eq!(of(&f, "lid-column").len(), 1, "{f:#?}");
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
    let locks = of(&f, "lock-taken");
    assert_eq!(locks.len(), 1, "{f:#?}");
    assert!(locks[0].2.contains("takes SHARE on `messages`"), "{f:#?}");
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
