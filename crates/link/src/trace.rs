//! Trace numbers and timestamps that identify a message on the wire: STAN (DE 11), RRN (DE 37)
//! and transmission time (DE 7, and DE 12/13 read from it).
//!
//! Owns the atomic sequences; they are the only shared state on the send path and must never take
//! a lock. It must never hand out STAN 0 (not a valid trace number) nor reuse an RRN within a run.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use iso8583::{Rrn, Stan, TransmissionTime};
use time::OffsetDateTime;

/// STANs 1..=999999 in a cycle, from one atomic counter.
#[derive(Debug)]
pub struct StanSequence {
    next: AtomicU32,
}

impl StanSequence {
    /// Starts after `start` (taken modulo the STAN range). A process starts at a random point so
    /// that a restart does not replay the STANs the network saw a moment ago (duplicate → 94).
    pub fn starting_at(start: u32) -> StanSequence {
        StanSequence {
            next: AtomicU32::new(start % Stan::MAX),
        }
    }

    pub fn next(&self) -> Stan {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Wrap without a compare loop: 0..999_999 maps onto 1..=999_999.
        Stan::new(n % Stan::MAX + 1).expect("n % MAX + 1 is within 1..=MAX")
    }
}

/// Retrieval reference numbers: `DDD` (the day of the year, UTC) followed by a nine-digit
/// sequence, so an RRN tells the day it was made and is unique within it for 10^9 requests
/// (11,574/s all day long). The common `YDDDhh` + six digits repeated itself within the hour past
/// 1,000,000 requests an hour (278/s): an hour's soak at 1,000/s found approvals sharing RRNs.
#[derive(Debug)]
pub struct RrnSequence {
    next: AtomicU64,
}

impl RrnSequence {
    pub fn starting_at(start: u64) -> RrnSequence {
        RrnSequence {
            next: AtomicU64::new(start),
        }
    }

    pub fn next(&self, now: &Timestamp) -> Rrn {
        let seq = self.next.fetch_add(1, Ordering::Relaxed) % 1_000_000_000;
        let n = now.rrn_prefix * 1_000_000_000 + seq;
        Rrn::from_number(n)
            .expect("a three-digit prefix and a nine-digit sequence fit twelve digits")
    }
}

/// One reading of the clock in the forms the trace numbers need, all UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// DE 7, `MMDDhhmmss`.
    pub transmission: TransmissionTime,
    /// `DDD` as a number, for [`RrnSequence`].
    rrn_prefix: u64,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::at(OffsetDateTime::now_utc())
    }

    pub fn at(t: OffsetDateTime) -> Timestamp {
        let (mo, d, h, mi, s) = (
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        );
        let mut digits = [0u8; 10];
        for (i, v) in [mo, d, h, mi, s].into_iter().enumerate() {
            digits[i * 2] = b'0' + v / 10;
            digits[i * 2 + 1] = b'0' + v % 10;
        }
        let transmission =
            TransmissionTime::from_ascii(&digits).expect("a calendar time is a valid DE 7");
        let rrn_prefix = u64::from(t.ordinal());
        Timestamp {
            transmission,
            rrn_prefix,
        }
    }
}

/// DE 12, `hhmmss`: the time part of DE 7 (the merchant's local time is taken as UTC).
pub(crate) fn local_time(transmission: &TransmissionTime) -> [u8; 6] {
    let mut out = [0u8; 6];
    out.copy_from_slice(&transmission.as_bytes()[4..10]);
    out
}

/// DE 13, `MMDD`: the date part of DE 7.
pub(crate) fn local_date(transmission: &TransmissionTime) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&transmission.as_bytes()[..4]);
    out
}

/// The trace numbers given to one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trace {
    pub stan: Stan,
    pub rrn: Rrn,
    pub transmission: TransmissionTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stan_cycles_through_one_to_999999_never_zero() {
        let seq = StanSequence::starting_at(Stan::MAX - 2);
        let got: Vec<u32> = (0..4).map(|_| seq.next().value()).collect();
        assert_eq!(got, vec![999_998, 999_999, 1, 2]);
    }

    #[test]
    fn stan_is_unique_across_threads() {
        let seq = std::sync::Arc::new(StanSequence::starting_at(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let seq = seq.clone();
                std::thread::spawn(move || {
                    (0..10_000).map(|_| seq.next().value()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u32> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 40_000);
    }

    #[test]
    fn timestamp_fields_and_rrn_layout() {
        let ts = Timestamp::at(datetime!(2026-11-23 04:05:06 UTC));
        assert_eq!(ts.transmission.as_bytes(), b"1123040506");
        assert_eq!(&local_time(&ts.transmission), b"040506");
        assert_eq!(&local_date(&ts.transmission), b"1123");
        let rrns = RrnSequence::starting_at(41);
        // Day 327, then the sequence.
        assert_eq!(rrns.next(&ts).as_str(), "327000000041");
        assert_eq!(rrns.next(&ts).as_str(), "327000000042");
    }

    #[test]
    fn rrns_do_not_repeat_within_a_day_past_a_million() {
        let ts = Timestamp::at(datetime!(2026-11-23 04:05:06 UTC));
        let rrns = RrnSequence::starting_at(0);
        let first = rrns.next(&ts);
        for _ in 1..1_000_000 {
            rrns.next(&ts);
        }
        // The millionth after the first.
        assert_ne!(rrns.next(&ts), first);
    }
}
