//! The `[runner]` settings of a migration run: lock and statement timeouts,
//! lock-timeout retries with a jittered backoff, and how long a migrator's
//! connection waits for a server's answer.

use std::time::Duration;

/// The `[runner]` settings of strata.toml, resolved for one run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub lock_timeout: String,
    pub statement_timeout: String,
    pub lock_retries: u32,
    /// First backoff after a lock timeout; doubles per attempt (jittered).
    pub backoff: Duration,
}

impl Settings {
    pub fn from_config(runner: &crate::workspace::Config) -> Settings {
        Settings {
            lock_timeout: runner.runner.lock_timeout.clone(),
            statement_timeout: runner.runner.statement_timeout.clone(),
            lock_retries: runner.runner.lock_retries,
            backoff: Duration::from_millis(250),
        }
    }
}

/// At most this much longer than statement_timeout strata waits for a
/// server's answer before it calls the connection stalled (the server's own
/// cancellation needs a moment to arrive).
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

impl Settings {
    /// The longest a migrator's connection waits for an answer:
    /// statement_timeout plus as much again, at most 5 s more. None when
    /// statement_timeout is 0 or not understood (then TCP keepalives and
    /// tcp_user_timeout still end a dead connection).
    pub fn answer_timeout(&self) -> Option<Duration> {
        pg_duration(&self.statement_timeout)
            .filter(|d| !d.is_zero())
            .map(|d| d + d.min(ANSWER_MARGIN))
    }
}

/// A PostgreSQL time setting (`500ms`, `5s`, `10min`, `1h`, a bare number
/// of milliseconds).
pub fn pg_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (t[..split].parse::<f64>().ok()?, t[split..].trim());
    let ms = match unit {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(number * ms / 1000.0))
}

/// A pseudo-random fraction in [0, 1): time, pid and a counter mixed with
/// splitmix64. Jitter only needs to de-synchronise runners, not be secure.
fn jitter_fraction() -> f64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z =
        nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The pause before retry `attempt` (1-based): base·2^(attempt−1), capped at
/// 30 s, scaled by a random factor in [0.5, 1).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(Duration::from_secs(30)).mul_f64(0.5 + jitter_fraction() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_durations() {
        assert_eq!(pg_duration("10min"), Some(Duration::from_secs(600)));
        assert_eq!(pg_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(pg_duration("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(pg_duration(" 2 s"), Some(Duration::from_secs(2)));
        assert_eq!(pg_duration("soon"), None);
        let mut s = Settings::from_config(&crate::workspace::Config::default());
        s.statement_timeout = "0".into();
        assert_eq!(s.answer_timeout(), None);
        s.statement_timeout = "1s".into();
        assert_eq!(s.answer_timeout(), Some(Duration::from_secs(2)));
        s.statement_timeout = "10min".into();
        assert_eq!(s.answer_timeout(), Some(Duration::from_secs(605)));
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let base = Duration::from_millis(100);
        let first = backoff(base, 1);
        assert!(
            first >= Duration::from_millis(50) && first < Duration::from_millis(100),
            "{first:?}"
        );
        let third = backoff(base, 3);
        assert!(
            third >= Duration::from_millis(200) && third < Duration::from_millis(400),
            "{third:?}"
        );
        assert!(backoff(base, 40) <= Duration::from_secs(30));
    }
}
