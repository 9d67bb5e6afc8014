//! Runs a `reshape` step by step in each tenant database, wave after wave,
//! and a `move` between its source and target (run key `move`), recording
//! every step in the control plane. A step already `done` is
//! skipped; a step found `running` or `failed` (a killed or failed run) is
//! run again, which is safe because every step is idempotent.

use serde::Serialize;

use super::plan::{format_duration, Cutover, Kind};
use super::relocate::MoveDbs;
use super::reshape::TenantDb;
use super::state::{ControlPlane, RunRow, StepRow};
use super::steps::{steps, Action, Step};
use super::{Error, Result};
use crate::fleet::WaveSelector;
use crate::workspace::{Tenant, Workspace};

/// What happened to one tenant.
#[derive(Clone, Debug, Serialize)]
pub struct TenantOutcome {
    pub tenant: String,
    /// `done` (reached the requested step), `waiting` (contract waits for
    /// its retention window), `busy` (another strata process runs this
    /// tenant), `failed`, `not-started`, `rolled-back`.
    pub status: String,
    /// The last step done.
    pub step: Option<String>,
    pub detail: String,
}

impl TenantOutcome {
    fn new(tenant: &str, status: &str, step: Option<String>, detail: impl Into<String>) -> TenantOutcome {
        TenantOutcome {
            tenant: tenant.to_string(),
            status: status.to_string(),
            step,
            detail: detail.into(),
        }
    }

    pub fn is_failure(&self) -> bool {
        self.status == "failed"
    }
}

/// The control plane the cutover names, or the workspace's.
pub fn control_plane_spec(ws: &Workspace, c: &Cutover) -> Result<String> {
    c.file
        .control_plane
        .clone()
        .or_else(|| ws.config.control_plane.clone())
        .ok_or_else(|| {
            Error::Refused(format!(
                "cutover {}: no control plane: set `control_plane` in the cutover file or in strata.toml (its run state lives there)",
                c.name
            ))
        })
}

/// The tenants of a reshape, in waves.
pub fn tenant_waves<'w>(ws: &'w Workspace, c: &Cutover) -> Result<Vec<Vec<&'w Tenant>>> {
    let tenants = crate::fleet::select(ws, &c.file.tenants)?;
    let selectors = c.file.waves.iter().map(|w| WaveSelector::parse(w)).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::fleet::waves(&tenants, &selectors))
}

/// Checks `--until` names a step of the plan.
pub fn check_until(c: &Cutover, until: Option<&str>) -> Result<()> {
    if let Some(u) = until {
        let all = steps(c);
        if !all.iter().any(|s| s.id == u) {
            let ids: Vec<String> = all.into_iter().map(|s| s.id).collect();
            return Err(Error::Refused(format!("--until {u}: no such step (steps: {})", ids.join(", "))));
        }
    }
    Ok(())
}

/// Runs the cutover over its tenants (a move: between its two databases), up to and including `until`.
pub async fn run(ws: Option<&Workspace>, c: &Cutover, until: Option<&str>, log: &(dyn Fn(&str) + Sync)) -> Result<Vec<TenantOutcome>> {
    check_until(c, until)?;
    if c.file.kind == Kind::Move {
        return run_move(ws, c, until, None, log).await.map(|o| vec![o]);
    }
    let ws = need_workspace(ws, c)?;
    let cp = ControlPlane::open(&control_plane_spec(ws, c)?).await?;
    let mut outcomes = Vec::new();
    let mut failures = 0;
    let mut halted = false;
    for wave in tenant_waves(ws, c)? {
        for t in wave {
            if halted {
                outcomes.push(TenantOutcome::new(&t.slug, "not-started", None, "halted after earlier failures"));
                continue;
            }
            let outcome = match run_tenant(&cp, c, t, until, None, log).await {
                Ok(o) => o,
                // Two processes on one cutover share the tenants: the other one has this one.
                Err(e @ Error::Busy(_)) => TenantOutcome::new(&t.slug, "busy", None, e.to_string()),
                Err(e) => TenantOutcome::new(&t.slug, "failed", None, e.to_string()),
            };
            if outcome.is_failure() {
                failures += 1;
                if failures > c.file.max_failures {
                    halted = true;
                }
            }
            outcomes.push(outcome);
        }
        // A wave starts only when the previous one had no failure.
        if failures > 0 {
            halted = true;
        }
    }
    Ok(outcomes)
}

/// The run key of a move in the control plane (a move has no tenants).
const MOVE_RUN: &str = "move";

/// The control plane of a move: the cutover's, else the workspace's.
fn move_control_plane(ws: Option<&Workspace>, c: &Cutover) -> Result<String> {
    c.file
        .control_plane
        .clone()
        .or_else(|| ws.and_then(|w| w.config.control_plane.clone()))
        .ok_or_else(|| {
            Error::Refused(format!(
                "cutover {}: no control plane: set `control_plane` in the cutover file",
                c.name
            ))
        })
}

/// A move between its two databases: the same step loop as a reshape's
/// tenant, run key `move`. With `only`, every step before it must be done.
async fn run_move(
    ws: Option<&Workspace>,
    c: &Cutover,
    until: Option<&str>,
    only: Option<&str>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<TenantOutcome> {
    let cp = ControlPlane::open(&move_control_plane(ws, c)?).await?;
    if let Err(e) = cp.lock_run(&c.name, MOVE_RUN).await {
        return Ok(TenantOutcome::new(MOVE_RUN, "busy", None, e.to_string()));
    }
    let res = async {
        let mut runner = MoveRunner {
            dbs: MoveDbs::connect(c).await?,
        };
        run_steps(&cp, c, MOVE_RUN, &mut runner, until, only, log).await
    }
    .await;
    cp.unlock_run(&c.name, MOVE_RUN).await?;
    Ok(res.unwrap_or_else(|e| TenantOutcome::new(MOVE_RUN, "failed", None, e.to_string())))
}

/// Runs the one step `flip-reader:WORKER` for every tenant, or for the move
/// (the steps before it must be done).
pub async fn flip(ws: Option<&Workspace>, c: &Cutover, worker: &str, log: &(dyn Fn(&str) + Sync)) -> Result<Vec<TenantOutcome>> {
    let id = format!("flip-reader:{worker}");
    if !steps(c).iter().any(|s| s.id == id) {
        return Err(Error::Refused(format!(
            "worker {worker} is not in flip.workers of cutover {} ({})",
            c.name,
            c.file.flip.workers.join(", ")
        )));
    }
    if c.file.kind == Kind::Move {
        return run_move(ws, c, Some(&id), Some(&id), log).await.map(|o| vec![o]);
    }
    let ws = need_workspace(ws, c)?;
    let cp = ControlPlane::open(&control_plane_spec(ws, c)?).await?;
    let mut outcomes = Vec::new();
    for t in tenant_waves(ws, c)?.into_iter().flatten() {
        let o = match run_tenant(&cp, c, t, Some(&id), Some(&id), log).await {
            Ok(o) => o,
            Err(e) => TenantOutcome::new(&t.slug, "failed", None, e.to_string()),
        };
        outcomes.push(o);
    }
    Ok(outcomes)
}

fn need_workspace<'w>(ws: Option<&'w Workspace>, c: &Cutover) -> Result<&'w Workspace> {
    ws.ok_or_else(|| Error::Refused(format!("cutover {}: a reshape needs a workspace (tenants.toml)", c.name)))
}

/// Where the steps of one run execute: a tenant database (reshape) or the
/// source and target of a move.
trait StepRunner {
    async fn execute(&mut self, cp: &ControlPlane, run_id: i64, step: &Step, log: &(dyn Fn(&str) + Sync)) -> Result<String>;
}

struct ReshapeRunner<'a, 'c> {
    db: TenantDb<'c>,
    tenant: &'a Tenant,
}

impl StepRunner for ReshapeRunner<'_, '_> {
    async fn execute(&mut self, cp: &ControlPlane, run_id: i64, step: &Step, _log: &(dyn Fn(&str) + Sync)) -> Result<String> {
        let c = self.db.cutover;
        execute(cp, &mut self.db, c, self.tenant, run_id, step).await
    }
}

struct MoveRunner<'c> {
    dbs: MoveDbs<'c>,
}

impl StepRunner for MoveRunner<'_> {
    async fn execute(&mut self, cp: &ControlPlane, run_id: i64, step: &Step, log: &(dyn Fn(&str) + Sync)) -> Result<String> {
        execute_move(cp, &mut self.dbs, run_id, step, log).await
    }
}

/// One tenant: resume its run and execute steps up to `until`. With `only`,
/// every step before it must already be done and only it runs.
async fn run_tenant(
    cp: &ControlPlane,
    c: &Cutover,
    t: &Tenant,
    until: Option<&str>,
    only: Option<&str>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<TenantOutcome> {
    cp.lock_run(&c.name, &t.slug).await?;
    let res = async {
        let mut runner = ReshapeRunner {
            db: TenantDb::connect(&t.database, c).await?,
            tenant: t,
        };
        run_steps(cp, c, &t.slug, &mut runner, until, only, log).await
    }
    .await;
    cp.unlock_run(&c.name, &t.slug).await?;
    res
}

/// The step loop of one run (`key`: a tenant's slug, or `move`): steps
/// already done are skipped, a step found running or failed runs again.
async fn run_steps<R: StepRunner>(
    cp: &ControlPlane,
    c: &Cutover,
    key: &str,
    runner: &mut R,
    until: Option<&str>,
    only: Option<&str>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<TenantOutcome> {
    let run = cp.start_run(&c.name, key, c.file.kind.as_str(), &c.checksum).await?;
    // An edit after a failed preflight is how the operator fixes the plan; after that it is refused.
    if run.plan_checksum != c.checksum && !cp.adopt_checksum(run.id, &c.checksum).await? {
        return Err(Error::Refused(format!(
            "{key}: cutover {} was edited after run {} started ({}); finish or roll back that run first",
            c.name,
            run.id,
            c.path.display()
        )));
    }
    let plan = steps(c);
    let mut last_done = None;
    for (pos, step) in plan.iter().enumerate() {
        let recorded = cp.steps(run.id).await?;
        let row = recorded.iter().find(|r| r.step == step.id);
        if row.is_some_and(|r| r.status == "done") {
            last_done = Some(step.id.clone());
            if until == Some(step.id.as_str()) {
                break;
            }
            continue;
        }
        if only.is_some_and(|o| o != step.id) {
            return Err(Error::Refused(format!(
                "{key}: step {} is not done yet; run `strata cutover run` up to it first",
                step.id
            )));
        }
        if step.action == Action::Contract {
            if let Some(wait) = contract_blocked(c, &plan, &recorded)? {
                let status = if until == Some("contract") { "failed" } else { "waiting" };
                return Ok(TenantOutcome::new(key, status, last_done, wait));
            }
        }
        log(&format!("{key}: {} …", step.id));
        cp.set_run_status(run.id, "running", None).await?;
        cp.step_started(run.id, &step.id, pos as i32).await?;
        match runner.execute(cp, run.id, step, log).await {
            Ok(detail) => {
                cp.step_finished(run.id, &step.id, "done", &detail).await?;
                log(&format!("{key}: {} done: {detail}", step.id));
                last_done = Some(step.id.clone());
            }
            Err(e) => {
                let msg = e.to_string();
                cp.step_finished(run.id, &step.id, "failed", &msg).await?;
                cp.set_run_status(run.id, "failed", Some(&msg)).await?;
                return Ok(TenantOutcome::new(key, "failed", last_done, msg));
            }
        }
        if step.action == Action::Contract {
            cp.set_run_status(run.id, "contracted", None).await?;
        }
        if until == Some(step.id.as_str()) {
            break;
        }
    }
    Ok(TenantOutcome::new(key, "done", last_done, ""))
}

/// Why contract may not start yet, if it may not.
fn contract_blocked(c: &Cutover, plan: &[Step], recorded: &[StepRow]) -> Result<Option<String>> {
    for s in plan.iter().filter(|s| s.action != Action::Contract) {
        if !recorded.iter().any(|r| r.step == s.id && r.status == "done") {
            return Ok(Some(format!("contract refused: step {} has not passed its gate", s.id)));
        }
    }
    let since = recorded
        .iter()
        .find(|r| r.step == "flip-writers")
        .and_then(|r| r.since_finish_s)
        .unwrap_or(0.0);
    let retention = c.settings.retention.as_secs_f64();
    if since < retention {
        let left = std::time::Duration::from_secs((retention - since).ceil() as u64);
        return Ok(Some(format!(
            "contract refused: the retention window ({}) is not over; {} left since the writers flipped",
            format_duration(c.settings.retention),
            format_duration(left)
        )));
    }
    Ok(None)
}

async fn execute(cp: &ControlPlane, db: &mut TenantDb<'_>, c: &Cutover, t: &Tenant, run_id: i64, step: &Step) -> Result<String> {
    let gate = |message: String| Error::Gate {
        tenant: t.slug.clone(),
        step: step.id.clone(),
        message,
    };
    let verify = |v: super::reshape::Verification| -> Result<String> {
        let allowed = c.file.gates.max_row_difference as i64;
        if v.differing_rows > allowed {
            return Err(gate(format!("{v} (at most {allowed} differing rows allowed)")));
        }
        Ok(v.to_string())
    };
    match &step.action {
        Action::Preflight => db.preflight().await,
        Action::Expand => db.expand().await,
        Action::DualWrite => {
            for w in &c.file.flip.workers {
                cp.set_route(&c.name, &t.slug, w, None, None).await?;
            }
            db.dual_write().await
        }
        Action::Backfill => db.backfill().await,
        Action::Verify => verify(db.verify().await?),
        Action::FlipReader { worker } => {
            cp.set_route(&c.name, &t.slug, worker, Some("new"), None).await?;
            soak(cp, c, run_id, step).await?;
            Ok(format!("{worker} reads the new shape; {}", verify(db.verify().await?)?))
        }
        Action::FlipWriters => {
            for w in &c.file.flip.workers {
                cp.set_route(&c.name, &t.slug, w, Some("new"), Some("new")).await?;
            }
            Ok(format!("{} workers write the new shape", c.file.flip.workers.len()))
        }
        Action::Contract => db.contract().await,
    }
}

/// Waits out the soak of a flip. It counts from the step's first start, so
/// a resumed run waits only what is left.
async fn soak(cp: &ControlPlane, c: &Cutover, run_id: i64, step: &Step) -> Result<()> {
    let started = cp
        .steps(run_id)
        .await?
        .into_iter()
        .find(|r| r.step == step.id)
        .map_or(0.0, |r| r.since_start_s);
    let left = c.settings.soak.as_secs_f64() - started;
    if left > 0.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(left)).await;
    }
    Ok(())
}

/// One step of a move. A new step (e.g. the identity consolidation, after
/// backfill and before flip-writers) is one more `Action` and one more arm.
async fn execute_move(cp: &ControlPlane, dbs: &mut MoveDbs<'_>, run_id: i64, step: &Step, log: &(dyn Fn(&str) + Sync)) -> Result<String> {
    let c = dbs.c;
    match &step.action {
        Action::Preflight => dbs.preflight().await,
        Action::Expand => dbs.expand().await,
        Action::DualWrite => {
            for w in &c.file.flip.workers {
                cp.set_route(&c.name, MOVE_RUN, w, None, None).await?;
            }
            dbs.dual_write().await
        }
        Action::Backfill => dbs.backfill(log).await,
        Action::Verify => move_gate(dbs, step).await,
        Action::FlipReader { worker } => {
            cp.set_route(&c.name, MOVE_RUN, worker, Some("new"), None).await?;
            soak(cp, c, run_id, step).await?;
            Ok(format!("{worker} reads the target; {}", move_gate(dbs, step).await?))
        }
        Action::FlipWriters => {
            // Sequences first: a writer routed to the target must not reuse a key the source handed out.
            let before = dbs.sync_sequences().await?;
            for w in &c.file.flip.workers {
                cp.set_route(&c.name, MOVE_RUN, w, Some("new"), Some("new")).await?;
            }
            let ended = dbs.finish_replication().await?;
            let after = dbs.sync_sequences().await?;
            Ok(format!(
                "{} workers write the target; {before}; {ended}; after the last replicated rows: {after}; the retention window starts",
                c.file.flip.workers.len()
            ))
        }
        Action::Contract => dbs.contract().await,
    }
}

/// The gate of a move: replication lag, then counts and chunked checksums.
async fn move_gate(dbs: &mut MoveDbs<'_>, step: &Step) -> Result<String> {
    let gate = |message: String| Error::Gate {
        tenant: MOVE_RUN.into(),
        step: step.id.clone(),
        message,
    };
    let lag = dbs.lag_gate().await?.map_err(gate)?;
    let v = dbs.verify().await?;
    let allowed = dbs.c.file.gates.max_row_difference as i64;
    if v.differing_rows > allowed {
        return Err(gate(format!("{v} (at most {allowed} differing rows allowed)")));
    }
    Ok(format!("replication lag {:.1}ms; {v}", lag.as_secs_f64() * 1000.0))
}

/// Rolls back every tenant's run (or the move) that has not started contract.
pub async fn rollback(ws: Option<&Workspace>, c: &Cutover, log: &(dyn Fn(&str) + Sync)) -> Result<Vec<TenantOutcome>> {
    if c.file.kind == Kind::Move {
        let cp = ControlPlane::open(&move_control_plane(ws, c)?).await?;
        cp.lock_run(&c.name, MOVE_RUN).await?;
        let res = rollback_move(&cp, c, log).await;
        cp.unlock_run(&c.name, MOVE_RUN).await?;
        return Ok(vec![
            res.unwrap_or_else(|e| TenantOutcome::new(MOVE_RUN, "failed", None, e.to_string()))
        ]);
    }
    let ws = need_workspace(ws, c)?;
    let cp = ControlPlane::open(&control_plane_spec(ws, c)?).await?;
    let mut outcomes = Vec::new();
    for t in tenant_waves(ws, c)?.into_iter().flatten() {
        cp.lock_run(&c.name, &t.slug).await?;
        let res = rollback_tenant(&cp, c, t, log).await;
        cp.unlock_run(&c.name, &t.slug).await?;
        outcomes.push(res.unwrap_or_else(|e| TenantOutcome::new(&t.slug, "failed", None, e.to_string())));
    }
    Ok(outcomes)
}

/// The run to roll back, or the outcome when there is none.
async fn run_to_roll_back(cp: &ControlPlane, c: &Cutover, key: &str) -> Result<Result<RunRow, TenantOutcome>> {
    let Some(run) = cp.active_run(&c.name, key).await? else {
        let latest = cp.latest_run(&c.name, key).await?;
        let detail = match latest {
            Some(r) if r.status == "contracted" => {
                return Err(Error::Refused(format!(
                    "{key}: cutover {} is contracted (run {}): the old objects are gone, nothing to roll back to",
                    c.name, r.id
                )))
            }
            Some(r) => format!("no active run (last run {} is {})", r.id, r.status),
            None => "never run".into(),
        };
        return Ok(Err(TenantOutcome::new(key, "rolled-back", None, detail)));
    };
    if run.plan_checksum != c.checksum {
        // Rollback drops what the file names: an edited file could name other columns.
        return Err(Error::Refused(format!(
            "{key}: cutover {} was edited after run {} started ({}); restore the file that started it to roll back",
            c.name,
            run.id,
            c.path.display()
        )));
    }
    let recorded = cp.steps(run.id).await?;
    if recorded.iter().any(|r| r.step == "contract") {
        return Err(Error::Refused(format!(
            "{key}: contract has started (run {}); a cutover cannot be rolled back once contract began",
            run.id
        )));
    }
    Ok(Ok(run))
}

async fn rollback_tenant(cp: &ControlPlane, c: &Cutover, t: &Tenant, log: &(dyn Fn(&str) + Sync)) -> Result<TenantOutcome> {
    let run = match run_to_roll_back(cp, c, &t.slug).await? {
        Ok(run) => run,
        Err(outcome) => return Ok(outcome),
    };
    log(&format!("{}: rolling back run {}", t.slug, run.id));
    for w in &c.file.flip.workers {
        cp.set_route(&c.name, &t.slug, w, Some("old"), Some("old")).await?;
    }
    let mut db = TenantDb::connect(&t.database, c).await?;
    let detail = db.rollback().await?;
    cp.mark_steps_rolled_back(run.id).await?;
    cp.set_run_status(run.id, "rolled-back", None).await?;
    Ok(TenantOutcome::new(&t.slug, "rolled-back", None, detail))
}

/// A move rolls back until its writers flip. After that, rows written on
/// the target exist nowhere else: dropping the target side would lose them,
/// so rollback refuses (roll forward, or move them back with a new cutover).
async fn rollback_move(cp: &ControlPlane, c: &Cutover, log: &(dyn Fn(&str) + Sync)) -> Result<TenantOutcome> {
    let run = match run_to_roll_back(cp, c, MOVE_RUN).await? {
        Ok(run) => run,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(r) = cp.steps(run.id).await?.iter().find(|r| r.step == "flip-writers") {
        return Err(Error::Refused(format!(
            "cutover {}: the writers were routed to the target (flip-writers {} at {}): rows written there since exist only on the \
             target and a rollback would lose them; roll forward (contract after the retention window) or move them back with a \
             new cutover",
            c.name, r.status, r.started_at
        )));
    }
    log(&format!("{}: rolling back run {}", c.name, run.id));
    for w in &c.file.flip.workers {
        cp.set_route(&c.name, MOVE_RUN, w, Some("old"), Some("old")).await?;
    }
    let mut dbs = MoveDbs::connect(c).await?;
    let detail = dbs.rollback().await?;
    cp.mark_steps_rolled_back(run.id).await?;
    cp.set_run_status(run.id, "rolled-back", None).await?;
    Ok(TenantOutcome::new(MOVE_RUN, "rolled-back", None, detail))
}

/// One tenant's run as `strata cutover status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantStatus {
    pub tenant: String,
    pub run_id: Option<i64>,
    pub status: String,
    pub done: usize,
    pub total: usize,
    pub current: Option<String>,
    pub detail: Option<String>,
    pub steps: Vec<StepRow>,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Route {
    pub worker: String,
    pub reads: String,
    pub writes: String,
}

pub async fn status(ws: Option<&Workspace>, c: &Cutover) -> Result<Vec<TenantStatus>> {
    let spec = match ws {
        Some(ws) => control_plane_spec(ws, c)?,
        None => c.file.control_plane.clone().ok_or_else(|| {
            Error::Refused(format!(
                "cutover {}: no control plane: set `control_plane` in the cutover file",
                c.name
            ))
        })?,
    };
    let cp = ControlPlane::open(&spec).await?;
    let plan = steps(c);
    let keys: Vec<String> = match (c.file.kind, ws) {
        (Kind::Move, _) => vec![MOVE_RUN.to_string()],
        (Kind::Reshape, Some(ws)) => tenant_waves(ws, c)?.into_iter().flatten().map(|t| t.slug.clone()).collect(),
        (Kind::Reshape, None) => return Err(Error::Refused(format!("cutover {}: a reshape needs a workspace", c.name))),
    };
    let mut out = Vec::new();
    for slug in keys {
        let run = cp.latest_run(&c.name, &slug).await?;
        let recorded = match &run {
            Some(r) => cp.steps(r.id).await?,
            None => Vec::new(),
        };
        let done = recorded.iter().filter(|r| r.status == "done").count();
        let current = recorded.iter().rev().find(|r| r.status != "done").or(recorded.last());
        let routes = cp
            .routes(&c.name, &slug)
            .await?
            .into_iter()
            .map(|(worker, reads, writes)| Route { worker, reads, writes })
            .collect();
        out.push(TenantStatus {
            tenant: slug,
            run_id: run.as_ref().map(|r| r.id),
            status: run.as_ref().map_or_else(|| "not-started".into(), |r| r.status.clone()),
            done,
            total: plan.len(),
            current: current.map(|r| format!("{} ({})", r.step, r.status)),
            detail: current.and_then(|r| r.detail.clone()).or(run.and_then(|r| r.error)),
            steps: recorded,
            routes,
        });
    }
    Ok(out)
}
