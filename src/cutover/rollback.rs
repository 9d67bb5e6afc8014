//! `strata cutover rollback`: undoes a run that has not reached contract (a
//! move: that has not started flipping its writers). The run is marked
//! `rolling-back` before anything is undone, and `rolled-back` only once all
//! of it is: every part checks what is left, so a rollback that failed half
//! way (a server down, rows it may not delete) is finished by running it
//! again, and no state needs hand-written SQL to leave.

use super::claim::abandon_passes;
use super::dispatch::MOVE_KEY;
use super::executor::{control_plane_spec, tenant_waves, Outcome, TenantOutcome};
use super::plan::{Cutover, Kind};
use super::progress::{Event, Events};
use super::relocate::MoveDbs;
use super::reshape::TenantDb;
use super::state::{ControlPlane, RunRow, RunStatus, Shape};
use super::{Error, Result};
use crate::workspace::Workspace;

/// Rolls back every tenant's run (or the move) that has not started contract.
pub async fn rollback(ws: Option<&Workspace>, c: &Cutover, events: Events<'_>) -> Result<Vec<TenantOutcome>> {
    let cp = ControlPlane::open(&control_plane_spec(ws, c)?).await?;
    let keys: Vec<(String, Option<String>)> = match (c.file.kind, ws) {
        (Kind::Move, _) => vec![(MOVE_KEY.to_string(), None)],
        (Kind::Reshape, Some(ws)) => {
            abandon_passes(&cp.client, &cp.target, &c.name).await?;
            tenant_waves(ws, c)?
                .into_iter()
                .flatten()
                .map(|t| (t.slug.clone(), Some(t.database.clone())))
                .collect()
        }
        (Kind::Reshape, None) => return Err(Error::Refused(format!("cutover {}: a reshape needs a workspace", c.name))),
    };
    let mut outcomes = Vec::new();
    for (key, database) in keys {
        if !cp.try_lock_run(&c.name, &key).await? {
            let e = cp.lock_run(&c.name, &key).await.err().map(|e| e.to_string()).unwrap_or_default();
            outcomes.push(TenantOutcome::new(&key, Outcome::Busy, None, e));
            continue;
        }
        let res = rollback_one(&cp, c, &key, database.as_deref(), events).await;
        cp.unlock_run(&c.name, &key).await?;
        outcomes.push(res.unwrap_or_else(|e| {
            let msg = e.to_string();
            events(Event::Failed {
                key: key.clone(),
                step: "rollback".into(),
                error: msg.clone(),
            });
            TenantOutcome::new(&key, Outcome::Failed, None, msg)
        }));
    }
    Ok(outcomes)
}

/// The run to roll back, or the outcome when there is none.
async fn run_to_roll_back(cp: &ControlPlane, c: &Cutover, key: &str) -> Result<std::result::Result<RunRow, TenantOutcome>> {
    let Some(run) = cp.active_run(&c.name, key).await? else {
        let latest = cp.latest_run(&c.name, key).await?;
        let detail = match latest {
            Some(r) if r.status == RunStatus::Contracted => {
                return Err(Error::Refused(format!(
                    "{key}: cutover {} is contracted (run {}): the old objects are gone, nothing to roll back to",
                    c.name, r.id
                )))
            }
            Some(r) => format!("no active run (last run {} is {})", r.id, r.status),
            None => "never run".into(),
        };
        return Ok(Err(TenantOutcome::new(key, Outcome::RolledBack, None, detail)));
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
    if c.file.kind == Kind::Move {
        // Rows written on the target by flipped writers exist nowhere else.
        if let Some(r) = recorded.iter().find(|r| r.step == "flip-writers") {
            return Err(Error::Refused(format!(
                "cutover {}: the writers were routed to the target (flip-writers {} at {}): rows written there since exist only \
                 on the target and a rollback would lose them; roll forward (contract after the retention window) or move them \
                 back with a new cutover",
                c.name, r.status, r.started_at
            )));
        }
    }
    Ok(Ok(run))
}

/// Rolls back one run: routes back to old, the databases' objects undone,
/// the run marked rolled back. A failure leaves it `rolling-back`, with the
/// error, for the next rollback to finish.
async fn rollback_one(cp: &ControlPlane, c: &Cutover, key: &str, database: Option<&str>, events: Events<'_>) -> Result<TenantOutcome> {
    let run = match run_to_roll_back(cp, c, key).await? {
        Ok(run) => run,
        Err(outcome) => return Ok(outcome),
    };
    let resumed = run.status == RunStatus::RollingBack;
    events(Event::Started {
        key: key.to_string(),
        step: if resumed {
            "rollback (finishing)".into()
        } else {
            "rollback".into()
        },
    });
    cp.mark_rolling_back(run.id).await?;
    let res = async {
        for w in &c.file.flip.workers {
            cp.set_route(&c.name, key, w, Some(Shape::Old), Some(Shape::Old)).await?;
        }
        match database {
            None => MoveDbs::connect(c, run.token.as_deref()).await?.rollback().await,
            Some(db) => TenantDb::connect(db, c).await?.rollback().await,
        }
    }
    .await;
    match res {
        Ok(detail) => {
            cp.mark_rolled_back(run.id).await?;
            events(Event::Finished {
                key: key.to_string(),
                step: "rollback".into(),
                detail: detail.clone(),
            });
            Ok(TenantOutcome::new(key, Outcome::RolledBack, None, detail))
        }
        Err(e) => {
            let msg = format!("rollback did not finish: {e}; run `strata cutover rollback` again to finish it");
            cp.set_run_status(run.id, RunStatus::RollingBack, Some(&msg)).await?;
            Err(Error::Refused(msg))
        }
    }
}
