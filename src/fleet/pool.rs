//! Running one piece of work per tenant, a few at a time: the worker pool
//! behind `migrate` waves and `baseline`.
//!
//! Up to `concurrency` items run at once, each in its own tokio task, so a
//! panic is reported against its own item. After `max_failures` failures
//! (counted across calls that share the counter) no new item starts;
//! running ones finish and the rest come back unstarted.
//!
//! [`limit_reached`] is the one rule of "stop after N failures", for this
//! pool, the rollouts claimed through the control plane and cutover passes.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Whether `failed` failures stop new work under "stop after N failures":
/// with `max_failures = Some(n)` no new tenant starts once `n` have failed
/// (`n` is at least 1: the first failure stops at 1); `None` never stops.
pub fn limit_reached(failed: usize, max_failures: Option<usize>) -> bool {
    max_failures.is_some_and(|max| failed >= max)
}

/// What a pool run came to: results and unstarted items, each with its
/// position in the input.
pub struct Finished<T, R> {
    pub done: Vec<(usize, R)>,
    pub not_started: Vec<(usize, T)>,
}

/// The work of a pool: what to do with an item, whether its result is a
/// failure, and the result of an item whose task panicked.
pub trait Work<T, R>: Send + Sync + 'static {
    fn run(&self, item: T) -> impl Future<Output = R> + Send;
    fn is_failure(&self, result: &R) -> bool;
    fn panicked(&self, item: &T, message: String) -> R;
}

/// Runs `work` over `items`; results are sorted by input position.
pub async fn run<T, R, W>(
    items: Vec<T>,
    concurrency: usize,
    max_failures: Option<usize>,
    failures: Arc<AtomicUsize>,
    work: Arc<W>,
) -> Finished<T, R>
where
    T: Clone + Send + 'static,
    R: Send + 'static,
    W: Work<T, R>,
{
    let workers = concurrency.max(1).min(items.len().max(1));
    let queue: Arc<Mutex<VecDeque<(usize, T)>>> = Arc::new(Mutex::new(items.into_iter().enumerate().collect()));
    let done: Arc<Mutex<Vec<(usize, R)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (queue, done, failures, work) = (queue.clone(), done.clone(), failures.clone(), work.clone());
        handles.push(tokio::spawn(async move {
            loop {
                if limit_reached(failures.load(Ordering::SeqCst), max_failures) {
                    break;
                }
                let Some((i, item)) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    break;
                };
                let task = {
                    let (work, item) = (work.clone(), item.clone());
                    guarded(async move { work.run(item).await })
                };
                let result = match task.await {
                    Ok(r) => r,
                    Err(message) => work.panicked(&item, message),
                };
                if work.is_failure(&result) {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                if let Ok(mut d) = done.lock() {
                    d.push((i, result));
                }
            }
        }));
    }
    for h in handles {
        // Workers only pop, run and push; a worker's own failure leaves its
        // items in the queue, reported as not started below.
        let _ = h.await;
    }
    let mut done: Vec<(usize, R)> = done.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
    done.sort_by_key(|(i, _)| *i);
    let not_started = queue.lock().map(|mut q| q.drain(..).collect()).unwrap_or_default();
    Finished { done, not_started }
}

/// Runs `future` in a task of its own: its output, or what its panic said
/// (so a panicking tenant is reported, never lost with its worker).
pub async fn guarded<R: Send + 'static>(future: impl Future<Output = R> + Send + 'static) -> Result<R, String> {
    tokio::spawn(future).await.map_err(panic_message)
}

/// Awaits tasks spawned per item, in order: each output, or `panicked` of
/// its item with what the panic said.
pub async fn join_each<T, R>(tasks: Vec<(T, tokio::task::JoinHandle<R>)>, panicked: impl Fn(&T, String) -> R) -> Vec<R> {
    let mut out = Vec::with_capacity(tasks.len());
    for (item, task) in tasks {
        out.push(match task.await {
            Ok(r) => r,
            Err(e) => panicked(&item, panic_message(e)),
        });
    }
    out
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .map_or_else(|| "strata panicked".to_string(), |s| format!("strata panicked: {s}")),
        Err(e) => format!("the task was cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Square;

    impl Work<u32, Result<u32, u32>> for Square {
        async fn run(&self, n: u32) -> Result<u32, u32> {
            match n {
                13 => panic!("unlucky"),
                n if n % 2 == 1 => Err(n),
                n => Ok(n * n),
            }
        }
        fn is_failure(&self, r: &Result<u32, u32>) -> bool {
            r.is_err()
        }
        fn panicked(&self, n: &u32, message: String) -> Result<u32, u32> {
            assert!(message.contains("unlucky"), "{message}");
            Err(*n + 1000)
        }
    }

    #[test]
    fn n_failures_stop_at_the_nth() {
        assert!(!limit_reached(0, Some(1)));
        assert!(limit_reached(1, Some(1)));
        assert!(!limit_reached(1, Some(2)));
        assert!(limit_reached(2, Some(2)));
        assert!(limit_reached(3, Some(2)));
        assert!(!limit_reached(1000, None));
    }

    #[test]
    fn a_panicking_task_keeps_its_place_in_join_each() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let rows = rt.block_on(async {
            let tasks = ["a", "b", "c"]
                .into_iter()
                .map(|slug| {
                    let task = tokio::spawn(async move {
                        assert_ne!(slug, "b", "tenant b broke");
                        format!("{slug}: ok")
                    });
                    (slug, task)
                })
                .collect();
            join_each(tasks, |slug, message| format!("{slug}: {message}")).await
        });
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0], "a: ok");
        assert!(
            rows[1].starts_with("b: strata panicked") && rows[1].contains("tenant b broke"),
            "{rows:?}"
        );
        assert_eq!(rows[2], "c: ok");
        let guarded = rt.block_on(guarded(async { panic!("in a claimed tenant") }));
        assert!(matches!(guarded, Err(m) if m.contains("in a claimed tenant")));
    }

    #[test]
    fn results_in_order_panics_reported_and_max_failures_stops() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let f = rt.block_on(run(vec![2, 4, 13, 6], 2, None, Arc::new(AtomicUsize::new(0)), Arc::new(Square)));
        let got: Vec<Result<u32, u32>> = f.done.into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, vec![Ok(4), Ok(16), Err(1013), Ok(36)]);
        assert!(f.not_started.is_empty());
        let f = rt.block_on(run(vec![1, 3, 2, 4], 1, Some(2), Arc::new(AtomicUsize::new(0)), Arc::new(Square)));
        assert_eq!(f.done.len(), 2);
        assert_eq!(f.not_started, vec![(2, 2), (3, 4)]);
    }
}
