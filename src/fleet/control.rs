//! The control plane: one rollout shared by any number of strata processes.
//!
//! `control_plane = "env:VAR"` in strata.toml names a database (never a tenant
//! database) holding `strata.runs` (one row per rollout) and
//! `strata.run_tenants` (one row per tenant of a rollout). `strata migrate
//! --all` joins the running rollout of the same release (the workspace's
//! migrations, tenant selection and waves) or starts one, then its workers
//! claim tenants with `SELECT ... FOR UPDATE SKIP LOCKED`.
//!
//! A claim is a row lock held in an open transaction on the worker's own
//! control-plane connection for as long as the tenant migrates; the row is
//! marked done in that same transaction. So two processes never work on one
//! tenant, and if a process dies its row lock goes with its session and the
//! tenant is simply claimed again (its history makes the retry safe).
//! Waves hold across processes: a tenant is claimable only when every tenant
//! of an earlier wave is done without failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use super::progress::Reporter;
use super::{run_tenant, MigrationSets, RunOptions, TenantReport};
use crate::pg::conn::sql_error;
use crate::pg::{self, Result, Target};
use crate::workspace::{Tenant, Workspace};

pub const SCHEMA_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS strata;
CREATE TABLE IF NOT EXISTS strata.runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release text NOT NULL,
    description text NOT NULL,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'halted')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    started_by text NOT NULL,
    tool_version text NOT NULL
);
CREATE TABLE IF NOT EXISTS strata.run_tenants (
    run_id bigint NOT NULL REFERENCES strata.runs (id) ON DELETE CASCADE,
    tenant text NOT NULL,
    wave integer NOT NULL,
    position integer NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    outcome text,
    claimed_by text,
    claimed_at timestamptz,
    finished_at timestamptz,
    applied integer NOT NULL DEFAULT 0,
    error text,
    PRIMARY KEY (run_id, tenant)
);
CREATE INDEX IF NOT EXISTS run_tenants_pending_idx ON strata.run_tenants (run_id, wave, position) WHERE status = 'pending';
";

/// Serialises creating the tables and joining a run (advisory xact lock).
const JOIN_LOCK: i64 = 0x5354_5241_5441_0001;

/// This process, as written to `claimed_by` and `started_by`.
pub fn runner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// A control-plane connection that holds claims: a claim is an open
/// transaction for as long as its tenant runs, so the server's
/// `idle_in_transaction_session_timeout`, if set, is lifted for this session
/// (the claim would otherwise end under a running tenant).
pub async fn claim_connection(target: &Target) -> Result<Client> {
    let client = pg::connect(target).await?;
    client
        .batch_execute("SET idle_in_transaction_session_timeout = 0")
        .await
        .map_err(sql_error(target, "control plane: cannot set idle_in_transaction_session_timeout"))?;
    Ok(client)
}

/// The final status of a rollout (or a cutover pass) from its tenant
/// counts, if it is over: `done` / `failed` when no tenant is pending,
/// `halted` when failures stop the pending ones (`halting`) and none of them
/// is claimed (`free`: pending rows nobody holds); `None` while work remains.
pub fn closing_status(pending: i64, free: i64, failed: i64, halting: bool) -> Option<&'static str> {
    if pending == 0 {
        Some(if failed > 0 { "failed" } else { "done" })
    } else if free == pending && halting {
        Some("halted")
    } else {
        None
    }
}

/// A joined rollout.
pub struct ControlPlane {
    target: Target,
    pub run_id: i64,
    pub me: String,
}

/// One tenant's row of a rollout, for the summary.
#[derive(Clone, Debug, Serialize)]
pub struct RunTenant {
    pub tenant: String,
    pub status: String,
    pub outcome: Option<String>,
    pub claimed_by: Option<String>,
    pub error: Option<String>,
}

impl ControlPlane {
    /// Joins the running rollout of `release`, or starts one, and registers
    /// `tenants` (slug, wave) in it.
    pub async fn join(spec: &str, release: &str, description: &str, tenants: &[(String, i32)]) -> Result<ControlPlane> {
        let target = Target::parse(spec)?;
        let client = pg::connect(&target).await?;
        let me = runner_id();
        client
            .batch_execute("BEGIN")
            .await
            .map_err(sql_error(&target, "control plane: cannot begin"))?;
        client
            .query_one("SELECT pg_advisory_xact_lock($1)", &[&JOIN_LOCK])
            .await
            .map_err(sql_error(&target, "control plane: cannot lock"))?;
        client
            .batch_execute(SCHEMA_SQL)
            .await
            .map_err(sql_error(&target, "control plane: cannot create strata.runs"))?;
        let existing = client
            .query_opt(
                "SELECT id FROM strata.runs WHERE release = $1 AND status = 'running' ORDER BY id DESC LIMIT 1",
                &[&release],
            )
            .await
            .map_err(sql_error(&target, "control plane: cannot read strata.runs"))?;
        let run_id: i64 = match existing {
            Some(r) => r.get(0),
            None => client
                .query_one(
                    "INSERT INTO strata.runs (release, description, started_by, tool_version) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&release, &description, &me, &crate::pg::history::TOOL_VERSION],
                )
                .await
                .map_err(sql_error(&target, "control plane: cannot start a run"))?
                .get(0),
        };
        for (position, (slug, wave)) in tenants.iter().enumerate() {
            let position = position as i32;
            client
                .execute(
                    "INSERT INTO strata.run_tenants (run_id, tenant, wave, position) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&run_id, slug, wave, &position],
                )
                .await
                .map_err(sql_error(&target, "control plane: cannot register tenants"))?;
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(sql_error(&target, "control plane: cannot commit"))?;
        Ok(ControlPlane { target, run_id, me })
    }

    async fn worker(&self) -> Result<Worker> {
        Ok(Worker {
            client: claim_connection(&self.target).await?,
            target: self.target.clone(),
            run_id: self.run_id,
            me: self.me.clone(),
        })
    }

    /// Closes the run when nothing is left to do: done/failed when every
    /// tenant finished, halted when failures block the rest and nobody is
    /// working on a tenant any more.
    pub async fn finish(&self, max_failures: Option<usize>) -> Result<()> {
        let client = pg::connect(&self.target).await?;
        let e = |what: &'static str| sql_error(&self.target, what);
        client.batch_execute("BEGIN").await.map_err(e("control plane: cannot begin"))?;
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM strata.run_tenants WHERE run_id = $1 AND status = 'pending'",
                &[&self.run_id],
            )
            .await
            .map_err(e("control plane: cannot count"))?
            .get(0);
        let free: i64 = client
            .query(
                "SELECT 1 FROM strata.run_tenants WHERE run_id = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED",
                &[&self.run_id],
            )
            .await
            .map_err(e("control plane: cannot count"))?
            .len() as i64;
        let failed: i64 = client
            .query_one(
                "SELECT count(*) FROM strata.run_tenants WHERE run_id = $1 AND status = 'failed'",
                &[&self.run_id],
            )
            .await
            .map_err(e("control plane: cannot count"))?
            .get(0);
        // Any failure blocks the later waves; the limit stops the wave it happened in.
        let halting = failed > 0 || super::pool::limit_reached(failed as usize, max_failures);
        let status = closing_status(pending, free, failed, halting);
        if let Some(status) = status {
            client
                .execute(
                    "UPDATE strata.runs SET status = $2, finished_at = now() WHERE id = $1 AND status = 'running'",
                    &[&self.run_id, &status],
                )
                .await
                .map_err(e("control plane: cannot close the run"))?;
        }
        client.batch_execute("COMMIT").await.map_err(e("control plane: cannot commit"))?;
        Ok(())
    }

    /// Every tenant row of the run.
    pub async fn tenants(&self) -> Result<Vec<RunTenant>> {
        let client = pg::connect(&self.target).await?;
        let rows = client
            .query(
                "SELECT tenant, status, outcome, claimed_by, error FROM strata.run_tenants WHERE run_id = $1 ORDER BY wave, position",
                &[&self.run_id],
            )
            .await
            .map_err(sql_error(&self.target, "control plane: cannot read the run"))?;
        Ok(rows
            .iter()
            .map(|r| RunTenant {
                tenant: r.get(0),
                status: r.get(1),
                outcome: r.get(2),
                claimed_by: r.get(3),
                error: r.get(4),
            })
            .collect())
    }
}

/// The latest finished control-plane outcome of each tenant that failed.
pub async fn last_failures(spec: &str) -> Result<Vec<(String, String, String)>> {
    let target = Target::parse(spec)?;
    let client = pg::connect(&target).await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('strata.run_tenants') IS NOT NULL", &[])
        .await
        .map_err(sql_error(&target, "control plane: cannot look for strata.run_tenants"))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT tenant, coalesce(error, ''), to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM (
                 SELECT DISTINCT ON (tenant) tenant, status, error, finished_at FROM strata.run_tenants
                  WHERE status <> 'pending' ORDER BY tenant, finished_at DESC) x
              WHERE status = 'failed'",
            &[],
        )
        .await
        .map_err(sql_error(&target, "control plane: cannot read strata.run_tenants"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

struct Worker {
    client: Client,
    target: Target,
    run_id: i64,
    me: String,
}

impl Worker {
    /// Claims the next tenant (the transaction stays open until
    /// [`Worker::complete`]); None when nothing is left for this process.
    async fn claim(&self, max_failures: Option<usize>) -> Result<Option<String>> {
        let e = |what: &'static str| sql_error(&self.target, what);
        loop {
            let counts = self
                .client
                .query_one(
                    "SELECT count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'pending'),
                            EXISTS (SELECT 1 FROM strata.run_tenants f WHERE f.run_id = $1 AND f.status = 'failed'
                                       AND f.wave < (SELECT min(wave) FROM strata.run_tenants p WHERE p.run_id = $1 AND p.status = 'pending'))
                       FROM strata.run_tenants WHERE run_id = $1",
                    &[&self.run_id],
                )
                .await
                .map_err(e("control plane: cannot read the run"))?;
            let (failed, pending, blocked): (i64, i64, bool) = (counts.get(0), counts.get(1), counts.get(2));
            if pending == 0 || blocked || super::pool::limit_reached(failed as usize, max_failures) {
                return Ok(None);
            }
            self.client.batch_execute("BEGIN").await.map_err(e("control plane: cannot begin"))?;
            let row = self
                .client
                .query_opt(
                    "SELECT t.tenant FROM strata.run_tenants t
                      WHERE t.run_id = $1 AND t.status = 'pending'
                        AND NOT EXISTS (SELECT 1 FROM strata.run_tenants e
                                         WHERE e.run_id = t.run_id AND e.wave < t.wave AND e.status <> 'done')
                      ORDER BY t.wave, t.position
                      LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[&self.run_id],
                )
                .await
                .map_err(e("control plane: cannot claim a tenant"))?;
            if let Some(r) = row {
                return Ok(Some(r.get(0)));
            }
            self.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(e("control plane: cannot roll back"))?;
            // Others are working on the remaining tenants (or on an earlier wave).
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Records the tenant's outcome and releases the claim.
    async fn complete(&self, report: &TenantReport) -> Result<()> {
        let e = |what: &'static str| sql_error(&self.target, what);
        let status = if report.status.is_failure() { "failed" } else { "done" };
        let applied = report.applied.len() as i32;
        self.client
            .execute(
                "UPDATE strata.run_tenants SET status = $3, outcome = $4, claimed_by = $5, claimed_at = now(),
                        finished_at = clock_timestamp(), applied = $6, error = $7
                  WHERE run_id = $1 AND tenant = $2",
                &[
                    &self.run_id,
                    &report.tenant,
                    &status,
                    &report.status.as_str(),
                    &self.me,
                    &applied,
                    &report.error,
                ],
            )
            .await
            .map_err(e("control plane: cannot record a tenant"))?;
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(e("control plane: cannot commit"))?;
        Ok(())
    }
}

/// Runs this process's share of a rollout: `concurrency` workers claim and
/// migrate tenants until none is left. Returns the reports of the tenants
/// this process migrated.
pub async fn run_claimed(
    ws: &Workspace,
    cp: &ControlPlane,
    tenants: &[&Tenant],
    sets: &MigrationSets,
    opts: &RunOptions,
    reporter: &Arc<Reporter>,
) -> Result<Vec<TenantReport>> {
    let done: Arc<Mutex<Vec<TenantReport>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<pg::Error>>> = Arc::new(Mutex::new(Vec::new()));
    type Jobs = std::collections::HashMap<String, (Tenant, Arc<Vec<Arc<crate::pg::apply::Loaded>>>)>;
    let jobs: Arc<Jobs> = Arc::new(tenants.iter().map(|t| (t.slug.clone(), ((*t).clone(), sets.of(ws, t)))).collect());
    let mut handles = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let worker = cp.worker().await?;
        let (done, errors, jobs, opts, reporter) = (done.clone(), errors.clone(), jobs.clone(), opts.clone(), reporter.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let slug = match worker.claim(opts.max_failures).await {
                    Ok(Some(s)) => s,
                    Ok(None) => break,
                    Err(e) => {
                        if let Ok(mut v) = errors.lock() {
                            v.push(e);
                        }
                        break;
                    }
                };
                let Some((tenant, migrations)) = jobs.get(&slug) else {
                    // Cannot happen (the release covers the tenant list); leave it to others.
                    let _ = worker.client.batch_execute("ROLLBACK").await;
                    break;
                };
                // A panic is this tenant's failure, recorded as such (its
                // claim completed), not a worker that silently vanishes.
                let report = {
                    let (t, m, o, r) = (tenant.clone(), migrations.clone(), opts.clone(), reporter.clone());
                    match super::pool::guarded(async move { run_tenant(&t, &m, &o, &r).await }).await {
                        Ok(report) => report,
                        Err(message) => TenantReport::panicked(tenant, message),
                    }
                };
                let recorded = worker.complete(&report).await;
                if let Ok(mut d) = done.lock() {
                    d.push(report);
                }
                if let Err(e) = recorded {
                    if let Ok(mut v) = errors.lock() {
                        v.push(e);
                    }
                    break;
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    if let Some(e) = errors.lock().ok().and_then(|mut v| v.pop()) {
        return Err(e);
    }
    let reports = done.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::closing_status;

    #[test]
    fn a_run_closes_when_nothing_is_pending_or_failures_stop_what_nobody_holds() {
        assert_eq!(closing_status(0, 0, 0, false), Some("done"));
        assert_eq!(closing_status(0, 0, 2, true), Some("failed"));
        assert_eq!(closing_status(3, 3, 1, true), Some("halted"));
        // Someone still holds a pending tenant: its outcome is not known yet.
        assert_eq!(closing_status(3, 2, 1, true), None);
        assert_eq!(closing_status(3, 3, 0, false), None);
    }
}
