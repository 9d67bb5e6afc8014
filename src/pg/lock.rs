//! One migrator per database: a session-level advisory lock on a fixed key.
//!
//! Session-level (not transaction-level) because a run spans many
//! transactions, and no-transaction files run outside any. The server drops
//! the lock when the session ends, so a killed migrator never leaves it held.

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

/// Takes the lock, polling until `wait` has passed; then fails naming the
/// session that holds it.
pub async fn acquire(client: &Client, target: &Target, wait: Duration) -> Result<()> {
    let key = lock_key();
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(sql_error(target, "cannot take the strata advisory lock"))?;
        if row.get::<_, bool>(0) {
            return Ok(());
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
    let key = lock_key();
    let (hi, lo) = ((key >> 32) & 0xffff_ffff, key & 0xffff_ffff);
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
    Some((row.get(0), row.get(1), row.get(2), row.get(3)))
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
