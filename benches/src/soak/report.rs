//! What a soak measured: latency per kind (HDR histograms, serialized into the JSON so that any
//! percentile can be read again later), errors by kind and class, a per-second time series, and
//! the run's summary as text and JSON.
//!
//! Owns the [`Recorder`] that every operation reports to, the [`Report`] written to
//! `report.json`, and its text rendering. Latencies are recorded in microseconds from when an
//! operation was due, not from when it was sent (no coordinated omission). Never holds card data:
//! the first few error messages are kept, and answers carry masked numbers only (the
//! reconciliation greps the report too).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use super::faults::FaultEvent;
use super::memory::MemoryReport;
use super::mix::Kind;
use super::reconcile::Reconciliation;
use crate::latency::{histogram, micros};
use crate::merchant::Failure;

/// Error messages kept per kind, in full, for the report.
const FIRST_ERRORS: usize = 3;

/// Where every operation reports its outcome; shared by the driver's tasks.
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    kinds: BTreeMap<Kind, KindTally>,
    /// The operations completed since the last [`Recorder::roll`].
    window: Histogram<u64>,
    window_errors: u64,
    series: Vec<Second>,
}

#[derive(Debug)]
struct KindTally {
    latency: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_errors: Vec<String>,
}

impl Default for KindTally {
    fn default() -> KindTally {
        KindTally {
            latency: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            first_errors: Vec::new(),
        }
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            inner: Mutex::new(Inner {
                kinds: BTreeMap::new(),
                window: histogram(),
                window_errors: 0,
                series: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One operation of `kind`, due at `due`, ended now with `outcome`. Its latency counts
    /// whether it succeeded or not: a failure that took 5 s is 5 s of a shopper's wait.
    pub fn record(&self, kind: Kind, due: Instant, outcome: Result<(), &Failure>) {
        let us = micros(due.elapsed());
        let mut inner = self.lock();
        inner.window.saturating_record(us);
        let tally = inner.kinds.entry(kind).or_default();
        tally.latency.saturating_record(us);
        match outcome {
            Ok(()) => tally.ok += 1,
            Err(failure) => {
                *tally.errors.entry(failure.class()).or_default() += 1;
                if tally.first_errors.len() < FIRST_ERRORS {
                    let mut text = failure.to_string();
                    text.truncate(300);
                    tally.first_errors.push(text);
                }
                inner.window_errors += 1;
            }
        }
    }

    /// Closes the current one-second window: its rate and percentiles go to the time series and
    /// are returned for the progress line.
    pub fn roll(&self) -> Second {
        let t = self.started.elapsed().as_secs_f64();
        let mut inner = self.lock();
        let w = &inner.window;
        let ms = |q: f64| w.value_at_quantile(q) as f64 / 1000.0;
        let second = Second {
            t_s: t,
            done: w.len(),
            errors: inner.window_errors,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: w.max() as f64 / 1000.0,
        };
        inner.window.reset();
        inner.window_errors = 0;
        inner.series.push(second.clone());
        second
    }

    /// How long since the recorder started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Errors so far, all kinds.
    pub fn errors(&self) -> u64 {
        self.lock()
            .kinds
            .values()
            .map(|k| k.errors.values().sum::<u64>())
            .sum()
    }

    /// The measurements as the report's parts: per kind, all kinds, and the time series.
    pub fn measurements(&self, elapsed: Duration) -> Measurements {
        let inner = self.lock();
        let mut all = KindTally::default();
        let mut kinds = BTreeMap::new();
        for (kind, tally) in &inner.kinds {
            all.latency.add(&tally.latency).expect("same bounds");
            all.ok += tally.ok;
            for (class, n) in &tally.errors {
                *all.errors.entry(class.clone()).or_default() += n;
            }
            kinds.insert(kind.name().to_owned(), KindReport::of(tally, elapsed));
        }
        Measurements {
            total: KindReport::of(&all, elapsed),
            kinds,
            series: inner.series.clone(),
        }
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

/// One second of the run, as the progress line shows it and the plot draws it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the start at the end of the window.
    pub t_s: f64,
    /// Operations completed in the window (ok or not).
    pub done: u64,
    /// Of which failed.
    pub errors: u64,
    /// Median latency of the window, ms.
    pub p50_ms: f64,
    /// 99th percentile of the window, ms.
    pub p99_ms: f64,
    /// Slowest of the window, ms.
    pub max_ms: f64,
}

/// What the recorder measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurements {
    /// All kinds together.
    pub total: KindReport,
    /// By kind name.
    pub kinds: BTreeMap<String, KindReport>,
    /// One entry per second.
    pub series: Vec<Second>,
}

/// One kind's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindReport {
    /// Operations that did what was asked.
    pub ok: u64,
    /// Operations that failed, by class (`transport`, `http 500`, `unexpected`, `overload`).
    pub errors: BTreeMap<String, u64>,
    /// The first few failures in full.
    pub first_errors: Vec<String>,
    /// Successful operations per second over the run.
    pub ok_per_s: f64,
    /// Latency percentiles, ms (all operations, failed ones too).
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// The HDR histogram of latencies in microseconds, V2-serialized and base64-encoded: any other
    /// percentile can be read from it later (`Deserializer::deserialize`).
    pub histogram: String,
}

impl KindReport {
    fn of(tally: &KindTally, elapsed: Duration) -> KindReport {
        let h = &tally.latency;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut bytes)
            .expect("a histogram serializes into memory");
        KindReport {
            ok: tally.ok,
            errors: tally.errors.clone(),
            first_errors: tally.first_errors.clone(),
            ok_per_s: tally.ok as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
            histogram: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// Failures of all classes.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The histogram back from its serialized form.
    pub fn decode_histogram(&self) -> Option<Histogram<u64>> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.histogram)
            .ok()?;
        Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
    }
}

/// How the run was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Asked {
    /// Operations per second, or `None` for as fast as it can.
    pub rate: Option<u64>,
    /// How long the load ran, s.
    pub duration_s: f64,
    /// Connections of a max-rate run (a fixed rate opens as many as it needs).
    pub connections: usize,
    /// The mix, as `kind=weight,…`.
    pub mix: String,
    /// The fault schedule.
    pub faults: Vec<FaultEvent>,
}

/// `report.json`: everything the soak measured and found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Unix seconds at the start.
    pub started_unix_s: u64,
    /// What was asked.
    pub asked: Asked,
    /// How long the load actually ran, s.
    pub elapsed_s: f64,
    /// Latency, rate and errors.
    pub measured: Measurements,
    /// The faults as they were applied (start and end times, s from the start).
    pub faults_applied: Vec<String>,
    /// Each process's resident memory over the run.
    pub memory: MemoryReport,
    /// What the reconciliation found (`differences` empty when clean).
    pub reconciliation: Reconciliation,
}

impl Report {
    /// The report as text: one line per kind, the time series condensed, memory and differences.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let rate = self
            .asked
            .rate
            .map_or_else(|| "max".to_owned(), |r| format!("{r}/s"));
        let _ = writeln!(
            out,
            "soak: rate {rate}, {:.0} s, mix {}, {} faults scheduled",
            self.elapsed_s,
            self.asked.mix,
            self.asked.faults.len()
        );
        let _ = writeln!(
            out,
            "{:<11} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "kind", "ok", "errors", "ok/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms"
        );
        let line = |out: &mut String, name: &str, k: &KindReport| {
            let _ = writeln!(
                out,
                "{name:<11} {:>9} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
                k.ok,
                k.error_count(),
                k.ok_per_s,
                k.p50_ms,
                k.p90_ms,
                k.p99_ms,
                k.p999_ms,
                k.max_ms
            );
        };
        for (name, k) in &self.measured.kinds {
            line(&mut out, name, k);
        }
        line(&mut out, "all", &self.measured.total);
        for (name, k) in &self.measured.kinds {
            for (class, n) in &k.errors {
                let _ = writeln!(out, "errors: {name} {class}: {n}");
            }
            for e in &k.first_errors {
                let _ = writeln!(out, "errors: {name} e.g. {e}");
            }
        }
        for f in &self.faults_applied {
            let _ = writeln!(out, "fault: {f}");
        }
        out.push_str(&self.memory.text());
        out.push_str(&self.reconciliation.text());
        out
    }
}
