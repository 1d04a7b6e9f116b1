//! Each process's resident memory over a soak: `VmRSS` from `/proc/<pid>/status` every few
//! seconds, and its growth after a warm-up, the figure of "memory flat" (growth under 10% after
//! the first five minutes of an hour at 1,000/s).
//!
//! Owns the samples and the growth figure. Reads only `/proc`; a process that is restarted (a
//! fault) gets a new pid, and its growth is measured from its latest start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often each process is sampled.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// The warm-up of a long run: growth is measured from the first window after it.
pub const WARM_UP: Duration = Duration::from_secs(300);

/// One reading of one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the start of the load.
    pub t_s: f64,
    /// Its process id (a restarted process has a new one).
    pub pid: u32,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// `VmRSS` of `pid` in KiB, or `None` when the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    testkit::procstat::usage(pid).ok().map(|u| u.rss_kib)
}

/// A window's resident high-water mark, KiB: its greatest sample in `from..=to`. A maximum, not a
/// single reading, because an allocator that hands memory back to the system (jemalloc's decay)
/// and a page cache emptied when its file grows make single readings dip by a quarter.
fn level(samples: &[&Sample], from: f64, to: f64) -> u64 {
    samples
        .iter()
        .filter(|s| (from..=to).contains(&s.t_s))
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0)
}

/// Every process's samples and their growth.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryReport {
    /// By process name (`vault`, `simulator`, `authorizer`, `soak`).
    pub samples: BTreeMap<String, Vec<Sample>>,
    /// By process name: growth of the high-water mark from the first window after the warm-up to
    /// the last window (each a fifth of the warm-up: a minute in a long run), as a fraction
    /// (0.05 = 5%), over its latest pid only; absent when the run since its start was too short.
    pub growth: BTreeMap<String, f64>,
    /// The warm-up used, s: [`WARM_UP`] for a run of at least twice that, a third of the run
    /// otherwise (a short run's figure only says the sampling works).
    pub warm_up_s: f64,
}

impl MemoryReport {
    /// Adds a sample of `name`.
    pub fn add(&mut self, name: &str, sample: Sample) {
        self.samples
            .entry(name.to_owned())
            .or_default()
            .push(sample);
    }

    /// Computes [`MemoryReport::growth`] for a run of `elapsed`.
    pub fn finish(&mut self, elapsed: Duration) {
        let warm_up = if elapsed >= 2 * WARM_UP {
            WARM_UP
        } else {
            elapsed / 3
        };
        self.warm_up_s = warm_up.as_secs_f64();
        let window = (warm_up / 5).as_secs_f64();
        self.growth.clear();
        for (name, samples) in &self.samples {
            let Some(last) = samples.last() else { continue };
            let latest: Vec<&Sample> = samples.iter().filter(|s| s.pid == last.pid).collect();
            let start = latest[0].t_s + self.warm_up_s;
            let end = last.t_s - window;
            // The two windows must not overlap, or the figure compares a window with itself.
            if start + window > end {
                continue;
            }
            let base = level(&latest, start, start + window);
            let now = level(&latest, end, last.t_s);
            if base > 0 {
                let growth = (now as f64 - base as f64) / base as f64;
                self.growth.insert(name.clone(), growth);
            }
        }
    }

    /// One line per process: first, peak and last RSS and the growth.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (name, samples) in &self.samples {
            let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                continue;
            };
            let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
            let growth = self.growth.get(name).map_or_else(
                || "growth n/a (too short)".to_owned(),
                |g| {
                    format!(
                        "growth {:+.1}% after the first {:.0} s",
                        g * 100.0,
                        self.warm_up_s
                    )
                },
            );
            let _ = writeln!(
                out,
                "memory: {name:<10} RSS first {} MiB, peak {} MiB, last {} MiB, {growth}",
                first.rss_kib / 1024,
                peak / 1024,
                last.rss_kib / 1024
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_measured_after_the_warm_up_of_the_latest_pid() {
        let mut m = MemoryReport::default();
        let s = |t_s, pid, rss_kib| Sample { t_s, pid, rss_kib };
        for (t, rss) in [(0.0, 50), (100.0, 90), (200.0, 100), (299.0, 105)] {
            m.add("authorizer", s(t, 1, rss));
        }
        m.add("vault", s(0.0, 7, 10));
        m.add("vault", s(150.0, 8, 20));
        m.add("vault", s(250.0, 8, 30));
        m.finish(Duration::from_secs(300));
        assert!((m.growth["authorizer"] - 15.0 / 90.0).abs() < 1e-9, "{m:?}");
        assert!(
            !m.growth.contains_key("vault"),
            "restarted: too few samples since"
        );
        assert!(m.text().contains("authorizer"));
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn a_dip_after_the_warm_up_is_not_growth() {
        let mut m = MemoryReport::default();
        let s = |t_s, rss_kib| Sample {
            t_s,
            pid: 1,
            rss_kib,
        };
        // Flat at 100 but for one reading at the start of the measured window, handed back for
        // a moment (the first reading after the warm-up is the low one).
        for (t, rss) in [
            (0.0, 10),
            (100.0, 70),
            (110.0, 100),
            (200.0, 100),
            (299.0, 101),
        ] {
            m.add("authorizer", s(t, rss));
        }
        m.finish(Duration::from_secs(300));
        assert!((m.growth["authorizer"] - 0.01).abs() < 1e-9, "{m:?}");
    }
}
