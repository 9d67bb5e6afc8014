//! Sharing a reshape's tenants between strata processes, as the fleet
//! migrator shares a rollout ([`crate::fleet::control`]).
//!
//! A `strata cutover run FILE [--until STEP]` is a *pass*: a row of
//! `strata.cutover_passes` keyed by (cutover, `--until`, file checksum), with
//! a row per tenant in `strata.cutover_pass_tenants` (its wave, position and,
//! once finished, its outcome). Every process with the same command joins the
//! running pass (or starts one) and its workers claim tenants with
//! `SELECT ... FOR UPDATE SKIP LOCKED`. A claim is a row lock held by an open
//! transaction on the worker's own control-plane connection while the tenant
//! runs; the outcome is written and committed in that transaction. So no
//! tenant runs in two processes at once, and when a process dies (even
//! SIGKILL) its session ends, the row lock goes with it and the tenant is
//! claimed again by whoever runs the command next (its steps resume).
//!
//! Waves hold across processes: a tenant is claimable only when no tenant of
//! an earlier wave is pending, and no new tenant starts once `max_failures`
//! tenants of the pass have failed ("stop after N failures", the rule of
//! `strata migrate --max-failures`: [`crate::fleet::pool::limit_reached`]).
//! A tenant left `busy`, held by a `flip` or `rollback`, counts as failed: it
//! did not reach the step. A pass closes (`done`, `failed`, `halted`) when
//! nothing is left for anyone; a rollback abandons the cutover's running passes.

use std::time::Duration;

use tokio_postgres::Client;

use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::Target;

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS strata.cutover_passes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cutover text NOT NULL,
    until_step text NOT NULL,
    plan_checksum text NOT NULL,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'halted', 'abandoned')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    started_by text NOT NULL
);
CREATE TABLE IF NOT EXISTS strata.cutover_pass_tenants (
    pass_id bigint NOT NULL REFERENCES strata.cutover_passes (id) ON DELETE CASCADE,
    tenant text NOT NULL,
    wave integer NOT NULL,
    position integer NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'waiting', 'busy', 'failed')),
    step text,
    detail text,
    claimed_by text,
    finished_at timestamptz,
    PRIMARY KEY (pass_id, tenant)
);
";

/// How often a worker looks again when the tenants left are claimed by
/// others or wait for an earlier wave.
const POLL: Duration = Duration::from_millis(200);

/// A joined pass.
pub struct Pass {
    target: Target,
    pub id: i64,
    /// Failures after which no new tenant starts (at least 1).
    pub max_failures: usize,
    /// The tenants this process may run (its tenants.toml selection).
    mine: Vec<String>,
}

/// One tenant row of a pass.
#[derive(Clone, Debug)]
pub struct PassTenant {
    pub tenant: String,
    pub wave: i32,
    pub status: String,
    pub step: Option<String>,
    pub detail: Option<String>,
    pub claimed_by: Option<String>,
    /// Pending and claimed by a live process right now.
    pub claimed_now: bool,
}

/// A column of a control-plane row: an unexpected NULL or type is an error, never a panic.
fn column<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r tokio_postgres::Row, i: usize, target: &Target) -> Result<T> {
    row.try_get(i).map_err(|e| {
        Error::Refused(format!(
            "control plane {target}: unexpected value in strata.cutover_pass_tenants: {e}"
        ))
    })
}

fn err<'t>(target: &'t Target, context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error + 't {
    let f = sql_error(target, context);
    move |e| Error::Pg(f(e))
}

impl Pass {
    /// Joins the running pass of (cutover, until, checksum) or starts one,
    /// registering `tenants` (slug, wave). A running pass that nobody can
    /// continue (halted by failures, nothing claimed) is closed first, so a
    /// run after fixing a tenant starts afresh.
    pub async fn join(
        target: &Target,
        cutover: &str,
        until: Option<&str>,
        checksum: &str,
        max_failures: usize,
        tenants: &[(String, i32)],
    ) -> Result<Pass> {
        let client = crate::pg::connect(target).await?;
        let until = until.unwrap_or("");
        let key = format!("strata-cutover-pass:{cutover}");
        let mut pass = Pass {
            target: target.clone(),
            id: 0,
            max_failures,
            mine: tenants.iter().map(|(t, _)| t.clone()).collect(),
        };
        client
            .batch_execute("BEGIN")
            .await
            .map_err(err(target, "cutover pass: cannot begin"))?;
        client
            .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
            .await
            .map_err(err(target, "cutover pass: cannot lock"))?;
        let existing = client
            .query_opt(
                "SELECT id FROM strata.cutover_passes WHERE cutover = $1 AND until_step = $2 AND plan_checksum = $3 \
                 AND status = 'running' ORDER BY id DESC LIMIT 1",
                &[&cutover, &until, &checksum],
            )
            .await
            .map_err(err(target, "cutover pass: cannot read strata.cutover_passes"))?;
        if let Some(row) = existing {
            pass.id = row.get(0);
            if pass.close_if_finished(&client).await?.is_some() {
                pass.id = 0;
            }
        }
        if pass.id == 0 {
            pass.id = client
                .query_one(
                    "INSERT INTO strata.cutover_passes (cutover, until_step, plan_checksum, started_by) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&cutover, &until, &checksum, &crate::fleet::control::runner_id()],
                )
                .await
                .map_err(err(target, "cutover pass: cannot start a pass"))?
                .get(0);
        }
        for (position, (slug, wave)) in tenants.iter().enumerate() {
            client
                .execute(
                    "INSERT INTO strata.cutover_pass_tenants (pass_id, tenant, wave, position) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                    &[&pass.id, slug, wave, &(position as i32)],
                )
                .await
                .map_err(err(target, "cutover pass: cannot register the tenants"))?;
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(err(target, "cutover pass: cannot commit"))?;
        Ok(pass)
    }

    /// Whether `failed` failures stop new tenants from starting.
    pub fn stops(&self, failed: i64) -> bool {
        crate::fleet::pool::limit_reached(usize::try_from(failed).unwrap_or(0), Some(self.max_failures))
    }

    /// A connection of its own for one worker's claims.
    pub async fn claimer(&self) -> Result<Claimer<'_>> {
        Ok(Claimer {
            client: crate::fleet::control::claim_connection(&self.target).await?,
            pass: self,
            me: crate::fleet::control::runner_id(),
        })
    }

    /// Sets the pass's final status when nothing is left to run: `done` or
    /// `failed` when no tenant is pending, `halted` when failures block the
    /// pending ones and none of them is claimed. Runs inside the caller's
    /// transaction. Returns the status set.
    async fn close_if_finished(&self, client: &Client) -> Result<Option<&'static str>> {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status IN ('failed', 'busy')) \
                 FROM strata.cutover_pass_tenants WHERE pass_id = $1",
                &[&self.id],
            )
            .await
            .map_err(err(&self.target, "cutover pass: cannot count the tenants"))?;
        let (pending, failed): (i64, i64) = (row.get(0), row.get(1));
        let free = client
            .query(
                "SELECT 1 FROM strata.cutover_pass_tenants WHERE pass_id = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED",
                &[&self.id],
            )
            .await
            .map_err(err(&self.target, "cutover pass: cannot count the tenants"))?
            .len() as i64;
        let status = crate::fleet::control::closing_status(pending, free, failed, self.stops(failed));
        if let Some(status) = status {
            client
                .execute(
                    "UPDATE strata.cutover_passes SET status = $2, finished_at = now() WHERE id = $1 AND status = 'running'",
                    &[&self.id, &status],
                )
                .await
                .map_err(err(&self.target, "cutover pass: cannot close the pass"))?;
        }
        Ok(status)
    }

    /// Closes the pass if nothing is left, and returns every tenant row in
    /// wave order.
    pub async fn finish(&self) -> Result<Vec<PassTenant>> {
        let client = crate::pg::connect(&self.target).await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(err(&self.target, "cutover pass: cannot begin"))?;
        self.close_if_finished(&client).await?;
        let free: Vec<String> = client
            .query(
                "SELECT tenant FROM strata.cutover_pass_tenants WHERE pass_id = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED",
                &[&self.id],
            )
            .await
            .map_err(err(&self.target, "cutover pass: cannot read the tenants"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rows = client
            .query(
                "SELECT tenant, wave, status, step, detail, claimed_by FROM strata.cutover_pass_tenants WHERE pass_id = $1 \
                 ORDER BY wave, position",
                &[&self.id],
            )
            .await
            .map_err(err(&self.target, "cutover pass: cannot read the tenants"))?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(err(&self.target, "cutover pass: cannot commit"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let tenant: String = r.get(0);
                let status: String = r.get(2);
                PassTenant {
                    claimed_now: status == "pending" && !free.contains(&tenant),
                    tenant,
                    wave: r.get(1),
                    status,
                    step: r.get(3),
                    detail: r.get(4),
                    claimed_by: r.get(5),
                }
            })
            .collect())
    }
}

/// Abandons the running passes of a cutover (after a rollback, a pass's
/// finished tenants no longer say anything about where they stand).
pub async fn abandon_passes(client: &Client, target: &Target, cutover: &str) -> Result<()> {
    client
        .execute(
            "UPDATE strata.cutover_passes SET status = 'abandoned', finished_at = now() WHERE cutover = $1 AND status = 'running'",
            &[&cutover],
        )
        .await
        .map_err(err(target, "cutover pass: cannot abandon the running passes"))?;
    Ok(())
}

/// One worker's control-plane connection: it holds at most one claim.
pub struct Claimer<'p> {
    client: Client,
    pass: &'p Pass,
    me: String,
}

impl Claimer<'_> {
    /// Claims the next tenant this process may run; the claim's transaction
    /// stays open until [`Claimer::complete`]. Waits while the tenants left
    /// are claimed by others or wait for an earlier wave; None when nothing
    /// is left for this process or failures halted the pass.
    pub async fn claim(&self) -> Result<Option<String>> {
        let t = &self.pass.target;
        loop {
            let counts = self
                .client
                .query_one(
                    "SELECT count(*) FILTER (WHERE status = 'pending' AND tenant = ANY($2)), count(*) FILTER (WHERE status IN ('failed', 'busy')) \
                     FROM strata.cutover_pass_tenants WHERE pass_id = $1",
                    &[&self.pass.id, &self.pass.mine],
                )
                .await
                .map_err(err(t, "cutover pass: cannot read the pass"))?;
            let (pending, failed): (i64, i64) = (column(&counts, 0, t)?, column(&counts, 1, t)?);
            if pending == 0 || self.pass.stops(failed) {
                return Ok(None);
            }
            self.client
                .batch_execute("BEGIN")
                .await
                .map_err(err(t, "cutover pass: cannot begin"))?;
            let row = self
                .client
                .query_opt(
                    "SELECT p.tenant FROM strata.cutover_pass_tenants p
                      WHERE p.pass_id = $1 AND p.status = 'pending' AND p.tenant = ANY($2)
                        AND NOT EXISTS (SELECT 1 FROM strata.cutover_pass_tenants e
                                         WHERE e.pass_id = p.pass_id AND e.wave < p.wave AND e.status = 'pending')
                      ORDER BY p.wave, p.position
                      LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[&self.pass.id, &self.pass.mine],
                )
                .await
                .map_err(err(t, "cutover pass: cannot claim a tenant"))?;
            if let Some(r) = row {
                return Ok(Some(column(&r, 0, t)?));
            }
            self.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(err(t, "cutover pass: cannot roll back"))?;
            // Others run the remaining tenants, or an earlier wave.
            tokio::time::sleep(POLL).await;
        }
    }

    /// Gives the claimed tenant back without an outcome (the process is
    /// stopping): it stays pending, for the next run to claim and resume.
    pub async fn release(&self) -> Result<()> {
        self.client
            .batch_execute("ROLLBACK")
            .await
            .map_err(err(&self.pass.target, "cutover pass: cannot release a claim"))
    }

    /// Records the claimed tenant's outcome and releases the claim.
    pub async fn complete(&self, tenant: &str, status: &str, step: Option<&str>, detail: &str) -> Result<()> {
        let t = &self.pass.target;
        self.client
            .execute(
                "UPDATE strata.cutover_pass_tenants SET status = $3, step = $4, detail = $5, claimed_by = $6, finished_at = now() \
                 WHERE pass_id = $1 AND tenant = $2",
                &[&self.pass.id, &tenant, &status, &step, &detail, &self.me],
            )
            .await
            .map_err(err(t, "cutover pass: cannot record a tenant"))?;
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(err(t, "cutover pass: cannot commit"))?;
        Ok(())
    }
}
