//! Shared by the baseline tests: a repository holding one of the layout
//! fixtures (tests/fixtures/layouts), adopted with `strata init --from`, with
//! its tenants; the forward SQL of a fixture as its tool runs it; the real
//! history-table DDL of each tool.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{sql, value, Run};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts").join(name)
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A repository with a fixture in `db/migrations`, adopted as its core layer.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new(fixture_name: &str, layout: Option<&str>, tenants: &[(&str, &str)]) -> Repo {
        let dir = tempfile::Builder::new().prefix("strata-adopt-").tempdir().unwrap();
        copy_tree(&fixture(fixture_name), &dir.path().join("db/migrations"));
        let repo = Repo { dir };
        let mut args = vec!["init", "-q", "--from", "db/migrations"];
        if let Some(l) = layout {
            args.extend(["--layout", l]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&args)
            .current_dir(repo.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out).expect(0);
        let mut text = String::from("# test fleet\n");
        for (slug, conn) in tenants {
            text.push_str(&format!("\n[[tenant]]\nslug = \"{slug}\"\ndatabase = \"{conn}\"\n"));
        }
        std::fs::write(repo.dir.path().join("tenants.toml"), text).unwrap();
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("db/migrations")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.migrations().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn strata(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("--workspace")
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    }
}

/// The SQL a tool sends for a file: goose's and dbmate's up sections only,
/// goose's statement markers dropped; other files whole.
pub fn forward(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let marker = |l: &str, what: &[&str]| {
        let l = l.trim().to_ascii_lowercase().replace(' ', "");
        what.iter().any(|w| l.starts_with(w))
    };
    if lines.iter().any(|l| marker(l, &["--+gooseup"])) {
        let start = lines.iter().position(|l| marker(l, &["--+gooseup"])).unwrap() + 1;
        let end = lines.iter().position(|l| marker(l, &["--+goosedown"])).unwrap_or(lines.len());
        return lines[start..end]
            .iter()
            .filter(|l| !marker(l, &["--+goosestatement"]))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    if lines.iter().any(|l| marker(l, &["--migrate:up"])) {
        let start = lines.iter().position(|l| marker(l, &["--migrate:up"])).unwrap() + 1;
        let end = lines.iter().position(|l| marker(l, &["--migrate:down"])).unwrap_or(lines.len());
        return lines[start..end].iter().map(|l| format!("{l}\n")).collect();
    }
    text.to_string()
}

/// Runs the forward SQL of fixture files on a database, as their tool would.
pub fn apply(conn: &str, fixture_name: &str, files: &[&str]) {
    for f in files {
        let text = std::fs::read_to_string(fixture(fixture_name).join(f)).unwrap();
        sql(conn, &forward(&text));
    }
}

/// The file's text as bytes, for checksums.
pub fn bytes(fixture_name: &str, file: &str) -> Vec<u8> {
    std::fs::read(fixture(fixture_name).join(file)).unwrap()
}

/// A fingerprint of a table's rows, to prove strata never wrote to it.
pub fn snapshot(conn: &str, table: &str) -> String {
    value(
        conn,
        &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} t"),
    )
}

/// strata's history rows: `layer/version:status:origin`, in order.
pub fn strata_rows(conn: &str) -> Vec<String> {
    if value(conn, "SELECT to_regclass('strata.schema_history') IS NOT NULL") != "t" {
        return Vec::new();
    }
    sql(
        conn,
        "SELECT layer || '/' || version || ':' || status || ':' || origin FROM strata.schema_history ORDER BY id",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap_or_default())
    .collect()
}

/// The history tables as each tool creates them on PostgreSQL, from the
/// tools' own sources.
pub mod ddl {
    /// sqlx 0.8, sqlx-postgres/src/migrate.rs `ensure_migrations_table`.
    pub const SQLX: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);";
    /// golang-migrate v4, database/postgres/postgres.go `ensureVersionTable`.
    pub const GOLANG_MIGRATE: &str =
        "CREATE TABLE IF NOT EXISTS \"public\".\"schema_migrations\" (version bigint not null primary key, dirty boolean not null)";
    /// dbmate v2, pkg/driver/postgres/postgres.go `CreateMigrationsTable`.
    pub const DBMATE: &str = "create table if not exists public.schema_migrations (version varchar(255) primary key)";
    /// goose v3, internal/dialect/dialectquery/postgres.go `CreateTable`
    /// (goose then inserts version 0).
    pub fn goose(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
		id serial NOT NULL,
		version_id bigint NOT NULL,
		is_applied boolean NOT NULL,
		tstamp timestamp NULL default now(),
		PRIMARY KEY(id)
	);
INSERT INTO {table} (version_id, is_applied) VALUES (0, true);"
        )
    }
    /// Flyway 9/10, flyway-database-postgresql PostgreSQLDatabase.getRawCreateScript.
    pub const FLYWAY: &str = "CREATE TABLE \"public\".\"flyway_schema_history\" (
    \"installed_rank\" INT NOT NULL,
    \"version\" VARCHAR(50),
    \"description\" VARCHAR(200) NOT NULL,
    \"type\" VARCHAR(20) NOT NULL,
    \"script\" VARCHAR(1000) NOT NULL,
    \"checksum\" INTEGER,
    \"installed_by\" VARCHAR(100) NOT NULL,
    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),
    \"execution_time\" INTEGER NOT NULL,
    \"success\" BOOLEAN NOT NULL
);
ALTER TABLE \"public\".\"flyway_schema_history\" ADD CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\");
CREATE INDEX \"flyway_schema_history_s_idx\" ON \"public\".\"flyway_schema_history\" (\"success\");";
    /// diesel 2, diesel_migrations/src/migration/setup_migration_table.sql.
    pub const DIESEL: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);";
    /// Prisma 5, schema-engine's PostgreSQL connector `create_migrations_table`.
    pub const PRISMA: &str = "CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);";
    /// ory/x popx, popx/migrator.go `createTransactionalMigrationTable`.
    pub const POP: &str = "CREATE TABLE schema_migration (version VARCHAR (48) NOT NULL, version_self INT NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX schema_migration_version_idx ON schema_migration (version);
CREATE INDEX schema_migration_version_self_idx ON schema_migration (version_self);";
}
