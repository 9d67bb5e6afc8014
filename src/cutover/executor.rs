//! Runs a `reshape` step by step in each tenant database, wave after wave,
//! and a `move` between its source and target (run key `move`), recording
//! every step in the control plane. The tenants of a reshape are claimed
//! through the control plane ([`super::claim`]), so any number of `strata
//! cutover run` processes, each with `--concurrency` workers, share one
//! cutover and no tenant runs twice at once. A step already `done` is
//! skipped; a step found `running`, `failed` or `interrupted` (a killed,
//! failed or stopped run) is run again, which is safe because every step is
//! idempotent; a contracted tenant is finished and is left alone.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use super::claim::{Pass, PassTenant};
use super::dispatch::{execute_step, MoveDb, StepDb, MOVE_KEY};
use super::plan::{format_duration, Cutover, Kind};
use super::progress::{Event, Events, RunOptions, StepCtx};
use super::relocate::MoveDbs;
use super::reshape::{Carrier, TenantDb};
use super::state::{ControlPlane, RunRow, RunStatus, StepRow, StepStatus};
use super::steps::{steps, Action, Step};
use super::{Error, Result, Sql};
use crate::fleet::WaveSelector;
use crate::workspace::{Tenant, Workspace};

/// What happened to one tenant (or the move) in this command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Reached the requested step.
    Done,
    /// Contract waits for its retention window.
    Waiting,
    /// Another strata process runs this tenant.
    Busy,
    Failed,
    /// Not run: failures halted the pass.
    NotStarted,
    RolledBack,
    /// Stopped by SIGINT or SIGTERM; the next run resumes it.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Waiting => "waiting",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::NotStarted => "not-started",
            Outcome::RolledBack => "rolled-back",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// One tenant's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct TenantOutcome {
    pub tenant: String,
    pub status: Outcome,
    /// The last step done.
    pub step: Option<String>,
    pub detail: String,
}

impl TenantOutcome {
    pub fn new(tenant: &str, status: Outcome, step: Option<String>, detail: impl Into<String>) -> TenantOutcome {
        TenantOutcome {
            tenant: tenant.to_string(),
            status,
            step,
            detail: detail.into(),
        }
    }

    /// Failed, or not run because another process held it: it did not reach the step.
    pub fn is_failure(&self) -> bool {
        matches!(self.status, Outcome::Failed | Outcome::Busy)
    }
}

/// The control plane the cutover names, or the workspace's.
pub fn control_plane_spec(ws: Option<&Workspace>, c: &Cutover) -> Result<String> {
    c.file
        .control_plane
        .clone()
        .or_else(|| ws.and_then(|w| w.config.control_plane.clone()))
        .ok_or_else(|| {
            Error::Refused(format!(
                "cutover {}: no control plane: the run state lives in a PostgreSQL database of its own; set `control_plane` \
                 (a connection string or env:VAR) in {} or in strata.toml",
                c.name,
                c.path.display()
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

fn need_workspace<'w>(ws: Option<&'w Workspace>, c: &Cutover) -> Result<&'w Workspace> {
    ws.ok_or_else(|| Error::Refused(format!("cutover {}: a reshape needs a workspace (tenants.toml)", c.name)))
}

/// The migration of the file's `migration` key, as a tenant's history would
/// record it; `None` when the file names none. The tenant must have its layer.
pub fn carrier_for(ws: &Workspace, c: &Cutover, t: &Tenant) -> Result<Option<Carrier>> {
    let Some(rel) = &c.file.migration else { return Ok(None) };
    let wanted = ws.root.join(rel);
    let same =
        |p: &std::path::Path| p == wanted || (p.canonicalize().ok().is_some() && p.canonicalize().ok() == wanted.canonicalize().ok());
    for (li, layer) in ws.layers.iter().enumerate() {
        let Some(pos) = layer.migrations.iter().position(|m| same(&m.path)) else {
            continue;
        };
        if !ws.tenant_layers(t).contains(&li) {
            return Err(Error::Refused(format!(
                "cutover {}: migration = `{rel}` belongs to layer {}, which tenant {} does not have",
                c.name,
                layer.id(),
                t.slug
            )));
        }
        let m = &layer.migrations[pos];
        let loaded = crate::pg::apply::Loaded::load(m, rel.clone(), layer.id())?;
        return Ok(Some(Carrier {
            layer: layer.id(),
            version: m.version.clone(),
            name: m.name.clone(),
            checksum: loaded.checksum,
            display: rel.clone(),
            earlier: layer.migrations[..pos].iter().map(|m| m.version.clone()).collect(),
        }));
    }
    Err(Error::Refused(format!(
        "cutover {}: migration = `{rel}` is not a migration of the workspace's layers: write it (the new shape, for tenants \
         created later) under schema/<layer>/ before the run; see docs/cutovers.md, \"The migration that carries the new shape\"",
        c.name
    )))
}

/// Runs the cutover over its tenants (a move: between its two databases), up
/// to and including `options.until`; a reshape runs up to
/// `options.concurrency` tenants of a wave at once.
pub async fn run(ws: Option<&Workspace>, c: &Cutover, options: &RunOptions, events: Events<'_>) -> Result<Vec<TenantOutcome>> {
    check_until(c, options.until.as_deref())?;
    if c.file.kind == Kind::Move {
        return run_move(ws, c, options, None, events).await.map(|o| vec![o]);
    }
    let ws = need_workspace(ws, c)?;
    run_reshape(ws, c, options, events).await
}

/// A reshape: join (or start) the pass of this command in the control plane,
/// then `concurrency` workers claim its tenants wave by wave (see
/// [`super::claim`]). Returns every tenant of the pass, in wave order: those
/// this process ran with their outcome, the others as the pass records them.
async fn run_reshape(ws: &Workspace, c: &Cutover, options: &RunOptions, events: Events<'_>) -> Result<Vec<TenantOutcome>> {
    let spec = control_plane_spec(Some(ws), c)?;
    // Opening creates the tables, the pass tables included.
    let cp = ControlPlane::open(&spec).await?;
    let waves = tenant_waves(ws, c)?;
    let registered: Vec<(String, i32)> = waves
        .iter()
        .enumerate()
        .flat_map(|(w, ts)| ts.iter().map(move |t| (t.slug.clone(), w as i32)))
        .collect();
    let until = options.until.as_deref();
    let pass = Pass::join(&cp.target, &c.name, until, &c.checksum, c.file.max_failures, &registered).await?;
    let tenants: Vec<&Tenant> = waves.into_iter().flatten().collect();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency.max(1).min(tenants.len().max(1)) {
        let claimer = pass.claimer().await?;
        let worker_cp = ControlPlane::open(&spec).await?;
        let tenants = &tenants;
        workers.push(async move {
            let mut mine = Vec::new();
            while options.stop.requested().is_none() {
                let Some(slug) = claimer.claim().await? else { break };
                let Some(t) = tenants.iter().find(|t| t.slug == slug) else {
                    // Not possible: the claim only offers this process's tenants.
                    return Err(Error::Refused(format!("cutover {}: claimed unknown tenant {slug}", c.name)));
                };
                let outcome = run_claimed(&worker_cp, ws, c, t, options, events).await;
                if outcome.status == Outcome::Interrupted {
                    // Left pending in the pass: the next run claims it again and resumes its step.
                    claimer.release().await?;
                    mine.push(outcome);
                    break;
                }
                claimer
                    .complete(&outcome.tenant, outcome.status.as_str(), outcome.step.as_deref(), &outcome.detail)
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
    Ok(pass_outcomes(c, &rows, &mine, options))
}

/// Every tenant of a pass: this process's outcomes, the others as recorded,
/// pending ones with why they did not start (exactly: a wave that partly ran
/// says so).
fn pass_outcomes(c: &Cutover, rows: &[PassTenant], mine: &[TenantOutcome], options: &RunOptions) -> Vec<TenantOutcome> {
    let failed = rows.iter().filter(|r| matches!(r.status.as_str(), "failed" | "busy")).count();
    let wave_state = |wave: i32| {
        let of_wave: Vec<&PassTenant> = rows.iter().filter(|r| r.wave == wave).collect();
        let pending = of_wave.iter().filter(|r| r.status == "pending").count();
        if pending == of_wave.len() {
            format!("wave {} not started", wave + 1)
        } else {
            format!(
                "wave {} partly run: {pending} of its {} tenants not started",
                wave + 1,
                of_wave.len()
            )
        }
    };
    rows.iter()
        .map(|r| {
            if let Some(o) = mine.iter().find(|o| o.tenant == r.tenant) {
                return o.clone();
            }
            match r.status.as_str() {
                "pending" if r.claimed_now => {
                    TenantOutcome::new(&r.tenant, Outcome::Busy, None, "another strata process is running it now")
                }
                "pending" if options.stop.requested().is_some() => TenantOutcome::new(
                    &r.tenant,
                    Outcome::NotStarted,
                    None,
                    format!("not started: stopped by {}", options.stop.requested().unwrap_or("a signal")),
                ),
                "pending" => TenantOutcome::new(
                    &r.tenant,
                    Outcome::NotStarted,
                    None,
                    format!(
                        "halted: {failed} tenant(s) failed (or busy) in this run: max_failures = {} reached ({})",
                        c.file.max_failures,
                        wave_state(r.wave)
                    ),
                ),
                status => {
                    let by = r.claimed_by.as_deref().unwrap_or("another process");
                    let detail = match r.detail.as_deref() {
                        Some(d) if !d.is_empty() => format!("{d} (run by {by})"),
                        _ => format!("run by {by}"),
                    };
                    let outcome = match status {
                        "done" => Outcome::Done,
                        "waiting" => Outcome::Waiting,
                        "busy" => Outcome::Busy,
                        _ => Outcome::Failed,
                    };
                    TenantOutcome::new(&r.tenant, outcome, r.step.clone(), detail)
                }
            }
        })
        .collect()
}

/// Polls every future to completion on the current task (the workers
/// borrow the cutover and the events, so they are not spawned).
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
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

/// Attempts (250 ms apart) at a claimed tenant's executor lock: a `flip` or
/// `rollback` may hold it, or the session of a killed process not yet ended.
const LOCK_WAITS: u32 = 20;

/// A tenant of this command: take its executor lock (`wait`ing a little
/// for the session of a process that just died to end), then run it. Every
/// error becomes the tenant's outcome.
#[allow(clippy::too_many_arguments)]
async fn run_locked_tenant(
    cp: &ControlPlane,
    ws: &Workspace,
    c: &Cutover,
    t: &Tenant,
    options: &RunOptions,
    only: Option<&str>,
    wait: bool,
    events: Events<'_>,
) -> TenantOutcome {
    let mut attempt = 0;
    loop {
        match cp.try_lock_run(&c.name, &t.slug).await {
            Ok(true) => break,
            Ok(false) if wait && attempt < LOCK_WAITS => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Ok(false) => {
                let e = cp.lock_run(&c.name, &t.slug).await.err().map(|e| e.to_string()).unwrap_or_default();
                return TenantOutcome::new(&t.slug, Outcome::Busy, None, e);
            }
            Err(e) => return TenantOutcome::new(&t.slug, Outcome::Failed, None, e.to_string()),
        }
    }
    let res = run_tenant_locked(cp, ws, c, t, options, only, events).await;
    let unlocked = cp.unlock_run(&c.name, &t.slug).await;
    match (res, unlocked) {
        (Ok(o), Ok(())) => o,
        (Ok(_), Err(e)) | (Err(e), _) => {
            let last = last_done_of(cp, c, &t.slug).await;
            TenantOutcome::new(&t.slug, Outcome::Failed, last, e.to_string())
        }
    }
}

async fn run_claimed(
    cp: &ControlPlane,
    ws: &Workspace,
    c: &Cutover,
    t: &Tenant,
    options: &RunOptions,
    events: Events<'_>,
) -> TenantOutcome {
    run_locked_tenant(cp, ws, c, t, options, None, true, events).await
}

/// The last step done of the latest run of (cutover, key), for a failure's outcome.
async fn last_done_of(cp: &ControlPlane, c: &Cutover, key: &str) -> Option<String> {
    let run = cp.latest_run(&c.name, key).await.ok().flatten()?;
    last_done(&cp.steps(run.id).await.ok()?, &steps(c))
}

fn last_done(recorded: &[StepRow], plan: &[Step]) -> Option<String> {
    plan.iter()
        .rev()
        .find(|s| recorded.iter().any(|r| r.step == s.id && r.status == StepStatus::Done))
        .map(|s| s.id.clone())
}

/// A move between its two databases: the same step loop as a reshape's
/// tenant, run key `move`. With `only`, every step before it must be done.
async fn run_move(
    ws: Option<&Workspace>,
    c: &Cutover,
    options: &RunOptions,
    only: Option<&str>,
    events: Events<'_>,
) -> Result<TenantOutcome> {
    let cp = ControlPlane::open(&control_plane_spec(ws, c)?).await?;
    if !cp.try_lock_run(&c.name, MOVE_KEY).await? {
        let e = cp
            .lock_run(&c.name, MOVE_KEY)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Ok(TenantOutcome::new(MOVE_KEY, Outcome::Busy, None, e));
    }
    let res = async {
        let run = match open_run(&cp, c, MOVE_KEY).await? {
            Ok(run) => run,
            Err(done) => return Ok(done),
        };
        let dbs = match MoveDbs::connect(c, run.token.as_deref()).await {
            Ok(dbs) => dbs,
            Err(e) => return record_unreachable(&cp, c, MOVE_KEY, &run, e).await,
        };
        step_loop(&cp, c, MOVE_KEY, &run, &mut MoveDb { dbs }, options, only, events).await
    }
    .await;
    cp.unlock_run(&c.name, MOVE_KEY).await?;
    match res {
        Ok(o) => Ok(o),
        Err(e) => Ok(TenantOutcome::new(
            MOVE_KEY,
            Outcome::Failed,
            last_done_of(&cp, c, MOVE_KEY).await,
            e.to_string(),
        )),
    }
}

/// A database that cannot be reached when a run starts: recorded, so that
/// `cutover status` says why the run stands still.
async fn record_unreachable(cp: &ControlPlane, c: &Cutover, key: &str, run: &RunRow, e: Error) -> Result<TenantOutcome> {
    let msg = e.to_string();
    cp.set_run_status(run.id, RunStatus::Failed, Some(&msg)).await?;
    Ok(TenantOutcome::new(key, Outcome::Failed, last_done_of(cp, c, key).await, msg))
}

/// Runs the one step `flip-reader:WORKER` for every tenant (up to
/// `options.concurrency` at once, soaks included), or for the move; the
/// steps before it must be done.
pub async fn flip(
    ws: Option<&Workspace>,
    c: &Cutover,
    worker: &str,
    options: &RunOptions,
    events: Events<'_>,
) -> Result<Vec<TenantOutcome>> {
    let id = format!("flip-reader:{worker}");
    if !steps(c).iter().any(|s| s.id == id) {
        return Err(Error::Refused(format!(
            "worker {worker} is not in flip.workers of cutover {} ({})",
            c.name,
            c.file.flip.workers.join(", ")
        )));
    }
    let options = RunOptions {
        until: Some(id.clone()),
        ..options.clone()
    };
    if c.file.kind == Kind::Move {
        return run_move(ws, c, &options, Some(&id), events).await.map(|o| vec![o]);
    }
    let ws = need_workspace(ws, c)?;
    let spec = control_plane_spec(Some(ws), c)?;
    let tenants: Vec<&Tenant> = tenant_waves(ws, c)?.into_iter().flatten().collect();
    let queue = Mutex::new(tenants.iter().copied().collect::<VecDeque<_>>());
    let mut workers = Vec::new();
    for _ in 0..options.concurrency.max(1).min(tenants.len().max(1)) {
        let cp = ControlPlane::open(&spec).await?;
        let (queue, options, id) = (&queue, &options, id.as_str());
        workers.push(async move {
            let mut out = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(t) = next else { break };
                if let Some(sig) = options.stop.requested() {
                    out.push(TenantOutcome::new(
                        &t.slug,
                        Outcome::NotStarted,
                        None,
                        format!("not started: stopped by {sig}"),
                    ));
                    continue;
                }
                out.push(run_locked_tenant(&cp, ws, c, t, options, Some(id), false, events).await);
            }
            out
        });
    }
    let mut outcomes: Vec<TenantOutcome> = join_all(workers).await.into_iter().flatten().collect();
    // In wave order, as tenants.toml lists them.
    outcomes.sort_by_key(|o| tenants.iter().position(|t| t.slug == o.tenant));
    Ok(outcomes)
}

/// One tenant whose executor lock this process holds.
async fn run_tenant_locked(
    cp: &ControlPlane,
    ws: &Workspace,
    c: &Cutover,
    t: &Tenant,
    options: &RunOptions,
    only: Option<&str>,
    events: Events<'_>,
) -> Result<TenantOutcome> {
    let run = match open_run(cp, c, &t.slug).await? {
        Ok(run) => run,
        Err(done) => return Ok(done),
    };
    let carrier = match carrier_for(ws, c, t) {
        Ok(m) => m,
        Err(e) => return record_unreachable(cp, c, &t.slug, &run, e).await,
    };
    let mut db = match TenantDb::connect(&t.database, c).await {
        Ok(db) => db,
        Err(e) => return record_unreachable(cp, c, &t.slug, &run, e).await,
    };
    db.carrier = carrier;
    step_loop(cp, c, &t.slug, &run, &mut db, options, only, events).await
}

/// The outcome of a run (`key`) that already contracted, if it did.
async fn contracted(cp: &ControlPlane, c: &Cutover, key: &str) -> Result<Option<TenantOutcome>> {
    Ok(cp
        .latest_run(&c.name, key)
        .await?
        .filter(|r| r.status == RunStatus::Contracted)
        .map(|r| TenantOutcome::new(key, Outcome::Done, Some("contract".into()), format!("contracted (run {})", r.id))))
}

/// The run of `key` to continue (or a new one), or the outcome when there
/// is nothing to run: contracted already. Refuses an edited file (after
/// preflight) and a run whose rollback did not finish.
async fn open_run(cp: &ControlPlane, c: &Cutover, key: &str) -> Result<std::result::Result<RunRow, TenantOutcome>> {
    // A contracted run is finished: a run killed after contract (or run again) has nothing left to do.
    if let Some(done) = contracted(cp, c, key).await? {
        return Ok(Err(done));
    }
    let run = cp.start_run(&c.name, key, c.file.kind.as_str(), &c.checksum).await?;
    if run.status == RunStatus::RollingBack {
        return Err(Error::Refused(format!(
            "{key}: run {} of cutover {} is being rolled back (a rollback started and did not finish{}); run `strata cutover \
             rollback {}` again to finish it, then `cutover run` starts afresh",
            run.id,
            c.name,
            run.error.as_deref().map_or_else(String::new, |e| format!(": {e}")),
            c.path.display()
        )));
    }
    // An edit after a failed preflight is how the operator fixes the plan; after that it is refused.
    if run.plan_checksum != c.checksum && !cp.adopt_checksum(run.id, &c.checksum).await? {
        return Err(Error::Refused(format!(
            "{key}: cutover {} was edited after run {} started ({}); finish or roll back that run first (a soak is changed \
             without editing the file: `cutover flip ... --soak`)",
            c.name,
            run.id,
            c.path.display()
        )));
    }
    Ok(Ok(run))
}

/// The step loop of one run (`key`: a tenant's slug, or `move`): steps
/// already done are skipped, a step found running, failed or interrupted
/// runs again; a stop request abandons the step in progress and records it
/// `interrupted`.
#[allow(clippy::too_many_arguments)]
async fn step_loop<D: StepDb>(
    cp: &ControlPlane,
    c: &Cutover,
    key: &str,
    run: &RunRow,
    db: &mut D,
    options: &RunOptions,
    only: Option<&str>,
    events: Events<'_>,
) -> Result<TenantOutcome> {
    let until = options.until.as_deref();
    let plan = steps(c);
    let mut last_done = None;
    for (pos, step) in plan.iter().enumerate() {
        let recorded = cp.steps(run.id).await?;
        let row = recorded.iter().find(|r| r.step == step.id);
        if row.is_some_and(|r| r.status == StepStatus::Done) {
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
                let status = if until == Some("contract") {
                    Outcome::Failed
                } else {
                    Outcome::Waiting
                };
                return Ok(TenantOutcome::new(key, status, last_done, wait));
            }
        }
        if let Some(sig) = options.stop.requested() {
            return Ok(TenantOutcome::new(
                key,
                Outcome::Interrupted,
                last_done,
                format!("stopped by {sig} before {}", step.id),
            ));
        }
        events(Event::Started {
            key: key.to_string(),
            step: step.id.clone(),
        });
        cp.set_run_status(run.id, RunStatus::Running, None).await?;
        cp.step_started(run.id, &step.id, pos as i32).await?;
        let ctx = StepCtx::new(c, cp, run.id, key, step, events, options);
        let res = tokio::select! {
            res = execute_step(db, &ctx) => Some(res),
            _ = options.stop.wait() => None,
        };
        match res {
            None => {
                let sig = options.stop.requested().unwrap_or("a signal");
                let msg = format!(
                    "interrupted by {sig}; the same command resumes it (the step's work so far was rolled back or is kept, as \
                     after a crash)"
                );
                cp.step_finished(run.id, &step.id, StepStatus::Interrupted, &msg).await?;
                events(Event::Failed {
                    key: key.to_string(),
                    step: step.id.clone(),
                    error: msg.clone(),
                });
                return Ok(TenantOutcome::new(key, Outcome::Interrupted, last_done, msg));
            }
            Some(Ok(detail)) => {
                cp.step_finished(run.id, &step.id, StepStatus::Done, &detail).await?;
                events(Event::Finished {
                    key: key.to_string(),
                    step: step.id.clone(),
                    detail,
                });
                last_done = Some(step.id.clone());
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                cp.step_finished(run.id, &step.id, StepStatus::Failed, &msg).await?;
                cp.set_run_status(run.id, RunStatus::Failed, Some(&msg)).await?;
                events(Event::Failed {
                    key: key.to_string(),
                    step: step.id.clone(),
                    error: msg.clone(),
                });
                return Ok(TenantOutcome::new(key, Outcome::Failed, last_done, msg));
            }
        }
        if until == Some(step.id.as_str()) {
            break;
        }
    }
    // Also when contract was recorded done by a run killed before it could close the run.
    if last_done.as_deref() == Some("contract") {
        cp.set_run_status(run.id, RunStatus::Contracted, None).await?;
    }
    Ok(TenantOutcome::new(key, Outcome::Done, last_done, ""))
}

/// Why contract may not start yet, if it may not.
fn contract_blocked(c: &Cutover, plan: &[Step], recorded: &[StepRow]) -> Result<Option<String>> {
    for s in plan.iter().filter(|s| s.action != Action::Contract) {
        if !recorded.iter().any(|r| r.step == s.id && r.status == StepStatus::Done) {
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

/// What one step of one run would execute (`cutover run --dry-run`).
#[derive(Clone, Debug, Serialize)]
pub struct DryStep {
    pub tenant: String,
    pub step: String,
    /// Already done in the active run: it would be skipped.
    pub done: bool,
    pub statements: Vec<Sql>,
}

/// The statements each step up to `options.until` would execute, computed
/// from the databases' catalogs as the run would (reads only: nothing is
/// written, not even the control plane's tables). The subscription's
/// connection string is never shown.
pub async fn dry_run(ws: Option<&Workspace>, c: &Cutover, options: &RunOptions) -> Result<Vec<DryStep>> {
    check_until(c, options.until.as_deref())?;
    let spec = control_plane_spec(ws, c)?;
    let plan = steps(c);
    let wanted: Vec<&Step> = match options.until.as_deref() {
        Some(u) => {
            let end = plan.iter().position(|s| s.id == u).map_or(plan.len(), |i| i + 1);
            plan[..end].iter().collect()
        }
        None => plan.iter().collect(),
    };
    let mut out = Vec::new();
    let keys: Vec<(String, Option<&Tenant>)> = match c.file.kind {
        Kind::Move => vec![(MOVE_KEY.to_string(), None)],
        Kind::Reshape => {
            let ws = need_workspace(ws, c)?;
            tenant_waves(ws, c)?
                .into_iter()
                .flatten()
                .map(|t| (t.slug.clone(), Some(t)))
                .collect()
        }
    };
    for (key, tenant) in keys {
        let (token, done) = super::status::peek_run(&spec, c, &key).await;
        let mut db: Box<dyn DryDb + '_> = match tenant {
            None => Box::new(MoveDb {
                dbs: MoveDbs::connect(c, token.as_deref().or(Some("<run>"))).await?,
            }),
            Some(t) => {
                let mut db = TenantDb::connect(&t.database, c).await?;
                db.carrier = carrier_for(need_workspace(ws, c)?, c, t).ok().flatten();
                Box::new(db)
            }
        };
        for step in &wanted {
            let mut statements = route_sql(c, &key, step);
            statements.extend(db.dry(step).await?);
            out.push(DryStep {
                tenant: key.clone(),
                step: step.id.clone(),
                done: done.contains(&step.id),
                statements,
            });
        }
    }
    Ok(out)
}

/// The control-plane statements of a step (routes).
fn route_sql(c: &Cutover, key: &str, step: &Step) -> Vec<Sql> {
    let routes = |set: &str, workers: &[String]| {
        Sql::new(
            "control plane",
            "worker routes",
            format!(
                "UPDATE strata.worker_routes SET {set}, updated_at = now() WHERE cutover = {} AND tenant = {} AND worker IN ({})",
                crate::pg::quote_literal(&c.name),
                crate::pg::quote_literal(key),
                workers.iter().map(|w| crate::pg::quote_literal(w)).collect::<Vec<_>>().join(", ")
            ),
        )
    };
    match &step.action {
        Action::FlipReader { worker } => vec![routes("reads = 'new'", std::slice::from_ref(worker))],
        Action::FlipWriters => vec![routes("reads = 'new', writes = 'new'", &c.file.flip.workers)],
        _ => Vec::new(),
    }
}

/// A [`StepDb`] behind a box, for the dry run of either kind.
trait DryDb {
    fn dry<'s>(&'s mut self, step: &'s Step) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Sql>>> + 's>>;
}

impl<D: StepDb> DryDb for D {
    fn dry<'s>(&'s mut self, step: &'s Step) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Sql>>> + 's>> {
        Box::pin(self.statements(step))
    }
}
