//! One dispatch for every step of either kind: [`execute_step`] matches on
//! the step's action once, against a [`StepDb`] — a tenant database under
//! reshape, or the source and target of a move. The routes, the soak with
//! its countdown and the flips are the same for both; what differs lives in
//! the two implementations.

use std::time::Duration;

use super::plan::format_duration;
use super::progress::{Event, SoakChoice, StepCtx};
use super::relocate::replication::{Pulse, RUN_KEY};
use super::relocate::MoveDbs;
use super::reshape::TenantDb;
use super::state::{Progress, Shape};
use super::steps::{Action, Step};
use super::{Error, Result, Sql};

/// What a step does in the databases of one run.
pub(crate) trait StepDb {
    /// What readers and writers flip to, for messages.
    fn new_side(&self) -> &'static str;
    async fn preflight(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    async fn expand(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    async fn dual_write(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    async fn backfill(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    async fn identity(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    /// The verification gate (the verify step, and after each reader's soak).
    async fn gate(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    /// Cheap figures for a soak's countdown.
    async fn pulse(&mut self) -> Result<Pulse>;
    /// Work before the writers' routes flip (a move: sequences).
    async fn before_writers(&mut self, ctx: &StepCtx<'_>) -> Result<Option<String>>;
    /// Work after the writers' routes flipped (a move: the end of the window).
    async fn after_writers(&mut self, ctx: &StepCtx<'_>) -> Result<Option<String>>;
    async fn contract(&mut self, ctx: &StepCtx<'_>) -> Result<String>;
    /// The statements `step` would execute, for a dry run.
    async fn statements(&mut self, step: &Step) -> Result<Vec<Sql>>;
}

/// Runs one step of a run.
pub(crate) async fn execute_step<D: StepDb>(db: &mut D, ctx: &StepCtx<'_>) -> Result<String> {
    let c_name = ctx.cutover_name();
    let workers = ctx.workers();
    match &ctx.step.action {
        Action::Preflight => db.preflight(ctx).await,
        Action::Expand => db.expand(ctx).await,
        Action::DualWrite => {
            for w in workers {
                ctx.cp.set_route(c_name, ctx.key, w, None, None).await?;
            }
            db.dual_write(ctx).await
        }
        Action::Backfill => db.backfill(ctx).await,
        Action::Identity => db.identity(ctx).await,
        Action::Verify => db.gate(ctx).await,
        Action::FlipReader { worker } => {
            ctx.cp.set_route(c_name, ctx.key, worker, Some(Shape::New), None).await?;
            let soaked = soak(db, ctx).await?;
            Ok(format!("{worker} reads {}; {soaked}; {}", db.new_side(), db.gate(ctx).await?))
        }
        Action::FlipWriters => {
            let before = db.before_writers(ctx).await?;
            for w in workers {
                ctx.cp.set_route(c_name, ctx.key, w, Some(Shape::New), Some(Shape::New)).await?;
            }
            let after = db.after_writers(ctx).await?;
            let extra: String = before.into_iter().chain(after).map(|s| format!("; {s}")).collect();
            Ok(format!(
                "{} workers write {}{extra}; the retention window starts",
                workers.len(),
                db.new_side()
            ))
        }
        Action::Contract => db.contract(ctx).await,
    }
}

/// How often a soak's countdown measures the gate's figures.
const PULSE_EVERY: Duration = Duration::from_secs(10);

/// Waits out the soak of a flip, counting from the step's first start (a
/// resumed run waits only what is left), with a countdown and the gate's
/// figures. The operator's choice (`--soak`, `--skip-soak`) is recorded on
/// the step and holds for a resumed run that does not choose again.
async fn soak<D: StepDb>(db: &mut D, ctx: &StepCtx<'_>) -> Result<String> {
    let recorded = ctx.cp.steps(ctx.run_id).await?.into_iter().find(|r| r.step == ctx.step.id);
    let since_start = recorded.as_ref().map_or(0.0, |r| r.since_start_s);
    let total = match &ctx.options.soak {
        SoakChoice::For(d) => {
            ctx.cp.step_soak(ctx.run_id, &ctx.step.id, Some(d.as_secs_f64()), None).await?;
            *d
        }
        SoakChoice::Skip { reason } => {
            ctx.cp.step_soak(ctx.run_id, &ctx.step.id, Some(0.0), Some(reason)).await?;
            ctx.info(format!("{}: soak skipped: {reason}", ctx.step.id));
            return Ok(format!("soak skipped ({reason})"));
        }
        SoakChoice::AsPlanned => match recorded.as_ref() {
            Some(r) if r.soak_skipped.is_some() => {
                return Ok(format!("soak skipped ({})", r.soak_skipped.clone().unwrap_or_default()));
            }
            Some(r) if r.soak_s.is_some() => Duration::from_secs_f64(r.soak_s.unwrap_or(0.0).max(0.0)),
            _ => ctx.soak_planned(),
        },
    };
    let end = tokio::time::Instant::now() + total.saturating_sub(Duration::from_secs_f64(since_start.max(0.0)));
    let mut figures = String::new();
    let mut shown_warnings: Vec<String> = Vec::new();
    let mut next_pulse = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        if now >= next_pulse {
            let p = db.pulse().await?;
            figures = p.figures.clone();
            for w in &p.warnings {
                if !shown_warnings.contains(w) {
                    ctx.warn(w.clone());
                }
            }
            shown_warnings = p.warnings.clone();
            let left = end - now;
            ctx.save(
                &Progress {
                    soak_left_s: Some(left.as_secs_f64()),
                    ..p.progress
                },
                true,
            )
            .await?;
            next_pulse = now + PULSE_EVERY.min(total / 4).max(Duration::from_secs(1));
        }
        let left = end - now;
        (ctx.events)(Event::Soak {
            key: ctx.key.to_string(),
            step: ctx.step.id.clone(),
            left,
            total,
            figures: figures.clone(),
        });
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    Ok(format!("soaked {}", format_duration(total)))
}

impl StepDb for TenantDb<'_> {
    fn new_side(&self) -> &'static str {
        "the new shape"
    }

    async fn preflight(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        TenantDb::preflight(self).await
    }

    async fn expand(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        TenantDb::expand(self).await
    }

    async fn dual_write(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        TenantDb::dual_write(self).await
    }

    async fn backfill(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        TenantDb::backfill(self, Some(ctx)).await
    }

    async fn identity(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        // The plan refuses `[identity]` in a reshape, so this step is never planned here.
        Err(Error::Refused(format!(
            "cutover {}: the identity step belongs to a `move`",
            self.cutover.name
        )))
    }

    async fn gate(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        let v = self.verify().await?;
        let allowed = self.cutover.file.gates.max_row_difference as i64;
        if v.differing_rows > allowed {
            return Err(ctx.gate(format!("{v} (at most {allowed} differing rows allowed)")));
        }
        Ok(v.to_string())
    }

    async fn pulse(&mut self) -> Result<Pulse> {
        // A full verification is the gate at the end; during the soak the trigger must stay.
        let trigger = super::reshape::trigger_name(self.cutover);
        let row = self
            .client
            .query_one("SELECT count(*) FROM pg_trigger WHERE tgname = $1", &[&trigger])
            .await;
        Ok(match row.map(|r| r.try_get::<_, i64>(0)) {
            Ok(Ok(n)) if n as usize >= self.cutover.tables.len() => Pulse {
                figures: "dual-write trigger in place".into(),
                ..Pulse::default()
            },
            Ok(Ok(_)) => Pulse {
                figures: "dual-write trigger missing".into(),
                warnings: vec![format!(
                    "{}: the dual-write trigger {trigger} is missing on some table: the gate will fail",
                    self.target
                )],
                ..Pulse::default()
            },
            Ok(Err(e)) => Pulse {
                figures: format!("cannot read the triggers: {e}"),
                ..Pulse::default()
            },
            Err(e) => {
                let text = format!("{} is unreachable: {}", self.target, crate::pg::describe(&e));
                Pulse {
                    figures: text.clone(),
                    warnings: vec![text],
                    ..Pulse::default()
                }
            }
        })
    }

    async fn before_writers(&mut self, _ctx: &StepCtx<'_>) -> Result<Option<String>> {
        Ok(None)
    }

    async fn after_writers(&mut self, _ctx: &StepCtx<'_>) -> Result<Option<String>> {
        Ok(None)
    }

    async fn contract(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        TenantDb::contract(self).await
    }

    async fn statements(&mut self, step: &Step) -> Result<Vec<Sql>> {
        Ok(match &step.action {
            Action::Preflight => vec![Sql::new("tenant", "reads the catalog and the history only", "-- no change")],
            Action::Expand => self.expand_sql().await?,
            Action::DualWrite => self.dual_write_sql(),
            Action::Backfill => self.backfill_sql().await?,
            Action::Identity => Vec::new(),
            Action::Verify | Action::FlipReader { .. } => self.verification_sql(),
            Action::FlipWriters => Vec::new(),
            Action::Contract => self.contract_sql(),
        })
    }
}

/// A move's databases, as one run executes them.
pub(crate) struct MoveDb<'c> {
    pub dbs: MoveDbs<'c>,
}

impl MoveDb<'_> {
    /// A query of a step failed: the outage, when a side stopped answering
    /// meanwhile (its server shut down between two statements, say).
    async fn outage_after(&mut self, e: &Error) -> Option<String> {
        if matches!(e, Error::Gate { .. }) {
            return None;
        }
        self.dbs.reach_both().await.err()
    }

    /// `e` as the step reports it: a gate not passed that names the side
    /// that stopped answering (a later run goes on from it), or `e` itself.
    async fn explained(&mut self, ctx: &StepCtx<'_>, e: Error) -> Error {
        match self.outage_after(&e).await {
            Some(outage) => ctx.gate(outage),
            None => e,
        }
    }

    /// The end of the dual-write window, once the writers' routes flipped.
    async fn close_window(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        let ended = self.dbs.finish_replication().await?;
        let after = self.dbs.sync_sequences().await?;
        // The users and messages replicated since the identity step: linked now that no more arrive.
        let linked = if self.dbs.c.file.identity.is_some() {
            format!("; {}", self.link(ctx).await?)
        } else {
            String::new()
        };
        Ok(format!("{ended}; after the last replicated rows: {after}{linked}"))
    }

    /// The gate of a move: both sides reachable, lag, retained WAL, then
    /// counts and chunked checksums.
    async fn lag_and_verify(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        let (lag, warning) = self.dbs.lag_gate().await?.map_err(|m| ctx.gate(m))?;
        if let Some(w) = &warning {
            ctx.warn(w.clone());
        }
        let v = self.dbs.verify().await?;
        let allowed = self.dbs.c.file.gates.max_row_difference as i64;
        if v.differing_rows > allowed {
            return Err(ctx.gate(format!("{v} (at most {allowed} differing rows allowed)")));
        }
        let wal = match self.dbs.retained_wal().await? {
            Some(w) => format!("; retained WAL {}", super::plan::format_size(w.bytes)),
            None => String::new(),
        };
        Ok(format!("replication lag {:.1}ms{wal}; {v}", lag.as_secs_f64() * 1000.0))
    }

    /// The identity consolidation: prints the link report, returns its summary line.
    async fn link(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        let Some(spec) = &self.dbs.c.file.identity else {
            return Ok("no [identity] section".into());
        };
        let report = super::identity::run(&self.dbs.src, &self.dbs.dst, spec).await?;
        let text = report.to_string();
        for line in text.lines() {
            ctx.info(line);
        }
        Ok(text.lines().next().unwrap_or_default().to_string())
    }
}

impl StepDb for MoveDb<'_> {
    fn new_side(&self) -> &'static str {
        "the target"
    }

    async fn preflight(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        self.dbs.preflight().await
    }

    async fn expand(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        self.dbs.expand().await
    }

    async fn dual_write(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        self.dbs.dual_write().await
    }

    async fn backfill(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        self.dbs.backfill(ctx).await
    }

    async fn identity(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        self.link(ctx).await
    }

    async fn gate(&mut self, ctx: &StepCtx<'_>) -> Result<String> {
        match self.lag_and_verify(ctx).await {
            Err(e) => Err(self.explained(ctx, e).await),
            passed => passed,
        }
    }

    async fn pulse(&mut self) -> Result<Pulse> {
        match self.dbs.pulse().await {
            Err(e) => match self.outage_after(&e).await {
                Some(outage) => Ok(Pulse::outage(outage)),
                None => Err(e),
            },
            pulse => pulse,
        }
    }

    async fn before_writers(&mut self, ctx: &StepCtx<'_>) -> Result<Option<String>> {
        if let Err(outage) = self.dbs.reach_both().await {
            return Err(ctx.gate(outage));
        }
        // Sequences first: a writer routed to the target must not reuse a key the source handed out.
        match self.dbs.sync_sequences().await {
            Err(e) => Err(self.explained(ctx, e).await),
            Ok(synced) => Ok(Some(synced)),
        }
    }

    async fn after_writers(&mut self, ctx: &StepCtx<'_>) -> Result<Option<String>> {
        match self.close_window(ctx).await {
            Err(e) => Err(self.explained(ctx, e).await),
            Ok(closed) => Ok(Some(closed)),
        }
    }

    async fn contract(&mut self, _ctx: &StepCtx<'_>) -> Result<String> {
        self.dbs.contract().await
    }

    async fn statements(&mut self, step: &Step) -> Result<Vec<Sql>> {
        let d = &self.dbs;
        Ok(match &step.action {
            Action::Preflight => vec![Sql::new("source and target", "reads the catalogs only", "-- no change")],
            Action::Expand => d.expand_sql().await?,
            Action::DualWrite => d.dual_write_sql(true).await?,
            Action::Backfill => vec![Sql::new(
                "target",
                "waits for the initial copy (every table in state r)",
                "SELECT srrelid::regclass, srsubstate FROM pg_subscription_rel WHERE srsubid = (SELECT oid FROM pg_subscription WHERE subname = ...)",
            )],
            Action::Identity => vec![Sql::new(
                "target",
                "links the legacy users to contacts and resolves message senders, in one transaction",
                "-- see docs/cutovers.md, Identity consolidation",
            )],
            Action::Verify | Action::FlipReader { .. } => vec![
                Sql::new("source", "the lag probe", "SELECT pg_logical_emit_message(true, 'strata', 'lag probe')"),
                Sql::new("source and target", "counts and checksums per chunk of keys", "-- one index range scan per chunk"),
            ],
            Action::FlipWriters => vec![
                Sql::new("target", "key sequences past the source's", "SELECT setval(...)"),
                Sql::new(
                    "target and source",
                    "the end of the dual-write window",
                    format!(
                        "ALTER SUBSCRIPTION {q} DISABLE; ALTER SUBSCRIPTION {q} SET (slot_name = NONE); DROP SUBSCRIPTION {q};\n\
                         SELECT pg_drop_replication_slot('{n}'); DROP PUBLICATION IF EXISTS {q};",
                        q = crate::pg::quote_ident(&d.name),
                        n = d.name
                    ),
                ),
            ],
            Action::Contract => d.teardown_sql().await?,
        })
    }
}

/// The run key of a move.
pub(crate) const MOVE_KEY: &str = RUN_KEY;
