//! `strata cutover status`: where every run stands, told truthfully: per
//! step its figures (rows done, lag, retained WAL, when they were last
//! written), whether the process holding the run is alive (a running step
//! whose process is gone is shown as interrupted, with what to do), worker
//! routes flagged when they point at a database that does not answer, and
//! a move's slot with the WAL it retains.

use std::time::Duration;

use serde::Serialize;

use super::dispatch::MOVE_KEY;
use super::executor::{control_plane_spec, tenant_waves};
use super::plan::{format_size, Cutover, Kind};
use super::relocate::{replication_name, MoveDbs};
use super::state::{ControlPlane, Progress, RunStatus, Shape, StepRow, StepStatus};
use super::steps::steps;
use super::{Error, Result};
use crate::pg::Target;
use crate::workspace::Workspace;

/// How long `status` waits for a database to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One tenant's run (or the move) as `strata cutover status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantStatus {
    pub tenant: String,
    /// The tenant's wave, from 1 (a move has none).
    pub wave: Option<usize>,
    pub run_id: Option<i64>,
    /// The run's status (`running`, `failed`, `rolling-back`, `contracted`,
    /// `rolled-back`), `interrupted` (a step stopped, or its process is gone),
    /// `paused` (between two steps, no process on it: after `--until`), or
    /// `not-started`.
    pub status: String,
    /// The session holding the run now (`application_name pid N, since T`), if any.
    pub holder: Option<String>,
    pub done: usize,
    pub total: usize,
    pub current: Option<String>,
    pub detail: Option<String>,
    /// The current step's figures, and how old they are.
    pub progress: Option<Progress>,
    pub progress_age_s: Option<f64>,
    pub steps: Vec<StepRow>,
    pub routes: Vec<Route>,
    pub replication: Option<Replication>,
    /// Things to act on: readers routed to a database that does not answer, WAL piling up.
    pub warnings: Vec<String>,
    /// What the operator can do next, when the run needs them.
    pub next: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Route {
    pub worker: String,
    pub reads: Shape,
    pub writes: Shape,
    /// Whether the database its reads go to answered (`None`: not checked).
    pub reads_reachable: Option<bool>,
}

/// A move's replication, as the source's server reports it.
#[derive(Clone, Debug, Serialize)]
pub struct Replication {
    pub slot: String,
    pub source_reachable: bool,
    pub target_reachable: bool,
    pub slot_exists: Option<bool>,
    pub retained_wal: Option<u64>,
    pub wal_status: Option<String>,
    pub max_retained_wal: u64,
}

/// The active run's token and the steps it has done, read without writing
/// anything (for a dry run); nothing when the control plane has no run.
pub async fn peek_run(spec: &str, c: &Cutover, key: &str) -> (Option<String>, Vec<String>) {
    let probe = async {
        let target = Target::parse(spec).ok()?;
        let client = tokio::time::timeout(PROBE_TIMEOUT, crate::pg::connect(&target)).await.ok()?.ok()?;
        let row = client
            .query_opt(
                "SELECT r.token, coalesce((SELECT array_agg(step) FROM strata.cutover_steps s WHERE s.run_id = r.id AND s.status = 'done'), '{}') \
                 FROM strata.cutover_runs r WHERE r.cutover = $1 AND r.tenant = $2 AND r.status IN ('running', 'failed', 'rolling-back')",
                &[&c.name, &key],
            )
            .await
            .ok()??;
        Some((row.try_get(0).ok()?, row.try_get(1).ok()?))
    };
    probe.await.unwrap_or((None, Vec::new()))
}

/// Whether `spec` answers within [`PROBE_TIMEOUT`].
async fn reachable(spec: &str) -> std::result::Result<tokio_postgres::Client, String> {
    let target = Target::parse(spec).map_err(|e| e.to_string())?;
    match tokio::time::timeout(PROBE_TIMEOUT, crate::pg::connect(&target)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("{target}: no answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

pub async fn status(ws: Option<&Workspace>, c: &Cutover) -> Result<Vec<TenantStatus>> {
    let cp = ControlPlane::open(&control_plane_spec(ws, c)?).await?;
    let plan = steps(c);
    let keys: Vec<(String, Option<usize>, Option<String>)> = match (c.file.kind, ws) {
        (Kind::Move, _) => vec![(MOVE_KEY.to_string(), None, None)],
        (Kind::Reshape, Some(ws)) => tenant_waves(ws, c)?
            .into_iter()
            .enumerate()
            .flat_map(|(w, ts)| ts.into_iter().map(move |t| (t.slug.clone(), Some(w + 1), Some(t.database.clone()))))
            .collect(),
        (Kind::Reshape, None) => return Err(Error::Refused(format!("cutover {}: a reshape needs a workspace", c.name))),
    };
    let file = c.path.display();
    let mut out = Vec::new();
    for (slug, wave, database) in keys {
        let run = cp.latest_run(&c.name, &slug).await?;
        let recorded = match &run {
            Some(r) => cp.steps(r.id).await?,
            None => Vec::new(),
        };
        let holder = cp.holder(&c.name, &slug).await?;
        let active = run.as_ref().is_some_and(|r| r.status.is_active());
        let done = recorded.iter().filter(|r| r.status == StepStatus::Done).count();
        let current = recorded.iter().rev().find(|r| r.status != StepStatus::Done).or(recorded.last());
        // A step recorded running with nobody holding the run: its process is gone (killed, crashed).
        let orphaned = active && holder.is_none() && current.is_some_and(|r| r.status == StepStatus::Running);
        let interrupted = active && (orphaned || current.is_some_and(|r| r.status == StepStatus::Interrupted));
        // Between two steps with nobody holding it (after `--until`, or a process gone between steps).
        let paused = active && holder.is_none() && !interrupted && run.as_ref().is_some_and(|r| r.status == RunStatus::Running);
        let next_step = plan
            .iter()
            .find(|s| !recorded.iter().any(|r| r.step == s.id && r.status == StepStatus::Done))
            .map(|s| s.id.clone());
        let status = match &run {
            None => "not-started".to_string(),
            Some(r) if interrupted && r.status != RunStatus::RollingBack => "interrupted".to_string(),
            Some(_) if paused => "paused".to_string(),
            Some(r) => r.status.to_string(),
        };
        let next = match run.as_ref().map(|r| r.status) {
            Some(RunStatus::RollingBack) => Some(format!(
                "a rollback did not finish: run `strata cutover rollback {file}` again to finish it"
            )),
            _ if interrupted => Some(format!(
                "{}: run `strata cutover run {file}` (or the same `cutover flip`) to resume it, or `strata cutover rollback {file}`",
                if orphaned {
                    "the process that ran this step is gone"
                } else {
                    "the step was stopped"
                }
            )),
            Some(RunStatus::Failed) => Some(format!(
                "fix the cause above, then `strata cutover run {file}` runs the failed step again; or `strata cutover rollback {file}`"
            )),
            _ if paused => next_step
                .as_ref()
                .map(|s| format!("next step {s}: `strata cutover run {file}` continues")),
            _ => None,
        };
        let mut warnings = Vec::new();
        let mut routes: Vec<Route> = cp
            .routes(&c.name, &slug)
            .await?
            .into_iter()
            .map(|(worker, reads, writes)| Route {
                worker,
                reads,
                writes,
                reads_reachable: None,
            })
            .collect();
        let mut replication = None;
        if active || !routes.is_empty() {
            match c.file.kind {
                Kind::Move => {
                    let r = move_replication(c, run.as_ref().and_then(|r| r.token.clone()), active, &mut warnings).await;
                    for route in &mut routes {
                        let (ok, side) = match route.reads {
                            Shape::New => (r.target_reachable, "the target"),
                            Shape::Old => (r.source_reachable, "the source"),
                        };
                        route.reads_reachable = Some(ok);
                        if !ok {
                            warnings.push(format!(
                                "worker {} reads {side}, which does not answer: its readers are down until {side} is back \
                                 (or route them back: `strata cutover rollback {file}`, before flip-writers)",
                                route.worker
                            ));
                        }
                    }
                    replication = Some(r);
                }
                Kind::Reshape => {
                    if let Some(db) = &database {
                        let ok = reachable(db).await;
                        if let Err(e) = &ok {
                            warnings.push(format!("the tenant database does not answer ({e}): every worker of it is down"));
                        }
                        for route in &mut routes {
                            route.reads_reachable = Some(ok.is_ok());
                        }
                    }
                }
            }
        }
        out.push(TenantStatus {
            tenant: slug,
            wave,
            run_id: run.as_ref().map(|r| r.id),
            status,
            holder,
            done,
            total: plan.len(),
            current: current.map(|r| {
                let shown = if orphaned {
                    "interrupted: its process is gone".to_string()
                } else {
                    r.status.to_string()
                };
                format!("{} ({shown})", r.step)
            }),
            detail: current
                .and_then(|r| r.detail.clone())
                .or(run.as_ref().and_then(|r| r.error.clone())),
            progress: current.and_then(|r| r.progress.clone()),
            progress_age_s: current.and_then(|r| r.since_progress_s),
            steps: recorded,
            routes,
            replication,
            warnings,
            next,
        });
    }
    Ok(out)
}

/// Both databases of a move probed, the run's slot and its retained WAL.
async fn move_replication(c: &Cutover, token: Option<String>, active: bool, warnings: &mut Vec<String>) -> Replication {
    let slot = replication_name(c, token.as_deref());
    let source = reachable(c.file.source.as_deref().unwrap_or_default()).await;
    let target = reachable(c.file.target.as_deref().unwrap_or_default()).await;
    let mut r = Replication {
        slot: slot.clone(),
        source_reachable: source.is_ok(),
        target_reachable: target.is_ok(),
        slot_exists: None,
        retained_wal: None,
        wal_status: None,
        max_retained_wal: c.settings.max_retained_wal,
    };
    for (side, res) in [("source", &source), ("target", &target)] {
        if let Err(e) = res {
            warnings.push(format!("the {side} does not answer: {e}"));
        }
    }
    if !active {
        return r;
    }
    if let (Ok(src), Ok(dst)) = (source, target) {
        // Both answer: the same judgement of the retained WAL as the gate's.
        if let (Ok(s), Ok(t)) = (
            Target::parse(c.file.source.as_deref().unwrap_or_default()),
            Target::parse(c.file.target.as_deref().unwrap_or_default()),
        ) {
            if let Ok(dbs) = MoveDbs::with_clients(c, slot.clone(), (s, src), (t, dst)).await {
                if let Ok(w) = dbs.retained_wal().await {
                    r.slot_exists = Some(w.is_some());
                    if let Some(w) = w {
                        let (refusal, warning) = dbs.judge_retained(&w);
                        warnings.extend(refusal.into_iter().chain(warning));
                        r.retained_wal = Some(w.bytes);
                        r.wal_status = Some(w.wal_status);
                    }
                }
            }
        }
    } else if let Ok(src) = reachable(c.file.source.as_deref().unwrap_or_default()).await {
        // The target is down: the slot keeps retaining WAL meanwhile.
        if let Ok(Some(row)) = src
            .query_opt(
                "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8, coalesce(wal_status, '') \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
        {
            r.slot_exists = Some(true);
            let bytes = row.try_get::<_, f64>(0).unwrap_or(0.0).max(0.0) as u64;
            r.retained_wal = Some(bytes);
            r.wal_status = row.try_get(1).ok();
            warnings.push(format!(
                "the source's slot {slot} retains {} of WAL while the target is down (max_retained_wal {})",
                format_size(bytes),
                format_size(c.settings.max_retained_wal)
            ));
        }
    }
    r
}
