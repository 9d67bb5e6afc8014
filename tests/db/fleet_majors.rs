//! A fleet whose tenants run on two PostgreSQL majors: the test server's and
//! a throwaway cluster of another major (13, or 18 when the suite runs on
//! 13). `strata migrate`, `status` and `drift` work across both and report
//! per tenant, with the version of each tenant's server.
//!
//! `#[ignore]`d: it needs a second major, which a machine with only the
//! system's PostgreSQL lacks (the README's `cargo test` must pass there).
//! `.ci/run` fetches 13 and 18 with `scripts/pg-binaries` and runs it with
//! `cargo test --test db across_majors -- --ignored`; without the binaries
//! it fails, saying how to install them.

use crate::common;

use common::*;

/// The major of a version strata reports ("13.23" → 13).
fn major(row: &serde_json::Value) -> u32 {
    let v = row["server_version"].as_str().unwrap_or_else(|| panic!("no server_version: {row}"));
    v.split('.').next().unwrap().parse().unwrap()
}

/// The row of `tenant` in a text table (`│ tenant ┆ ...`).
fn line_of<'a>(text: &'a str, tenant: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with('│') && l.trim_start_matches('│').split('┆').next().is_some_and(|c| c.trim() == tenant))
        .unwrap_or_else(|| panic!("no line of {tenant} in:\n{text}"))
}

#[test]
#[ignore = "needs a second PostgreSQL major: .ci/run runs it after `scripts/pg-binaries 13 18` (cargo test --test db across_majors -- --ignored)"]
fn a_fleet_across_majors_migrates_and_reports_each_tenant_with_its_server() {
    let (here, there) = (server_major(), other_major());
    let other = cluster_of_major(there);
    let other_version = value(&other.conn_string("postgres"), "SHOW server_version")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let there_crm = database_in(&other, "majors_there_crm");
    let there_travel = database_in(&other, "majors_there_travel");
    let ws = Workspace::new(&[
        tenant("here-crm", Some("crm"), database("majors_here_crm")),
        tenant("there-crm", Some("crm"), there_crm.clone()),
        tenant("there-travel", Some("travel"), there_travel.clone()),
    ]);
    let crm = migrations_of(&["core", "verticals/crm"]);
    let travel = migrations_of(&["core", "verticals/travel"]);

    // Migrate: every tenant to head on its own server, each reported with its version.
    let run = ws.strata(&["migrate", "--all", "--concurrency", "3", "--format", "json"]);
    run.expect(0);
    let json = run.json();
    for (slug, n, m) in [("here-crm", crm, here), ("there-crm", crm, there), ("there-travel", travel, there)] {
        let t = tenant_row(&json, slug);
        assert_eq!(t["status"], "ok", "{slug}: {t}");
        assert_eq!(t["applied"].as_array().unwrap().len(), n, "{slug}: {t}");
        assert_eq!(major(t), m, "{slug}: {t}");
    }
    // strata.toml says pg_version = 15: a tenant on an older server is warned, per tenant.
    for (slug, m) in [("here-crm", here), ("there-crm", there)] {
        let warned = tenant_row(&json, slug)["warnings"]
            .to_string()
            .contains("older than pg_version = 15");
        assert_eq!(warned, m < 15, "{slug} on {m}: {json}");
    }
    assert_eq!(history(&there_travel).len(), travel, "the history is on the tenant's own server");

    // A new core migration reaches both majors; the text table names each tenant's server.
    ws.write(
        "schema/core/0006_notes.sql",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n",
    );
    let run = ws.strata(&["migrate", "--all"]);
    run.expect(0);
    assert!(run.stdout.contains("postgres"), "{}", run.stdout);
    for (slug, version) in [("here-crm", server_version()), ("there-crm", other_version.clone())] {
        let line = line_of(&run.stdout, slug);
        assert!(line.contains(&version) && line.contains("ok"), "{slug}: {line}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("3 tenants: 3 ok"), "{}", run.stdout);

    // Status: all at head, per tenant, with the server's version (JSON and text).
    let status = ws.strata(&["status", "--format", "json"]);
    status.expect(0);
    let json = status.json();
    assert_eq!(json["at_head"], true, "{json}");
    for (slug, m) in [("here-crm", here), ("there-crm", there), ("there-travel", there)] {
        let t = tenant_row(&json, slug);
        assert_eq!((t["pending"].as_u64(), t["error"].is_null()), (Some(0), true), "{slug}: {t}");
        assert_eq!(major(t), m, "{slug}: {t}");
    }
    let text = ws.strata(&["status"]);
    text.expect(0);
    assert!(line_of(&text.stdout, "there-travel").contains(&other_version), "{}", text.stdout);
    assert!(line_of(&text.stdout, "here-crm").contains(&server_version()), "{}", text.stdout);
    assert!(text.stdout.contains("3 tenants, 3 at head, 0 not"), "{}", text.stdout);

    // Drift: each tenant replayed on a scratch cluster of its own major.
    let drift = ws.strata(&["drift", "--scratch", "auto", "--format", "json"]);
    drift.expect(0);
    let json = drift.json();
    for (slug, m) in [("here-crm", here), ("there-crm", there), ("there-travel", there)] {
        let t = tenant_row(&json, slug);
        assert_eq!((t["drifted"].as_bool(), t["error"].is_null()), (Some(false), true), "{slug}: {t}");
        assert_eq!(major(t), m, "{slug}: {t}");
    }
    sql(&there_crm, "ALTER TABLE notes ADD COLUMN rogue text");
    let drift = ws.strata(&["drift", "--scratch", "auto"]);
    drift.expect(1);
    assert!(
        drift.stdout.contains(&format!(
            "there-crm: DRIFT from its {} applied migrations on PostgreSQL {other_version}",
            crm + 1
        )),
        "{}",
        drift.stdout
    );
    assert!(drift.stdout.contains("+    column rogue text"), "{}", drift.stdout);
    for slug in ["here-crm", "there-travel"] {
        assert!(
            drift.stdout.contains(&format!("{slug}: no drift on PostgreSQL")),
            "{}",
            drift.stdout
        );
    }
    // `status --drift` replays on each tenant's own server: the same verdicts.
    let status = ws.strata(&["status", "--drift", "--format", "json"]);
    status.expect(1);
    let json = status.json();
    for (slug, drifted) in [("here-crm", false), ("there-crm", true), ("there-travel", false)] {
        assert_eq!(tenant_row(&json, slug)["drift"], drifted, "{slug}: {json}");
    }
}
