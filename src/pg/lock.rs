//! One migrator per database: a session-level advisory lock on a fixed key.
//!
//! Session-level (not transaction-level) because a run spans many
//! transactions, and no-transaction files run outside any. The server drops
//! the lock when the session ends, so a killed migrator never leaves it held.
//!
//! A session lock is only as good as the session: behind a connection
//! pooler in transaction (or statement) mode, each transaction may run on
//! another server connection, and the lock stays with whichever one took
//! it. So a connection whose backend is not the one the server announced at
//! startup (a pooler announces its own process id) is probed, three times:
//! a second connection, in a transaction of its own, that lands on our
//! backend, or our backend changing while that transaction holds another,
//! means the pooler does not keep sessions, and strata refuses. Behind a
//! session-mode pooler, every migration checks inside its own transaction
//! that its backend still holds the lock.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::conn::sql_error;
use super::{Error, Result, Target};

/// The advisory lock key: the first 8 bytes of SHA-256("strata").
pub fn lock_key() -> i64 {
    let digest = Sha256::digest(b"strata");
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The lock as taken: through a pooler or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// A connection to PostgreSQL itself.
    Direct,
    /// Through a pooler that keeps sessions: each migration re-checks.
    Pooled,
}

/// What a transaction runs first when the lock must be re-checked inside it:
/// it fails unless this transaction's backend holds the strata lock.
pub fn check_sql() -> String {
    let (hi, lo) = key_halves();
    format!(
        "DO $strata$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
           AND pid = pg_backend_pid() AND classid::bigint = {hi} AND objid::bigint = {lo} AND objsubid = 1) THEN \
           RAISE EXCEPTION 'this server connection does not hold the strata migrator lock: the connection pooler moved \
           the session to another server connection (transaction pooling?); nothing of this migration was applied'; \
         END IF; END $strata$"
    )
}

fn key_halves() -> (i64, i64) {
    let key = lock_key();
    ((key >> 32) & 0xffff_ffff, key & 0xffff_ffff)
}

async fn backend_pid(client: &Client, target: &Target) -> Result<i32> {
    let row = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(sql_error(target, "cannot read the backend's process id"))?;
    row.try_get(0).map_err(sql_error(target, "cannot read the backend's process id"))
}

/// Refuses a connection whose pooler does not keep sessions (see the module
/// documentation). Returns whether a pooler is in between.
pub async fn require_session(client: &Client, target: &Target) -> Result<Held> {
    let first = backend_pid(client, target).await?;
    let announced = target.announced_pids();
    if announced.contains(&first) {
        return Ok(Held::Direct);
    }
    let other = super::connect(target).await?;
    for _ in 0..3 {
        // A pooler hands a server connection back to its pool a moment
        // after the answer: wait that moment, so that a transaction pooler
        // has our backend idle and gives it to the other connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The other connection holds its backend in a transaction while
        // ours asks again: a transaction pooler must then give us another.
        other
            .batch_execute("BEGIN")
            .await
            .map_err(sql_error(target, "cannot open a transaction to probe the pooler"))?;
        let theirs = backend_pid(&other, target).await?;
        let mine = backend_pid(client, target).await?;
        other
            .batch_execute("ROLLBACK")
            .await
            .map_err(sql_error(target, "cannot end the pooler probe's transaction"))?;
        if theirs == first || mine != first {
            return Err(Error::PoolerMode {
                target: target.to_string(),
            });
        }
    }
    Ok(Held::Pooled)
}

/// Takes the lock, polling until `wait` has passed; then fails naming the
/// session that holds it.
pub async fn acquire(client: &Client, target: &Target, wait: Duration) -> Result<Held> {
    let held = require_session(client, target).await?;
    let key = lock_key();
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if held == Held::Pooled {
            // A server connection handed over with the lock still on it
            // (a pooler without server_reset_query) would make the lock
            // re-entrant for us: refuse rather than count on it.
            let (hi, lo) = key_halves();
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() \
                       AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)",
                    &[&hi, &lo],
                )
                .await
                .map_err(sql_error(target, "cannot read the advisory locks"))?;
            if row.try_get::<_, bool>(0).unwrap_or(false) {
                return Err(Error::PoolerLeftLock {
                    target: target.to_string(),
                });
            }
        }
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(sql_error(target, "cannot take the strata advisory lock"))?;
        if row.try_get::<_, bool>(0).unwrap_or(false) {
            return Ok(held);
        }
        if started.elapsed() >= wait {
            return Err(holder_error(client, target, started.elapsed()).await);
        }
        let left = wait.saturating_sub(started.elapsed());
        tokio::time::sleep(pause.min(left).max(Duration::from_millis(10))).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Releases the lock (ending the session does too).
pub async fn release(client: &Client) {
    let _ = client.query_one("SELECT pg_advisory_unlock($1)", &[&lock_key()]).await;
}

/// Who holds the lock: pid, application_name, user, backend start.
pub async fn holder(client: &Client) -> Option<(i32, String, String, String)> {
    let (hi, lo) = key_halves();
    let row = client
        .query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
                    coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '?')
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1
              LIMIT 1",
            &[&hi, &lo],
        )
        .await
        .ok()
        .flatten()?;
    Some((
        row.try_get(0).ok()?,
        row.try_get(1).ok()?,
        row.try_get(2).ok()?,
        row.try_get(3).ok()?,
    ))
}

async fn holder_error(client: &Client, target: &Target, waited: Duration) -> Error {
    let (pid, application, user, since) = holder(client)
        .await
        .unwrap_or((0, "(released just now)".into(), "?".into(), "?".into()));
    Error::LockHeld {
        target: target.to_string(),
        pid,
        application,
        user,
        since,
        waited_s: waited.as_secs(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_is_stable() {
        // Changing the key would let an old and a new strata run at once.
        assert_eq!(super::lock_key(), super::lock_key());
        assert_ne!(super::lock_key(), 0);
    }
}
