//! The load: operations of the mix started at a fixed rate (open loop) or as fast as a number of
//! connections can go (closed loop), for a set duration.
//!
//! Owns the schedule of operations. At a fixed rate, operation `n` is due at `n / rate` seconds
//! whatever happened to the earlier ones, and its latency is measured from then: a stall of the
//! system shows as the latency of everything that waited for it (no coordinated omission). What
//! is in flight is bounded; an operation due when the bound is reached is counted as an
//! `overload` failure at once instead of piling up without limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::flows::Flows;
use super::mix::Mix;
use super::report::Recorder;
use crate::merchant::Failure;

/// How hard to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Operations per second, open loop.
    Rate(u64),
    /// As fast as `connections` callers go, each starting its next operation when the last ended.
    Max {
        /// Callers.
        connections: usize,
    },
}

/// Operations in flight at a fixed rate before new ones are refused as `overload`.
pub const MAX_IN_FLIGHT: usize = 20_000;

/// How long the load waits at the end for what is still in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// Runs the load for `duration`; returns when every operation started has ended (or after
/// [`DRAIN`] more).
pub async fn drive(
    flows: Arc<Flows>,
    recorder: Arc<Recorder>,
    mix: Mix,
    pace: Pace,
    duration: Duration,
) {
    let end = Instant::now() + duration;
    match pace {
        Pace::Rate(rate) => {
            let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            let runtime = tokio::runtime::Handle::current();
            let schedule = {
                let slots = slots.clone();
                move |n, due| {
                    let kind = mix.kind(n);
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let (flows, recorder) = (flows.clone(), recorder.clone());
                            runtime.spawn(async move {
                                let outcome = flows.run(kind, n).await;
                                recorder.record(kind, due, outcome.as_ref().map(drop));
                                drop(slot);
                            });
                        }
                        Err(_) => recorder.record(kind, due, Err(&Failure::Overload)),
                    }
                }
            };
            tokio::task::spawn_blocking(move || crate::pace::open_loop(rate, end, schedule))
                .await
                .expect("the schedule's thread does not panic");
            let all = u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX);
            let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
        }
        Pace::Max { connections } => {
            let callers: Vec<_> = (0..connections as u64)
                .map(|c| {
                    let (flows, recorder, mix) = (flows.clone(), recorder.clone(), mix.clone());
                    tokio::spawn(async move {
                        let mut n = c;
                        while Instant::now() < end {
                            let kind = mix.kind(n);
                            let due = Instant::now();
                            let outcome = flows.run(kind, n).await;
                            recorder.record(kind, due, outcome.as_ref().map(drop));
                            n += connections as u64;
                        }
                    })
                })
                .collect();
            for caller in callers {
                let _ = tokio::time::timeout(duration + DRAIN, caller).await;
            }
        }
    }
}
