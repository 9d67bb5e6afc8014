//! `strata baseline` refuses what it cannot take over safely — a dirty
//! golang-migrate database, a sqlx checksum that no longer matches, a
//! recorded version with no file, a failed Prisma migration, a live schema
//! that differs from the replay — and writes nothing then. Also: `--to`,
//! `--table`, and `--all` with progress, a summary and `--max-failures`.

use crate::adopt;
use crate::common;

use adopt::{apply, ddl, snapshot, strata_rows, Repo};
use common::*;
use sha2::{Digest, Sha256, Sha384};

/// Runs a baseline that must be refused: exit 1, the tenant `refused` (or
/// `drifted`), the message, nothing written to strata's history.
#[track_caller]
fn refused(repo: &Repo, conn: &str, args: &[&str], status: &str, message: &str) -> serde_json::Value {
    let mut all = vec!["baseline", "--tenant", "acme", "--format", "json"];
    all.extend(args);
    let run = repo.strata(&all);
    run.expect(1);
    let json = run.json();
    let t = json["tenants"][0].clone();
    assert_eq!(t["status"], status, "{t}");
    let error = t["error"].as_str().unwrap_or_default();
    assert!(error.contains(message), "expected `{message}` in: {error}");
    assert!(strata_rows(conn).is_empty(), "nothing may be recorded: {:?}", strata_rows(conn));
    t
}

#[test]
fn a_dirty_golang_migrate_database_is_refused() {
    let db = database("refuse_dirty");
    apply(&db, "golang-migrate", &["1_create_items.up.sql"]);
    sql(&db, ddl::GOLANG_MIGRATE);
    sql(&db, "INSERT INTO schema_migrations (version, dirty) VALUES (2, true)");
    let repo = Repo::new("golang-migrate", Some("golang-migrate"), &[("acme", &db)]);
    let before = snapshot(&db, "schema_migrations");
    refused(
        &repo,
        &db,
        &["--from", "golang-migrate"],
        "refused",
        "public.schema_migrations is dirty at version 2",
    );
    assert_eq!(snapshot(&db, "schema_migrations"), before);
}

#[test]
fn a_changed_sqlx_migration_is_refused() {
    let db = database("refuse_sqlx_checksum");
    apply(&db, "sqlx", &["1_create_items.sql"]);
    sql(&db, ddl::SQLX);
    // The checksum of another text than the file's.
    let sum = hex::encode(Sha384::digest(b"CREATE TABLE items (id int);\n"));
    sql(
        &db,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (1, 'create items', true, decode('{sum}', 'hex'), 1)"
        ),
    );
    let repo = Repo::new("sqlx", None, &[("acme", &db)]);
    refused(
        &repo,
        &db,
        &["--from", "sqlx"],
        "refused",
        "db/migrations/1_create_items.sql: public._sqlx_migrations records the SHA-384 checksum",
    );
    // A failed (half-applied) sqlx migration too.
    sql(&db, "TRUNCATE _sqlx_migrations");
    let good = hex::encode(Sha384::digest(adopt::bytes("sqlx", "1_create_items.sql")));
    sql(
        &db,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (1, 'create items', true, decode('{good}', 'hex'), 1), (2, 'index', false, decode('{good}', 'hex'), 1)"
        ),
    );
    refused(&repo, &db, &["--from", "sqlx"], "refused", "records 2 (index) as failed");
}

#[test]
fn a_recorded_version_without_its_file_is_refused() {
    let db = database("refuse_missing");
    apply(&db, "dbmate", &["20240101000000_create_items.sql"]);
    sql(&db, ddl::DBMATE);
    sql(
        &db,
        "INSERT INTO schema_migrations (version) VALUES ('20240101000000'), ('20231231000000')",
    );
    let repo = Repo::new("dbmate", None, &[("acme", &db)]);
    refused(
        &repo,
        &db,
        &["--from", "dbmate"],
        "refused",
        "public.schema_migrations records 20231231000000 as applied, but layer core has no migration file for it",
    );
    // dbmate's table is not golang-migrate's, though both call it schema_migrations.
    refused(
        &repo,
        &db,
        &["--from", "golang-migrate"],
        "refused",
        "public.schema_migrations does not look like golang-migrate's history table (strata reads its columns version, dirty)",
    );
}

#[test]
fn a_failed_prisma_migration_is_refused_and_a_rolled_back_one_is_pending() {
    let db = database("refuse_prisma");
    let first = "20240101000000_create_items";
    apply(&db, "prisma", &[&format!("{first}/migration.sql")]);
    sql(&db, ddl::PRISMA);
    let sum = hex::encode(Sha256::digest(adopt::bytes("prisma", &format!("{first}/migration.sql"))));
    sql(
        &db,
        &format!(
            "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) \
             VALUES ('a', '{sum}', now(), '{first}', now() - interval '2 minutes', 1);
             INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count) \
             VALUES ('b', 'x', NULL, '20240102000000_note', 'ERROR: column \"note\" of relation \"items\" already exists', now(), 0)"
        ),
    );
    let repo = Repo::new("prisma", None, &[("acme", &db)]);
    refused(
        &repo,
        &db,
        &["--from", "prisma"],
        "refused",
        "public._prisma_migrations records 20240102000000_note as failed (ERROR: column \"note\" of relation \"items\" already exists)",
    );
    // `prisma migrate resolve --rolled-back` marks it: then it is pending.
    sql(&db, "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = 'b'");
    let run = repo.strata(&["baseline", "--tenant", "acme", "--from", "prisma", "--format", "json"]);
    let json = run.json();
    assert_eq!(json["tenants"][0]["status"], "recorded", "{}", run.all());
    assert_eq!(json["tenants"][0]["pending"], 1);
    let m = repo.strata(&["migrate", "--tenant", "acme", "--format", "json"]).json();
    assert_eq!(m["tenants"][0]["applied"].as_array().unwrap().len(), 1, "{m}");
    repo.strata(&["drift", "--tenant", "acme"]).expect(0);
}

#[test]
fn baseline_to_is_drift_gated() {
    let db = database("baseline_to");
    // Applied by hand, up to 0002.
    apply(&db, "native-names", &["0001_crème brûlée.sql", "0002_#hash tag.sql"]);
    let repo = Repo::new("native-names", None, &[("acme", &db)]);
    let bad = repo.strata(&["baseline", "--tenant", "acme", "--to", "core@0009"]);
    bad.expect(2);
    assert!(
        bad.stderr.contains("layer core has no migration 0009 (its versions: 0001 to 0003)"),
        "{}",
        bad.all()
    );
    let bad = repo.strata(&["baseline", "--tenant", "acme", "--to", "verticals/crm@1"]);
    bad.expect(2);
    assert!(bad.stderr.contains("the workspace has no layer verticals/crm"), "{}", bad.all());
    // An extra column the history does not explain: refused with the diff.
    sql(&db, "ALTER TABLE items ADD COLUMN extra int");
    let t = refused(&repo, &db, &["--to", "core@0002"], "drifted", "the live schema differs");
    let diff = t["diff"].as_str().unwrap();
    assert!(diff.contains("+    column extra integer"), "{diff}");
    // Reviewed: --force records anyway, and says so.
    let forced = repo.strata(&["baseline", "--tenant", "acme", "--to", "core@2", "--force", "--format", "json"]);
    assert_eq!(forced.json()["tenants"][0]["status"], "recorded", "{}", forced.all());
    assert_eq!(strata_rows(&db), ["core/0001:applied:baseline", "core/0002:applied:baseline"]);
    assert!(value(&db, "SELECT note FROM strata.schema_history LIMIT 1").contains("--force"));
    sql(&db, "ALTER TABLE items DROP COLUMN extra");
    let m = repo.strata(&["migrate", "--tenant", "acme", "--format", "json"]).json();
    assert_eq!(m["tenants"][0]["applied"].as_array().unwrap().len(), 1, "{m}");
    repo.strata(&["drift", "--tenant", "acme"]).expect(0);

    // A clean database is recorded without --force.
    let clean = database("baseline_to_clean");
    apply(
        &clean,
        "native-names",
        &["0001_crème brûlée.sql", "0002_#hash tag.sql", "0003_with  two spaces.sql"],
    );
    let repo = Repo::new("native-names", None, &[("clean", &clean)]);
    let run = repo.strata(&["baseline", "--tenant", "clean", "--to", "core@0003_with  two spaces.sql"]);
    run.expect(0);
    assert!(run.stdout.contains("1 tenants: 1 recorded"), "{}", run.stdout);
    assert_eq!(strata_rows(&clean).len(), 3);
    let status = repo.strata(&["status", "--format", "json"]).json();
    assert_eq!(status["at_head"], true, "{status}");
}

#[test]
fn a_renamed_history_table_is_read_with_table() {
    let db = database("baseline_table");
    apply(&db, "goose", &["1_create_items.sql", "2_index.sql", "10_note.sql"]);
    sql(&db, "CREATE SCHEMA meta");
    sql(&db, &ddl::goose("meta.migrations"));
    sql(
        &db,
        "INSERT INTO meta.migrations (version_id, is_applied) VALUES (1, true), (2, true), (10, true)",
    );
    let repo = Repo::new("goose", None, &[("acme", &db)]);
    let missing = repo.strata(&["baseline", "--tenant", "acme", "--from", "goose", "--format", "json"]);
    missing.expect(1);
    let error = missing.json()["tenants"][0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("no table goose_db_version in this database") && error.contains("--table"),
        "{error}"
    );
    let run = repo.strata(&[
        "baseline",
        "--tenant",
        "acme",
        "--from",
        "goose",
        "--table",
        "meta.migrations",
        "--format",
        "json",
    ]);
    let json = run.json();
    assert_eq!(json["tenants"][0]["status"], "recorded", "{}", run.all());
    assert_eq!(json["tenants"][0]["from"], "meta.migrations");
    repo.strata(&["drift", "--tenant", "acme"]).expect(0);
}

#[test]
fn baseline_all_shows_progress_a_summary_and_stops_after_max_failures() {
    let dbs: Vec<String> = ["fleet_a", "fleet_b", "fleet_c"]
        .iter()
        .map(|n| database(&format!("baseline_{n}")))
        .collect();
    for (i, db) in dbs.iter().enumerate() {
        apply(db, "golang-migrate", &["1_create_items.up.sql", "2_index.up.sql"]);
        sql(db, ddl::GOLANG_MIGRATE);
        let dirty = if i == 1 { "true" } else { "false" };
        sql(db, &format!("INSERT INTO schema_migrations (version, dirty) VALUES (2, {dirty})"));
    }
    let tenants = [("alpha", dbs[0].as_str()), ("bravo", dbs[1].as_str()), ("charlie", dbs[2].as_str())];
    let repo = Repo::new("golang-migrate", Some("golang-migrate"), &tenants);
    let run = repo.strata(&[
        "baseline",
        "--all",
        "--from",
        "golang-migrate",
        "--concurrency",
        "1",
        "--max-failures",
        "1",
    ]);
    run.expect(1);
    for line in [
        "[alpha] started",
        "[alpha] recorded (2 recorded, 1 pending)",
        "[bravo] refused: public.schema_migrations is dirty at version 2",
        "3 tenants: 1 not-started, 1 recorded, 1 refused",
    ] {
        assert!(run.stdout.contains(line), "missing `{line}` in:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("[charlie] started"), "{}", run.stdout);
    assert_eq!(strata_rows(&dbs[0]).len(), 2);
    assert!(strata_rows(&dbs[2]).is_empty());
    // Without the limit, the rest is taken over; bravo still refuses.
    let json = repo
        .strata(&["baseline", "--all", "--from", "golang-migrate", "--format", "json"])
        .json();
    let statuses: Vec<&str> = json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["up-to-date", "refused", "recorded"]);
    assert_eq!(json["summary"]["refused"], 1);
}

/// `--to` on a vertical records the core layer below it whole; the rest of
/// the vertical stays pending.
#[test]
fn baseline_to_a_vertical_takes_core_whole() {
    let db = database("baseline_to_vertical");
    let ws = Workspace::new(&[tenant("alpenrose", Some("crm"), db.clone())]);
    ws.strata(&["migrate", "--tenant", "alpenrose"]).expect(0);
    // As if another tool had migrated it: strata's history goes.
    sql(&db, "DROP SCHEMA strata CASCADE");
    let out = ws.strata(&[
        "baseline",
        "--tenant",
        "alpenrose",
        "--to",
        "verticals/crm@0002",
        "--format",
        "json",
    ]);
    let json = out.json();
    let t = &json["tenants"][0];
    // 0003 is applied in the database but not recorded: the gate sees it.
    assert_eq!(t["status"], "drifted", "{}", out.all());
    let out = ws.strata(&[
        "baseline",
        "--tenant",
        "alpenrose",
        "--to",
        "verticals/crm@0003",
        "--format",
        "json",
    ]);
    let json = out.json();
    let t = &json["tenants"][0];
    assert_eq!(t["status"], "recorded", "{}", out.all());
    assert_eq!(
        t["recorded"].as_array().unwrap().len(),
        migrations_of(&["core", "verticals/crm"]),
        "{t}"
    );
    let rows = adopt::strata_rows(&db);
    assert!(
        rows.iter().any(|r| r.starts_with("core/0005:")) && rows.iter().any(|r| r.starts_with("verticals/crm/0003:")),
        "{rows:?}"
    );
    let status = ws.strata(&["status", "--tenant", "alpenrose", "--format", "json"]).json();
    assert_eq!(status["at_head"], true, "{status}");
    ws.strata(&["drift", "--tenant", "alpenrose"]).expect(0);
}
