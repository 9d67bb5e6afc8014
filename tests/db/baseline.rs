//! `strata baseline --from TOOL` on a database each tool migrated: the
//! tool's own history table (its real DDL and rows, see tests/adopt), the
//! schema applied as the tool applies it; then baseline, status, migrate and
//! drift, and a later migration applied normally.

use crate::adopt;
use crate::common;

use adopt::{apply, bytes, ddl, snapshot, strata_rows, Repo};
use common::*;
use sha2::{Digest, Sha256, Sha384};

/// What one takeover expects.
struct Takeover<'a> {
    tenant: &'a str,
    conn: &'a str,
    tool: &'a str,
    table: &'a str,
    recorded: usize,
    pending: usize,
    /// A later migration in the layout's naming, applied by `migrate`.
    next: (&'a str, &'a str),
}

/// Baseline (dry run first), then status, migrate, drift; then a new
/// migration applies normally; the other tool's table is never written.
fn take_over(repo: &Repo, t: &Takeover) {
    let before = snapshot(t.conn, t.table);
    let dry = repo.strata(&["baseline", "--tenant", t.tenant, "--from", t.tool, "--dry-run", "--format", "json"]);
    let json = dry.json();
    let tenant = &json["tenants"][0];
    assert_eq!(tenant["status"], "would-record", "{}", dry.all());
    assert_eq!(tenant["recorded"].as_array().unwrap().len(), t.recorded, "{tenant}");
    assert_eq!(tenant["pending"], t.pending, "{tenant}");
    assert_eq!(tenant["drift_checked"], true, "{tenant}");
    assert!(strata_rows(t.conn).is_empty(), "a dry run writes nothing");
    let text = repo.strata(&["baseline", "--tenant", t.tenant, "--from", t.tool, "--dry-run"]);
    text.expect(0);
    assert!(text.stdout.contains("would record"), "{}", text.stdout);
    assert!(text.stdout.contains("mapped onto the migration files"), "{}", text.stdout);

    let run = repo.strata(&["baseline", "--tenant", t.tenant, "--from", t.tool, "--format", "json"]);
    let json = run.json();
    assert_eq!(json["tenants"][0]["status"], "recorded", "{}", run.all());
    run.expect(0);
    let rows = strata_rows(t.conn);
    assert_eq!(rows.len(), t.recorded, "{rows:?}");
    assert!(rows.iter().all(|r| r.ends_with(":applied:baseline")), "{rows:?}");
    let note = value(t.conn, "SELECT note FROM strata.schema_history LIMIT 1");
    assert!(note.starts_with(&format!("baseline from {} (", t.tool)), "{note}");
    assert_eq!(snapshot(t.conn, t.table), before, "{} was written", t.table);

    let status = repo.strata(&["status", "--tenant", t.tenant, "--format", "json"]).json();
    assert_eq!(status["tenants"][0]["pending"], t.pending, "{status}");
    if t.pending == 0 {
        let migrate = repo.strata(&["migrate", "--tenant", t.tenant, "--format", "json"]);
        let m = migrate.json();
        assert_eq!(m["tenants"][0]["status"], "up-to-date", "{}", migrate.all());
    }
    let drift = repo.strata(&["drift", "--tenant", t.tenant]);
    drift.expect(0);
    assert!(drift.stdout.contains("no drift"), "{}", drift.stdout);

    // Idempotent: nothing more to record.
    let again = repo.strata(&["baseline", "--tenant", t.tenant, "--from", t.tool, "--format", "json"]);
    assert_eq!(again.json()["tenants"][0]["status"], "up-to-date", "{}", again.all());

    repo.write(t.next.0, t.next.1);
    let migrate = repo.strata(&["migrate", "--tenant", t.tenant, "--format", "json"]);
    let m = migrate.json();
    assert_eq!(m["tenants"][0]["status"], "ok", "{}", migrate.all());
    assert_eq!(m["tenants"][0]["applied"].as_array().unwrap().len(), t.pending + 1, "{m}");
    assert!(has_table(t.conn, "later"), "the new migration ran");
    repo.strata(&["drift", "--tenant", t.tenant]).expect(0);
    let status = repo.strata(&["status", "--tenant", t.tenant, "--format", "json"]).json();
    assert_eq!(status["at_head"], true, "{status}");
    assert_eq!(snapshot(t.conn, t.table), before, "{} was written", t.table);
}

const LATER: &str = "CREATE TABLE later (id bigint PRIMARY KEY);\n";

#[test]
fn sqlx() {
    let db = database("adopt_sqlx");
    let files = ["1_create_items.sql", "2_index.sql", "10_note.sql"];
    apply(&db, "sqlx", &files);
    sql(&db, ddl::SQLX);
    for (v, f) in [(1, files[0]), (2, files[1]), (10, files[2])] {
        let sum = hex::encode(Sha384::digest(bytes("sqlx", f)));
        sql(
            &db,
            &format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ({v}, '{}', true, decode('{sum}', 'hex'), 1000)",
                f.split_once('_').unwrap().1.trim_end_matches(".sql").replace('_', " ")
            ),
        );
    }
    let repo = Repo::new("sqlx", None, &[("acme", &db)]);
    let dry = repo
        .strata(&["baseline", "--tenant", "acme", "--from", "sqlx", "--dry-run", "--format", "json"])
        .json();
    let mapping = dry["tenants"][0]["mapping"].as_array().unwrap().clone();
    assert!(mapping.iter().all(|r| r["checksum"] == "verified"), "{mapping:?}");
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "sqlx",
            table: "_sqlx_migrations",
            recorded: 3,
            pending: 0,
            next: ("20_later.sql", LATER),
        },
    );
}

#[test]
fn golang_migrate() {
    let db = database("adopt_golang_migrate");
    // Applied up to 2; 10 is pending.
    apply(&db, "golang-migrate", &["1_create_items.up.sql", "2_index.up.sql"]);
    sql(&db, ddl::GOLANG_MIGRATE);
    sql(&db, "INSERT INTO schema_migrations (version, dirty) VALUES (2, false)");
    let repo = Repo::new("golang-migrate", Some("golang-migrate"), &[("acme", &db)]);
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "golang-migrate",
            table: "schema_migrations",
            recorded: 2,
            pending: 1,
            next: ("20_later.up.sql", LATER),
        },
    );
}

#[test]
fn dbmate() {
    let db = database("adopt_dbmate");
    let files = [
        "20240101000000_create_items.sql",
        "20240102000000_index.sql",
        "20240103000000_note.sql",
    ];
    apply(&db, "dbmate", &files);
    sql(&db, ddl::DBMATE);
    sql(
        &db,
        "INSERT INTO schema_migrations (version) VALUES ('20240101000000'), ('20240102000000'), ('20240103000000')",
    );
    let repo = Repo::new("dbmate", None, &[("acme", &db)]);
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "dbmate",
            table: "schema_migrations",
            recorded: 3,
            pending: 0,
            next: (
                "20240201000000_later.sql",
                &format!("-- migrate:up\n{LATER}\n-- migrate:down\nDROP TABLE later;\n"),
            ),
        },
    );
}

#[test]
fn goose() {
    let db = database("adopt_goose");
    apply(&db, "goose", &["1_create_items.sql", "2_index.sql", "10_note.sql"]);
    sql(&db, &ddl::goose("goose_db_version"));
    sql(
        &db,
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, true), (2, true), (10, true)",
    );
    let repo = Repo::new("goose", None, &[("acme", &db)]);
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "goose",
            table: "goose_db_version",
            recorded: 3,
            pending: 0,
            next: ("20_later.sql", &format!("-- +goose Up\n{LATER}-- +goose Down\nDROP TABLE later;\n")),
        },
    );
}

/// Flyway's CRC-32 of each fixture file, computed by the JDK with Flyway's
/// algorithm (BufferedReader lines, java.util.zip.CRC32), not by strata.
const FLYWAY_CRC: &[(&str, &str, &str, i32)] = &[
    ("1", "create items", "V1__create_items.sql", -1177437398),
    ("1.1", "index", "V1.1__index.sql", 1402221435),
    ("1.2", "note", "V1.2__note.sql", 811173113),
    ("1.10", "note comment", "V1.10__note_comment.sql", 630658829),
    ("2", "tags", "V2__tags.sql", 1067520509),
];

#[test]
fn flyway() {
    let db = database("adopt_flyway");
    // V10 is not applied yet; the repeatable view is.
    let files: Vec<&str> = FLYWAY_CRC.iter().map(|(_, _, f, _)| *f).chain(["R__item_names.sql"]).collect();
    apply(&db, "flyway", &files);
    sql(&db, ddl::FLYWAY);
    sql(
        &db,
        "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) \
         VALUES (0, '0', '<< Flyway Schema Creation >>', 'SCHEMA', '\"public\"', NULL, 'postgres', 0, true)",
    );
    for (rank, (v, d, script, crc)) in FLYWAY_CRC.iter().enumerate() {
        sql(
            &db,
            &format!(
                "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) \
                 VALUES ({}, '{v}', '{d}', 'SQL', '{script}', {crc}, 'postgres', 12, true)",
                rank + 1
            ),
        );
    }
    sql(
        &db,
        "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) \
         VALUES (10, NULL, 'item names', 'SQL', 'R__item_names.sql', 322863430, 'postgres', 3, true)",
    );
    let repo = Repo::new("flyway", None, &[("acme", &db)]);
    let dry = repo
        .strata(&["baseline", "--tenant", "acme", "--from", "flyway", "--dry-run", "--format", "json"])
        .json();
    let mapping = dry["tenants"][0]["mapping"].as_array().unwrap().clone();
    let verified = mapping.iter().filter(|r| r["checksum"] == "verified").count();
    assert_eq!(verified, 6, "{mapping:?}");
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "flyway",
            table: "flyway_schema_history",
            recorded: 6,
            pending: 1,
            next: ("V20__later.sql", LATER),
        },
    );
    // The repeatable migration runs again when its file changes.
    repo.write(
        "R__item_names.sql",
        "CREATE OR REPLACE VIEW item_names AS SELECT id, name, note FROM items;\n",
    );
    let m = repo.strata(&["migrate", "--tenant", "acme", "--format", "json"]);
    assert_eq!(m.json()["tenants"][0]["applied"].as_array().unwrap().len(), 1, "{}", m.all());
    assert_eq!(
        value(
            &db,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'item_names'::regclass AND attnum > 0"
        ),
        "3"
    );
    repo.strata(&["drift", "--tenant", "acme"]).expect(0);
}

#[test]
fn diesel() {
    let db = database("adopt_diesel");
    let folders = [
        "00000000000000_diesel_initial_setup",
        "2019-11-15-182353_Add email notifications to crate owners",
        "2020-01-01-000000_index concurrently",
        "2020-02-01-000000_crème brûlée #1",
    ];
    let files: Vec<String> = folders.iter().map(|f| format!("{f}/up.sql")).collect();
    apply(&db, "diesel", &files.iter().map(String::as_str).collect::<Vec<_>>());
    sql(&db, ddl::DIESEL);
    sql(
        &db,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000'), ('20191115182353'), ('20200101000000'), ('20200201000000')",
    );
    let repo = Repo::new("diesel", None, &[("acme", &db)]);
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "diesel",
            table: "__diesel_schema_migrations",
            recorded: 4,
            pending: 0,
            next: ("2021-01-01-000000_later/up.sql", LATER),
        },
    );
}

#[test]
fn prisma() {
    let db = database("adopt_prisma");
    let folders = ["20240101000000_create_items", "20240102000000_note"];
    let files: Vec<String> = folders.iter().map(|f| format!("{f}/migration.sql")).collect();
    apply(&db, "prisma", &files.iter().map(String::as_str).collect::<Vec<_>>());
    sql(&db, ddl::PRISMA);
    for (i, (f, file)) in folders.iter().zip(&files).enumerate() {
        let sum = hex::encode(Sha256::digest(bytes("prisma", file)));
        sql(
            &db,
            &format!(
                "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) \
                 VALUES ('0000000{i}-0000-4000-8000-000000000000', '{sum}', now(), '{f}', now() - interval '{} minutes', 1)",
                10 - i
            ),
        );
    }
    let repo = Repo::new("prisma", None, &[("acme", &db)]);
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "prisma",
            table: "_prisma_migrations",
            recorded: 2,
            pending: 0,
            next: ("20240301000000_later/migration.sql", LATER),
        },
    );
}

#[test]
fn pop() {
    let db = database("adopt_pop");
    apply(
        &db,
        "pop",
        &[
            "20210101000001_items.up.sql",
            "20210101000002_index.postgres.autocommit.up.sql",
            "20210101000003_note.postgresql.up.sql",
        ],
    );
    sql(&db, ddl::POP);
    sql(
        &db,
        "INSERT INTO schema_migration (version) VALUES ('20210101000001'), ('20210101000002'), ('20210101000003')",
    );
    let repo = Repo::new("pop", None, &[("acme", &db)]);
    take_over(
        &repo,
        &Takeover {
            tenant: "acme",
            conn: &db,
            tool: "pop",
            table: "schema_migration",
            recorded: 3,
            pending: 0,
            next: ("20220101000000_later.up.sql", LATER),
        },
    );
}
