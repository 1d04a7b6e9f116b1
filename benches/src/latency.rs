//! Latency percentiles, one way for every bench and the soak: an HDR histogram of microseconds
//! (three significant digits), so a bench's p99 and a soak's are read alike and a long run costs
//! a fixed few kilobytes instead of a sorted list of every sample.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies above this are recorded as this (a stuck operation, seen as the maximum): 120 s.
const HIGHEST_US: u64 = 120_000_000;

/// An empty histogram of 1 µs to 120 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// `d` in whole microseconds, at least 1 (the histogram's lowest value).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// `p50 … p90 … p99 … p99.9 … max …` of `h`.
pub fn summary(h: &Histogram<u64>) -> String {
    let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
    format!(
        "p50 {:.2?} p90 {:.2?} p99 {:.2?} p99.9 {:.2?} max {:.2?}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        Duration::from_micros(h.max()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_within_the_histograms_precision() {
        let mut h = histogram();
        for ms in 1..=100 {
            h.saturating_record(micros(Duration::from_millis(ms)));
        }
        let text = summary(&h);
        assert!(text.starts_with("p50 50.0"), "{text}");
        assert!(text.contains("p99 99.0"), "{text}");
        assert!(text.ends_with("max 100.03ms"), "{text}");
    }

    #[test]
    fn a_sub_microsecond_sample_counts_as_one_microsecond() {
        assert_eq!(micros(Duration::from_nanos(10)), 1);
    }
}
