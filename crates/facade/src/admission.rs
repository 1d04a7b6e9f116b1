//! Admission to the merchant API: at most [`IN_FLIGHT`] requests are served at once, and one
//! over that is answered at once, "busy", instead of waiting its turn.
//!
//! Without a bound, a load above what the stack serves (the soak's default mix at 1,000/s, or a
//! rate the machine could serve until something else took its cores) left thousands of requests
//! in flight: every answer came after its caller had given up, the process's memory followed,
//! and the rate did not come back until the load dropped. Bounded, what is admitted keeps its
//! latency, the rest learns at once that it may try again, and the service recovers as soon as it
//! has cores again. Owns the bound and its counter; must never make a request wait for a permit.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Requests in the merchant API at once. A payment takes some milliseconds, so a few thousand a
/// second keep a few dozen in flight; this is far above that and far below what piled up.
pub const IN_FLIGHT: usize = 512;

/// The merchant API's admission: a permit per request in the service.
#[derive(Debug)]
pub(crate) struct Admission {
    permits: Semaphore,
    refused: AtomicU64,
}

impl Admission {
    pub(crate) fn new(in_flight: usize) -> Admission {
        Admission {
            permits: Semaphore::new(in_flight),
            refused: AtomicU64::new(0),
        }
    }

    /// A permit held while the request is served; `None`, counted, when every one is taken.
    pub(crate) fn admit(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.permits.try_acquire().ok();
        if permit.is_none() {
            self.refused.fetch_add(1, Relaxed);
        }
        permit
    }

    /// Prometheus text of the refusals.
    pub(crate) fn render(&self) -> String {
        let name = "facade_api_busy_total";
        format!(
            "# HELP {name} merchant API requests answered busy: {IN_FLIGHT} were in flight\n\
             # TYPE {name} counter\n{name} {}\n",
            self.refused.load(Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_over_the_bound_is_refused_at_once_and_admitted_once_one_ends() {
        let admission = Admission::new(2);
        let first = admission.admit().expect("the first");
        let _second = admission.admit().expect("the second");
        assert!(admission.admit().is_none(), "the third is over the bound");
        drop(first);
        assert!(admission.admit().is_some(), "a permit given back admits");
        assert!(admission.render().contains("facade_api_busy_total 1\n"));
    }
}
