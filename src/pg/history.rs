//! `strata.schema_history`: what has been applied to one database.
//!
//! One row per migration, unique on (layer, version). A transactional
//! migration's row is inserted in the migration's own transaction, so the row
//! exists exactly when the migration's changes do. A no-transaction
//! migration gets a `started` row before its first statement and becomes
//! `applied` after its last; a crash or an error leaves `started`/`failed`,
//! and strata refuses to run that file again blindly. A row's `origin` says
//! whether strata ran the migration (`migrate`) or recorded it as already
//! applied without running it (`baseline`); `note` says where a baseline
//! came from.
//!
//! `strata.schema_errors` keeps the failures of transactional migrations (their
//! rows are rolled back with them) for `strata status`.
//! `strata.adopted_histories` names the history tables of other migration
//! tools a baseline read; drift leaves them out (strata never touches them).

use serde::Serialize;
use tokio_postgres::{Client, Row};

use super::conn::sql_error;
use super::{Error, Result, Target};

/// Who wrote a row: strata and its version.
pub const TOOL_VERSION: &str = concat!("strata ", env!("CARGO_PKG_VERSION"));

/// The identity of one migration's row.
pub struct Entry<'a> {
    pub layer: &'a str,
    pub version: &'a str,
    pub name: &'a str,
    pub checksum: &'a str,
    /// A repeatable migration keeps one row, rewritten each time it runs.
    pub repeatable: bool,
}

const INSERT_APPLIED: &str = "INSERT INTO strata.schema_history (layer, version, name, checksum, status, tool_version, execution_ms) \
                              VALUES ($1, $2, $3, $4, $5, $6, $7)";

const UPSERT_REPEATABLE: &str = "INSERT INTO strata.schema_history (layer, version, name, checksum, status, tool_version, execution_ms) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (layer, version) DO UPDATE SET \
                                 name = EXCLUDED.name, checksum = EXCLUDED.checksum, status = EXCLUDED.status, \
                                 tool_version = EXCLUDED.tool_version, execution_ms = EXCLUDED.execution_ms, error = NULL, \
                                 applied_at = now(), applied_by = current_user, origin = 'migrate', note = NULL";

/// Writes the row of a migration strata runs (`status` applied, or started
/// before the first statement of a no-transaction migration), on the
/// caller's connection: inside the migration's transaction when it has one.
pub async fn record(
    client: &Client,
    e: &Entry<'_>,
    status: Status,
    execution_ms: Option<i64>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let sql = if e.repeatable { UPSERT_REPEATABLE } else { INSERT_APPLIED };
    client
        .execute(
            sql,
            &[
                &e.layer,
                &e.version,
                &e.name,
                &e.checksum,
                &status.as_str(),
                &TOOL_VERSION,
                &execution_ms,
            ],
        )
        .await
}

/// Creates the strata schema and its tables when missing. Called under the
/// migrator lock, so two runners never race on it.
pub const SCHEMA_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS strata;
COMMENT ON SCHEMA strata IS 'Owned by the strata migrator: history of applied migrations. Never edit by hand.';
CREATE TABLE IF NOT EXISTS strata.schema_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer text NOT NULL,
    version text NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    status text NOT NULL DEFAULT 'applied' CHECK (status IN ('applied', 'started', 'failed')),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    tool_version text NOT NULL,
    execution_ms bigint,
    error text,
    origin text NOT NULL DEFAULT 'migrate' CHECK (origin IN ('migrate', 'baseline')),
    note text,
    CONSTRAINT schema_history_layer_version_key UNIQUE (layer, version)
);
CREATE TABLE IF NOT EXISTS strata.schema_errors (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer text NOT NULL,
    version text NOT NULL,
    name text NOT NULL,
    error text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    tool_version text NOT NULL
);
CREATE TABLE IF NOT EXISTS strata.adopted_histories (
    relation text PRIMARY KEY,
    tool text NOT NULL,
    adopted_at timestamptz NOT NULL DEFAULT now(),
    adopted_by text NOT NULL DEFAULT current_user,
    tool_version text NOT NULL
);
";

/// Columns added after the first release: added to an existing history
/// table only when missing (an ALTER TABLE on every run would lock it).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    (
        "origin",
        "ALTER TABLE strata.schema_history ADD COLUMN origin text NOT NULL DEFAULT 'migrate' CHECK (origin IN ('migrate', 'baseline'))",
    ),
    ("note", "ALTER TABLE strata.schema_history ADD COLUMN note text"),
];

/// The state of a history row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Applied,
    /// A no-transaction migration that began and did not finish.
    Started,
    /// A no-transaction migration that failed part-way.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Started => "started",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Applied, Status::Started, Status::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// How a history row came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// strata ran the migration.
    Migrate,
    /// `strata baseline` recorded it as applied without running it.
    Baseline,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Migrate => "migrate",
            Origin::Baseline => "baseline",
        }
    }
}

/// One row of `strata.schema_history`.
#[derive(Clone, Debug, Serialize)]
pub struct Applied {
    pub layer: String,
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub status: Status,
    /// UTC, ISO 8601.
    pub applied_at: String,
    pub applied_by: String,
    pub tool_version: String,
    pub execution_ms: Option<i64>,
    pub error: Option<String>,
    pub origin: Origin,
    /// Where a baseline came from (`baseline from goose (public.goose_db_version)`).
    pub note: Option<String>,
}

impl Applied {
    pub fn key(&self) -> (String, String) {
        (self.layer.clone(), self.version.clone())
    }

    pub fn is_applied(&self) -> bool {
        self.status == Status::Applied
    }
}

/// The last failure recorded in a database.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LastError {
    pub layer: String,
    pub version: String,
    pub name: String,
    pub error: String,
    pub at: String,
}

const UTC: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

/// A column of a row read from a database: a NULL where none may be, or a
/// surprising type, is an error naming the table and column (never a panic).
pub(crate) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize, target: &Target, table: &str) -> Result<T> {
    row.try_get(i).map_err(|e| Error::Sql {
        target: target.to_string(),
        context: format!("unexpected content in {table}.{}", row.columns().get(i).map_or("?", |c| c.name())),
        message: super::describe(&e),
    })
}

pub async fn ensure(client: &Client, target: &Target) -> Result<()> {
    client
        .batch_execute(SCHEMA_SQL)
        .await
        .map_err(sql_error(target, "cannot create strata.schema_history"))?;
    for (name, ddl) in ADDED_COLUMNS {
        let present = client
            .query_opt(
                "SELECT 1 FROM pg_attribute WHERE attrelid = 'strata.schema_history'::regclass AND attname = $1 AND NOT attisdropped",
                &[name],
            )
            .await
            .map_err(sql_error(target, "cannot read the columns of strata.schema_history"))?
            .is_some();
        if !present {
            client
                .batch_execute(ddl)
                .await
                .map_err(sql_error(target, format!("cannot add column {name} to strata.schema_history")))?;
        }
    }
    Ok(())
}

/// Whether the history table exists (it does not before the first run).
pub async fn exists(client: &Client, target: &Target) -> Result<bool> {
    let row = client
        .query_one("SELECT to_regclass('strata.schema_history') IS NOT NULL", &[])
        .await
        .map_err(sql_error(target, "cannot look for strata.schema_history"))?;
    column(&row, 0, target, "to_regclass")
}

/// Every history row, in the order they were written (empty when the table
/// does not exist yet). Tables from before `origin` existed read as `migrate`.
pub async fn read(client: &Client, target: &Target) -> Result<Vec<Applied>> {
    if !exists(client, target).await? {
        return Ok(Vec::new());
    }
    let has_added = client
        .query_opt(
            "SELECT 1 FROM pg_attribute WHERE attrelid = 'strata.schema_history'::regclass AND attname = 'note' AND NOT attisdropped",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot read the columns of strata.schema_history"))?
        .is_some();
    let extra = if has_added { "origin, note" } else { "'migrate'::text, NULL::text" };
    let sql = format!(
        "SELECT layer, version, name, checksum, status, to_char(applied_at AT TIME ZONE 'UTC', {UTC}), applied_by, tool_version, \
         execution_ms, error, {extra} FROM strata.schema_history ORDER BY id"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(sql_error(target, "cannot read strata.schema_history"))?;
    const T: &str = "strata.schema_history";
    rows.iter()
        .map(|r| {
            let status: String = column(r, 4, target, T)?;
            let origin: String = column(r, 10, target, T)?;
            Ok(Applied {
                layer: column(r, 0, target, T)?,
                version: column(r, 1, target, T)?,
                name: column(r, 2, target, T)?,
                checksum: column(r, 3, target, T)?,
                status: Status::parse(&status).ok_or_else(|| Error::Sql {
                    target: target.to_string(),
                    context: "unexpected content in strata.schema_history.status".into(),
                    message: format!("unknown status `{status}`"),
                })?,
                applied_at: column(r, 5, target, T)?,
                applied_by: column(r, 6, target, T)?,
                tool_version: column(r, 7, target, T)?,
                execution_ms: column(r, 8, target, T)?,
                error: column(r, 9, target, T)?,
                origin: if origin == "baseline" { Origin::Baseline } else { Origin::Migrate },
                note: column(r, 11, target, T)?,
            })
        })
        .collect()
}

/// The adopted history tables of other tools (`schema.table`), which drift
/// leaves out; empty before the first baseline.
pub async fn adopted_relations(client: &Client, target: &Target) -> Result<Vec<String>> {
    let row = client
        .query_one("SELECT to_regclass('strata.adopted_histories') IS NOT NULL", &[])
        .await
        .map_err(sql_error(target, "cannot look for strata.adopted_histories"))?;
    if !column::<bool>(&row, 0, target, "to_regclass")? {
        return Ok(Vec::new());
    }
    let rows = client
        .query("SELECT relation FROM strata.adopted_histories ORDER BY relation", &[])
        .await
        .map_err(sql_error(target, "cannot read strata.adopted_histories"))?;
    rows.iter().map(|r| column(r, 0, target, "strata.adopted_histories")).collect()
}

/// Records a failed transactional migration (best effort: the failure being
/// reported matters more than this row).
pub async fn record_error(client: &Client, layer: &str, version: &str, name: &str, error: &str) {
    let _ = client
        .execute(
            "INSERT INTO strata.schema_errors (layer, version, name, error, tool_version) VALUES ($1, $2, $3, $4, $5)",
            &[&layer, &version, &name, &error, &TOOL_VERSION],
        )
        .await;
}

/// The newest recorded failure of a migration that is still not applied, or
/// of an unfinished no-transaction file.
pub async fn last_error(client: &Client, target: &Target) -> Result<Option<LastError>> {
    if !exists(client, target).await? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT layer, version, name, error, at FROM (
            SELECT e.layer, e.version, e.name, e.error, e.occurred_at AS ts, to_char(e.occurred_at AT TIME ZONE 'UTC', {UTC}) AS at
              FROM strata.schema_errors e
             WHERE NOT EXISTS (SELECT 1 FROM strata.schema_history h
                                WHERE h.layer = e.layer AND h.version = e.version AND h.status = 'applied')
            UNION ALL
            SELECT h.layer, h.version, h.name, coalesce(h.error, 'started and did not finish'), h.applied_at,
                   to_char(h.applied_at AT TIME ZONE 'UTC', {UTC})
              FROM strata.schema_history h WHERE h.status <> 'applied'
         ) x ORDER BY ts DESC LIMIT 1"
    );
    let row = client
        .query_opt(&sql, &[])
        .await
        .map_err(sql_error(target, "cannot read strata.schema_errors"))?;
    const T: &str = "strata.schema_errors";
    row.map(|r| {
        Ok(LastError {
            layer: column(&r, 0, target, T)?,
            version: column(&r, 1, target, T)?,
            name: column(&r, 2, target, T)?,
            error: column(&r, 3, target, T)?,
            at: column(&r, 4, target, T)?,
        })
    })
    .transpose()
}
