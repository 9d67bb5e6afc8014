//! Runs a `reshape` step by step in each tenant database, wave after wave,
//! and a `move` between its source and target (run key `move`), recording
//! every step in the control plane. The tenants of a reshape are
//! claimed through the control plane ([`super::claim`]), so any number of
//! `strata cutover run` processes, each with `--concurrency` workers, share
//! one cutover and no tenant runs twice at once. A step already `done` is
//! skipped; a step found `running` or `failed` (a killed or failed run) is
//! run again, which is safe because every step is idempotent; a contracted
//! tenant is finished and is left alone.

use serde::Serialize;

use super::claim::Pass;
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

    /// Failed, or not run because another process held it: it did not reach the step.
    pub fn is_failure(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "busy")
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

/// Runs the cutover over its tenants (a move: between its two databases), up
/// to and including `until`; a reshape runs up to `concurrency` tenants of a
/// wave at once.
pub async fn run(
    ws: Option<&Workspace>,
    c: &Cutover,
    until: Option<&str>,
    concurrency: usize,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Vec<TenantOutcome>> {
    check_until(c, until)?;
    if c.file.kind == Kind::Move {
        return run_move(ws, c, until, None, log).await.map(|o| vec![o]);
    }
    let ws = need_workspace(ws, c)?;
    run_reshape(ws, c, until, concurrency, log).await
}

/// A reshape: join (or start) the pass of this command in the control plane,
/// then `concurrency` workers claim its tenants wave by wave (see
/// [`super::claim`]). Returns every tenant of the pass, in wave order: those
/// this process ran with their outcome, the others as the pass records them.
async fn run_reshape(
    ws: &Workspace,
    c: &Cutover,
    until: Option<&str>,
    concurrency: usize,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Vec<TenantOutcome>> {
    let spec = control_plane_spec(ws, c)?;
    // Opening creates the tables, the pass tables included.
    let cp = ControlPlane::open(&spec).await?;
    let waves = tenant_waves(ws, c)?;
    let registered: Vec<(String, i32)> = waves
        .iter()
        .enumerate()
        .flat_map(|(w, ts)| ts.iter().map(move |t| (t.slug.clone(), w as i32)))
        .collect();
    let pass = Pass::join(&cp.target, &c.name, until, &c.checksum, c.file.max_failures, &registered).await?;
    let tenants: Vec<&Tenant> = waves.into_iter().flatten().collect();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1).min(tenants.len().max(1)) {
        let claimer = pass.claimer().await?;
        let worker_cp = ControlPlane::open(&spec).await?;
        let tenants = &tenants;
        workers.push(async move {
            let mut mine = Vec::new();
            while let Some(slug) = claimer.claim().await? {
                let Some(t) = tenants.iter().find(|t| t.slug == slug) else {
                    // Not possible: the claim only offers this process's tenants.
                    return Err(Error::Refused(format!("cutover {}: claimed unknown tenant {slug}", c.name)));
                };
                let outcome = match run_claimed(&worker_cp, c, t, until, log).await {
                    Ok(o) => o,
                    Err(e @ Error::Busy(_)) => TenantOutcome::new(&t.slug, "busy", None, e.to_string()),
                    Err(e) => TenantOutcome::new(&t.slug, "failed", None, e.to_string()),
                };
                claimer
                    .complete(&outcome.tenant, &outcome.status, outcome.step.as_deref(), &outcome.detail)
                    .await?;
                mine.push(outcome);
            }
            Ok::<_, Error>(mine)
        });
    }
    let mut mine = Vec::new();
    for res in join_all(workers).await {
        mine.extend(res?);
    }
    let rows = pass.finish().await?;
    let failed = rows.iter().filter(|r| matches!(r.status.as_str(), "failed" | "busy")).count();
    let outcomes = rows
        .into_iter()
        .map(|r| {
            if let Some(o) = mine.iter().find(|o| o.tenant == r.tenant) {
                return o.clone();
            }
            match r.status.as_str() {
                "pending" if r.claimed_now => TenantOutcome::new(&r.tenant, "busy", None, "another strata process is running it now"),
                "pending" => TenantOutcome::new(
                    &r.tenant,
                    "not-started",
                    None,
                    format!(
                        "halted: {failed} tenant(s) failed (or busy) in this run, more than max_failures = {} (wave {} not started)",
                        c.file.max_failures,
                        r.wave + 1
                    ),
                ),
                _ => {
                    let by = r.claimed_by.as_deref().unwrap_or("another process");
                    let detail = match r.detail.as_deref() {
                        Some(d) if !d.is_empty() => format!("{d} (run by {by})"),
                        _ => format!("run by {by}"),
                    };
                    TenantOutcome::new(&r.tenant, &r.status, r.step, detail)
                }
            }
        })
        .collect();
    Ok(outcomes)
}

/// Polls every future to completion on the current task (the workers
/// borrow the cutover and the log, so they are not spawned).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A claimed tenant: take its executor lock, waiting a little for the
/// session of a process that just died to end, then run it.
async fn run_claimed(
    cp: &ControlPlane,
    c: &Cutover,
    t: &Tenant,
    until: Option<&str>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<TenantOutcome> {
    let mut attempt = 0;
    loop {
        match cp.lock_run(&c.name, &t.slug).await {
            Ok(()) => break,
            Err(Error::Busy(_)) if attempt < LOCK_WAITS => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
    let res = run_tenant_locked(cp, c, t, until, None, log).await;
    cp.unlock_run(&c.name, &t.slug).await?;
    res
}

/// Attempts (250 ms apart) at a claimed tenant's executor lock: a `flip` or
/// `rollback` may hold it, or the session of a killed process not yet ended.
const LOCK_WAITS: u32 = 20;

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
    let res = run_tenant_locked(cp, c, t, until, only, log).await;
    cp.unlock_run(&c.name, &t.slug).await?;
    res
}

/// One tenant whose executor lock this process holds.
async fn run_tenant_locked(
    cp: &ControlPlane,
    c: &Cutover,
    t: &Tenant,
    until: Option<&str>,
    only: Option<&str>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<TenantOutcome> {
    if let Some(done) = contracted(cp, c, &t.slug).await? {
        return Ok(done);
    }
    let db = match TenantDb::connect(&t.database, c).await {
        Ok(db) => db,
        Err(e) => {
            // Recorded, so that `cutover status` says why the tenant stands still.
            let msg = e.to_string();
            let run = cp.start_run(&c.name, &t.slug, c.file.kind.as_str(), &c.checksum).await?;
            cp.set_run_status(run.id, "failed", Some(&msg)).await?;
            return Ok(TenantOutcome::new(&t.slug, "failed", None, msg));
        }
    };
    let mut runner = ReshapeRunner { db, tenant: t };
    run_steps(cp, c, &t.slug, &mut runner, until, only, log).await
}

/// The outcome of a run (`key`) that already contracted, if it did.
async fn contracted(cp: &ControlPlane, c: &Cutover, key: &str) -> Result<Option<TenantOutcome>> {
    Ok(cp
        .latest_run(&c.name, key)
        .await?
        .filter(|r| r.status == "contracted")
        .map(|r| TenantOutcome::new(key, "done", Some("contract".into()), format!("contracted (run {})", r.id))))
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
    // A contracted run is finished: a run killed after contract (or run again) has nothing left to do.
    if let Some(done) = contracted(cp, c, key).await? {
        return Ok(done);
    }
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
        if until == Some(step.id.as_str()) {
            break;
        }
    }
    // Also when contract was recorded done by a run killed before it could close the run.
    if last_done.as_deref() == Some("contract") {
        cp.set_run_status(run.id, "contracted", None).await?;
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
        // The plan refuses `[identity]` in a reshape, so this step is never planned here.
        Action::Identity => Err(Error::Refused(format!("cutover {}: the identity step belongs to a `move`", c.name))),
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

/// One step of a move.
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
        Action::Identity => identity(dbs, log).await,
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
            // The users and messages replicated since the identity step: linked now that no more arrive.
            let linked = if c.file.identity.is_some() {
                format!("; {}", identity(dbs, log).await?)
            } else {
                String::new()
            };
            Ok(format!(
                "{} workers write the target; {before}; {ended}; after the last replicated rows: {after}{linked}; the retention \
                 window starts",
                c.file.flip.workers.len()
            ))
        }
        Action::Contract => dbs.contract().await,
    }
}

/// The identity consolidation of a move: prints the link report, returns its summary line.
async fn identity(dbs: &MoveDbs<'_>, log: &(dyn Fn(&str) + Sync)) -> Result<String> {
    let Some(spec) = &dbs.c.file.identity else {
        return Ok("no [identity] section".into());
    };
    let report = super::identity::run(&dbs.src, &dbs.dst, spec).await?;
    let text = report.to_string();
    for line in text.lines() {
        log(&format!("{MOVE_RUN}: {line}"));
    }
    Ok(text.lines().next().unwrap_or_default().to_string())
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
    super::claim::abandon_passes(&cp.client, &cp.target, &c.name).await?;
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
    cp.mark_rolled_back(run.id).await?;
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
    cp.mark_rolled_back(run.id).await?;
    Ok(TenantOutcome::new(MOVE_RUN, "rolled-back", None, detail))
}

/// One tenant's run as `strata cutover status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantStatus {
    pub tenant: String,
    /// The tenant's wave, from 1 (a move has none).
    pub wave: Option<usize>,
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
    let keys: Vec<(String, Option<usize>)> = match (c.file.kind, ws) {
        (Kind::Move, _) => vec![(MOVE_RUN.to_string(), None)],
        (Kind::Reshape, Some(ws)) => tenant_waves(ws, c)?
            .into_iter()
            .enumerate()
            .flat_map(|(w, ts)| ts.into_iter().map(move |t| (t.slug.clone(), Some(w + 1))))
            .collect(),
        (Kind::Reshape, None) => return Err(Error::Refused(format!("cutover {}: a reshape needs a workspace", c.name))),
    };
    let mut out = Vec::new();
    for (slug, wave) in keys {
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
            wave,
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
