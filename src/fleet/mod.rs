//! The fleet: which tenants a command works on, in which waves, how many at
//! once, and what each one's run came to.
//!
//! A run goes wave by wave (`--wave canary --wave '*'`); a wave starts only
//! when the one before it had no failure. Inside a wave, up to
//! `--concurrency` tenants migrate at once (tokio tasks under a semaphore of
//! workers); after `--max-failures` failures no new tenant starts and the
//! running ones finish. With a control plane (`control_plane` in
//! strata.toml) the tenants of `--all` runs are claimed from
//! `strata.run_tenants` instead, so several strata processes share a rollout.

pub mod baseline;
pub mod control;
pub mod pool;
pub mod progress;
pub mod provision;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::pg::apply::{self, Event, Loaded};
use crate::pg::version::server_version;
use crate::pg::{self, Target};
use crate::workspace::{Tenant, Workspace};
use progress::Reporter;

/// How one tenant's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TenantStatus {
    /// Migrations were applied.
    Ok,
    /// Nothing was pending.
    UpToDate,
    /// Dry run: the pending migrations are listed.
    WouldApply,
    /// A migration failed, the history refused the run, or the lock was held.
    Failed,
    /// Connection, extension or role checks failed: nothing was applied.
    PreflightFailed,
    /// Not started: --max-failures was reached or an earlier wave failed.
    NotStarted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Ok => "ok",
            TenantStatus::UpToDate => "up-to-date",
            TenantStatus::WouldApply => "would-apply",
            TenantStatus::Failed => "failed",
            TenantStatus::PreflightFailed => "preflight-failed",
            TenantStatus::NotStarted => "not-started",
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, TenantStatus::Failed | TenantStatus::PreflightFailed)
    }
}

/// One tenant's line of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct TenantReport {
    pub tenant: String,
    pub vertical: Option<String>,
    pub bespoke: Option<String>,
    /// The database, password never included.
    pub database: String,
    /// The server's version ("13.23"), once connected.
    pub server_version: Option<String>,
    pub status: TenantStatus,
    pub applied: Vec<String>,
    pub skipped: usize,
    /// Dry run: what would be applied.
    pub pending: Vec<String>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

impl TenantReport {
    fn new(t: &Tenant, database: String) -> TenantReport {
        TenantReport {
            tenant: t.slug.clone(),
            vertical: t.vertical.clone(),
            bespoke: t.bespoke.clone(),
            database,
            server_version: None,
            status: TenantStatus::NotStarted,
            applied: Vec::new(),
            skipped: 0,
            pending: Vec::new(),
            error: None,
            warnings: Vec::new(),
            elapsed_ms: 0,
        }
    }

    pub fn not_started(t: &Tenant, why: &str) -> TenantReport {
        let mut r = TenantReport::new(t, String::new());
        r.error = Some(why.to_string());
        r
    }

    /// The report of a tenant whose run panicked: failed, with the message.
    pub fn panicked(t: &Tenant, message: String) -> TenantReport {
        let mut r = TenantReport::not_started(t, &message);
        r.status = TenantStatus::Failed;
        r
    }
}

/// `--wave` selectors: `LABEL=VALUE`, a bare `VALUE` (meaning `wave=VALUE`),
/// or `*` (every tenant no earlier wave took).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaveSelector {
    Label(String, String),
    Rest,
}

impl WaveSelector {
    pub fn parse(s: &str) -> Result<WaveSelector, crate::Error> {
        let s = s.trim();
        if s == "*" {
            return Ok(WaveSelector::Rest);
        }
        let (k, v) = s.split_once('=').unwrap_or(("wave", s));
        if k.trim().is_empty() || v.trim().is_empty() {
            return Err(crate::Error::Usage(format!(
                "--wave `{s}`: expected LABEL=VALUE, a wave name, or `*`"
            )));
        }
        Ok(WaveSelector::Label(k.trim().to_string(), v.trim().to_string()))
    }

    pub fn describe(&self) -> String {
        match self {
            WaveSelector::Label(k, v) => format!("{k}={v}"),
            WaveSelector::Rest => "*".into(),
        }
    }
}

/// Splits tenants into waves: each selector takes the matching tenants no
/// earlier wave took. Without selectors, one wave of everything.
pub fn waves<'a>(tenants: &[&'a Tenant], selectors: &[WaveSelector]) -> Vec<Vec<&'a Tenant>> {
    if selectors.is_empty() {
        return vec![tenants.to_vec()];
    }
    let mut taken = vec![false; tenants.len()];
    let mut out = Vec::new();
    for sel in selectors {
        let mut wave = Vec::new();
        for (i, t) in tenants.iter().enumerate() {
            let hit = match sel {
                WaveSelector::Rest => true,
                WaveSelector::Label(k, v) => t.labels.get(k) == Some(v),
            };
            if hit && !taken[i] {
                taken[i] = true;
                wave.push(*t);
            }
        }
        out.push(wave);
    }
    out
}

/// Selects tenants by slug (all when `slugs` is empty), in tenants.toml order.
pub fn select<'a>(ws: &'a Workspace, slugs: &[String]) -> Result<Vec<&'a Tenant>, crate::Error> {
    if slugs.is_empty() {
        return Ok(ws.tenants.iter().collect());
    }
    let mut out = Vec::new();
    for s in slugs {
        let t = ws
            .tenant(s)
            .ok_or_else(|| crate::Error::Usage(format!("unknown tenant `{s}` (not in tenants.toml)")))?;
        if !out.iter().any(|x: &&Tenant| x.slug == t.slug) {
            out.push(t);
        }
    }
    Ok(out)
}

/// The composed migrations of every tenant, each layer read once.
pub struct MigrationSets {
    by_layers: HashMap<Vec<usize>, Arc<Vec<Arc<Loaded>>>>,
}

impl MigrationSets {
    pub fn load(ws: &Workspace, tenants: &[&Tenant]) -> crate::pg::Result<MigrationSets> {
        let mut layers: Vec<usize> = tenants.iter().flat_map(|t| ws.tenant_layers(t)).collect();
        layers.sort_unstable();
        layers.dedup();
        let loaded = apply::load_layers(ws, &layers)?;
        let mut by_layer: HashMap<String, Vec<Arc<Loaded>>> = HashMap::new();
        for m in loaded {
            by_layer.entry(m.layer.clone()).or_default().push(m);
        }
        let mut by_layers = HashMap::new();
        for t in tenants {
            let key = ws.tenant_layers(t);
            by_layers.entry(key.clone()).or_insert_with(|| {
                Arc::new(
                    key.iter()
                        .flat_map(|&li| by_layer.get(&ws.layers[li].id()).cloned().unwrap_or_default())
                        .collect(),
                )
            });
        }
        Ok(MigrationSets { by_layers })
    }

    pub fn of(&self, ws: &Workspace, t: &Tenant) -> Arc<Vec<Arc<Loaded>>> {
        self.by_layers.get(&ws.tenant_layers(t)).cloned().unwrap_or_default()
    }
}

/// Settings of one fleet run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub apply: apply::Options,
    pub concurrency: usize,
    pub max_failures: Option<usize>,
    /// tenancy.app_role: created NOLOGIN by the preflight when missing.
    pub app_role: Option<String>,
    /// `pg_version` of strata.toml: an older server gets a warning, since the
    /// checks assumed this major.
    pub pg_version: u32,
}

/// Preflight and migrate one tenant.
pub async fn run_tenant(t: &Tenant, migrations: &[Arc<Loaded>], opts: &RunOptions, reporter: &Reporter) -> TenantReport {
    let started = Instant::now();
    reporter.tenant_started(&t.slug);
    let mut report = TenantReport::new(t, String::new());
    let result = async {
        let mut target = Target::parse(&t.database).map_err(|e| (TenantStatus::PreflightFailed, e))?;
        // A server or pooler that stops answering mid-migration fails the
        // tenant (its open transaction is never committed), never hangs it.
        if let Some(limit) = opts.apply.settings.answer_timeout() {
            target = target.with_answer_timeout(limit);
        }
        report.database = target.to_string();
        let client = pg::connect(&target).await.map_err(|e| (TenantStatus::PreflightFailed, e))?;
        let version = server_version(&client, &target)
            .await
            .map_err(|e| (TenantStatus::PreflightFailed, e))?;
        if version.major() < opts.pg_version {
            report.warnings.push(format!(
                "the server runs {version}, older than pg_version = {} in strata.toml: `strata check` judged the migrations for PostgreSQL {}",
                opts.pg_version, opts.pg_version
            ));
        }
        report.server_version = Some(version.text);
        let notes = apply::preflight(&client, &target, migrations, opts.app_role.as_deref(), !opts.apply.dry_run)
            .await
            .map_err(|e| (TenantStatus::PreflightFailed, e))?;
        report.warnings.extend(notes);
        let slug = t.slug.as_str();
        let on_event = |e: Event| match e {
            Event::Planned { pending, skipped } => reporter.planned(slug, pending, skipped),
            Event::Applying(m) => reporter.applying(slug, &m.display),
            Event::Applied(m, ms) => reporter.applied(slug, &m.display, ms),
            Event::Retrying { file, attempt, wait } => reporter.retrying(slug, file, attempt, wait),
        };
        let outcome = apply::migrate(&client, &target, migrations, &opts.apply, &on_event).await;
        report.applied = outcome.applied;
        report.skipped = outcome.skipped;
        report.pending = outcome.pending;
        report.warnings.extend(outcome.warnings);
        match outcome.error {
            Some(e) => Err((TenantStatus::Failed, e)),
            None => Ok(()),
        }
    }
    .await;
    report.status = match result {
        Err((status, e)) => {
            report.error = Some(e.to_string());
            status
        }
        Ok(()) if opts.apply.dry_run && !report.pending.is_empty() => TenantStatus::WouldApply,
        Ok(()) if report.applied.is_empty() => TenantStatus::UpToDate,
        Ok(()) => TenantStatus::Ok,
    };
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    reporter.tenant_finished(&report);
    report
}

/// Migrating one tenant, as pool work.
struct MigrateWork {
    opts: RunOptions,
    reporter: Arc<Reporter>,
}

impl pool::Work<(Tenant, Arc<Vec<Arc<Loaded>>>), TenantReport> for MigrateWork {
    async fn run(&self, (t, migrations): (Tenant, Arc<Vec<Arc<Loaded>>>)) -> TenantReport {
        run_tenant(&t, &migrations, &self.opts, &self.reporter).await
    }

    fn is_failure(&self, r: &TenantReport) -> bool {
        r.status.is_failure()
    }

    fn panicked(&self, (t, _): &(Tenant, Arc<Vec<Arc<Loaded>>>), message: String) -> TenantReport {
        let r = TenantReport::panicked(t, message);
        self.reporter.tenant_finished(&r);
        r
    }
}

/// Runs the waves locally (no control plane). Returns one report per tenant,
/// in selection order.
pub async fn run_waves(
    ws: &Workspace,
    waves: Vec<Vec<&Tenant>>,
    sets: &MigrationSets,
    opts: &RunOptions,
    reporter: &Arc<Reporter>,
) -> Vec<TenantReport> {
    let failures = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(MigrateWork {
        opts: opts.clone(),
        reporter: reporter.clone(),
    });
    let mut reports = Vec::new();
    let mut halted: Option<String> = None;
    for wave in waves {
        if let Some(why) = &halted {
            reports.extend(wave.iter().map(|t| TenantReport::not_started(t, why)));
            continue;
        }
        let items = wave.iter().map(|t| ((*t).clone(), sets.of(ws, t))).collect();
        let finished = pool::run(items, opts.concurrency, opts.max_failures, failures.clone(), work.clone()).await;
        let reached = opts
            .max_failures
            .filter(|_| pool::limit_reached(failures.load(Ordering::SeqCst), opts.max_failures));
        let mut done = finished.done;
        for (i, (t, _)) in finished.not_started {
            let why = format!("--max-failures {} reached", reached.unwrap_or(0));
            done.push((i, TenantReport::not_started(&t, &why)));
        }
        done.sort_by_key(|(i, _)| *i);
        let wave_failed = done.iter().any(|(_, r)| r.status.is_failure());
        reports.extend(done.into_iter().map(|(_, r)| r));
        if wave_failed {
            halted = Some("an earlier wave had failures".into());
        }
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tenant(slug: &str, wave: Option<&str>) -> Tenant {
        Tenant {
            slug: slug.into(),
            database: "x".into(),
            vertical: None,
            bespoke: None,
            labels: wave
                .map(|w| BTreeMap::from([("wave".to_string(), w.to_string())]))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn waves_take_each_tenant_once() {
        let ts = [tenant("a", Some("canary")), tenant("b", Some("general")), tenant("c", None)];
        let refs: Vec<&Tenant> = ts.iter().collect();
        let sel = vec![WaveSelector::parse("canary").unwrap(), WaveSelector::parse("*").unwrap()];
        let w = waves(&refs, &sel);
        let slugs: Vec<Vec<&str>> = w.iter().map(|w| w.iter().map(|t| t.slug.as_str()).collect()).collect();
        assert_eq!(slugs, vec![vec!["a"], vec!["b", "c"]]);
        assert_eq!(
            WaveSelector::parse("tier=gold").unwrap(),
            WaveSelector::Label("tier".into(), "gold".into())
        );
        assert!(WaveSelector::parse("=x").is_err());
    }
}
