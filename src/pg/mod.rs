//! Live PostgreSQL: connections, the history table, the one-migrator lock,
//! applying migrations, catalog introspection and throwaway clusters.
//!
//! Everything here talks to a real server through tokio-postgres, connected
//! the way libpq connects ([`conn`]: TLS, passwords, service files, several
//! hosts). Identifiers are always quoted with [`quote_ident`], and connection
//! strings are only ever shown through [`conn::Target`]'s redacting Display.

pub mod adopt;
pub mod apply;
pub mod baseline;
pub mod bindir;
pub mod cluster;
pub mod conn;
pub mod history;
pub mod introspect;
pub mod isolation;
pub mod live_catalog;
pub mod lock;
pub mod retry;
pub mod runner;
pub mod scratch;
pub mod shadow;
pub mod version;

pub use conn::{connect, Target};

/// Errors of live database work. Each names the database (redacted) or the
/// migration file it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("environment variable {var} is not set (named by `{spec}`)")]
    EnvMissing { var: String, spec: String },
    #[error("invalid connection string {shown}: {message}")]
    BadTarget { shown: String, message: String },
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("{target}: {context}: {message}")]
    Sql { target: String, context: String, message: String },
    #[error(
        "{file}: applied migration was changed on disk (applied checksum {applied}, file checksum {on_disk}); \
         released migrations are never edited: restore the file, or pass --allow-changed after review"
    )]
    ChangedMigration { file: String, applied: String, on_disk: String },
    #[error(
        "{layer}/{version} ({name}) is recorded as applied (checksum {applied}) but its file is missing; \
         restore it, or pass --allow-changed after review"
    )]
    MissingMigration {
        layer: String,
        version: String,
        name: String,
        applied: String,
    },
    #[error("{0}")]
    UnfinishedMigration(Box<Unfinished>),
    #[error("{file}: numbered below the applied head {head} of layer {layer}; migrations are applied in order")]
    OutOfOrder { file: String, layer: String, head: String },
    #[error("extension {name} is not available on this server: install {package}")]
    ExtensionUnavailable { name: String, package: String },
    #[error(
        "another migrator holds the strata lock on {target}: pid {pid}, application_name '{application}', user {user}, \
         running since {since}; gave up after waiting {waited_s}s (--lock-wait)"
    )]
    LockHeld {
        target: String,
        pid: i32,
        application: String,
        user: String,
        since: String,
        waited_s: u64,
    },
    #[error(
        "{target} is reached through a connection pooler that does not keep sessions (PgBouncer pool_mode = transaction \
         or statement): strata's one-migrator lock is a session advisory lock, which such a pooler does not keep with \
         this session between transactions, so two migrators could run at once. Connect strata to PostgreSQL directly, \
         or through a pool in session mode (PgBouncer: pool_mode = session)"
    )]
    PoolerMode { target: String },
    #[error(
        "{target}: the server connection the pooler gave strata already holds the strata migrator lock, left by an \
         earlier client; the pooler must reset server connections (PgBouncer: server_reset_query = DISCARD ALL)"
    )]
    PoolerLeftLock { target: String },
    #[error("{file}:{line}: {message}")]
    Statement { file: String, line: u32, message: String },
    #[error(
        "{file}:{line}: still blocked by another session's lock after {attempts} attempts (lock_timeout {lock_timeout}): {message}; \
         nothing of this migration was kept"
    )]
    LockTimeout {
        file: String,
        line: u32,
        attempts: u32,
        lock_timeout: String,
        message: String,
    },
    #[error("{0}")]
    Cluster(String),
    #[error(transparent)]
    Refused(Box<adopt::Refusal>),
    #[error(transparent)]
    Workspace(#[from] crate::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<adopt::Refusal> for Error {
    fn from(r: adopt::Refusal) -> Error {
        Error::Refused(Box::new(r))
    }
}

/// A no-transaction migration recorded as started or failed: it may be
/// half-applied, so strata will not run it again on its own.
#[derive(Debug)]
pub struct Unfinished {
    pub file: String,
    pub layer: String,
    pub version: String,
    /// `was started` or `failed`.
    pub state: String,
    pub at: String,
    /// ` (the error)` or empty.
    pub error: String,
}

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: a no-transaction migration {} at {} and did not finish{}; it may be half-applied, so strata will not run it \
             again. Inspect the database and complete it by hand, then record it with `UPDATE strata.schema_history SET \
             status = 'applied' WHERE layer = '{}' AND version = '{}'` (or DELETE that row to let strata run the file again)",
            self.file, self.state, self.at, self.error, self.layer, self.version
        )
    }
}

/// The tokio runtime every live command runs on (one builder for all).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the async runtime: {e}")))
}

/// `"name"` with embedded double quotes doubled: safe for any identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded single quotes doubled (standard_conforming_strings
/// is on in every supported PostgreSQL version, so backslashes are literal).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(err: &tokio_postgres::Error) -> Option<&str> {
    err.as_db_error().map(|d| d.code().code())
}

/// A one-line description of a driver error: the server's message with its
/// SQLSTATE, detail and hint, or the client-side cause.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => {
            let mut s = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                let c = cause.to_string();
                if !s.contains(&c) {
                    s.push_str(&format!(": {c}"));
                }
                source = cause.source();
            }
            s
        }
    }
}

/// The package that provides a well-known extension (for the preflight's
/// message); other extensions are named as they are.
pub fn extension_package(name: &str) -> String {
    match name {
        "vector" => "pgvector".into(),
        "postgis" | "postgis_topology" | "postgis_raster" => "postgis".into(),
        "timescaledb" => "timescaledb".into(),
        "pg_cron" => "pg_cron".into(),
        "pgcrypto" | "citext" | "hstore" | "pg_trgm" | "btree_gist" | "btree_gin" | "uuid-ossp" | "pg_stat_statements" | "ltree" => {
            "the PostgreSQL contrib modules".into()
        }
        other => format!("the package providing `{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("orbis_app"), "\"orbis_app\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn vector_names_pgvector() {
        let e = Error::ExtensionUnavailable {
            name: "vector".into(),
            package: extension_package("vector"),
        };
        assert_eq!(e.to_string(), "extension vector is not available on this server: install pgvector");
    }
}
