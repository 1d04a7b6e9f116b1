//! An open-loop schedule kept by a thread of its own: operation `n` is due `n / rate` seconds
//! after the start, whatever happened to the earlier ones, and is handed out within tens of
//! microseconds of that. A tokio timer fires on a millisecond wheel, up to a millisecond after
//! its deadline, and since latency is measured from the due time, that lateness would be counted
//! as the service's for every operation.

use std::time::{Duration, Instant};

/// Calls `start(n, due)` for each operation due before `end`, at its due time, from the calling
/// thread (run it on a blocking thread, and spawn the work from `start`). Returns how many were
/// started.
pub fn open_loop(rate: u64, end: Instant, mut start: impl FnMut(u64, Instant)) -> u64 {
    let began = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut n: u64 = 0;
    loop {
        let due = began + period.mul_f64(n as f64);
        if due >= end {
            return n;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        start(n, due);
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_each_operation_in_order_at_or_after_its_due_time() {
        let end = Instant::now() + Duration::from_millis(50);
        let mut started = Vec::new();
        let count = open_loop(1_000, end, |n, due| started.push((n, due, Instant::now())));
        assert_eq!(count as usize, started.len());
        assert!((45..=50).contains(&count), "{count} in 50 ms at 1,000/s");
        for (i, (n, due, at)) in started.iter().enumerate() {
            assert_eq!(*n, i as u64);
            assert!(at >= due, "operation {n} started before it was due");
        }
    }
}
