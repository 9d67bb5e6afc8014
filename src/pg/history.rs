//! `strata.schema_history`: what has been applied to one database.
//!
//! One row per migration, unique on (layer, version). A transactional
//! migration's row is inserted in the migration's own transaction, so the row
//! exists exactly when the migration's changes do. A no-transaction
//! migration gets a `started` row before its first statement and becomes
//! `applied` after its last; a crash or an error leaves `started`/`failed`,
//! and strata refuses to run that file again blindly.
//!
//! `strata.schema_errors` keeps the failures of transactional migrations (their
//! rows are rolled back with them) for `strata status`.

use tokio_postgres::Client;

use super::conn::sql_error;
use super::{Result, Target};

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
";

/// One row of `strata.schema_history`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Applied {
    pub layer: String,
    pub version: String,
    pub name: String,
    pub checksum: String,
    /// `applied`, or `started`/`failed` for an unfinished no-transaction file.
    pub status: String,
    /// UTC, ISO 8601.
    pub applied_at: String,
    pub applied_by: String,
    pub tool_version: String,
    pub execution_ms: Option<i64>,
    pub error: Option<String>,
}

impl Applied {
    pub fn key(&self) -> (String, String) {
        (self.layer.clone(), self.version.clone())
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

pub async fn ensure(client: &Client, target: &Target) -> Result<()> {
    client
        .batch_execute(SCHEMA_SQL)
        .await
        .map_err(sql_error(target, "cannot create strata.schema_history"))
}

/// Whether the history table exists (it does not before the first run).
pub async fn exists(client: &Client, target: &Target) -> Result<bool> {
    let row = client
        .query_one("SELECT to_regclass('strata.schema_history') IS NOT NULL", &[])
        .await
        .map_err(sql_error(target, "cannot look for strata.schema_history"))?;
    Ok(row.get(0))
}

/// Every history row, in the order they were written (empty when the table
/// does not exist yet).
pub async fn read(client: &Client, target: &Target) -> Result<Vec<Applied>> {
    if !exists(client, target).await? {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT layer, version, name, checksum, status, to_char(applied_at AT TIME ZONE 'UTC', {UTC}), applied_by, tool_version, \
         execution_ms, error FROM strata.schema_history ORDER BY id"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(sql_error(target, "cannot read strata.schema_history"))?;
    Ok(rows
        .iter()
        .map(|r| Applied {
            layer: r.get(0),
            version: r.get(1),
            name: r.get(2),
            checksum: r.get(3),
            status: r.get(4),
            applied_at: r.get(5),
            applied_by: r.get(6),
            tool_version: r.get(7),
            execution_ms: r.get(8),
            error: r.get(9),
        })
        .collect())
}

/// Records a failed transactional migration (best effort: the failure being
/// reported matters more than this row).
pub async fn record_error(client: &Client, layer: &str, version: &str, name: &str, error: &str) {
    let _ = client
        .execute(
            "INSERT INTO strata.schema_errors (layer, version, name, error, tool_version) VALUES ($1, $2, $3, $4, $5)",
            &[&layer, &version, &name, &error, &crate::pg::apply::TOOL_VERSION],
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
    Ok(row.map(|r| LastError {
        layer: r.get(0),
        version: r.get(1),
        name: r.get(2),
        error: r.get(3),
        at: r.get(4),
    }))
}
