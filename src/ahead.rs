//! Work done ahead on every core, consumed in order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work` on every item, one thread per core taking the next item as
/// soon as it is free, while the caller's thread gets the results in the
/// items' order through `consume`. At most `window` results are done and
/// not yet consumed, so memory stays bounded on inputs of any size. The
/// first error `consume` returns stops the workers and is returned.
pub(crate) fn in_order<T: Sync, R: Send, E>(
    items: &[T],
    window: usize,
    work: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    let window = window.max(1);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, window);
    let next = AtomicUsize::new(0);
    // A ticket lets a worker take one more item; the consumer gives it back
    // when it has consumed a result, so the items taken and not yet
    // consumed never exceed the window.
    let (ticket_tx, ticket_rx) = crossbeam_channel::bounded::<()>(window);
    for _ in 0..window {
        let _ = ticket_tx.send(());
    }
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (tx, ticket_rx, next, work) = (tx.clone(), ticket_rx.clone(), &next, &work);
            scope.spawn(move || {
                while ticket_rx.recv().is_ok() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    if tx.send((i, work(item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop((tx, ticket_rx));
        // Results done out of order wait here for their turn (at most the
        // window's worth).
        let mut waiting: HashMap<usize, R> = HashMap::new();
        let mut turn = 0;
        let outcome = (|| {
            for (i, done) in rx.iter() {
                waiting.insert(i, done);
                while let Some(done) = waiting.remove(&turn) {
                    consume(done)?;
                    turn += 1;
                    let _ = ticket_tx.send(());
                }
            }
            Ok(())
        })();
        // Stops the workers: no more tickets, and (on an error) nobody
        // receiving what they do.
        drop((ticket_tx, rx));
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_order_whatever_the_work_takes() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        let out: Result<(), ()> = in_order(
            &items,
            4,
            |&i| {
                // Later items finish first now and then.
                if i % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                i * 2
            },
            |r| {
                seen.push(r);
                Ok(())
            },
        );
        assert!(out.is_ok());
        assert_eq!(seen, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_stops_the_work_and_is_returned() {
        let items: Vec<u32> = (0..10_000).collect();
        let done = AtomicUsize::new(0);
        let out = in_order(
            &items,
            8,
            |&i| {
                done.fetch_add(1, Ordering::Relaxed);
                i
            },
            |r| if r == 3 { Err(format!("item {r}")) } else { Ok(()) },
        );
        assert_eq!(out, Err("item 3".to_string()));
        // The window bounds what was done past the failing item.
        assert!(done.load(Ordering::Relaxed) <= 3 + 1 + 8 + 8, "{}", done.load(Ordering::Relaxed));
    }
}
