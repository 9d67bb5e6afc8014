//! Recording migrations as applied without running them (`strata baseline`).
//!
//! The rows say `origin = 'baseline'` and, in `note`, where the baseline
//! came from. They are written in one transaction per database, under the
//! migrator lock; inside that transaction strata's own history and the other
//! tool's history are read again, and a change since the baseline was
//! planned (a migrator ran in between) aborts it. The other tool's table is
//! only read; its name goes to `strata.adopted_histories`, which drift
//! leaves out.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use super::adopt::{self, ForeignHistory};
use super::apply::{self, Loaded, TOOL_VERSION};
use super::conn::sql_error;
use super::history::{self, Applied, Origin, Status};
use super::{lock, Error, Result, Target};

/// Which of `migrations` to record: those `wanted` and not yet recorded.
/// Refuses (with the migrator's own errors) when strata's history and the
/// files disagree, or when the result would leave a hole below a recorded
/// migration.
pub fn rows_to_record(history: &[Applied], migrations: &[Arc<Loaded>], wanted: &[bool]) -> Result<Vec<usize>> {
    let recorded = apply::applied_flags(history, migrations);
    let new: Vec<usize> = (0..migrations.len()).filter(|&i| wanted[i] && !recorded[i]).collect();
    let mut combined = history.to_vec();
    combined.extend(new.iter().map(|&i| synthetic(&migrations[i])));
    apply::plan(&combined, migrations, false, &mut Vec::new())?;
    Ok(new)
}

/// The history row a baseline will write for `m`.
fn synthetic(m: &Loaded) -> Applied {
    Applied {
        layer: m.layer.clone(),
        version: m.version.clone(),
        name: m.name.clone(),
        checksum: m.checksum.clone(),
        status: Status::Applied,
        applied_at: String::new(),
        applied_by: String::new(),
        tool_version: TOOL_VERSION.into(),
        execution_ms: None,
        error: None,
        origin: Origin::Baseline,
        note: None,
    }
}

/// The rows of one baseline, and what they were planned against (checked
/// again before writing).
pub struct Baseline<'a> {
    pub migrations: &'a [Arc<Loaded>],
    /// Indexes into `migrations` of the rows to write.
    pub rows: &'a [usize],
    /// Where the baseline came from, for the rows' `note`.
    pub note: &'a str,
    /// strata's history as read when planning.
    pub history: &'a [Applied],
    /// The other tool's history as read when planning (`--from`).
    pub foreign: Option<&'a ForeignHistory>,
}

/// Writes the baseline rows in one transaction, under the migrator lock.
pub async fn record(client: &Client, target: &Target, b: &Baseline<'_>, lock_wait: Duration) -> Result<()> {
    lock::acquire(client, target, lock_wait).await?;
    let result = record_locked(client, target, b).await;
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    lock::release(client).await;
    result
}

async fn record_locked(client: &Client, target: &Target, b: &Baseline<'_>) -> Result<()> {
    history::ensure(client, target).await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(sql_error(target, "cannot start the baseline transaction"))?;
    let now = history::read(client, target).await?;
    let summary = |h: &[Applied]| -> Vec<(String, String, String, Status)> {
        h.iter()
            .map(|a| (a.layer.clone(), a.version.clone(), a.checksum.clone(), a.status))
            .collect()
    };
    if summary(&now) != summary(b.history) {
        return Err(adopt::Refusal::Changed {
            what: "strata.schema_history".into(),
        }
        .into());
    }
    if let Some(foreign) = b.foreign {
        let again = adopt::read(client, target, foreign.tool, &foreign.relation).await?;
        if again != *foreign {
            return Err(adopt::Refusal::Changed {
                what: foreign.relation.shown(),
            }
            .into());
        }
    }
    let insert = "INSERT INTO strata.schema_history (layer, version, name, checksum, status, tool_version, execution_ms, origin, note) \
                  VALUES ($1, $2, $3, $4, 'applied', $5, NULL, 'baseline', $6)";
    for &i in b.rows {
        let m = &b.migrations[i];
        client
            .execute(insert, &[&m.layer, &m.version, &m.name, &m.checksum, &TOOL_VERSION, &b.note])
            .await
            .map_err(sql_error(target, format!("{}: cannot record the baseline", m.display)))?;
    }
    if let Some(foreign) = b.foreign {
        client
            .execute(
                "INSERT INTO strata.adopted_histories (relation, tool, tool_version) VALUES ($1, $2, $3) \
                 ON CONFLICT (relation) DO UPDATE SET tool = EXCLUDED.tool",
                &[&foreign.relation.sql(), &foreign.tool.name(), &TOOL_VERSION],
            )
            .await
            .map_err(sql_error(target, "cannot record the adopted history table"))?;
    }
    client.batch_execute("COMMIT").await.map_err(|e| Error::Sql {
        target: target.to_string(),
        context: "cannot commit the baseline".into(),
        message: super::describe(&e),
    })
}
