//! Run state in the control-plane database: `strata.cutover_runs` (one row
//! per cutover and tenant attempt), `strata.cutover_steps` (one row per step
//! started) and `strata.worker_routes` (what each worker reads and writes;
//! workers poll this table).
//!
//! A step is recorded `running` before it starts and `done` after it
//! succeeded, so a killed run finds its last step `running` and runs it again
//! (every step is idempotent). One executor per run at a time: a session
//! advisory lock on the control-plane connection, released with the session.

use tokio_postgres::Client;

use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::Target;

pub const SCHEMA_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS strata;
CREATE TABLE IF NOT EXISTS strata.cutover_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cutover text NOT NULL,
    tenant text NOT NULL,
    kind text NOT NULL,
    plan_checksum text NOT NULL,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'failed', 'contracted', 'rolled-back')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    started_by text NOT NULL,
    error text
);
CREATE UNIQUE INDEX IF NOT EXISTS cutover_runs_active_idx ON strata.cutover_runs (cutover, tenant)
    WHERE status IN ('running', 'failed');
CREATE TABLE IF NOT EXISTS strata.cutover_steps (
    run_id bigint NOT NULL REFERENCES strata.cutover_runs (id) ON DELETE CASCADE,
    step text NOT NULL,
    position integer NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'done', 'failed', 'rolled-back')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    detail text,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS strata.worker_routes (
    cutover text NOT NULL,
    tenant text NOT NULL,
    worker text NOT NULL,
    reads text NOT NULL DEFAULT 'old' CHECK (reads IN ('old', 'new')),
    writes text NOT NULL DEFAULT 'old' CHECK (writes IN ('old', 'new')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cutover, tenant, worker)
);
";

/// Serialises creating the tables (advisory xact lock).
const SCHEMA_LOCK: i64 = 0x5354_5241_5441_0002;

/// A connection to the control plane, its tables created.
pub struct ControlPlane {
    pub target: Target,
    pub client: Client,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub tenant: String,
    pub status: String,
    pub plan_checksum: String,
    pub started_at: String,
    pub error: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StepRow {
    pub step: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Seconds since the step started / finished (server clock).
    pub since_start_s: f64,
    pub since_finish_s: Option<f64>,
    pub detail: Option<String>,
}

impl ControlPlane {
    pub async fn open(spec: &str) -> Result<ControlPlane> {
        let target = Target::parse(spec)?;
        let client = crate::pg::connect(&target).await?;
        // Runs are locked with session advisory locks on this connection.
        crate::pg::lock::require_session(&client, &target).await?;
        let sql = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA_SQL} {} COMMIT;",
            super::claim::SCHEMA_SQL
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(sql_error(&target, "creating the cutover tables"))?;
        Ok(ControlPlane { target, client })
    }

    fn err(&self, context: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
        let f = sql_error(&self.target, context.to_string());
        move |e| Error::Pg(f(e))
    }

    /// Takes the one-executor lock of (cutover, tenant) for this session.
    pub async fn lock_run(&self, cutover: &str, tenant: &str) -> Result<()> {
        let key = format!("strata-cutover:{cutover}:{tenant}");
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
            .await
            .map_err(self.err("locking the run"))?;
        if !row.get::<_, bool>(0) {
            return Err(Error::Busy(format!(
                "another strata process is running cutover {cutover} for tenant {tenant}; wait for it or stop it"
            )));
        }
        Ok(())
    }

    pub async fn unlock_run(&self, cutover: &str, tenant: &str) -> Result<()> {
        let key = format!("strata-cutover:{cutover}:{tenant}");
        self.client
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
            .await
            .map_err(self.err("unlocking the run"))?;
        Ok(())
    }

    const RUN_COLUMNS: &'static str =
        "id, tenant, status, plan_checksum, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z', error";

    fn run_row(r: &tokio_postgres::Row) -> RunRow {
        RunRow {
            id: r.get(0),
            tenant: r.get(1),
            status: r.get(2),
            plan_checksum: r.get(3),
            started_at: r.get(4),
            error: r.get(5),
        }
    }

    /// The run in progress (running or failed) of (cutover, tenant), if any.
    pub async fn active_run(&self, cutover: &str, tenant: &str) -> Result<Option<RunRow>> {
        let q = format!(
            "SELECT {} FROM strata.cutover_runs WHERE cutover = $1 AND tenant = $2 AND status IN ('running', 'failed')",
            Self::RUN_COLUMNS
        );
        let row = self
            .client
            .query_opt(&q, &[&cutover, &tenant])
            .await
            .map_err(self.err("reading the run"))?;
        Ok(row.as_ref().map(Self::run_row))
    }

    /// The latest run of (cutover, tenant), whatever its status.
    pub async fn latest_run(&self, cutover: &str, tenant: &str) -> Result<Option<RunRow>> {
        let q = format!(
            "SELECT {} FROM strata.cutover_runs WHERE cutover = $1 AND tenant = $2 ORDER BY id DESC LIMIT 1",
            Self::RUN_COLUMNS
        );
        let row = self
            .client
            .query_opt(&q, &[&cutover, &tenant])
            .await
            .map_err(self.err("reading the run"))?;
        Ok(row.as_ref().map(Self::run_row))
    }

    /// The active run, or a new one.
    pub async fn start_run(&self, cutover: &str, tenant: &str, kind: &str, checksum: &str) -> Result<RunRow> {
        if let Some(run) = self.active_run(cutover, tenant).await? {
            return Ok(run);
        }
        let by = crate::fleet::control::runner_id();
        self.client
            .execute(
                "INSERT INTO strata.cutover_runs (cutover, tenant, kind, plan_checksum, started_by) VALUES ($1, $2, $3, $4, $5)",
                &[&cutover, &tenant, &kind, &checksum, &by],
            )
            .await
            .map_err(self.err("starting the run"))?;
        self.active_run(cutover, tenant)
            .await?
            .ok_or_else(|| Error::Refused(format!("cutover {cutover}: the new run of {tenant} vanished")))
    }

    pub async fn set_run_status(&self, run_id: i64, status: &str, error: Option<&str>) -> Result<()> {
        let finished = matches!(status, "contracted" | "rolled-back");
        self.client
            .execute(
                "UPDATE strata.cutover_runs SET status = $2, error = $3, finished_at = CASE WHEN $4 THEN now() END WHERE id = $1",
                &[&run_id, &status, &error, &finished],
            )
            .await
            .map_err(self.err("recording the run's status"))?;
        Ok(())
    }

    /// Adopts an edited cutover file, when nothing it changes has run yet.
    pub async fn adopt_checksum(&self, run_id: i64, checksum: &str) -> Result<bool> {
        let n = self
            .client
            .execute(
                "UPDATE strata.cutover_runs SET plan_checksum = $2 WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM strata.cutover_steps WHERE run_id = $1 AND step <> 'preflight' AND status <> 'rolled-back')",
                &[&run_id, &checksum],
            )
            .await
            .map_err(self.err("recording the edited plan"))?;
        Ok(n == 1)
    }

    pub async fn steps(&self, run_id: i64) -> Result<Vec<StepRow>> {
        let rows = self
            .client
            .query(
                "SELECT step, status, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z', \
                 to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z', \
                 extract(epoch FROM now() - started_at)::float8, extract(epoch FROM now() - finished_at)::float8, detail \
                 FROM strata.cutover_steps WHERE run_id = $1 ORDER BY position",
                &[&run_id],
            )
            .await
            .map_err(self.err("reading the steps"))?;
        Ok(rows
            .iter()
            .map(|r| StepRow {
                step: r.get(0),
                status: r.get(1),
                started_at: r.get(2),
                finished_at: r.get(3),
                since_start_s: r.get(4),
                since_finish_s: r.get(5),
                detail: r.get(6),
            })
            .collect())
    }

    /// Marks a step running (keeping its original start when it is resumed).
    pub async fn step_started(&self, run_id: i64, step: &str, position: i32) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO strata.cutover_steps (run_id, step, position, status) VALUES ($1, $2, $3, 'running') \
                 ON CONFLICT (run_id, step) DO UPDATE SET status = 'running', finished_at = NULL",
                &[&run_id, &step, &position],
            )
            .await
            .map_err(self.err("recording a step"))?;
        Ok(())
    }

    pub async fn step_finished(&self, run_id: i64, step: &str, status: &str, detail: &str) -> Result<()> {
        self.client
            .execute(
                "UPDATE strata.cutover_steps SET status = $3, detail = $4, finished_at = now() WHERE run_id = $1 AND step = $2",
                &[&run_id, &step, &status, &detail],
            )
            .await
            .map_err(self.err("recording a step"))?;
        Ok(())
    }

    /// Marks the run and its steps rolled back, in one statement: a rollback
    /// killed half way leaves the run active, so it is rolled back again.
    pub async fn mark_rolled_back(&self, run_id: i64) -> Result<()> {
        self.client
            .execute(
                "WITH steps AS (UPDATE strata.cutover_steps SET status = 'rolled-back' WHERE run_id = $1) \
                 UPDATE strata.cutover_runs SET status = 'rolled-back', error = NULL, finished_at = now() WHERE id = $1",
                &[&run_id],
            )
            .await
            .map_err(self.err("recording the rollback"))?;
        Ok(())
    }

    /// Sets a worker's route; `None` leaves that direction as it is.
    pub async fn set_route(&self, cutover: &str, tenant: &str, worker: &str, reads: Option<&str>, writes: Option<&str>) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO strata.worker_routes (cutover, tenant, worker, reads, writes) \
                 VALUES ($1, $2, $3, coalesce($4, 'old'), coalesce($5, 'old')) \
                 ON CONFLICT (cutover, tenant, worker) DO UPDATE SET reads = coalesce($4, worker_routes.reads), \
                 writes = coalesce($5, worker_routes.writes), updated_at = now()",
                &[&cutover, &tenant, &worker, &reads, &writes],
            )
            .await
            .map_err(self.err("setting a worker route"))?;
        Ok(())
    }

    /// (worker, reads, writes) of (cutover, tenant).
    pub async fn routes(&self, cutover: &str, tenant: &str) -> Result<Vec<(String, String, String)>> {
        let rows = self
            .client
            .query(
                "SELECT worker, reads, writes FROM strata.worker_routes WHERE cutover = $1 AND tenant = $2 ORDER BY worker",
                &[&cutover, &tenant],
            )
            .await
            .map_err(self.err("reading the worker routes"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}
