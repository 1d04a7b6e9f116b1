//! [`RetrySchedule`]: how long a notification waits after each failed try, and when it stops.
//! Owns only that arithmetic; must never read a clock.

use std::time::Duration;

/// The waits after the first, second, … failed try; after the last, the notification has failed
/// for good (until re-sent by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// Ten tries over about five hours and a quarter (the spec asks for at least 8 over at least
    /// 4): 1, 5, 10, 20 and 40 minutes, then hourly.
    fn default() -> RetrySchedule {
        let min = |m: u64| Duration::from_secs(60 * m);
        RetrySchedule {
            waits: vec![
                min(1),
                min(5),
                min(10),
                min(20),
                min(40),
                min(60),
                min(60),
                min(60),
                min(60),
            ],
        }
    }
}

/// A schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No wait at all: a notification would get one try.
    #[error("the retry schedule needs at least one wait")]
    Empty,
    /// A zero wait would re-send in a tight loop.
    #[error("a retry wait must be above zero")]
    Zero,
}

impl RetrySchedule {
    /// A schedule of these waits, each above zero.
    pub fn new(waits: Vec<Duration>) -> Result<RetrySchedule, ScheduleError> {
        if waits.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if waits.iter().any(Duration::is_zero) {
            return Err(ScheduleError::Zero);
        }
        Ok(RetrySchedule { waits })
    }

    /// How long to wait after try number `tries` (1 for the first) failed; `None` when it was
    /// the last.
    pub fn after_try(&self, tries: u32) -> Option<Duration> {
        let i = usize::try_from(tries.checked_sub(1)?).ok()?;
        self.waits.get(i).copied()
    }

    /// Every try the schedule makes, the first included.
    pub fn tries(&self) -> usize {
        self.waits.len() + 1
    }

    /// From the first try to the last.
    pub fn span(&self) -> Duration {
        self.waits.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_makes_at_least_eight_tries_over_at_least_four_hours() {
        let s = RetrySchedule::default();
        assert!(s.tries() >= 8, "{}", s.tries());
        assert!(s.span() >= Duration::from_secs(4 * 3600), "{:?}", s.span());
    }

    #[test]
    fn waits_grow_and_end_after_the_last_try() {
        let s = RetrySchedule::default();
        let waits: Vec<_> = (1..=s.tries() as u32).map(|t| s.after_try(t)).collect();
        assert!(waits[..waits.len() - 1].windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(waits.last(), Some(&None));
        assert_eq!(s.after_try(0), None);
    }

    #[test]
    fn refuses_empty_and_zero_waits() {
        assert_eq!(RetrySchedule::new(vec![]), Err(ScheduleError::Empty));
        assert_eq!(
            RetrySchedule::new(vec![Duration::from_millis(5), Duration::ZERO]),
            Err(ScheduleError::Zero)
        );
    }
}
