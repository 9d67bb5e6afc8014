//! Scratch databases: created on a server for one job (drift's expected
//! schema, `check --shadow`), handed to the job, and dropped on every way
//! out, the job's error taking precedence over the drop's.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use super::conn::sql_error;
use super::{connect, quote_ident, Result, Target};

/// Runs `job` on a new database `strata_<purpose>_<pid>_<n>` of `server`
/// (connected as a role with CREATEDB), then drops it (`WITH (FORCE)`).
pub async fn with_scratch_database<T, F, Fut>(server: &Target, purpose: &str, job: F) -> Result<T>
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "strata_{purpose}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let admin = connect(server).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
        .map_err(sql_error(
            server,
            format!("cannot create the {purpose} database {name} (strata needs CREATEDB)"),
        ))?;
    let result = job(server.with_dbname(&name)).await;
    let dropped = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name)))
        .await
        .map_err(sql_error(server, format!("cannot drop the {purpose} database {name}")));
    let value = result?;
    dropped?;
    Ok(value)
}
