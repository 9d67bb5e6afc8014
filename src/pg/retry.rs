//! Retrying work that failed on `lock_timeout` (SQLSTATE 55P03): the
//! statement gave up waiting for a lock another session held, so the same
//! work is likely to pass a moment later. One helper, so every caller backs
//! off the same way (jittered exponential, [`super::runner::backoff`]).

use std::future::Future;
use std::time::Duration;

/// SQLSTATE of a statement cancelled by `lock_timeout`.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts in all (1: no retry).
    pub attempts: u32,
    /// The pause before the first retry; it doubles per attempt (jittered).
    pub base: Duration,
}

/// Runs `op` until it succeeds, fails with another error, or has failed
/// `retry.attempts` times on a lock timeout. `op` must leave nothing behind
/// when it fails (roll its transaction back). Returns the result and the
/// number of attempts made.
pub async fn on_lock_timeout<T, F, Fut>(retry: Retry, mut op: F) -> (Result<T, tokio_postgres::Error>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tokio_postgres::Error>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Err(e) if super::sqlstate(&e) == Some(LOCK_NOT_AVAILABLE) && attempt < retry.attempts => {
                tokio::time::sleep(super::runner::backoff(retry.base, attempt)).await;
            }
            res => return (res, attempt),
        }
    }
}

/// Runs `sql` (several statements) in one transaction on `client`, with
/// `SET LOCAL lock_timeout`; a failure rolls it back.
pub async fn transaction(client: &tokio_postgres::Client, lock_timeout: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let res = client
        .batch_execute(&format!(
            "BEGIN;\nSET LOCAL lock_timeout = {};\n{sql};\nCOMMIT;",
            super::quote_literal(lock_timeout)
        ))
        .await;
    if res.is_err() {
        // The failed statement left the transaction block open and aborted.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    res
}
