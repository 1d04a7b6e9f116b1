//! The soak's fault schedule: what goes wrong, when, and for how long. Processing-centre latency
//! spikes, lost answers and dropped connections (through the simulator's `/faults` control), the
//! vault restarted, the authorizer SIGKILLed and restarted on the same data, and the merchant's
//! notification endpoint failing for a while.
//!
//! Owns the schedule's vocabulary, the `default` preset (scaled to the run's length), the TOML
//! file format, and the composition of the simulator's fault settings from the windows open at
//! one moment. Applying a fault to the processes is the runner's job (`soak::run`), which holds
//! them.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simulator::{Fault, FaultMatch, FaultRule, Faults, Latency};

/// One thing that goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Every processing-centre answer waits `ms` longer, for the window.
    Latency {
        /// Added latency, ms.
        ms: u64,
    },
    /// Authorizations and purchases whose answer is never written, with this probability, for
    /// the window: the authorizer times out and reverses.
    LostAnswers {
        /// 0.0 to 1.0.
        probability: f64,
    },
    /// The simulator closes every ISO connection once: the link reconnects.
    Disconnect,
    /// The vault is stopped and started again.
    VaultRestart,
    /// The authorizer is SIGKILLed and started again on the same data directory.
    AuthorizerKill,
    /// The merchant's notification endpoint answers 500 for the window: the outbox retries.
    ShopFail,
}

impl FaultKind {
    /// Whether the fault lasts a window (`for_s`) rather than happening once.
    pub fn has_window(&self) -> bool {
        matches!(
            self,
            FaultKind::Latency { .. } | FaultKind::LostAnswers { .. } | FaultKind::ShopFail
        )
    }
}

/// A fault at a time of the run. (No `deny_unknown_fields`: serde cannot combine it with the
/// flattened kind.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// Seconds from the start of the load.
    pub at_s: f64,
    /// How long a windowed fault lasts, s (ignored by one-off faults).
    #[serde(default)]
    pub for_s: f64,
    /// What goes wrong.
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl FaultEvent {
    /// When it starts.
    pub fn at(&self) -> Duration {
        Duration::from_secs_f64(self.at_s.max(0.0))
    }

    /// When its window ends (its start, for a one-off fault).
    pub fn until(&self) -> Duration {
        if self.kind.has_window() {
            Duration::from_secs_f64((self.at_s + self.for_s).max(0.0))
        } else {
            self.at()
        }
    }
}

/// Why a schedule was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// The file is not a schedule.
    #[error("{0}: {1}")]
    Parse(String, toml::de::Error),
    /// A value out of range.
    #[error("fault {0}: {1}")]
    Invalid(usize, &'static str),
}

/// A fault schedule file: `[[fault]]` tables, e.g.
///
/// ```toml
/// [[fault]]
/// at_s = 10
/// for_s = 5
/// kind = "latency"
/// ms = 300
///
/// [[fault]]
/// at_s = 20
/// kind = "authorizer_kill"
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    #[serde(default)]
    fault: Vec<FaultEvent>,
}

/// The schedule `spec` names: `none`, `default` (every kind once, spread over `duration`), or
/// the path of a TOML file of `[[fault]]` tables. Sorted by start.
pub fn schedule(spec: &str, duration: Duration) -> Result<Vec<FaultEvent>, ScheduleError> {
    let mut events = match spec {
        "none" | "" => Vec::new(),
        "default" => default_schedule(duration),
        path => {
            let text = std::fs::read_to_string(Path::new(path))
                .map_err(|e| ScheduleError::Read(path.to_owned(), e))?;
            toml::from_str::<ScheduleFile>(&text)
                .map_err(|e| ScheduleError::Parse(path.to_owned(), e))?
                .fault
        }
    };
    for (i, e) in events.iter().enumerate() {
        if !(e.at_s >= 0.0 && e.for_s >= 0.0) {
            return Err(ScheduleError::Invalid(
                i,
                "at_s and for_s must be 0 or more",
            ));
        }
        if let FaultKind::LostAnswers { probability } = e.kind
            && !(0.0..=1.0).contains(&probability)
        {
            return Err(ScheduleError::Invalid(i, "probability must be 0.0 to 1.0"));
        }
    }
    events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    Ok(events)
}

/// Every kind once, one after the other, each at a fraction of the run and all over by 85% of
/// it, so that the last part of the run shows the system recovered: latency spike, disconnect,
/// lost answers, failing shop, vault restart, authorizer crash.
pub fn default_schedule(duration: Duration) -> Vec<FaultEvent> {
    let d = duration.as_secs_f64();
    let at = |fraction: f64, for_fraction: f64, kind| FaultEvent {
        at_s: d * fraction,
        for_s: d * for_fraction,
        kind,
    };
    vec![
        at(0.10, 0.08, FaultKind::Latency { ms: 200 }),
        at(0.22, 0.0, FaultKind::Disconnect),
        at(0.30, 0.08, FaultKind::LostAnswers { probability: 0.02 }),
        at(0.42, 0.12, FaultKind::ShopFail),
        at(0.60, 0.0, FaultKind::VaultRestart),
        at(0.72, 0.0, FaultKind::AuthorizerKill),
    ]
}

/// The simulator's settings while the given windows are open: the largest latency, the largest
/// loss probability, nothing else (magic amounts stay off: the soak's amounts are its own).
pub fn simulator_faults(open: &[&FaultKind], seed: u64) -> Faults {
    let latency = open
        .iter()
        .filter_map(|k| match k {
            FaultKind::Latency { ms } => Some(*ms),
            _ => None,
        })
        .max();
    let lost = open
        .iter()
        .filter_map(|k| match k {
            FaultKind::LostAnswers { probability } => Some(*probability),
            _ => None,
        })
        .max_by(f64::total_cmp);
    let rules = lost
        .map(|probability| {
            // Authorizations (0100) and purchases (0200) only: their loss is what makes the
            // authorizer reverse; reversals and echoes get through.
            [100, 200]
                .map(|mti| FaultRule {
                    matches: FaultMatch {
                        mti: Some(mti),
                        ..FaultMatch::default()
                    },
                    fault: Fault::NoResponse,
                    probability,
                })
                .to_vec()
        })
        .unwrap_or_default();
    Faults {
        latency: latency.map_or(Latency::None, |ms| Latency::Fixed { ms }),
        magic_amounts: false,
        rules,
        seed,
        ..Faults::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_has_every_kind_within_the_run_and_a_file_reads_back() {
        let d = Duration::from_secs(100);
        let events = schedule("default", d).unwrap();
        assert_eq!(events.len(), 6);
        assert!(events.iter().all(|e| e.until() <= d.mul_f64(0.85)));
        let toml = "[[fault]]\nat_s = 3\nfor_s = 2\nkind = \"latency\"\nms = 300\n\n\
                    [[fault]]\nat_s = 1\nkind = \"authorizer_kill\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.toml");
        std::fs::write(&path, toml).unwrap();
        let read = schedule(path.to_str().unwrap(), d).unwrap();
        assert_eq!(read[0].kind, FaultKind::AuthorizerKill);
        assert_eq!(read[1].kind, FaultKind::Latency { ms: 300 });
        assert_eq!(read[1].until(), Duration::from_secs(5));
        assert!(schedule("none", d).unwrap().is_empty());
        std::fs::write(
            &path,
            "[[fault]]\nat_s = 1\nkind = \"lost_answers\"\nprobability = 2.0\n",
        )
        .unwrap();
        assert!(matches!(
            schedule(path.to_str().unwrap(), d),
            Err(ScheduleError::Invalid(0, _))
        ));
    }

    #[test]
    fn open_windows_compose_into_the_simulators_settings() {
        let spike = FaultKind::Latency { ms: 200 };
        let loss = FaultKind::LostAnswers { probability: 0.1 };
        let f = simulator_faults(&[&spike, &loss], 7);
        assert_eq!(f.latency, Latency::Fixed { ms: 200 });
        assert_eq!(f.rules.len(), 2);
        assert!(!f.magic_amounts);
        let calm = simulator_faults(&[], 7);
        assert_eq!((calm.latency, calm.rules.len()), (Latency::None, 0));
    }
}
