//! Per-client detokenize volume: a token bucket per client (a stolen authorizer secret cannot
//! drain the vault faster than the configured rate), and an alert when a client's detokenizes in
//! one second cross the configured threshold (logged once per such second, counted in the
//! metrics).
//!
//! Owns the buckets and the per-second windows. Must never block (a bucket is a short mutex held
//! for arithmetic only) and never log anything but the client id and counts.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::DetokenizeLimit;
use crate::metrics::{ClientDetokenize, VaultMetrics};
use crate::model::VaultError;

/// The detokenize budgets of every configured client.
#[derive(Debug)]
pub struct DetokenizeBudget {
    limit: DetokenizeLimit,
    clients: HashMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    state: Mutex<State>,
    counters: Arc<ClientDetokenize>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    /// The start of the current one-second window and the detokenizes in it, for the alert.
    window: Instant,
    in_window: u64,
}

impl DetokenizeBudget {
    /// A full bucket for each of `clients`; their counters are registered in `metrics`.
    pub fn new<'a>(
        limit: DetokenizeLimit,
        clients: impl IntoIterator<Item = &'a str>,
        metrics: &VaultMetrics,
    ) -> DetokenizeBudget {
        metrics
            .detokenize
            .alert_per_sec
            .store(u64::from(limit.alert_per_sec), Relaxed);
        let now = Instant::now();
        let clients = clients
            .into_iter()
            .map(|id| {
                let bucket = Bucket {
                    state: Mutex::new(State {
                        tokens: f64::from(limit.burst),
                        refilled: now,
                        window: now,
                        in_window: 0,
                    }),
                    counters: metrics.detokenize.client(id),
                };
                (id.to_string(), bucket)
            })
            .collect();
        DetokenizeBudget { limit, clients }
    }

    /// Takes one detokenize from `client`'s bucket, or refuses it when the bucket is empty. A
    /// client the budget does not know (not in the config) is refused: the server only admits
    /// configured clients, so that would be a bug, and failing closed is the safe side.
    pub fn take(&self, client: &str) -> Result<(), VaultError> {
        let Some(bucket) = self.clients.get(client) else {
            return Err(VaultError::RateLimited);
        };
        self.take_at(bucket, client, Instant::now())
    }

    fn take_at(&self, bucket: &Bucket, client: &str, now: Instant) -> Result<(), VaultError> {
        let mut s = bucket
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.tokens = (s.tokens + elapsed * f64::from(self.limit.rate_per_sec))
            .min(f64::from(self.limit.burst));
        s.refilled = now;
        if now.saturating_duration_since(s.window) >= Duration::from_secs(1) {
            s.window = now;
            s.in_window = 0;
        }
        s.in_window += 1;
        if s.in_window == u64::from(self.limit.alert_per_sec) + 1 {
            bucket.counters.alerts.fetch_add(1, Relaxed);
            tracing::warn!(
                client,
                threshold = self.limit.alert_per_sec,
                "detokenize rate of a client crossed the alert threshold"
            );
        }
        if s.tokens < 1.0 {
            bucket.counters.rate_limited.fetch_add(1, Relaxed);
            return Err(VaultError::RateLimited);
        }
        s.tokens -= 1.0;
        Ok(())
    }

    /// Counts a detokenize answered with a PAN for `client`.
    pub fn answered(&self, client: &str) {
        if let Some(b) = self.clients.get(client) {
            b.counters.answered.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(rate: u32, burst: u32, alert: u32) -> (DetokenizeBudget, VaultMetrics) {
        let metrics = VaultMetrics::default();
        let limit = DetokenizeLimit {
            rate_per_sec: rate,
            burst,
            alert_per_sec: alert,
        };
        (
            DetokenizeBudget::new(limit, ["authorizer"], &metrics),
            metrics,
        )
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let (b, metrics) = budget(10, 5, 1_000);
        let bucket = &b.clients["authorizer"];
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(b.take_at(bucket, "authorizer", t0), Ok(()));
        }
        assert_eq!(
            b.take_at(bucket, "authorizer", t0),
            Err(VaultError::RateLimited)
        );
        // 10 per second: 0.3 s later three more.
        let later = t0 + Duration::from_millis(300);
        for _ in 0..3 {
            assert_eq!(b.take_at(bucket, "authorizer", later), Ok(()));
        }
        assert!(b.take_at(bucket, "authorizer", later).is_err());
        let c = metrics.detokenize.client("authorizer");
        assert_eq!(c.rate_limited.load(Relaxed), 2);
    }

    #[test]
    fn crossing_the_alert_threshold_counts_once_per_second() {
        let (b, metrics) = budget(1_000, 1_000, 3);
        let bucket = &b.clients["authorizer"];
        let t0 = Instant::now();
        for _ in 0..10 {
            b.take_at(bucket, "authorizer", t0).unwrap();
        }
        let next_second = t0 + Duration::from_millis(1_100);
        for _ in 0..4 {
            b.take_at(bucket, "authorizer", next_second).unwrap();
        }
        let c = metrics.detokenize.client("authorizer");
        assert_eq!(c.alerts.load(Relaxed), 2);
        assert!(
            metrics
                .render()
                .contains("vault_client_detokenize_alerts_total{client=\"authorizer\"} 2\n")
        );
    }

    #[test]
    fn an_unknown_client_is_refused() {
        let (b, _) = budget(10, 10, 10);
        assert_eq!(b.take("stranger"), Err(VaultError::RateLimited));
    }
}
