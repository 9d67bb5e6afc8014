//! Applying migrations to one database.
//!
//! Per database: take the migrator lock, create the history table, compare
//! the history with the files (a changed or vanished applied file stops the
//! run), then apply what is pending in order. A transactional file runs in
//! one transaction together with its history row, under `SET LOCAL
//! lock_timeout` / `statement_timeout`; a lock timeout (SQLSTATE 55P03) rolls
//! back and retries after a jittered exponential backoff, so the database is
//! always at a version it had before or after a whole migration.
//!
//! The SQL sent is each statement's text as the front end split it: psql
//! meta-commands and the down sections of dbmate/goose files are never sent.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sqlparser::ast::Statement as Ast;
use tokio_postgres::Client;

use super::conn::sql_error;
use super::history::{self, Applied, Status};
use super::{describe, extension_package, lock, quote_ident, quote_literal, sqlstate, Error, Result, Target};
use crate::workspace::{sum::sha256_hex, Migration, Workspace};

pub use super::runner::{backoff, Settings};

pub use super::history::TOOL_VERSION;

// SQLSTATE lock_not_available: what `lock_timeout` raises.
use super::retry::LOCK_NOT_AVAILABLE;

/// One statement to send, with the 1-based line it starts on.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub sql: String,
    pub line: u32,
}

/// A migration file read, checksummed and split.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The layer id (`core`, `verticals/agency`, `bespoke/dreamlink`).
    pub layer: String,
    pub version: String,
    pub name: String,
    /// The path shown to users (relative to the workspace).
    pub display: String,
    /// SHA-256 (hex) of the file's bytes, as in strata.sum.
    pub checksum: String,
    pub no_transaction: bool,
    /// A repeatable migration (Flyway `R__`): applied after the versioned
    /// ones and again whenever its checksum changes.
    pub repeatable: bool,
    pub statements: Vec<Stmt>,
    /// Extensions the file creates.
    pub extensions: Vec<String>,
    /// The line of a BEGIN/COMMIT/ROLLBACK inside a transactional file
    /// (other than one pair wrapping the whole file): it would end strata's
    /// transaction early, so such a file is refused.
    pub transaction_control: Option<u32>,
}

impl Loaded {
    pub fn key(&self) -> (String, String) {
        (self.layer.clone(), self.version.clone())
    }

    /// The history row this migration writes.
    pub fn entry(&self) -> history::Entry<'_> {
        history::Entry {
            layer: &self.layer,
            version: &self.version,
            name: &self.name,
            checksum: &self.checksum,
            repeatable: self.repeatable,
        }
    }

    /// Reads and splits one migration file of a layer.
    pub fn load(m: &Migration, display: String, layer: String) -> Result<Loaded> {
        let parsed = crate::workspace::source::load_migration(m, display.clone())?;
        let (version, name) = (m.version.clone(), m.name.clone());
        let text = &parsed.source.text;
        let mut extensions = Vec::new();
        // Only top-level statements run: those of DO blocks and function
        // bodies run inside the statement that holds them.
        let statements = parsed
            .top_level()
            .map(|(_, s)| {
                match s.ast() {
                    Some(Ast::CreateExtension(ce)) => extensions.push(ce.name.value.clone()),
                    Some(_) => {}
                    None => {
                        // An unparsed CREATE EXTENSION still names its extension.
                        let words = s.unparsed().map(|u| u.words.as_slice()).unwrap_or_default();
                        if words.len() > 2 && words[0] == "CREATE" && words[1] == "EXTENSION" {
                            let rest: Vec<&String> = words[2..]
                                .iter()
                                .filter(|w| !matches!(w.as_str(), "IF" | "NOT" | "EXISTS"))
                                .collect();
                            if let Some(name) = rest.first() {
                                extensions.push(name.to_ascii_lowercase());
                            }
                        }
                    }
                }
                Stmt {
                    sql: text[s.bytes.clone()].to_string(),
                    line: s.region.start.line,
                }
            })
            .collect();
        let mut loaded = Loaded {
            layer,
            version,
            name,
            display,
            checksum: sha256_hex(text.as_bytes()),
            no_transaction: parsed.no_transaction,
            repeatable: m.repeatable,
            statements,
            extensions,
            transaction_control: None,
        };
        if !loaded.no_transaction {
            let control: Vec<(usize, bool)> = parsed
                .statements
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match s.ast() {
                    Some(Ast::StartTransaction { .. }) => Some((i, true)),
                    Some(Ast::Commit { .. } | Ast::Rollback { .. }) => Some((i, false)),
                    _ => None,
                })
                .collect();
            let last = loaded.statements.len().saturating_sub(1);
            if control == [(0, true), (last, false)] && last > 0 {
                // The file wraps itself in BEGIN ... COMMIT: strata's own
                // transaction (with the history row) takes its place.
                loaded.statements.pop();
                loaded.statements.remove(0);
            } else if let Some(&(i, _)) = control.first() {
                loaded.transaction_control = Some(loaded.statements[i].line);
            }
        }
        Ok(loaded)
    }
}

/// Loads the migrations of the given layers (indexes into `ws.layers`), in
/// parallel, keeping apply order.
pub fn load_layers(ws: &Workspace, layers: &[usize]) -> Result<Vec<Arc<Loaded>>> {
    let items: Vec<_> = layers
        .iter()
        .flat_map(|&li| {
            let l = &ws.layers[li];
            l.migrations.iter().map(move |m| (l.id(), m))
        })
        .collect();
    items
        .par_iter()
        .map(|(layer, m)| Loaded::load(m, ws.display(&m.path), layer.clone()).map(Arc::new))
        .collect()
}

/// What happened while migrating one database, for progress display.
pub enum Event<'a> {
    Planned { pending: usize, skipped: usize },
    Applying(&'a Loaded),
    Applied(&'a Loaded, u64),
    Retrying { file: &'a str, attempt: u32, wait: Duration },
}

/// The result of migrating one database. `applied` is accurate even when
/// `error` is set: those migrations committed before the failure.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: Vec<String>,
    /// Migrations already applied before this run.
    pub skipped: usize,
    /// Dry run: what would be applied.
    pub pending: Vec<String>,
    pub warnings: Vec<String>,
    pub error: Option<Error>,
}

/// Options of one migration run.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    pub dry_run: bool,
    pub allow_changed: bool,
    pub lock_wait: Duration,
}

/// Which of `migrations` the history records as applied (a repeatable
/// migration only with its current checksum): what drift replays and status
/// counts.
pub fn applied_flags(history: &[Applied], migrations: &[Arc<Loaded>]) -> Vec<bool> {
    let rows: HashMap<(String, String), &Applied> = history.iter().filter(|h| h.is_applied()).map(|h| (h.key(), h)).collect();
    migrations
        .iter()
        .map(|m| rows.get(&m.key()).is_some_and(|h| !m.repeatable || h.checksum == m.checksum))
        .collect()
}

/// Compares the history with the files: returns the indexes of the pending
/// migrations and the count of applied ones, or the first reason to refuse.
pub fn plan(
    history: &[Applied],
    migrations: &[Arc<Loaded>],
    allow_changed: bool,
    warnings: &mut Vec<String>,
) -> Result<(Vec<usize>, usize)> {
    let by_key: HashMap<(String, String), usize> = migrations.iter().enumerate().map(|(i, m)| (m.key(), i)).collect();
    let mut applied = vec![false; migrations.len()];
    for h in history {
        let found = by_key.get(&h.key()).copied();
        if h.status != Status::Applied {
            return Err(Error::UnfinishedMigration(Box::new(super::Unfinished {
                file: found.map_or_else(
                    || format!("{}/{} ({})", h.layer, h.version, h.name),
                    |i| migrations[i].display.clone(),
                ),
                layer: h.layer.clone(),
                version: h.version.clone(),
                state: if h.status == Status::Failed { "failed" } else { "was started" }.to_string(),
                at: h.applied_at.clone(),
                error: h.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            })));
        }
        match found {
            None => {
                let err = Error::MissingMigration {
                    layer: h.layer.clone(),
                    version: h.version.clone(),
                    name: h.name.clone(),
                    applied: h.checksum.clone(),
                };
                if !allow_changed {
                    return Err(err);
                }
                warnings.push(format!("allowed: {err}"));
            }
            // A repeatable migration whose file changed is applied again.
            Some(i) if migrations[i].repeatable => applied[i] = migrations[i].checksum == h.checksum,
            Some(i) => {
                applied[i] = true;
                let m = &migrations[i];
                if m.checksum != h.checksum {
                    let err = Error::ChangedMigration {
                        file: m.display.clone(),
                        applied: h.checksum.clone(),
                        on_disk: m.checksum.clone(),
                    };
                    if !allow_changed {
                        return Err(err);
                    }
                    warnings.push(format!("allowed: {err}"));
                }
            }
        }
    }
    let pending: Vec<usize> = (0..migrations.len()).filter(|&i| !applied[i]).collect();
    for &p in pending.iter().filter(|&&p| !migrations[p].repeatable) {
        let m = &migrations[p];
        if let Some(later) = (p + 1..migrations.len()).find(|&j| applied[j] && !migrations[j].repeatable && migrations[j].layer == m.layer)
        {
            return Err(Error::OutOfOrder {
                file: m.display.clone(),
                layer: m.layer.clone(),
                head: migrations[later].version.clone(),
            });
        }
    }
    let skipped = migrations.len() - pending.len();
    Ok((pending, skipped))
}

/// Checks what must hold before anything is applied: every extension the
/// migrations create is installed or installable, and the application role
/// exists (created NOLOGIN when `create_role`; roles are cluster-wide).
pub async fn preflight(
    client: &Client,
    target: &Target,
    migrations: &[Arc<Loaded>],
    app_role: Option<&str>,
    create_role: bool,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let wanted: BTreeSet<String> = migrations.iter().flat_map(|m| m.extensions.iter().cloned()).collect();
    if !wanted.is_empty() {
        let names: Vec<String> = wanted.iter().cloned().collect();
        let rows = client
            .query(
                "SELECT name FROM pg_available_extensions WHERE name = ANY($1)
                 UNION SELECT extname FROM pg_extension WHERE extname = ANY($1)",
                &[&names],
            )
            .await
            .map_err(sql_error(target, "cannot list the available extensions"))?;
        let available: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
        if let Some(missing) = wanted.iter().find(|n| !available.contains(*n)) {
            return Err(Error::ExtensionUnavailable {
                name: missing.clone(),
                package: extension_package(missing),
            });
        }
    }
    if let Some(role) = app_role.filter(|r| !r.is_empty()) {
        if create_role {
            ensure_role(client, target, role).await?;
        } else {
            let exists = client
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                .await
                .map_err(sql_error(target, "cannot look up roles"))?
                .is_some();
            if !exists {
                notes.push(format!("would create role {role} (NOLOGIN)"));
            }
        }
    }
    Ok(notes)
}

/// Creates a NOLOGIN role when it does not exist. Two runners on one cluster
/// may race here: the loser's duplicate is ignored.
pub async fn ensure_role(client: &Client, target: &Target, role: &str) -> Result<()> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(sql_error(target, "cannot look up roles"))?
        .is_some();
    if exists {
        return Ok(());
    }
    let sql = format!(
        "DO $strata$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $strata$",
        quote_ident(role)
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(sql_error(target, format!("cannot create role {role}")))
}

/// Migrates one database: lock, verify the history, apply what is pending.
pub async fn migrate(
    client: &Client,
    target: &Target,
    migrations: &[Arc<Loaded>],
    opts: &Options,
    progress: &(dyn Fn(Event) + Sync),
) -> Outcome {
    let mut out = Outcome::default();
    if opts.dry_run {
        // Read-only: no lock, no history table.
        match history::read(client, target)
            .await
            .and_then(|h| plan(&h, migrations, opts.allow_changed, &mut out.warnings))
        {
            Ok((pending, skipped)) => {
                out.skipped = skipped;
                out.pending = pending.iter().map(|&i| migrations[i].display.clone()).collect();
            }
            Err(e) => out.error = Some(e),
        }
        return out;
    }
    let held = match lock::acquire(client, target, opts.lock_wait).await {
        Ok(held) => held,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let result = migrate_locked(client, target, migrations, opts, held, progress, &mut out).await;
    lock::release(client).await;
    if let Err(e) = result {
        out.error = Some(e);
    }
    out
}

async fn migrate_locked(
    client: &Client,
    target: &Target,
    migrations: &[Arc<Loaded>],
    opts: &Options,
    held: lock::Held,
    progress: &(dyn Fn(Event) + Sync),
    out: &mut Outcome,
) -> Result<()> {
    history::ensure(client, target).await?;
    let history = history::read(client, target).await?;
    let (pending, skipped) = plan(&history, migrations, opts.allow_changed, &mut out.warnings)?;
    out.skipped = skipped;
    progress(Event::Planned {
        pending: pending.len(),
        skipped,
    });
    for i in pending {
        let m = &migrations[i];
        progress(Event::Applying(m));
        let ms = apply_recorded(client, target, m, &opts.settings, Some(held), progress).await?;
        out.applied.push(m.display.clone());
        progress(Event::Applied(m, ms));
    }
    Ok(())
}

/// Applies one migration (recording it in the history when `record`).
/// Returns its execution time in milliseconds.
pub async fn apply_one(
    client: &Client,
    target: &Target,
    m: &Loaded,
    settings: &Settings,
    record: bool,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<u64> {
    let held = record.then_some(lock::Held::Direct);
    apply_recorded(client, target, m, settings, held, progress).await
}

/// Applies one migration; `held` (the migrator lock as taken) means record
/// it in the history, and behind a pooler re-check the lock inside the
/// migration's own transaction.
async fn apply_recorded(
    client: &Client,
    target: &Target,
    m: &Loaded,
    settings: &Settings,
    held: Option<lock::Held>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<u64> {
    let record = held.is_some();
    let guard = (held == Some(lock::Held::Pooled)).then(lock::check_sql);
    if let Some(line) = m.transaction_control {
        return Err(Error::Statement {
            file: m.display.clone(),
            line,
            message: "transaction control inside a transactional migration would commit it half-way: remove it, \
                      or start the file with `-- strata: no-transaction`"
                .into(),
        });
    }
    let guard = guard.as_deref();
    let result = if m.no_transaction {
        apply_no_transaction(client, target, m, settings, record, guard, progress).await
    } else {
        apply_transactional(client, target, m, settings, record, guard, progress).await
    };
    if let Err(e) = &result {
        if record && !m.no_transaction {
            history::record_error(client, &m.layer, &m.version, &m.name, &e.to_string()).await;
        }
    }
    result
}

/// A statement's failure: its line (adjusted by the server's error
/// position) and the error.
struct Failed {
    line: u32,
    error: tokio_postgres::Error,
}

impl Failed {
    fn is_lock_timeout(&self) -> bool {
        sqlstate(&self.error) == Some(LOCK_NOT_AVAILABLE)
    }

    fn into_error(self, target: &Target, m: &Loaded, settings: &Settings, attempts: u32) -> Error {
        if self.is_lock_timeout() {
            Error::LockTimeout {
                file: m.display.clone(),
                line: self.line,
                attempts,
                lock_timeout: settings.lock_timeout.clone(),
                message: describe(&self.error),
            }
        } else {
            let mut message = target.describe(&self.error);
            if self.error.is_closed() && !m.no_transaction {
                message.push_str("; the migration's transaction was never committed: the database is at its previous version");
            }
            Error::Statement {
                file: m.display.clone(),
                line: self.line,
                message,
            }
        }
    }
}

async fn run_statement(client: &Client, s: &Stmt) -> Result<(), Failed> {
    client.batch_execute(&s.sql).await.map_err(|error| {
        let offset = match error.as_db_error().and_then(|d| d.position()) {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
                s.sql.chars().take((*p as usize).saturating_sub(1)).filter(|c| *c == '\n').count() as u32
            }
            _ => 0,
        };
        Failed {
            line: s.line + offset,
            error,
        }
    })
}

fn timeouts(settings: &Settings, local: bool) -> String {
    let scope = if local { "SET LOCAL" } else { "SET" };
    format!(
        "{scope} lock_timeout = {}; {scope} statement_timeout = {}",
        quote_literal(&settings.lock_timeout),
        quote_literal(&settings.statement_timeout)
    )
}

async fn apply_transactional(
    client: &Client,
    target: &Target,
    m: &Loaded,
    settings: &Settings,
    record: bool,
    guard: Option<&str>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<u64> {
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let begin = match guard {
            Some(check) => format!("BEGIN; {}; {check}", timeouts(settings, true)),
            None => format!("BEGIN; {}", timeouts(settings, true)),
        };
        if let Err(e) = client.batch_execute(&begin).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(sql_error(target, format!("{}: cannot start the transaction", m.display))(e));
        }
        let mut failed = None;
        for s in &m.statements {
            if let Err(f) = run_statement(client, s).await {
                failed = Some(f);
                break;
            }
        }
        if let Some(f) = failed {
            let _ = client.batch_execute("ROLLBACK").await;
            if f.is_lock_timeout() && attempt <= settings.lock_retries {
                let wait = backoff(settings.backoff, attempt);
                progress(Event::Retrying {
                    file: &m.display,
                    attempt,
                    wait,
                });
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(f.into_error(target, m, settings, attempt));
        }
        let ms = started.elapsed().as_millis() as u64;
        if record {
            let ms_i = ms as i64;
            if let Err(e) = history::record(client, &m.entry(), Status::Applied, Some(ms_i)).await {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(sql_error(target, format!("{}: cannot record the migration", m.display))(e));
            }
        }
        client.batch_execute("COMMIT").await.map_err(|e| Error::Statement {
            file: m.display.clone(),
            line: m.statements.last().map_or(1, |s| s.line),
            message: if e.is_closed() {
                format!(
                    "COMMIT was sent but the connection was lost before its answer ({}): the migration may or may not be \
                     committed; `strata status` shows which",
                    target.describe(&e)
                )
            } else {
                format!("COMMIT failed: {}", target.describe(&e))
            },
        })?;
        return Ok(ms);
    }
}

async fn apply_no_transaction(
    client: &Client,
    target: &Target,
    m: &Loaded,
    settings: &Settings,
    record: bool,
    guard: Option<&str>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<u64> {
    let started = Instant::now();
    if let Some(check) = guard {
        client
            .batch_execute(check)
            .await
            .map_err(sql_error(target, format!("{}: the migrator lock", m.display)))?;
    }
    if record {
        history::record(client, &m.entry(), Status::Started, None).await.map_err(sql_error(
            target,
            format!("{}: cannot record the start of the migration", m.display),
        ))?;
    }
    client
        .batch_execute(&timeouts(settings, false))
        .await
        .map_err(sql_error(target, "cannot set the timeouts"))?;
    let mut result = Ok(());
    'statements: for s in &m.statements {
        let mut attempt = 1;
        loop {
            match run_statement(client, s).await {
                Ok(()) => break,
                Err(f) if f.is_lock_timeout() && attempt <= settings.lock_retries => {
                    let wait = backoff(settings.backoff, attempt);
                    progress(Event::Retrying {
                        file: &m.display,
                        attempt,
                        wait,
                    });
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(f) => {
                    result = Err(f.into_error(target, m, settings, attempt));
                    break 'statements;
                }
            }
        }
    }
    let _ = client.batch_execute("RESET lock_timeout; RESET statement_timeout").await;
    let ms = started.elapsed().as_millis() as u64;
    if record {
        let (status, error) = match &result {
            Ok(()) => (Status::Applied.as_str(), None),
            Err(e) => (Status::Failed.as_str(), Some(e.to_string())),
        };
        let ms_i = ms as i64;
        client
            .execute(
                "UPDATE strata.schema_history SET status = $3, error = $4, execution_ms = $5, applied_at = now() \
                 WHERE layer = $1 AND version = $2",
                &[&m.layer, &m.version, &status, &error, &ms_i],
            )
            .await
            .map_err(sql_error(target, format!("{}: cannot record the end of the migration", m.display)))?;
    }
    result.map(|()| ms)
}

/// Replays migrations into a scratch database without history (expected
/// schemas for drift).
pub async fn replay(client: &Client, target: &Target, migrations: &[Arc<Loaded>], settings: &Settings) -> Result<()> {
    for m in migrations {
        apply_one(client, target, m, settings, false, &|_| {}).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
