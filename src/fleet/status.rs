//! `strata status` and `strata drift`: what each tenant database has applied,
//! and whether its live schema is what its history says it should be.
//!
//! Drift compares the live catalog with the tenant's *applied* migrations
//! replayed into a scratch database (a fresh database on the tenant's own
//! server, on a `--scratch URL` server, or on a throwaway cluster with
//! `--scratch auto`), both introspected by [`crate::pg::introspect`].
//! Pending migrations are therefore not drift: `strata status` counts them.
//!
//! The replay runs on the tenant's own PostgreSQL major: the catalog of
//! another major differs (PostgreSQL 18 records NOT NULL as constraints, for
//! one), so comparing across majors would report drift that is not there.
//! `--scratch auto` starts one throwaway cluster per major it meets, from the
//! binaries of that major ([`crate::pg::cluster::find_bindir_for`]); a
//! `--scratch URL` of another major, or no binaries of that major, make that
//! tenant's drift an error that says so.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::pg::apply::{self, Loaded, Settings};
use crate::pg::cluster::{find_bindir_for, ClusterOptions, TempCluster};
use crate::pg::history::{self, Applied};
use crate::pg::introspect::{diff, introspect};
use crate::pg::version::{server_version, ServerVersion};
use crate::pg::{self, Error, Result, Target};
use crate::workspace::Tenant;

/// One layer's applied head.
#[derive(Clone, Debug, Serialize)]
pub struct LayerVersion {
    pub layer: String,
    /// The last applied version (None: nothing of this layer applied).
    pub applied: Option<String>,
    /// The newest version on disk.
    pub head: Option<String>,
}

/// One row of `strata status`.
#[derive(Clone, Debug, Serialize)]
pub struct StatusRow {
    pub tenant: String,
    pub vertical: Option<String>,
    pub bespoke: Option<String>,
    pub database: String,
    /// The server's version ("13.23"), once it could be read.
    pub server_version: Option<String>,
    pub layers: Vec<LayerVersion>,
    pub applied: usize,
    pub pending: usize,
    /// The history does not match the files (changed, vanished or unfinished).
    pub history_problem: Option<String>,
    /// Only with --drift.
    pub drift: Option<bool>,
    pub last_error: Option<String>,
    /// The database could not be read.
    pub error: Option<String>,
}

impl StatusRow {
    pub fn at_head(&self) -> bool {
        self.error.is_none() && self.pending == 0 && self.history_problem.is_none() && self.drift != Some(true)
    }
}

fn layer_versions(migrations: &[Arc<Loaded>], history: &[Applied]) -> Vec<LayerVersion> {
    let applied = apply::applied_flags(history, migrations);
    let mut out: Vec<LayerVersion> = Vec::new();
    for (m, &is_applied) in migrations.iter().zip(&applied) {
        if out.last().is_none_or(|l| l.layer != m.layer) {
            out.push(LayerVersion {
                layer: m.layer.clone(),
                applied: None,
                head: None,
            });
        }
        let l = out.last_mut().expect("pushed above");
        l.head = Some(m.version.clone());
        if is_applied {
            l.applied = Some(m.version.clone());
        }
    }
    out
}

/// The status of one tenant (never fails: problems are in the row).
impl StatusRow {
    /// The row of a tenant before anything is known about it.
    pub fn new(t: &Tenant, pending: usize) -> StatusRow {
        StatusRow {
            tenant: t.slug.clone(),
            vertical: t.vertical.clone(),
            bespoke: t.bespoke.clone(),
            database: String::new(),
            server_version: None,
            layers: Vec::new(),
            applied: 0,
            pending,
            history_problem: None,
            drift: None,
            last_error: None,
            error: None,
        }
    }
}

pub async fn tenant_status(t: &Tenant, migrations: &[Arc<Loaded>], drift: Option<&DriftChecker>) -> StatusRow {
    let mut row = StatusRow::new(t, migrations.len());
    let result: Result<()> = async {
        let target = Target::parse(&t.database)?;
        row.database = target.to_string();
        let client = pg::connect(&target).await?;
        row.server_version = Some(server_version(&client, &target).await?.text);
        let history = history::read(&client, &target).await?;
        row.layers = layer_versions(migrations, &history);
        match apply::plan(&history, migrations, false, &mut Vec::new()) {
            Ok((pending, applied)) => {
                row.pending = pending.len();
                row.applied = applied;
            }
            Err(e) => {
                row.applied = apply::applied_flags(&history, migrations).iter().filter(|a| **a).count();
                row.pending = migrations.len() - row.applied;
                row.history_problem = Some(e.to_string());
            }
        }
        row.last_error = history::last_error(&client, &target)
            .await?
            .map(|e| format!("{} {}/{} ({}): {}", e.at, e.layer, e.version, e.name, e.error));
        if let Some(checker) = drift {
            let report = checker.check_connected(t, &client, &target, migrations, &history).await?;
            row.drift = Some(report.drifted);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
    row
}

/// Where expected schemas are built.
pub enum ScratchServer {
    /// A fresh database on the tenant's own server (needs CREATEDB).
    TenantServer,
    /// A fresh database on this server (a URL to its maintenance database).
    Server(Box<Target>),
    /// Throwaway clusters started for this run, one per major met.
    Auto,
}

/// One tenant's drift.
#[derive(Clone, Debug, Serialize)]
pub struct DriftReport {
    pub tenant: String,
    pub database: String,
    /// The tenant server's version ("13.23"), once it could be read.
    pub server_version: Option<String>,
    pub drifted: bool,
    /// The unified diff from expected to live (empty when clean).
    pub diff: String,
    /// Applied migrations the expected schema was built from.
    pub replayed: usize,
    /// Migrations on disk not applied yet (not counted as drift).
    pub pending: usize,
    pub error: Option<String>,
}

/// Builds expected schemas (cached per server and applied migration set)
/// and compares live databases with them.
pub struct DriftChecker {
    scratch: ScratchServer,
    settings: Settings,
    app_role: Option<String>,
    cache: tokio::sync::Mutex<HashMap<String, Arc<String>>>,
    /// `ScratchServer::Auto`: the cluster of each major, started on first use.
    clusters: tokio::sync::Mutex<HashMap<u32, Arc<TempCluster>>>,
}

impl DriftChecker {
    pub fn new(scratch: ScratchServer, settings: Settings, app_role: Option<String>) -> DriftChecker {
        DriftChecker {
            scratch,
            settings,
            app_role,
            cache: tokio::sync::Mutex::new(HashMap::new()),
            clusters: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Connects to the tenant and checks it.
    pub async fn check(&self, t: &Tenant, migrations: &[Arc<Loaded>]) -> DriftReport {
        let mut report = DriftReport {
            tenant: t.slug.clone(),
            database: String::new(),
            server_version: None,
            drifted: false,
            diff: String::new(),
            replayed: 0,
            pending: 0,
            error: None,
        };
        let result: Result<DriftReport> = async {
            let target = Target::parse(&t.database)?;
            report.database = target.to_string();
            let client = pg::connect(&target).await?;
            report.server_version = Some(server_version(&client, &target).await?.text);
            let history = history::read(&client, &target).await?;
            self.check_connected(t, &client, &target, migrations, &history).await
        }
        .await;
        match result {
            Ok(r) => r,
            Err(e) => {
                report.error = Some(e.to_string());
                report
            }
        }
    }

    async fn check_connected(
        &self,
        t: &Tenant,
        client: &tokio_postgres::Client,
        target: &Target,
        migrations: &[Arc<Loaded>],
        history: &[Applied],
    ) -> Result<DriftReport> {
        let applied = apply::applied_flags(history, migrations);
        let adopted = history::adopted_relations(client, target).await?;
        self.compare(t, client, target, migrations, &applied, &adopted).await
    }

    /// Compares the live schema with the `migrations` flagged in `replay`
    /// replayed, leaving out the tables in `leave_out` (other tools' history
    /// tables, quoted as `to_regclass` reads them).
    pub async fn compare(
        &self,
        t: &Tenant,
        client: &tokio_postgres::Client,
        target: &Target,
        migrations: &[Arc<Loaded>],
        replay: &[bool],
        leave_out: &[String],
    ) -> Result<DriftReport> {
        let replay: Vec<Arc<Loaded>> = migrations.iter().zip(replay).filter(|(_, a)| **a).map(|(m, _)| m.clone()).collect();
        let version = server_version(client, target).await?;
        let expected = self.expected(target, &version, &replay).await?;
        let mut model = introspect(client, target).await?;
        crate::pg::introspect::leave_out(&mut model, client, target, leave_out).await?;
        let live = model.render();
        let d = diff(
            &expected,
            &live,
            &format!("expected ({} applied migrations replayed)", replay.len()),
            &format!("live ({})", t.slug),
        );
        Ok(DriftReport {
            tenant: t.slug.clone(),
            database: target.to_string(),
            server_version: Some(version.text),
            drifted: !d.is_empty(),
            diff: d,
            replayed: replay.len(),
            pending: migrations.len() - replay.len(),
            error: None,
        })
    }

    /// The expected schema text of `migrations`, replayed on a scratch
    /// server of the tenant's major (built once per server and migration set).
    async fn expected(&self, tenant: &Target, version: &ServerVersion, migrations: &[Arc<Loaded>]) -> Result<Arc<String>> {
        let server = match &self.scratch {
            ScratchServer::TenantServer => tenant.with_dbname("postgres"),
            ScratchServer::Server(t) => {
                let t: &Target = t;
                let scratch = server_version(&pg::connect(t).await?, t).await?;
                if scratch.major() != version.major() {
                    return Err(Error::Cluster(format!(
                        "cannot check drift against the scratch server {t}: it runs {scratch} and the tenant {version}; \
                         drift replays on the tenant's own major (give a --scratch server of PostgreSQL {}, or --scratch auto)",
                        version.major()
                    )));
                }
                t.clone()
            }
            ScratchServer::Auto => self.cluster(version).await?.target("postgres"),
        };
        let mut key = server.server_key();
        for m in migrations {
            key.push_str(&format!("|{}/{}:{}", m.layer, m.version, m.checksum));
        }
        let mut cache = self.cache.lock().await;
        if let Some(text) = cache.get(&key) {
            return Ok(text.clone());
        }
        let text = Arc::new(self.build(&server, migrations).await?);
        cache.insert(key, text.clone());
        Ok(text)
    }

    /// The throwaway cluster of the tenant's major (`--scratch auto`).
    async fn cluster(&self, version: &ServerVersion) -> Result<Arc<TempCluster>> {
        let major = version.major();
        let mut clusters = self.clusters.lock().await;
        if let Some(c) = clusters.get(&major) {
            return Ok(c.clone());
        }
        let started = tokio::task::spawn_blocking(move || {
            let bindir = find_bindir_for(major)?;
            TempCluster::start_with(&ClusterOptions {
                bindir: Some(bindir),
                ..Default::default()
            })
        })
        .await
        .map_err(|e| Error::Cluster(format!("--scratch auto: the cluster start was cancelled: {e}")))?
        .map_err(|e| Error::Cluster(format!("cannot check drift of a tenant on {version} with --scratch auto: {e}")))?;
        let cluster = Arc::new(started);
        clusters.insert(major, cluster.clone());
        Ok(cluster)
    }

    async fn build(&self, server: &Target, migrations: &[Arc<Loaded>]) -> Result<String> {
        pg::scratch::with_scratch_database(server, "scratch", |scratch| async move {
            let client = pg::connect(&scratch).await?;
            apply::preflight(&client, &scratch, migrations, self.app_role.as_deref(), true).await?;
            apply::replay(&client, &scratch, migrations, &self.settings).await?;
            let model = introspect(&client, &scratch).await?;
            Ok(model.render())
        })
        .await
    }
}
