//! `strata check --shadow`: apply the files under review to a scratch copy of
//! the schema and observe what really happens.
//!
//! The history before the first reviewed file is replayed, every table gets a
//! few generated rows ([`super::isolation::seed_every_table`]), then each
//! reviewed file runs statement by statement (in one transaction unless it is
//! a no-transaction file). After every statement strata reads:
//! - `pg_locks` of its own backend: locks that block reads or writes on
//!   tables that existed before the file (`lock-taken`). In a transaction the
//!   locks accumulate, so a lock is attributed to the first statement that
//!   holds it. A no-transaction file autocommits each statement and its locks
//!   are released before they can be read: for those files only rewrites are
//!   observed (CONCURRENTLY operations are the reason such files exist);
//! - `pg_class.relfilenode` of those tables: a change is a rewrite
//!   (`table-rewrite`);
//! - which tables appeared, so that governance checks on the live catalog
//!   (RLS enabled, banned LID columns) point at the statement that created
//!   the table, even when it did so inside a DO block or a function.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_postgres::Client;

use super::apply::{self, Loaded, Settings};
use super::cluster::TempCluster;
use super::conn::sql_error;
use super::{describe, quote_ident, Error, Result, Target};
use crate::report::{Diagnostic, Pos, Region};
use crate::sql::ParsedFile;
use crate::workspace::{LayerKind, Workspace};

/// Lock modes that block reads or writes of other sessions.
const BLOCKING: [&str; 4] = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"];

/// What a shadow run found, with the file and line of the statement.
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
    /// A table without row level security appeared.
    NoRls {
        table: String,
    },
    /// A table with row level security, but not forced, appeared.
    NotForced {
        table: String,
    },
    /// A table with row level security but no policy appeared.
    NoPolicy {
        table: String,
    },
    /// A column matching a banned identifier pattern appeared.
    BannedColumn {
        table: String,
        column: String,
    },
}

#[derive(Clone, Debug)]
pub struct Observed {
    /// The file as shown (workspace-relative).
    pub file: String,
    pub line: u32,
    pub what: Observation,
}

/// What the governance part of the shadow run needs from the workspace.
pub struct Governance<'a> {
    /// Tables that hold no tenant data (not checked for RLS).
    pub global_tables: &'a [String],
    /// The banned column pattern a name matches, if any.
    pub banned: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

/// User tables: oid → (shown name, relfilenode).
async fn tables(client: &Client, target: &Target) -> Result<BTreeMap<u32, (String, u32)>> {
    let rows = client
        .query(
            "SELECT c.oid, CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END, c.relfilenode
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'strata')
               AND n.nspname NOT LIKE 'pg\\_%'",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot list tables"))?;
    Ok(rows.into_iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect())
}

/// Replays `before`, seeds rows, applies `review` and reports what it saw.
/// A failing reviewed statement is an error naming its file and line.
pub async fn run(
    client: &Client,
    target: &Target,
    before: &[Arc<Loaded>],
    review: &[Arc<Loaded>],
    settings: &Settings,
    governance: &Governance<'_>,
) -> Result<Vec<Observed>> {
    apply::replay(client, target, before, settings).await?;
    super::isolation::seed_every_table(client, target).await?;
    let mut out = Vec::new();
    // Table oid → the statement that created it (file, line).
    let mut created: BTreeMap<u32, (String, u32)> = BTreeMap::new();
    for m in review {
        let existing = tables(client, target).await?;
        let mut filenodes: HashMap<u32, u32> = existing.iter().map(|(oid, (_, f))| (*oid, *f)).collect();
        let mut held: BTreeSet<(u32, String)> = BTreeSet::new();
        let mut known: BTreeSet<u32> = existing.keys().copied().collect();
        if !m.no_transaction {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(sql_error(target, format!("{}: cannot begin", m.display)))?;
        }
        for stmt in &m.statements {
            if let Err(e) = client.batch_execute(&stmt.sql).await {
                if !m.no_transaction {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(Error::Statement {
                    file: m.display.clone(),
                    line: stmt.line,
                    message: describe(&e),
                });
            }
            let at = |what| Observed {
                file: m.display.clone(),
                line: stmt.line,
                what,
            };
            if !m.no_transaction {
                let locks = client
                    .query(
                        "SELECT l.relation, l.mode FROM pg_locks l
                         WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND l.relation IS NOT NULL",
                        &[],
                    )
                    .await
                    .map_err(sql_error(target, "cannot read pg_locks"))?;
                for l in locks {
                    let (oid, mode): (u32, String) = (l.get(0), l.get(1));
                    if let Some((name, _)) = existing.get(&oid) {
                        if BLOCKING.contains(&mode.as_str()) && held.insert((oid, mode.clone())) {
                            out.push(at(Observation::Lock { table: name.clone(), mode }));
                        }
                    }
                }
            }
            let now = tables(client, target).await?;
            for (oid, (name, node)) in &now {
                match filenodes.get(oid) {
                    Some(before) if before != node => {
                        out.push(at(Observation::Rewrite { table: name.clone() }));
                        filenodes.insert(*oid, *node);
                    }
                    _ => {}
                }
                if known.insert(*oid) {
                    created.insert(*oid, (m.display.clone(), stmt.line));
                }
            }
        }
        if !m.no_transaction {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(sql_error(target, format!("{}: cannot commit", m.display)))?;
        }
    }
    // Governance on the live catalog, for the tables the reviewed files made.
    let oids: Vec<u32> = created.keys().copied().collect();
    let rows = client
        .query(
            "SELECT c.oid, c.relname::text, c.relrowsecurity, c.relkind::text,
                    coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum > 0 AND NOT a.attisdropped), '{}'),
                    c.relforcerowsecurity, EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
             FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE c.oid = ANY ($1) GROUP BY c.oid, c.relname, c.relrowsecurity, c.relkind, c.relforcerowsecurity",
            &[&oids],
        )
        .await
        .map_err(sql_error(target, "cannot read the created tables"))?;
    let names: HashMap<u32, String> = tables(client, target).await?.into_iter().map(|(o, (n, _))| (o, n)).collect();
    for r in rows {
        let oid: u32 = r.get(0);
        let relname: String = r.get(1);
        let rls: bool = r.get(2);
        let kind: String = r.get(3);
        let columns: Vec<String> = r.get(4);
        let (file, line) = created[&oid].clone();
        let shown = names.get(&oid).cloned().unwrap_or(relname.clone());
        let global = governance.global_tables.iter().any(|g| *g == relname || *g == shown);
        let forced: bool = r.get(5);
        let has_policy: bool = r.get(6);
        let problem = if kind == "m" || global {
            None
        } else if !rls {
            Some(Observation::NoRls { table: shown.clone() })
        } else if !forced {
            Some(Observation::NotForced { table: shown.clone() })
        } else if !has_policy {
            Some(Observation::NoPolicy { table: shown.clone() })
        } else {
            None
        };
        if let Some(what) = problem {
            out.push(Observed {
                file: file.clone(),
                line,
                what,
            });
        }
        for c in columns {
            if (governance.banned)(&c).is_some() {
                out.push(Observed {
                    file: file.clone(),
                    line,
                    what: Observation::BannedColumn {
                        table: shown.clone(),
                        column: c,
                    },
                });
            }
        }
    }
    Ok(out)
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

/// Runs the shadow check of the reviewed files (canonical paths) of a
/// workspace and returns its findings as diagnostics of `lock-taken`,
/// `table-rewrite`, `rls-missing`, `rls-not-forced`, `policy-missing` and
/// `lid-column`.
pub fn check(ws: &Workspace, review: &HashSet<PathBuf>, server: &ShadowServer) -> Result<Vec<Diagnostic>> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mut chain = Vec::new();
    let mut reviewed = HashSet::new();
    let mut paths = HashMap::new();
    for (i, l) in ws.layers.iter().enumerate() {
        for m in &l.migrations {
            if review.contains(&canonical(&m.path)) {
                reviewed.insert(ws.display(&m.path));
                if !chain.contains(&i) {
                    chain.push(i);
                }
            }
            paths.insert(ws.display(&m.path), m.path.clone());
        }
    }
    if reviewed.is_empty() {
        return Ok(Vec::new());
    }
    let mut layers: Vec<usize> = (0..ws.layers.len()).filter(|&i| ws.layers[i].kind == LayerKind::Core).collect();
    layers.extend(chain.into_iter().filter(|i| ws.layers[*i].kind != LayerKind::Core));
    let loaded = apply::load_layers(ws, &layers)?;
    let first = loaded.iter().position(|m| reviewed.contains(&m.display)).unwrap_or(loaded.len());
    let before = &loaded[..first];
    let review: Vec<Arc<Loaded>> = loaded[first..].iter().filter(|m| reviewed.contains(&m.display)).cloned().collect();
    let settings = Settings::from_config(&ws.config);
    let app_role = Some(ws.config.tenancy.app_role.clone()).filter(|r| !r.is_empty());
    let lid = crate::rules::lid_column::LidColumnRule::default();
    let banned = |c: &str| lid.banned_pattern(c).map(str::to_string);
    let governance = Governance {
        global_tables: &ws.config.tenancy.global_tables,
        banned: &banned,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the async runtime: {e}")))?;
    let scratch_db = format!("strata_shadow_{}", std::process::id());
    let observed = match server {
        ShadowServer::Auto => {
            // Dropped (server stopped, folder removed) on every path out.
            let cluster = TempCluster::start()?;
            let target = cluster.target("postgres");
            rt.block_on(async {
                let client = super::connect(&target).await?;
                if let Some(role) = &app_role {
                    apply::ensure_role(&client, &target, role).await?;
                }
                run(&client, &target, before, &review, &settings, &governance).await
            })
        }
        ShadowServer::Server(admin) => rt.block_on(async {
            let admin_client = super::connect(admin).await?;
            admin_client
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&scratch_db)))
                .await
                .map_err(sql_error(admin, "cannot create the shadow database"))?;
            let result = async {
                let target = admin.with_dbname(&scratch_db);
                let client = super::connect(&target).await?;
                if let Some(role) = &app_role {
                    apply::ensure_role(&client, &target, role).await?;
                }
                run(&client, &target, before, &review, &settings, &governance).await
            }
            .await;
            let dropped = admin_client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&scratch_db)))
                .await
                .map_err(sql_error(admin, "cannot drop the shadow database"));
            let observed = result?;
            dropped?;
            Ok(observed)
        }),
    }?;
    let mut files: HashMap<String, ParsedFile> = HashMap::new();
    let mut out = Vec::new();
    for o in observed {
        if !files.contains_key(&o.file) {
            let path = &paths[&o.file];
            files.insert(o.file.clone(), crate::check::load_file(path, o.file.clone())?);
        }
        let parsed = &files[&o.file];
        let region = parsed
            .statements
            .iter()
            .find(|s| s.region.start.line >= o.line)
            .map(|s| s.region)
            .unwrap_or_else(|| Region::point(Pos::new(o.line, 1)));
        let (meta, message, help) = match &o.what {
            Observation::Lock { table, mode } => (
                &crate::rules::lock_taken::META,
                format!(
                    "takes {} on `{table}`, which existed before this file: it blocks {} until commit",
                    lock_name(mode),
                    blocks(mode)
                ),
                "use the online form (CONCURRENTLY, NOT VALID + VALIDATE) or a phased cutover".to_string(),
            ),
            Observation::Rewrite { table } => (
                &crate::rules::table_rewrite::META,
                format!("rewrites `{table}` (its relfilenode changed): every row is copied under ACCESS EXCLUSIVE"),
                "add a new column and backfill it in batches, or plan a cutover".to_string(),
            ),
            Observation::NoRls { table } => (
                &crate::rules::rls_missing::META,
                format!("this statement created tenant table `{table}` without ROW LEVEL SECURITY (observed on the shadow database)"),
                format!("add `ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;` and FORCE with a policy in this file"),
            ),
            Observation::NotForced { table } => (
                &crate::rules::rls_not_forced::META,
                format!("this statement created tenant table `{table}` with ROW LEVEL SECURITY enabled but not forced (observed on the shadow database)"),
                format!("add `ALTER TABLE {table} FORCE ROW LEVEL SECURITY;` in this file"),
            ),
            Observation::NoPolicy { table } => (
                &crate::rules::policy_missing::META,
                format!("this statement created tenant table `{table}` with ROW LEVEL SECURITY but no policy (observed on the shadow database)"),
                format!("add a `CREATE POLICY ... ON {table}` in this file"),
            ),
            Observation::BannedColumn { table, column } => (
                &crate::rules::lid_column::META,
                format!("this statement created `{table}.{column}`, a banned identifier column (observed on the shadow database)"),
                "remove the column; resolve the sender to a contact by phone and store contact_id".to_string(),
            ),
        };
        out.push(Diagnostic {
            rule: meta.id,
            severity: meta.default_severity,
            file: parsed.source.clone(),
            region,
            message,
            help: Some(help),
            fix: None,
        });
    }
    Ok(out)
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
}
