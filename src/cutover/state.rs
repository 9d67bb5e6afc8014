//! Run state in the control-plane database: `strata.cutover_runs` (one row
//! per cutover and tenant attempt), `strata.cutover_steps` (one row per step
//! started) and `strata.worker_routes` (what each worker reads and writes;
//! workers poll this table).
//!
//! A step is recorded `running` before it starts and `done` after it
//! succeeded, so a killed run finds its last step `running` and runs it again
//! (every step is idempotent). One executor per run at a time: a session
//! advisory lock on the control-plane connection, released with the session;
//! `cutover status` looks for that lock to tell a running step from one whose
//! process is gone.

use std::str::FromStr;

use serde::Serialize;
use tokio_postgres::{Client, Row};

use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::Target;

/// The tables as the first version created them (kept so that an upgrade
/// from any version goes through the same statements).
const SCHEMA_V1: &str = "
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
CREATE TABLE IF NOT EXISTS strata.cutover_schema (version integer NOT NULL);
";

/// Version 2: a run identity for the names of its replication objects
/// (`token`; NULL for runs started before, which keep their old names), a
/// `rolling-back` run, an `interrupted` step, a step's live progress and its
/// soak as the operator set it.
const UPGRADE_V2: &str = "
ALTER TABLE strata.cutover_runs ADD COLUMN IF NOT EXISTS token text;
ALTER TABLE strata.cutover_runs ALTER COLUMN token SET DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 8);
ALTER TABLE strata.cutover_runs DROP CONSTRAINT IF EXISTS cutover_runs_status_check;
ALTER TABLE strata.cutover_runs ADD CONSTRAINT cutover_runs_status_check
    CHECK (status IN ('running', 'failed', 'rolling-back', 'contracted', 'rolled-back'));
DROP INDEX IF EXISTS strata.cutover_runs_active_idx;
CREATE UNIQUE INDEX cutover_runs_active_idx ON strata.cutover_runs (cutover, tenant)
    WHERE status IN ('running', 'failed', 'rolling-back');
ALTER TABLE strata.cutover_steps DROP CONSTRAINT IF EXISTS cutover_steps_status_check;
ALTER TABLE strata.cutover_steps ADD CONSTRAINT cutover_steps_status_check
    CHECK (status IN ('running', 'done', 'failed', 'interrupted', 'rolled-back'));
ALTER TABLE strata.cutover_steps ADD COLUMN IF NOT EXISTS progress jsonb;
ALTER TABLE strata.cutover_steps ADD COLUMN IF NOT EXISTS progress_at timestamptz;
ALTER TABLE strata.cutover_steps ADD COLUMN IF NOT EXISTS soak_s double precision;
ALTER TABLE strata.cutover_steps ADD COLUMN IF NOT EXISTS soak_skipped text;
";

const SCHEMA_VERSION: i32 = 2;

/// Serialises creating the tables (advisory xact lock).
const SCHEMA_LOCK: i64 = 0x5354_5241_5441_0002;

/// A state stored as text in the control plane, read back checked.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where one run of a cutover (for one tenant, or a move) stands.
    RunStatus {
        Running = "running",
        Failed = "failed",
        /// A rollback started and has not finished: run it again to finish it.
        RollingBack = "rolling-back",
        Contracted = "contracted",
        RolledBack = "rolled-back",
    }
);

impl RunStatus {
    /// Still holds the cutover's objects (not finished either way).
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Failed | RunStatus::RollingBack)
    }
}

text_enum!(
    /// Where one step of a run stands.
    StepStatus {
        Running = "running",
        Done = "done",
        Failed = "failed",
        /// Stopped by SIGINT or SIGTERM; the next run resumes it.
        Interrupted = "interrupted",
        RolledBack = "rolled-back",
    }
);

text_enum!(
    /// Which shape a worker reads or writes.
    Shape {
        Old = "old",
        New = "new",
    }
);

/// A connection to the control plane, its tables created.
pub struct ControlPlane {
    pub target: Target,
    pub client: Client,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub tenant: String,
    pub status: RunStatus,
    pub plan_checksum: String,
    pub started_at: String,
    pub started_by: String,
    pub error: Option<String>,
    /// The run's identity in the names of its objects (NULL: a run started
    /// by an older strata, whose objects carry the cutover's name alone).
    pub token: Option<String>,
}

/// A step's figures while it runs (backfill, copy, soak), for `cutover status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Progress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_total: Option<u64>,
    /// The last replication lag measured, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<f64>,
    /// Bytes of WAL the source's slot holds back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_wal: Option<u64>,
    /// Seconds of soak left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak_left_s: Option<f64>,
    /// What the step is doing or waiting for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepRow {
    pub step: String,
    pub status: StepStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Seconds since the step started / finished (server clock).
    pub since_start_s: f64,
    pub since_finish_s: Option<f64>,
    pub detail: Option<String>,
    pub progress: Option<Progress>,
    /// Seconds since `progress` was last written.
    pub since_progress_s: Option<f64>,
    /// The soak the operator gave this step (`--soak`), in seconds.
    pub soak_s: Option<f64>,
    /// Why the operator skipped this step's soak (`--skip-soak --reason`).
    pub soak_skipped: Option<String>,
}

/// A column of a control-plane row, read without panicking on a surprise.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize, what: &str) -> Result<T> {
    r.try_get(i)
        .map_err(|e| Error::Refused(format!("control plane: unexpected value in {what} (column {i}): {e}")))
}

fn parsed<T: FromStr<Err = String>>(r: &Row, i: usize, what: &str) -> Result<T> {
    let text: String = col(r, i, what)?;
    text.parse()
        .map_err(|e: String| Error::Refused(format!("control plane: {what}: {e}")))
}

/// The advisory-lock key of the one executor of (cutover, tenant).
fn run_lock_key(cutover: &str, tenant: &str) -> String {
    format!("strata-cutover:{cutover}:{tenant}")
}

impl ControlPlane {
    pub async fn open(spec: &str) -> Result<ControlPlane> {
        let target = Target::parse(spec)?;
        let client = crate::pg::connect(&target).await?;
        // Runs are locked with session advisory locks on this connection.
        crate::pg::lock::require_session(&client, &target).await?;
        let cp = ControlPlane { target, client };
        cp.create_tables().await?;
        Ok(cp)
    }

    async fn create_tables(&self) -> Result<()> {
        let c = &self.client;
        let e = |what: &'static str| self.err(what);
        let res = async {
            c.batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA_V1} {}",
                super::claim::SCHEMA_SQL
            ))
            .await
            .map_err(e("creating the cutover tables"))?;
            let row = c
                .query_one("SELECT max(version) FROM strata.cutover_schema", &[])
                .await
                .map_err(e("reading the cutover tables' version"))?;
            let version = col::<Option<i32>>(&row, 0, "strata.cutover_schema")?.unwrap_or(1);
            if version < SCHEMA_VERSION {
                c.batch_execute(&format!(
                    "{UPGRADE_V2} DELETE FROM strata.cutover_schema; INSERT INTO strata.cutover_schema VALUES ({SCHEMA_VERSION});"
                ))
                .await
                .map_err(e("upgrading the cutover tables"))?;
            }
            c.batch_execute("COMMIT").await.map_err(e("creating the cutover tables"))
        }
        .await;
        if res.is_err() {
            let _ = c.batch_execute("ROLLBACK").await;
        }
        res
    }

    fn err(&self, context: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
        let f = sql_error(&self.target, context.to_string());
        move |e| Error::Pg(f(e))
    }

    /// Takes the one-executor lock of (cutover, tenant) for this session;
    /// `Ok(false)` when another session holds it.
    pub async fn try_lock_run(&self, cutover: &str, tenant: &str) -> Result<bool> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&run_lock_key(cutover, tenant)])
            .await
            .map_err(self.err("locking the run"))?;
        col(&row, 0, "pg_try_advisory_lock")
    }

    /// [`Self::try_lock_run`], a held lock reported as [`Error::Busy`].
    pub async fn lock_run(&self, cutover: &str, tenant: &str) -> Result<()> {
        if self.try_lock_run(cutover, tenant).await? {
            return Ok(());
        }
        Err(Error::Busy(format!(
            "another strata process is running cutover {cutover} for tenant {tenant}{}; wait for it or stop it",
            self.holder(cutover, tenant)
                .await
                .ok()
                .flatten()
                .map_or_else(String::new, |h| format!(" ({h})"))
        )))
    }

    pub async fn unlock_run(&self, cutover: &str, tenant: &str) -> Result<()> {
        self.client
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&run_lock_key(cutover, tenant)])
            .await
            .map_err(self.err("unlocking the run"))?;
        Ok(())
    }

    /// The session holding the executor lock of (cutover, tenant), as
    /// `application_name pid N on client, since T`, if one does.
    pub async fn holder(&self, cutover: &str, tenant: &str) -> Result<Option<String>> {
        let row = self
            .client
            .query_opt(
                "SELECT coalesce(a.application_name, '') || ' pid ' || a.pid || coalesce(' from ' || host(a.client_addr), '') \
                        || ', since ' || to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z' \
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                    AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint \
                  LIMIT 1",
                &[&run_lock_key(cutover, tenant)],
            )
            .await
            .map_err(self.err("looking for the process holding the run"))?;
        row.map(|r| col(&r, 0, "pg_locks")).transpose()
    }

    const RUN_COLUMNS: &'static str = "id, tenant, status, plan_checksum, \
         to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z', started_by, error, token";

    fn run_row(r: &Row) -> Result<RunRow> {
        let what = "strata.cutover_runs";
        Ok(RunRow {
            id: col(r, 0, what)?,
            tenant: col(r, 1, what)?,
            status: parsed(r, 2, what)?,
            plan_checksum: col(r, 3, what)?,
            started_at: col(r, 4, what)?,
            started_by: col(r, 5, what)?,
            error: col(r, 6, what)?,
            token: col(r, 7, what)?,
        })
    }

    /// The run in progress (running, failed or rolling back) of (cutover, tenant), if any.
    pub async fn active_run(&self, cutover: &str, tenant: &str) -> Result<Option<RunRow>> {
        let q = format!(
            "SELECT {} FROM strata.cutover_runs WHERE cutover = $1 AND tenant = $2 AND status IN ('running', 'failed', 'rolling-back')",
            Self::RUN_COLUMNS
        );
        let row = self
            .client
            .query_opt(&q, &[&cutover, &tenant])
            .await
            .map_err(self.err("reading the run"))?;
        row.as_ref().map(Self::run_row).transpose()
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
        row.as_ref().map(Self::run_row).transpose()
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

    pub async fn set_run_status(&self, run_id: i64, status: RunStatus, error: Option<&str>) -> Result<()> {
        let finished = !status.is_active();
        self.client
            .execute(
                "UPDATE strata.cutover_runs SET status = $2, error = $3, finished_at = CASE WHEN $4 THEN now() END WHERE id = $1",
                &[&run_id, &status.as_str(), &error, &finished],
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
                 extract(epoch FROM now() - started_at)::float8, extract(epoch FROM now() - finished_at)::float8, detail, \
                 progress::text, extract(epoch FROM now() - progress_at)::float8, soak_s, soak_skipped \
                 FROM strata.cutover_steps WHERE run_id = $1 ORDER BY position",
                &[&run_id],
            )
            .await
            .map_err(self.err("reading the steps"))?;
        let what = "strata.cutover_steps";
        rows.iter()
            .map(|r| {
                let progress: Option<String> = col(r, 7, what)?;
                Ok(StepRow {
                    step: col(r, 0, what)?,
                    status: parsed(r, 1, what)?,
                    started_at: col(r, 2, what)?,
                    finished_at: col(r, 3, what)?,
                    since_start_s: col(r, 4, what)?,
                    since_finish_s: col(r, 5, what)?,
                    detail: col(r, 6, what)?,
                    // Progress is informative: a value strata cannot read is shown as none.
                    progress: progress.and_then(|p| serde_json::from_str(&p).ok()),
                    since_progress_s: col(r, 8, what)?,
                    soak_s: col(r, 9, what)?,
                    soak_skipped: col(r, 10, what)?,
                })
            })
            .collect()
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

    pub async fn step_finished(&self, run_id: i64, step: &str, status: StepStatus, detail: &str) -> Result<()> {
        self.client
            .execute(
                "UPDATE strata.cutover_steps SET status = $3, detail = $4, finished_at = now() WHERE run_id = $1 AND step = $2",
                &[&run_id, &step, &status.as_str(), &detail],
            )
            .await
            .map_err(self.err("recording a step"))?;
        Ok(())
    }

    /// Records a running step's figures (shown by `cutover status`).
    pub async fn step_progress(&self, run_id: i64, step: &str, progress: &Progress) -> Result<()> {
        let json = serde_json::to_string(progress).unwrap_or_else(|_| "{}".into());
        self.client
            .execute(
                "UPDATE strata.cutover_steps SET progress = $3::text::jsonb, progress_at = now() WHERE run_id = $1 AND step = $2",
                &[&run_id, &step, &json],
            )
            .await
            .map_err(self.err("recording a step's progress"))?;
        Ok(())
    }

    /// Records the soak the operator chose for a step: a duration, or a
    /// skip with its reason. The first choice of a step stays unless a new
    /// one is given.
    pub async fn step_soak(&self, run_id: i64, step: &str, soak_s: Option<f64>, skipped: Option<&str>) -> Result<()> {
        self.client
            .execute(
                "UPDATE strata.cutover_steps SET soak_s = $3, soak_skipped = $4 WHERE run_id = $1 AND step = $2",
                &[&run_id, &step, &soak_s, &skipped],
            )
            .await
            .map_err(self.err("recording a step's soak"))?;
        Ok(())
    }

    /// Marks the run rolling back: from here a `cutover run` refuses it and
    /// only a rollback (run again, if it failed half way) ends it.
    pub async fn mark_rolling_back(&self, run_id: i64) -> Result<()> {
        self.set_run_status(run_id, RunStatus::RollingBack, None).await
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
    pub async fn set_route(&self, cutover: &str, tenant: &str, worker: &str, reads: Option<Shape>, writes: Option<Shape>) -> Result<()> {
        let (reads, writes) = (reads.map(Shape::as_str), writes.map(Shape::as_str));
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
    pub async fn routes(&self, cutover: &str, tenant: &str) -> Result<Vec<(String, Shape, Shape)>> {
        let rows = self
            .client
            .query(
                "SELECT worker, reads, writes FROM strata.worker_routes WHERE cutover = $1 AND tenant = $2 ORDER BY worker",
                &[&cutover, &tenant],
            )
            .await
            .map_err(self.err("reading the worker routes"))?;
        let what = "strata.worker_routes";
        rows.iter()
            .map(|r| Ok((col(r, 0, what)?, parsed(r, 1, what)?, parsed(r, 2, what)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_what_they_write() {
        for s in [
            RunStatus::Running,
            RunStatus::Failed,
            RunStatus::RollingBack,
            RunStatus::Contracted,
            RunStatus::RolledBack,
        ] {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        }
        assert_eq!("interrupted".parse::<StepStatus>(), Ok(StepStatus::Interrupted));
        assert!("sideways".parse::<Shape>().unwrap_err().contains("unknown Shape `sideways`"));
        assert_eq!(serde_json::to_string(&RunStatus::RollingBack).unwrap(), "\"rolling-back\"");
    }
}
