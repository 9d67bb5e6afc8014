//! `strata check --shadow`: apply the files under review to a scratch copy of
//! the schema and observe what really happens.
//!
//! The history before the first reviewed file is replayed, every table gets
//! a few generated rows ([`super::isolation::seed_every_table`], following
//! single- and multi-column foreign keys; tables that cannot be seeded are
//! returned as notes), then each reviewed file runs statement by statement
//! (in one transaction unless it is a no-transaction file).
//!
//! # Locks and rewrites
//! - In a transaction, strata reads `pg_locks` of its own backend after every
//!   statement: locks that block reads or writes on tables that existed
//!   before the file (`lock-taken`). Locks accumulate until COMMIT, so a
//!   lock is attributed to the first statement that holds it.
//! - A no-transaction file autocommits each statement, so its locks are gone
//!   before they could be read afterwards. A second connection (the
//!   observer) holds ROW EXCLUSIVE on every pre-existing table while the
//!   statement runs: ROW EXCLUSIVE conflicts with exactly the blocking modes
//!   (SHARE and stronger) and with none of the others, so a statement that
//!   asks for a blocking lock has to wait, and its request is in `pg_locks`
//!   (`granted = false`) until the observer sees it and lets go (COMMIT).
//!   That first blocking request of a statement is therefore always seen.
//!   When the statement waits on the observer for any other reason
//!   (`pg_blocking_pids`: CREATE INDEX CONCURRENTLY waits for older
//!   transactions), the observer lets go as well. After it let go, the
//!   observer keeps sampling the applier's locks until the statement ends:
//!   further blocking locks of the same statement on other tables are seen
//!   only if a sample falls while they are held.
//! - `pg_class.relfilenode` of the pre-existing tables is compared after
//!   every statement: a change is a rewrite (`table-rewrite`).
//!
//! # Governance on the live catalog
//! What the run saw is judged by the checker: [`crate::check::shadow`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use super::apply::{self, Loaded, Settings};
use super::conn::sql_error;
use super::live_catalog::{object_keys, read_catalog};
use super::{describe, Error, Result, Target};
use crate::catalog::{Catalog, Origin};

/// Lock modes that block reads or writes of other sessions.
const BLOCKING: [&str; 4] = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"];

/// The origin of objects that existed before the reviewed files.
const PRE: Origin = Origin {
    file: u32::MAX,
    layer: u16::MAX,
    stmt: 0,
};

/// How often the observer samples `pg_locks` while a no-transaction
/// statement runs.
const SAMPLE: Duration = Duration::from_millis(1);

/// What a shadow run observed directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// `mode` (as in pg_locks) held on a pre-existing table.
    Lock {
        table: String,
        mode: String,
    },
    Rewrite {
        table: String,
    },
}

#[derive(Clone, Debug)]
pub struct Observed {
    /// Index of the file in the reviewed files.
    pub file: usize,
    /// Index of the statement in the file's [`ParsedFile`].
    pub stmt: usize,
    pub what: Observation,
}

/// One reviewed file as the runner needs it.
pub struct Reviewed {
    pub loaded: Arc<Loaded>,
    /// Index of its layer in the workspace.
    pub layer: u16,
    /// For each statement of `loaded`, the index of the same statement in
    /// the parsed file (what rules call the statement index).
    pub stmt_index: Vec<usize>,
}

/// What [`run`] saw.
pub struct RunOutput {
    pub observed: Vec<Observed>,
    /// The live catalog after each reviewed file; objects carry the
    /// reviewed file (its index) and statement that created them.
    pub catalogs: Vec<Catalog>,
    /// Tables that got no generated row, with the reason.
    pub unseeded: Vec<(String, String)>,
}

/// A pre-existing table: shown name, relfilenode, whether it can be locked
/// (a table, not a materialized view).
struct Rel {
    shown: String,
    filenode: u32,
    lockable: bool,
}

/// User tables by oid.
async fn tables(client: &Client, target: &Target) -> Result<HashMap<u32, Rel>> {
    let rows = client
        .query(
            "SELECT c.oid, CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END, c.relfilenode,
                    c.relkind IN ('r', 'p')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'strata')
               AND n.nspname NOT LIKE 'pg\\_%'",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot list tables"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                Rel {
                    shown: r.get(1),
                    filenode: r.get(2),
                    lockable: r.get(3),
                },
            )
        })
        .collect())
}

/// The relation locks `pid` holds (granted) on `oids`.
async fn held_locks(client: &Client, target: &Target, pid: i32, oids: &[u32]) -> Result<Vec<(u32, String)>> {
    let rows = client
        .query(
            "SELECT l.relation, l.mode FROM pg_locks l
             WHERE l.pid = $1 AND l.locktype = 'relation' AND l.granted AND l.relation = ANY ($2)",
            &[&pid, &oids],
        )
        .await
        .map_err(sql_error(target, "cannot read pg_locks"))?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The relation locks `pid` holds or waits for on `oids`: (oid, mode, granted).
async fn relation_locks(observer: &Client, target: &Target, pid: i32, oids: &[u32]) -> Result<Vec<(u32, String, bool)>> {
    let rows = observer
        .query(
            "SELECT l.relation, l.mode, l.granted FROM pg_locks l
             WHERE l.pid = $1 AND l.locktype = 'relation' AND l.relation = ANY ($2)",
            &[&pid, &oids],
        )
        .await
        .map_err(sql_error(target, "cannot read pg_locks"))?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Runs one autocommitted statement on `client` while `observer` watches
/// its relation locks on `watched` (see the module doc). Returns the
/// statement's outcome and every (relation, mode) the applier was seen
/// requesting or holding.
async fn observed_statement(
    client: &Client,
    observer: &Client,
    target: &Target,
    pids: (i32, i32),
    watched: &[u32],
    sql: &str,
) -> Result<(std::result::Result<(), tokio_postgres::Error>, BTreeSet<(u32, String)>)> {
    let (applier, observer_pid) = pids;
    let list = watched.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    // ROW EXCLUSIVE on each table, skipping any the applier still holds a
    // conflicting lock on (an explicit transaction inside the file).
    observer
        .batch_execute(&format!(
            "BEGIN;
             DO $strata$ DECLARE r oid; BEGIN
               FOREACH r IN ARRAY ARRAY[{list}]::oid[] LOOP
                 BEGIN
                   EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE NOWAIT', r::regclass);
                 EXCEPTION WHEN lock_not_available OR undefined_table THEN NULL;
                 END;
               END LOOP;
             END $strata$;"
        ))
        .await
        .map_err(sql_error(target, "the lock observer cannot take its locks"))?;
    let mut seen = BTreeSet::new();
    let mut holding = true;
    let statement = client.batch_execute(sql);
    tokio::pin!(statement);
    let outcome = loop {
        tokio::select! {
            r = &mut statement => break r,
            _ = tokio::time::sleep(SAMPLE) => {
                let mut waiting = false;
                for (oid, mode, granted) in relation_locks(observer, target, applier, watched).await? {
                    waiting |= !granted;
                    seen.insert((oid, mode));
                }
                if holding && !waiting {
                    waiting = observer
                        .query_one("SELECT $1 = ANY (pg_blocking_pids($2))", &[&observer_pid, &applier])
                        .await
                        .map_err(sql_error(target, "cannot read pg_blocking_pids"))?
                        .get(0);
                }
                if holding && waiting {
                    // The statement may have started waiting after the sample
                    // above: while the observer holds on, its request is still
                    // in pg_locks, so read it once more before letting go.
                    for (oid, mode, _) in relation_locks(observer, target, applier, watched).await? {
                        seen.insert((oid, mode));
                    }
                    observer.batch_execute("COMMIT").await.map_err(sql_error(target, "the lock observer cannot let go"))?;
                    holding = false;
                }
            }
        }
    };
    if holding {
        observer
            .batch_execute("COMMIT")
            .await
            .map_err(sql_error(target, "the lock observer cannot let go"))?;
    }
    Ok((outcome, seen))
}

async fn backend_pid(client: &Client, target: &Target) -> Result<i32> {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map(|r| r.get::<_, i32>(0))
        .map_err(sql_error(target, "cannot read the backend pid"))
}

/// Replays `before`, seeds rows, applies `review` and reports what it saw.
/// A failing reviewed statement is an error naming its file and line.
/// `observer` is a second connection to the same database.
pub async fn run(
    client: &Client,
    observer: &Client,
    target: &Target,
    before: &[Arc<Loaded>],
    review: &[Reviewed],
    settings: &Settings,
) -> Result<RunOutput> {
    apply::replay(client, target, before, settings).await?;
    let unseeded = super::isolation::seed_every_table(client, target).await?;
    let pids = (backend_pid(client, target).await?, backend_pid(observer, target).await?);
    let mut observed = Vec::new();
    let mut catalogs = Vec::new();
    let mut origins: HashMap<String, Origin> = HashMap::new();
    for (fi, r) in review.iter().enumerate() {
        let m = &r.loaded;
        let existing = tables(client, target).await?;
        let existing_oids: Vec<u32> = existing.keys().copied().collect();
        let watched: Vec<u32> = existing.iter().filter(|(_, t)| t.lockable).map(|(o, _)| *o).collect();
        let mut filenodes: HashMap<u32, u32> = existing.iter().map(|(oid, t)| (*oid, t.filenode)).collect();
        let mut held: BTreeSet<(u32, String)> = BTreeSet::new();
        let mut keys = object_keys(client, target).await?;
        if !m.no_transaction {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(sql_error(target, format!("{}: cannot begin", m.display)))?;
        }
        for (si, stmt) in m.statements.iter().enumerate() {
            let index = r.stmt_index.get(si).copied().unwrap_or(0);
            let (outcome, mut locks) = if m.no_transaction {
                observed_statement(client, observer, target, pids, &watched, &stmt.sql).await?
            } else {
                (client.batch_execute(&stmt.sql).await, BTreeSet::new())
            };
            if let Err(e) = outcome {
                if !m.no_transaction {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(Error::Statement {
                    file: m.display.clone(),
                    line: stmt.line,
                    message: describe(&e),
                });
            }
            // Locks still held: all of a transactional file's so far, and
            // those of an explicit transaction inside a no-transaction file.
            locks.extend(held_locks(client, target, pids.0, &existing_oids).await?);
            for (oid, mode) in locks {
                let Some(t) = existing.get(&oid) else { continue };
                if BLOCKING.contains(&mode.as_str()) && held.insert((oid, mode.clone())) {
                    observed.push(Observed {
                        file: fi,
                        stmt: index,
                        what: Observation::Lock {
                            table: t.shown.clone(),
                            mode,
                        },
                    });
                }
            }
            for (oid, t) in &tables(client, target).await? {
                if let Some(before) = filenodes.get(oid) {
                    if *before != t.filenode {
                        observed.push(Observed {
                            file: fi,
                            stmt: index,
                            what: Observation::Rewrite { table: t.shown.clone() },
                        });
                        filenodes.insert(*oid, t.filenode);
                    }
                }
            }
            let now = object_keys(client, target).await?;
            let origin = Origin {
                file: fi as u32,
                layer: r.layer,
                stmt: index as u32,
            };
            for k in now.difference(&keys) {
                origins.insert(k.clone(), origin);
            }
            keys = now;
        }
        if !m.no_transaction {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(sql_error(target, format!("{}: cannot commit", m.display)))?;
        }
        catalogs.push(read_catalog(client, target, &origins, PRE).await?);
    }
    Ok(RunOutput {
        observed,
        catalogs,
        unseeded,
    })
}

/// Where `--shadow` replays: `auto` (a throwaway cluster) or a server's
/// maintenance database URL (a scratch database is created there and
/// dropped afterwards).
pub enum ShadowServer {
    Auto,
    Server(Box<Target>),
}

impl ShadowServer {
    pub fn parse(spec: &str) -> Result<ShadowServer> {
        Ok(if spec == "auto" {
            ShadowServer::Auto
        } else {
            ShadowServer::Server(Box::new(Target::parse(spec)?))
        })
    }
}
