//! What an unauthenticated peer may cost the vault: how many connections of one listener may
//! wait for authentication at once, how many of them one source may hold, how long a failed
//! login waits before its answer, and how many failures a source may leave in the audit log
//! one by one before they are only counted.
//!
//! Owns these limits and their bookkeeping, in memory, bounded whatever peers do. Must never
//! make an authenticated client wait for an unauthenticated one: the waiting room evicts its
//! oldest occupant instead of refusing the newcomer, so idle sockets cannot hold the door shut.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::peer::Source;

/// The server's limits, per listener where it says so.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Unauthenticated connections one listener keeps at once (TLS handshakes included).
    pub waiting: usize,
    /// Unauthenticated connections one source keeps at once on one listener.
    pub waiting_per_source: usize,
    /// Authenticated connections one listener serves at once.
    pub sessions: usize,
    /// Time from accept to a complete hello (TLS handshake included).
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            waiting: 256,
            waiting_per_source: 32,
            sessions: 1024,
            deadline: Duration::from_secs(2),
        }
    }
}

/// The unauthenticated connections of one listener. When full (overall, or for the newcomer's
/// source) the oldest occupant is evicted: a client that says hello at once always gets in,
/// an idle socket is the first to go.
#[derive(Debug)]
pub struct WaitingRoom {
    state: Mutex<Room>,
    limits: Limits,
}

#[derive(Debug, Default)]
struct Room {
    next: u64,
    /// Every occupant by arrival (lowest = oldest), with the way to tell it to leave.
    by_age: BTreeMap<u64, (Source, oneshot::Sender<()>)>,
    by_source: HashMap<Source, VecDeque<u64>>,
}

impl Room {
    fn remove(&mut self, id: u64) -> Option<oneshot::Sender<()>> {
        let (source, evict) = self.by_age.remove(&id)?;
        if let Some(ids) = self.by_source.get_mut(&source) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_source.remove(&source);
            }
        }
        Some(evict)
    }
}

/// A place in the waiting room; leaving it (drop) frees the place.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    room: Arc<WaitingRoom>,
    /// Resolves when a newer connection took this one's place.
    pub evicted: oneshot::Receiver<()>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut room) = self.room.state.lock() {
            room.remove(self.id);
        }
    }
}

impl WaitingRoom {
    /// An empty room with these limits.
    pub fn new(limits: Limits) -> Arc<WaitingRoom> {
        Arc::new(WaitingRoom {
            state: Mutex::default(),
            limits,
        })
    }

    /// Lets a new connection from `source` in, evicting the source's oldest when it holds its
    /// share, then the room's oldest when the room is full.
    pub fn enter(self: &Arc<Self>, source: Source) -> Ticket {
        let (tx, evicted) = oneshot::channel();
        let mut room = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = room.by_source.get(&source).map_or(0, VecDeque::len);
        if held >= self.limits.waiting_per_source.max(1) {
            let oldest = room
                .by_source
                .get(&source)
                .and_then(|ids| ids.front().copied());
            if let Some(evict) = oldest.and_then(|id| room.remove(id)) {
                let _ = evict.send(());
            }
        }
        if room.by_age.len() >= self.limits.waiting.max(1) {
            let oldest = room.by_age.keys().next().copied();
            if let Some(evict) = oldest.and_then(|id| room.remove(id)) {
                let _ = evict.send(());
            }
        }
        let id = room.next;
        room.next += 1;
        room.by_age.insert(id, (source, tx));
        room.by_source.entry(source).or_default().push_back(id);
        Ticket {
            id,
            room: Arc::clone(self),
            evicted,
        }
    }
}

/// Most keys the throttle and the trace remember; past it (after forgetting quiet ones) a new
/// source is treated as the worst offender, so memory stays bounded under a flood of sources.
const MAX_TRACKED: usize = 65_536;

/// Refused logins, per claimed client id (configured ids only, so the map is bounded by the
/// config) and per source: each refusal waits longer before its answer, doubling up to a cap,
/// and the count is forgotten after a quiet minute.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<ThrottleKey, Failures>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ThrottleKey {
    Client(String),
    Source(Source),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl LoginThrottle {
    /// The first refusal's wait.
    const FIRST: Duration = Duration::from_millis(100);
    /// The longest wait: long enough that a guesser gets a few answers per second per
    /// connection it may hold, short enough that a client with a stale secret hears back.
    const MAX: Duration = Duration::from_secs(2);
    /// Quiet time after which a key's failures are forgotten.
    const FORGET: Duration = Duration::from_secs(60);

    /// Counts a refused login by `client` (when it is a configured id) from `source`; returns
    /// how long to wait before answering it.
    pub fn refused(&self, client: Option<&str>, source: Source) -> Duration {
        let now = Instant::now();
        let Ok(mut map) = self.failures.lock() else {
            return Self::MAX;
        };
        if map.len() >= MAX_TRACKED {
            map.retain(|_, f| now.duration_since(f.last) < Self::FORGET);
        }
        let mut worst = 0;
        let keys = [
            client.map(|c| ThrottleKey::Client(c.to_string())),
            Some(ThrottleKey::Source(source)),
        ];
        for key in keys.into_iter().flatten() {
            if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
                return Self::MAX;
            }
            let f = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(f.last) >= Self::FORGET {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            worst = worst.max(f.count);
        }
        Self::FIRST
            .saturating_mul(1u32 << (worst - 1).min(16))
            .min(Self::MAX)
    }
}

/// Which failures (refused logins, pre-authentication failures) are recorded one by one: the
/// first [`Trace::SINGLY`] per source per window; the rest are counted and summed up in one
/// entry when the window ends, so a flood costs one durable write per source per window.
#[derive(Debug, Default)]
pub struct Trace {
    windows: Mutex<HashMap<Source, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    recorded: u32,
    counted: u64,
}

impl Trace {
    /// Failures per source per window recorded one by one.
    pub const SINGLY: u32 = 5;
    /// Length of a window.
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// Whether this failure from `source` is recorded on its own (else it is counted).
    pub fn record(&self, source: Source) -> bool {
        let now = Instant::now();
        let Ok(mut map) = self.windows.lock() else {
            return false;
        };
        if map.len() >= MAX_TRACKED && !map.contains_key(&source) {
            // Counted under no source rather than forgotten: the summary still says how many.
            return false;
        }
        let w = map.entry(source).or_insert(Window {
            started: now,
            recorded: 0,
            counted: 0,
        });
        if w.recorded < Self::SINGLY {
            w.recorded += 1;
            true
        } else {
            w.counted += 1;
            false
        }
    }

    /// The counts to sum up: of windows that ended, or of every window when `all` (at
    /// shutdown). Those windows are closed.
    pub fn due(&self, all: bool) -> Vec<(Source, u64)> {
        let now = Instant::now();
        let Ok(mut map) = self.windows.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        map.retain(|source, w| {
            if all || now.duration_since(w.started) >= Self::WINDOW {
                if w.counted > 0 {
                    out.push((*source, w.counted));
                }
                false
            } else {
                true
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(waiting: usize, per_source: usize) -> Limits {
        Limits {
            waiting,
            waiting_per_source: per_source,
            ..Limits::default()
        }
    }

    #[test]
    fn a_source_over_its_share_loses_its_oldest_connection_not_the_newest() {
        let room = WaitingRoom::new(limits(100, 2));
        let mut first = room.enter(Source::Uid(1));
        let mut second = room.enter(Source::Uid(1));
        let _other = room.enter(Source::Uid(2));
        let mut third = room.enter(Source::Uid(1));
        assert!(first.evicted.try_recv().is_ok());
        assert!(second.evicted.try_recv().is_err());
        assert!(third.evicted.try_recv().is_err());
    }

    #[test]
    fn a_full_room_evicts_its_oldest_and_a_ticket_frees_its_place() {
        let room = WaitingRoom::new(limits(2, 10));
        let mut a = room.enter(Source::Uid(1));
        drop(room.enter(Source::Uid(2)));
        let mut b = room.enter(Source::Uid(3));
        assert!(a.evicted.try_recv().is_err(), "a place was free");
        let _c = room.enter(Source::Uid(4));
        assert!(a.evicted.try_recv().is_ok());
        assert!(b.evicted.try_recv().is_err());
    }

    #[test]
    fn refused_logins_wait_longer_each_time_up_to_a_cap() {
        let t = LoginThrottle::default();
        let waits: Vec<_> = (0..8)
            .map(|_| t.refused(Some("facade"), Source::Uid(7)))
            .collect();
        assert_eq!(waits[0], LoginThrottle::FIRST);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits[7], LoginThrottle::MAX);
        // The client id's count slows another source guessing the same client.
        assert!(t.refused(Some("facade"), Source::Uid(8)) == LoginThrottle::MAX);
    }

    #[test]
    fn a_source_is_recorded_singly_a_few_times_then_counted() {
        let t = Trace::default();
        let singly = (0..20).filter(|_| t.record(Source::Uid(1))).count();
        assert_eq!(singly, Trace::SINGLY as usize);
        assert!(t.due(false).is_empty(), "the window has not ended");
        assert_eq!(t.due(true), vec![(Source::Uid(1), 15)]);
        assert!(t.record(Source::Uid(1)), "a new window");
    }
}
