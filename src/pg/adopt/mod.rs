//! Reading the history tables other migration tools keep, so that `strata
//! baseline --from TOOL` can take over a database they migrated.
//!
//! | tool | table | one row per | state | checksum |
//! |---|---|---|---|---|
//! | sqlx | `_sqlx_migrations` | version | `success` | SHA-384 |
//! | golang-migrate | `schema_migrations` | (one row: the current version) | `dirty` | — |
//! | dbmate | `schema_migrations` | version | — | — |
//! | goose | `goose_db_version` | apply or rollback (the latest counts) | `is_applied` | — |
//! | flyway | `flyway_schema_history` | run (`installed_rank`) | `success`, `type` | CRC-32 |
//! | diesel | `__diesel_schema_migrations` | version | — | — |
//! | prisma | `_prisma_migrations` | attempt | `finished_at`, `rolled_back_at` | SHA-256 |
//! | pop | `schema_migration` | version | — | — |
//!
//! The table is only ever read (strata writes its own history); reading
//! happens again inside the transaction that writes strata's rows, so a
//! tool that migrated in between is noticed.

pub mod checksum;
pub mod mapping;

use serde::Serialize;
use tokio_postgres::{Client, Row};

use super::conn::sql_error;
use super::history::column;
use super::{quote_ident, Result, Target};
use crate::workspace::Layout;

/// A migration tool whose history strata reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Sqlx,
    GolangMigrate,
    Dbmate,
    Goose,
    Flyway,
    Diesel,
    Prisma,
    Pop,
}

impl Tool {
    pub const ALL: [Tool; 8] = [
        Tool::Sqlx,
        Tool::GolangMigrate,
        Tool::Dbmate,
        Tool::Goose,
        Tool::Flyway,
        Tool::Diesel,
        Tool::Prisma,
        Tool::Pop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Dbmate => "dbmate",
            Tool::Goose => "goose",
            Tool::Flyway => "flyway",
            Tool::Diesel => "diesel",
            Tool::Prisma => "prisma",
            Tool::Pop => "pop",
        }
    }

    pub fn from_name(name: &str) -> Option<Tool> {
        match name {
            "popx" => Some(Tool::Pop),
            _ => Self::ALL.iter().copied().find(|t| t.name() == name),
        }
    }

    /// The table the tool creates unless configured otherwise.
    pub fn default_table(self) -> &'static str {
        match self {
            Tool::Sqlx => "_sqlx_migrations",
            Tool::GolangMigrate | Tool::Dbmate => "schema_migrations",
            Tool::Goose => "goose_db_version",
            Tool::Flyway => "flyway_schema_history",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Prisma => "_prisma_migrations",
            Tool::Pop => "schema_migration",
        }
    }

    /// The checksum the tool records, if any.
    pub fn checksum(self) -> Option<&'static str> {
        match self {
            Tool::Sqlx => Some("SHA-384"),
            Tool::Flyway => Some("CRC-32"),
            Tool::Prisma => Some("SHA-256"),
            _ => None,
        }
    }

    /// The tool that writes a layout's files (native and plain have none).
    pub fn for_layout(layout: Layout) -> Option<Tool> {
        match layout {
            Layout::Sqlx => Some(Tool::Sqlx),
            Layout::GolangMigrate => Some(Tool::GolangMigrate),
            Layout::Dbmate => Some(Tool::Dbmate),
            Layout::Goose => Some(Tool::Goose),
            Layout::Flyway => Some(Tool::Flyway),
            Layout::Diesel => Some(Tool::Diesel),
            Layout::Prisma => Some(Tool::Prisma),
            Layout::Pop => Some(Tool::Pop),
            Layout::Native | Layout::Plain => None,
        }
    }

    /// The columns strata reads, for a message when a table is not this tool's.
    fn columns(self) -> &'static str {
        match self {
            Tool::Sqlx => "version, description, success, checksum, installed_on",
            Tool::GolangMigrate => "version, dirty",
            Tool::Dbmate | Tool::Pop => "version",
            Tool::Goose => "id, version_id, is_applied, tstamp",
            Tool::Flyway => "installed_rank, version, description, type, script, checksum, success, installed_on",
            Tool::Diesel => "version, run_on",
            Tool::Prisma => "id, migration_name, checksum, finished_at, rolled_back_at, logs, started_at",
        }
    }
}

/// A table of a database: its schema and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Relation {
    pub schema: String,
    pub name: String,
}

impl Relation {
    /// Quoted, for SQL (and for `to_regclass`).
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// As shown: `schema.name`.
    pub fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// How the other tool recorded a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordedState {
    Applied,
    /// sqlx `success = false`, Flyway `success = false`, Prisma started and
    /// neither finished nor rolled back: possibly half-applied.
    Failed,
    /// golang-migrate `dirty = true`: a migration failed part-way.
    Dirty,
    /// Rolled back (goose `is_applied = false`, Prisma `rolled_back_at`).
    RolledBack,
    /// A Flyway `BASELINE` row: every version up to it counts as applied.
    Baseline,
    /// A Flyway `UNDO_SQL` row: the version was undone.
    Undone,
    /// A Flyway `DELETE` row: `flyway repair` removed the version.
    Deleted,
}

/// The tool's checksum of a migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Checksum {
    Sqlx(String),
    Flyway(i32),
    Prisma(String),
}

impl Checksum {
    pub fn shown(&self) -> String {
        match self {
            Checksum::Sqlx(hex) | Checksum::Prisma(hex) => hex.clone(),
            Checksum::Flyway(n) => n.to_string(),
        }
    }
}

/// One migration as the other tool recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The version as the tool stores it (for Prisma the folder name; empty
    /// for a Flyway repeatable migration, known by its description).
    pub version: String,
    pub description: Option<String>,
    pub repeatable: bool,
    pub state: RecordedState,
    pub checksum: Option<Checksum>,
    /// When the tool recorded it (UTC where the tool stores a time zone).
    pub at: Option<String>,
    /// The tool's own words: a Flyway row's type and script, the first
    /// line of Prisma's logs.
    pub detail: Option<String>,
}

impl Recorded {
    pub fn new(version: String, state: RecordedState) -> Recorded {
        Recorded {
            version,
            description: None,
            repeatable: false,
            state,
            checksum: None,
            at: None,
            detail: None,
        }
    }

    /// `20240101000000 (create items)` or `R (item names)`.
    pub fn shown(&self) -> String {
        let v = if self.repeatable { "R" } else { self.version.as_str() };
        match &self.description {
            Some(d) if !d.is_empty() && *d != self.version => format!("{v} ({d})"),
            _ => v.to_string(),
        }
    }
}

/// The history another tool keeps in one database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignHistory {
    pub tool: Tool,
    pub relation: Relation,
    /// In the tool's order of record.
    pub rows: Vec<Recorded>,
}

/// Why another tool's history cannot be taken over.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "no table {table} in this database (looked up with search_path {search_path}); if {tool} was configured \
         with another table, pass --table [schema.]name"
    )]
    NoTable {
        tool: &'static str,
        table: String,
        search_path: String,
    },
    #[error("{relation} does not look like {tool}'s history table (strata reads its columns {columns}): {message}")]
    NotTheToolsTable {
        relation: String,
        tool: &'static str,
        columns: &'static str,
        message: String,
    },
    #[error(transparent)]
    Mapping(#[from] mapping::MappingError),
    #[error("{what} changed while the baseline was being prepared (a migrator ran meanwhile?); run the baseline again")]
    Changed { what: String },
}

const UTC_TZ: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";
const LOCAL: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS'";

/// Finds the tool's table: `--table [schema.]name`, or its default name
/// looked up through the connection's search_path.
pub async fn resolve(client: &Client, target: &Target, tool: Tool, table: Option<&str>) -> Result<Relation> {
    let asked = table.unwrap_or(tool.default_table());
    let quoted = match asked.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(asked),
    };
    let row = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1)",
            &[&quoted],
        )
        .await
        .map_err(sql_error(target, format!("cannot look up {asked}")))?;
    match row {
        Some(r) => Ok(Relation {
            schema: column(&r, 0, target, "pg_namespace")?,
            name: column(&r, 1, target, "pg_class")?,
        }),
        None => {
            let search_path: String = client
                .query_one("SELECT current_setting('search_path')", &[])
                .await
                .map_err(sql_error(target, "cannot read search_path"))
                .and_then(|r| column(&r, 0, target, "search_path"))?;
            Err(Refusal::NoTable {
                tool: tool.name(),
                table: asked.to_string(),
                search_path,
            }
            .into())
        }
    }
}

/// Reads the tool's history from its table.
pub async fn read(client: &Client, target: &Target, tool: Tool, relation: &Relation) -> Result<ForeignHistory> {
    let r = relation.sql();
    let sql = match tool {
        Tool::Sqlx => format!(
            "SELECT version::text, description, success, encode(checksum, 'hex'), to_char(installed_on AT TIME ZONE 'UTC', {UTC_TZ}) \
             FROM {r} ORDER BY version"
        ),
        Tool::GolangMigrate => format!("SELECT version::text, dirty FROM {r}"),
        Tool::Dbmate | Tool::Pop => format!("SELECT version::text FROM {r} ORDER BY version"),
        Tool::Goose => format!("SELECT version_id::text, is_applied, to_char(tstamp, {LOCAL}) FROM {r} ORDER BY id"),
        Tool::Flyway => format!(
            "SELECT version, description, type, script, checksum, success, to_char(installed_on, {LOCAL}) FROM {r} \
             ORDER BY installed_rank"
        ),
        Tool::Diesel => format!("SELECT version::text, to_char(run_on, {LOCAL}) FROM {r} ORDER BY version"),
        Tool::Prisma => format!(
            "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, logs, \
             to_char(started_at AT TIME ZONE 'UTC', {UTC_TZ}) FROM {r} ORDER BY started_at, id"
        ),
    };
    let rows = client.query(&sql, &[]).await.map_err(|e| match super::sqlstate(&e) {
        // undefined column, undefined function or operator, datatype mismatch: another table.
        Some("42703" | "42883" | "42804" | "22P02") => super::Error::from(Refusal::NotTheToolsTable {
            relation: relation.shown(),
            tool: tool.name(),
            columns: tool.columns(),
            message: super::describe(&e),
        }),
        _ => sql_error(target, format!("cannot read {}", relation.shown()))(e),
    })?;
    let t = relation.shown();
    let rows = match tool {
        Tool::Sqlx => rows.iter().map(|row| sqlx_row(row, target, &t)).collect::<Result<_>>()?,
        Tool::GolangMigrate => rows
            .iter()
            .map(|row| {
                let dirty: bool = column(row, 1, target, &t)?;
                let state = if dirty { RecordedState::Dirty } else { RecordedState::Applied };
                Ok(Recorded::new(column(row, 0, target, &t)?, state))
            })
            .collect::<Result<_>>()?,
        Tool::Dbmate | Tool::Pop => rows
            .iter()
            .map(|row| Ok(Recorded::new(column(row, 0, target, &t)?, RecordedState::Applied)))
            .collect::<Result<_>>()?,
        Tool::Goose => goose_rows(&rows, target, &t)?,
        Tool::Flyway => rows
            .iter()
            .filter_map(|row| flyway_row(row, target, &t).transpose())
            .collect::<Result<_>>()?,
        Tool::Diesel => rows
            .iter()
            .map(|row| {
                let mut rec = Recorded::new(column(row, 0, target, &t)?, RecordedState::Applied);
                rec.at = column(row, 1, target, &t)?;
                Ok(rec)
            })
            .collect::<Result<_>>()?,
        Tool::Prisma => prisma_rows(&rows, target, &t)?,
    };
    Ok(ForeignHistory {
        tool,
        relation: relation.clone(),
        rows,
    })
}

fn sqlx_row(row: &Row, target: &Target, t: &str) -> Result<Recorded> {
    let success: bool = column(row, 2, target, t)?;
    let mut rec = Recorded::new(
        column(row, 0, target, t)?,
        if success { RecordedState::Applied } else { RecordedState::Failed },
    );
    rec.description = column(row, 1, target, t)?;
    rec.checksum = column::<Option<String>>(row, 3, target, t)?.map(Checksum::Sqlx);
    rec.at = column(row, 4, target, t)?;
    Ok(rec)
}

/// goose inserts a row per apply (and, before v3.10, per rollback); the
/// latest row of a version decides. Version 0 is goose's own first row.
fn goose_rows(rows: &[Row], target: &Target, t: &str) -> Result<Vec<Recorded>> {
    let mut out: Vec<Recorded> = Vec::new();
    for row in rows {
        let version: String = column(row, 0, target, t)?;
        if version == "0" {
            continue;
        }
        let applied: bool = column(row, 1, target, t)?;
        let mut rec = Recorded::new(
            version,
            if applied {
                RecordedState::Applied
            } else {
                RecordedState::RolledBack
            },
        );
        rec.at = column(row, 2, target, t)?;
        out.retain(|r| r.version != rec.version);
        out.push(rec);
    }
    Ok(out)
}

/// A Flyway row; `None` for Flyway's own markers (the schema it created,
/// the table it found).
fn flyway_row(row: &Row, target: &Target, t: &str) -> Result<Option<Recorded>> {
    let version: Option<String> = column(row, 0, target, t)?;
    let kind: String = column(row, 2, target, t)?;
    if matches!(kind.as_str(), "SCHEMA" | "TABLE") {
        return Ok(None);
    }
    let script: String = column(row, 3, target, t)?;
    let success: bool = column(row, 5, target, t)?;
    let state = match kind.as_str() {
        _ if !success => RecordedState::Failed,
        "BASELINE" => RecordedState::Baseline,
        "UNDO_SQL" | "UNDO_JDBC" | "UNDO_SCRIPT" => RecordedState::Undone,
        "DELETE" => RecordedState::Deleted,
        _ => RecordedState::Applied,
    };
    let mut rec = Recorded::new(version.clone().unwrap_or_default(), state);
    rec.repeatable = version.is_none();
    rec.description = column(row, 1, target, t)?;
    rec.checksum = column::<Option<i32>>(row, 4, target, t)?.map(Checksum::Flyway);
    rec.at = column(row, 6, target, t)?;
    rec.detail = Some(format!("{kind} {script}"));
    Ok(Some(rec))
}

/// Prisma writes a row per attempt: a migration is applied when an attempt
/// finished and was not rolled back, failed when its last attempt neither
/// finished nor was rolled back, rolled back when every attempt was.
fn prisma_rows(rows: &[Row], target: &Target, t: &str) -> Result<Vec<Recorded>> {
    let mut out: Vec<Recorded> = Vec::new();
    for row in rows {
        let name: String = column(row, 0, target, t)?;
        let finished: bool = column(row, 2, target, t)?;
        let rolled_back: bool = column(row, 3, target, t)?;
        let logs: Option<String> = column(row, 4, target, t)?;
        let state = match (finished, rolled_back) {
            (_, true) => RecordedState::RolledBack,
            (true, false) => RecordedState::Applied,
            (false, false) => RecordedState::Failed,
        };
        let mut rec = Recorded::new(name.clone(), state);
        rec.checksum = Some(Checksum::Prisma(column(row, 1, target, t)?));
        rec.at = column(row, 5, target, t)?;
        rec.detail = logs.and_then(|l| l.lines().find(|l| !l.trim().is_empty()).map(str::to_string));
        match out.iter_mut().find(|r| r.version == name) {
            // A later attempt replaces a rolled-back one; an applied one stays.
            Some(prev) if prev.state != RecordedState::Applied => *prev = rec,
            Some(_) => {}
            None => out.push(rec),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_and_layouts() {
        for t in Tool::ALL {
            assert_eq!(Tool::from_name(t.name()), Some(t));
        }
        for l in Layout::ALL {
            if let Some(t) = Tool::for_layout(l) {
                assert_eq!(t.name(), l.name());
            }
        }
        assert_eq!(Tool::Goose.default_table(), "goose_db_version");
    }
}
