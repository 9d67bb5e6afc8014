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
//! Before and after every statement the set of user objects (relations,
//! columns, constraints, policies, functions, enum types, schemas,
//! extensions; [`super::live_catalog::object_keys`]) is read; what appeared
//! was created by that statement, even inside a DO block or a function it
//! called. After each file the whole schema is read into a
//! [`crate::catalog::Catalog`] ([`super::live_catalog::read_catalog`]) whose
//! objects carry the file and statement that created them, and the static
//! engine's own rule implementations run on it:
//! - rules that judge the catalog at the end of a file
//!   ([`LIVE_FILE_RULES`]) run their `check_file_end` on the live catalog,
//!   exactly as the static pass runs them on the replayed one;
//! - rules that read the CREATE statement itself ([`LIVE_STATEMENT_RULES`])
//!   get a synthesized statement: for every table, column, function and
//!   extension a reviewed statement created, strata writes the canonical
//!   DDL for the live object (`CREATE TABLE` with its columns, `ALTER TABLE
//!   ... ADD COLUMN`, `CREATE FUNCTION ... SECURITY DEFINER SET search_path`,
//!   `CREATE EXTENSION ... WITH SCHEMA`), parses it and hands it to the
//!   rule's `check_statement`. Writing a statement is simpler and safer than
//!   a second implementation of each rule: the rule cannot tell a
//!   synthesized statement from a written one. The finding is then moved to
//!   the real statement that created the object: the object's name in it
//!   when that statement is the plain DDL, else the whole statement (a DO
//!   block, a `SELECT make_tables()`).
//!
//! The policy-expression rules policy-always-true, policy-not-tenant-scoped
//! and multiple-permissive-policies are end-of-file rules too: a policy
//! created by dynamic SQL is reported at the statement that made it appear,
//! judged on the expression text the server keeps. policy-initplan (a
//! performance rule about how the expression is written) stays static. Suppressions (`-- strata-ignore`) and per-layer severities apply as
//! in the static check; the caller drops a finding the static pass already
//! made on the same line.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlparser::ast::Statement as Ast;
use tokio_postgres::Client;

use super::apply::{self, Loaded, Settings};
use super::cluster::TempCluster;
use super::conn::sql_error;
use super::live_catalog::{object_keys, read_catalog};
use super::{describe, quote_ident, Error, Result, Target};
use crate::catalog::{Catalog, Origin, QName};
use crate::report::{Diagnostic, Region, Severity};
use crate::rules::helpers::{column_ident, name_region};
use crate::rules::{ident_region, Env, FileCtx, FileInfo, Finding, LayerInfo, Released, Rule, StatementCtx};
use crate::sql::ParsedFile;
use crate::workspace::{LayerKind, Workspace};

/// Lock modes that block reads or writes of other sessions.
const BLOCKING: [&str; 4] = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"];

/// Rules whose `check_file_end` runs on the live catalog after each file.
pub const LIVE_FILE_RULES: &[&str] = &[
    "rls-missing",
    "rls-not-forced",
    "policy-missing",
    "tenant-key-missing",
    "container-scope",
    "person-ref-not-contact",
    "view-security-invoker",
    "no-primary-key",
    "fk-missing-index",
    "policy-always-true",
    "policy-not-tenant-scoped",
    "multiple-permissive-policies",
];

/// Rules whose `check_statement` runs on DDL synthesized from the live
/// objects a reviewed statement created.
pub const LIVE_STATEMENT_RULES: &[&str] = &[
    "lid-column",
    "bespoke-table",
    "parallel-person-table",
    "person-ref-not-contact",
    "security-definer-search-path",
    "extension-in-public",
];

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

/// What `--shadow` adds to a check.
pub struct ShadowReport {
    pub diagnostics: Vec<Diagnostic>,
    /// Suppressions (file shown, region of the comment) that silenced a
    /// shadow finding: the static pass reports them as suppressing nothing.
    pub used_suppressions: Vec<(String, Region)>,
    /// Things the user should know about the run (tables left empty).
    pub notes: Vec<String>,
}

/// Runs the shadow check of the reviewed files (canonical paths) of a
/// workspace: `lock-taken` and `table-rewrite` as observed, and the
/// [`LIVE_FILE_RULES`] and [`LIVE_STATEMENT_RULES`] on the live catalog.
pub fn check(ws: &Workspace, review: &HashSet<PathBuf>, server: &ShadowServer) -> Result<ShadowReport> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mut chain = Vec::new();
    let mut reviewed = HashSet::new();
    // Shown path → (layer, migration).
    let mut place = HashMap::new();
    for (i, l) in ws.layers.iter().enumerate() {
        for (mi, m) in l.migrations.iter().enumerate() {
            if review.contains(&canonical(&m.path)) {
                reviewed.insert(ws.display(&m.path));
                if !chain.contains(&i) {
                    chain.push(i);
                }
            }
            place.insert(ws.display(&m.path), (i, mi));
        }
    }
    if reviewed.is_empty() {
        return Ok(ShadowReport {
            diagnostics: Vec::new(),
            used_suppressions: Vec::new(),
            notes: Vec::new(),
        });
    }
    // Core, then every layer a reviewed layer stands on (a bespoke layer's
    // vertical), then the reviewed layers: in apply order.
    let mut layers: Vec<usize> = (0..ws.layers.len()).filter(|&i| ws.layers[i].kind == LayerKind::Core).collect();
    for comp in ws.compositions() {
        if comp.layers.last().is_some_and(|l| chain.contains(l)) {
            layers.extend(comp.layers);
        }
    }
    layers.sort_by_key(|&i| (ws.layers[i].kind, i));
    layers.dedup();
    let loaded = apply::load_layers(ws, &layers)?;
    let first = loaded.iter().position(|m| reviewed.contains(&m.display)).unwrap_or(loaded.len());
    let before = &loaded[..first];
    let mut files: Vec<ParsedFile> = Vec::new();
    let mut places = Vec::new();
    let mut runs = Vec::new();
    for m in loaded[first..].iter().filter(|m| reviewed.contains(&m.display)) {
        let (li, mi) = place[&m.display];
        let parsed = crate::check::load_migration(&ws.layers[li].migrations[mi], m.display.clone())?;
        // In order, so that statements sharing a line map one to one.
        let mut next = 0;
        let stmt_index = m
            .statements
            .iter()
            .map(|s| {
                let i = (next..parsed.statements.len())
                    .find(|&i| parsed.statements[i].body.is_none() && parsed.statements[i].region.start.line >= s.line)
                    .unwrap_or(parsed.statements.len().saturating_sub(1));
                next = i + 1;
                i
            })
            .collect();
        runs.push(Reviewed {
            loaded: m.clone(),
            layer: li as u16,
            stmt_index,
        });
        files.push(parsed);
        places.push((li, mi));
    }
    // Bad rule options fail before a server is started.
    let rules = crate::rules::configured(&ws.rules)?;
    let settings = Settings::from_config(&ws.config);
    let app_role = Some(ws.config.tenancy.app_role.clone()).filter(|r| !r.is_empty());
    let rt = super::runtime()?;
    let scratch_db = format!("strata_shadow_{}", std::process::id());
    let go = |target: Target| {
        let (runs, settings, app_role) = (&runs, &settings, &app_role);
        async move {
            let client = super::connect(&target).await?;
            let observer = super::connect(&target).await?;
            if let Some(role) = app_role {
                apply::ensure_role(&client, &target, role).await?;
            }
            run(&client, &observer, &target, before, runs, settings).await
        }
    };
    let output = match server {
        ShadowServer::Auto => {
            // Dropped (server stopped, folder removed) on every path out.
            let cluster = TempCluster::start()?;
            rt.block_on(go(cluster.target("postgres")))
        }
        ShadowServer::Server(admin) => rt.block_on(async {
            let admin_client = super::connect(admin).await?;
            admin_client
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&scratch_db)))
                .await
                .map_err(sql_error(admin, "cannot create the shadow database"))?;
            let result = go(admin.with_dbname(&scratch_db)).await;
            let dropped = admin_client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&scratch_db)))
                .await
                .map_err(sql_error(admin, "cannot drop the shadow database"));
            let output = result?;
            dropped?;
            Ok(output)
        }),
    }?;

    let layer_infos: Vec<LayerInfo> = ws
        .layers
        .iter()
        .map(|l| LayerInfo {
            id: l.id(),
            kind: l.kind,
            name: l.name.clone(),
            depends_on: Vec::new(),
            objects: HashSet::new(),
        })
        .collect();
    let env = Env {
        config: Some(&ws.config),
        pg_version: ws.config.pg_version,
        layers: &layer_infos,
        transactional: true,
    };
    let mut found: Vec<(usize, &'static crate::rules::RuleMeta, Finding)> = Vec::new();
    for o in &output.observed {
        let region = files[o.file].statements.get(o.stmt).map(|s| s.region).unwrap_or_default();
        let (meta, finding) = match &o.what {
            Observation::Lock { table, mode } => (
                &crate::rules::lock_taken::META,
                Finding::new(
                    region,
                    format!(
                        "takes {} on `{table}`, which existed before this file: it blocks {} until commit",
                        lock_name(mode),
                        blocks(mode)
                    ),
                )
                .help("use the online form (CONCURRENTLY, NOT VALID + VALIDATE) or a phased cutover"),
            ),
            Observation::Rewrite { table } => (
                &crate::rules::table_rewrite::META,
                Finding::new(
                    region,
                    format!("rewrites `{table}` (its relfilenode changed): every row is copied under ACCESS EXCLUSIVE"),
                )
                .help("add a new column and backfill it in batches, or plan a cutover"),
            ),
        };
        found.push((o.file, meta, finding.at_statement(o.stmt)));
    }
    for (fi, (parsed, catalog)) in files.iter().zip(&output.catalogs).enumerate() {
        let (li, mi) = places[fi];
        let info = FileInfo {
            parsed,
            id: fi as u32,
            layer: Some(li as u16),
            migration: Some(&ws.layers[li].migrations[mi]),
            layer_migrations: &ws.layers[li].migrations,
            released: Released::Unknown,
            released_head: None,
        };
        for (meta, f) in live_findings(&rules, &env, &info, catalog) {
            found.push((fi, meta, f));
        }
    }
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut used_suppressions = Vec::new();
    for (fi, meta, f) in found {
        let parsed = &files[fi];
        let severity = crate::rules::severity_in(&ws.rules, meta, layer_infos.get(places[fi].0));
        if severity == Severity::Off {
            continue;
        }
        if let Some(s) = parsed.suppressions.iter().find(|s| s.covers(meta.id, f.statement)) {
            used_suppressions.push((parsed.source.path.clone(), s.region));
            continue;
        }
        let duplicate = diagnostics.iter().any(|d| {
            d.rule == meta.id && d.file.path == parsed.source.path && d.region.start.line == f.region.start.line && d.message == f.message
        });
        if duplicate {
            continue;
        }
        diagnostics.push(Diagnostic {
            rule: meta.id,
            severity,
            file: parsed.source.clone(),
            region: f.region,
            message: f.message,
            help: f.help,
            fix: None,
            anchor: f.statement.and_then(|i| parsed.statements.get(i)).map(|st| st.bytes.clone()),
        });
    }
    let notes = output
        .unseeded
        .into_iter()
        .map(|(table, why)| format!("could not seed `{table}` ({why}): its locks and rewrites are observed on an empty table"))
        .collect();
    Ok(ShadowReport {
        diagnostics,
        used_suppressions,
        notes,
    })
}

/// The governance findings of one reviewed file on the live catalog after
/// it (see the module doc).
fn live_findings(
    rules: &[Box<dyn Rule>],
    env: &Env,
    info: &FileInfo,
    catalog: &Catalog,
) -> Vec<(&'static crate::rules::RuleMeta, Finding)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let cx = FileCtx { env, file: info, catalog };
    for r in rules.iter().filter(|r| LIVE_FILE_RULES.contains(&r.meta().id)) {
        r.check_file_end(&cx, &mut buf);
        out.extend(buf.drain(..).map(|f| (r.meta(), f)));
    }
    for synth in synthesize(catalog, info.id) {
        let Some(stmt) = synth.parsed.statements.first() else { continue };
        let cx = StatementCtx {
            env,
            file: info,
            index: synth.stmt,
            stmt,
            catalog,
        };
        for r in rules.iter().filter(|r| LIVE_STATEMENT_RULES.contains(&r.meta().id)) {
            r.check_statement(&cx, &mut buf);
            for mut f in buf.drain(..) {
                let line = f.region.start.line.max(1) as usize;
                let subject = &synth.subjects[(line - 1).min(synth.subjects.len() - 1)];
                f.region = site(info.parsed, synth.stmt, subject);
                f.statement = Some(synth.stmt);
                f.fix = None;
                out.push((r.meta(), f));
            }
        }
    }
    out
}

/// What a line of a synthesized statement defines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    Table,
    Column(String),
    Function,
    Extension,
}

/// A statement written from live objects, standing for statement `stmt` of
/// the reviewed file. `subjects[i]` is what line `i + 1` of it defines.
struct Synth {
    stmt: usize,
    parsed: ParsedFile,
    subjects: Vec<Subject>,
}

fn qualified(q: &QName) -> String {
    format!("{}.{}", quote_ident(&q.schema), quote_ident(&q.name))
}

/// Parses one synthesized statement; when sqlparser cannot read a column
/// type the server printed, `plain` (the same statement with `text` types)
/// is used instead.
fn synth(stmt: usize, text: String, plain: impl FnOnce() -> String, subjects: Vec<Subject>) -> Synth {
    let parsed = crate::sql::parse_text("<shadow>", &text);
    let parsed = if parsed.statements.iter().all(|s| s.ast().is_some()) {
        parsed
    } else {
        crate::sql::parse_text("<shadow>", &plain())
    };
    Synth { stmt, parsed, subjects }
}

/// DDL for the tables, columns, functions and extensions file `file`
/// created, one statement per object (see the module doc).
fn synthesize(catalog: &Catalog, file: u32) -> Vec<Synth> {
    let mut out = Vec::new();
    let mut tables: Vec<_> = catalog.tables.values().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    for t in tables.iter().filter(|t| !t.temporary) {
        if t.origin.file == file {
            let write = |plain: bool| {
                let mut s = format!("CREATE TABLE {} (\n", qualified(&t.name));
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| {
                        let ty = if plain { "text" } else { c.data_type.as_str() };
                        format!("    {} {ty}{}", quote_ident(&c.name), if c.not_null { " NOT NULL" } else { "" })
                    })
                    .collect();
                s.push_str(&cols.join(",\n"));
                s.push_str("\n);\n");
                s
            };
            let mut subjects = vec![Subject::Table];
            subjects.extend(t.columns.iter().map(|c| Subject::Column(c.name.clone())));
            subjects.push(Subject::Table);
            out.push(synth(t.origin.stmt as usize, write(false), || write(true), subjects));
        }
        for c in t.columns.iter().filter(|c| c.origin.file == file && c.origin != t.origin) {
            let write = |ty: &str| format!("ALTER TABLE {} ADD COLUMN {} {ty};\n", qualified(&t.name), quote_ident(&c.name));
            out.push(synth(
                c.origin.stmt as usize,
                write(&c.data_type),
                || write("text"),
                vec![Subject::Column(c.name.clone())],
            ));
        }
    }
    let mut functions: Vec<_> = catalog.functions.values().filter(|f| f.origin.file == file).collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    for f in functions {
        let text = format!(
            "CREATE FUNCTION {}() RETURNS void LANGUAGE sql{}{} AS 'SELECT 1';\n",
            qualified(&f.name),
            if f.security_definer { " SECURITY DEFINER" } else { "" },
            if f.sets_search_path { " SET search_path = pg_catalog" } else { "" }
        );
        let again = text.clone();
        out.push(synth(f.origin.stmt as usize, text, || again, vec![Subject::Function]));
    }
    let mut extensions: Vec<_> = catalog.extensions.values().filter(|e| e.origin.file == file).collect();
    extensions.sort_by(|a, b| a.name.cmp(&b.name));
    for e in extensions {
        let schema = e.schema.as_deref().unwrap_or("public");
        let text = format!("CREATE EXTENSION {} WITH SCHEMA {};\n", quote_ident(&e.name), quote_ident(schema));
        let again = text.clone();
        out.push(synth(e.origin.stmt as usize, text, || again, vec![Subject::Extension]));
    }
    out
}

/// Where a finding about `subject` goes in the reviewed file: its name in
/// statement `stmt` when that statement is the plain DDL defining it, else
/// the whole statement.
fn site(parsed: &ParsedFile, stmt: usize, subject: &Subject) -> Region {
    let Some(s) = parsed.statements.get(stmt) else {
        return Region::default();
    };
    let precise = match (s.ast(), subject) {
        (Some(a), Subject::Column(c)) => column_ident(a, c).and_then(ident_region),
        (Some(Ast::CreateTable(ct)), Subject::Table) => name_region(&ct.name),
        (Some(Ast::CreateFunction(cf)), Subject::Function) => name_region(&cf.name),
        (Some(Ast::CreateExtension(ce)), Subject::Extension) => ident_region(&ce.name),
        _ => None,
    };
    precise.unwrap_or(s.region)
}

fn lock_name(mode: &str) -> String {
    let words = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut s = String::new();
    for (i, c) in words.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            s.push(' ');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}

fn blocks(mode: &str) -> &'static str {
    if mode == "AccessExclusiveLock" {
        "every read and write"
    } else {
        "every write"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_are_named_like_the_docs() {
        assert_eq!(lock_name("ShareRowExclusiveLock"), "SHARE ROW EXCLUSIVE");
        assert_eq!(lock_name("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(blocks("ShareLock"), "every write");
    }

    fn origin(file: u32, stmt: u32) -> Origin {
        Origin { file, layer: 0, stmt }
    }

    fn column(name: &str, data_type: &str, stmt: u32) -> crate::catalog::Column {
        crate::catalog::Column {
            name: name.into(),
            data_type: data_type.into(),
            not_null: false,
            default: None,
            identity: false,
            origin: origin(0, stmt),
        }
    }

    fn catalog() -> Catalog {
        let mut cat = Catalog::new();
        let table = |name: &str, file: u32, columns| crate::catalog::Table {
            name: QName::new("public", name),
            columns,
            constraints: Vec::new(),
            rls_enabled: false,
            rls_forced: false,
            policies: Vec::new(),
            comment: None,
            temporary: false,
            triggers: Vec::new(),
            grants: Vec::new(),
            partitioned: false,
            origin: origin(file, 1),
        };
        // Made by statement 1 of file 0; its last column by statement 3.
        let notes = table(
            "notes",
            0,
            vec![
                column("id", "uuid", 1),
                column("odd", "no such ((type", 1),
                column("wa_lid", "text", 3),
            ],
        );
        // Made by another file.
        let mut id = column("id", "uuid", 1);
        id.origin = origin(7, 1);
        let other = table("other", 7, vec![id]);
        for t in [notes, other] {
            cat.tables.insert(t.name.clone(), t);
        }
        let f = crate::catalog::Function {
            name: QName::new("public", "whoami"),
            volatile: true,
            security_definer: true,
            sets_search_path: false,
            origin: origin(0, 2),
        };
        cat.functions.insert(f.name.clone(), f);
        cat
    }

    #[test]
    fn synthesized_ddl_parses_and_says_what_each_line_defines() {
        let synths = synthesize(&catalog(), 0);
        let shown: Vec<(usize, String)> = synths
            .iter()
            .map(|s| (s.stmt, s.parsed.source.text.lines().next().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (1, "CREATE TABLE \"public\".\"notes\" (".to_string()),
                (3, "ALTER TABLE \"public\".\"notes\" ADD COLUMN \"wa_lid\" text;".to_string()),
                (
                    2,
                    "CREATE FUNCTION \"public\".\"whoami\"() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';".to_string()
                ),
            ],
        );
        // Every statement parses: the unreadable type fell back to text.
        for s in &synths {
            assert!(
                s.parsed.statement_count() == 1 && s.parsed.statements[0].ast().is_some(),
                "{}",
                s.parsed.source.text
            );
        }
        assert!(
            synths[0].parsed.source.text.contains("\"odd\" text"),
            "{}",
            synths[0].parsed.source.text
        );
        assert_eq!(
            synths[0].subjects,
            vec![
                Subject::Table,
                Subject::Column("id".into()),
                Subject::Column("odd".into()),
                Subject::Column("wa_lid".into()),
                Subject::Table
            ]
        );
        assert!(matches!(
            synths[2].parsed.statements[0].ast(),
            Some(Ast::CreateFunction(cf)) if matches!(cf.security, Some(sqlparser::ast::FunctionSecurity::Definer))
        ));
    }

    #[test]
    fn findings_move_to_the_name_in_plain_ddl_else_to_the_statement() {
        let file = crate::sql::parse_text(
            "t.sql",
            "DO $$ BEGIN EXECUTE 'CREATE TABLE notes (id uuid)'; END $$;\nCREATE TABLE\n  tags (\n    id uuid,\n    wa_lid text\n);\n",
        );
        let whole = site(&file, 0, &Subject::Table);
        assert_eq!((whole.start.line, whole.start.col), (1, 1));
        // Statement 1 is the CREATE TABLE inside the DO block's EXECUTE.
        let tags = file.top_level().nth(1).map(|(i, _)| i).unwrap();
        let name = site(&file, tags, &Subject::Table);
        assert_eq!((name.start.line, name.start.col), (3, 3));
        let col = site(&file, tags, &Subject::Column("wa_lid".into()));
        assert_eq!((col.start.line, col.start.col), (5, 5));
        // A column the statement does not name: the whole statement.
        let other = site(&file, tags, &Subject::Column("nope".into()));
        assert_eq!((other.start.line, other.start.col), (2, 1));
    }
}
