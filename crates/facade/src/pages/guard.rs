//! The pages' defences that are not about card data: the per-order token every form carries
//! against cross-site request forgery, and the card-testing limit on failed attempts per order
//! and per client address.
//!
//! Owns the per-process MAC key (random at start: a restart makes open forms stale, and the
//! shopper submits again) and the in-memory, bounded attempt counters. Must never compare a token
//! other than in constant time, and never grow without bound whatever a client sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use orders::BillNumber;
use sha2::Sha256;

/// Bytes of the MAC kept in a form (128 bits).
const TOKEN_BYTES: usize = 16;

/// The form token of an order: HMAC-SHA-256 of its billnumber under a key known to this process
/// only. Nothing is stored, and a token is worthless for any other order.
pub(crate) struct Csrf {
    key: [u8; 32],
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf(..)")
    }
}

impl Csrf {
    /// A fresh random key.
    pub(crate) fn new() -> Csrf {
        Csrf {
            key: rand::random(),
        }
    }

    fn mac(&self, bill: BillNumber) -> Hmac<Sha256> {
        // HMAC takes a key of any length; 32 bytes is always accepted.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"payment-page-form\0");
        mac.update(&bill.get().to_be_bytes());
        mac
    }

    /// The token for `bill`'s forms, in hex.
    pub(crate) fn token(&self, bill: BillNumber) -> String {
        hex::encode(&self.mac(bill).finalize().into_bytes()[..TOKEN_BYTES])
    }

    /// Whether `given` is `bill`'s token (constant time).
    pub(crate) fn check(&self, bill: BillNumber, given: &str) -> bool {
        let Ok(bytes) = hex::decode(given) else {
            return false;
        };
        bytes.len() == TOKEN_BYTES && self.mac(bill).verify_truncated_left(&bytes).is_ok()
    }
}

/// Failed payments allowed per order (every attempt of one OrderNumber of one merchant) within
/// [`WINDOW`].
pub(crate) const PER_ORDER: u32 = 5;
/// Failed payments allowed per client address within [`WINDOW`].
pub(crate) const PER_ADDRESS: u32 = 10;
/// How long a failure counts.
pub(crate) const WINDOW: Duration = Duration::from_secs(3600);
/// Most keys of each kind kept; past it the oldest are dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
struct Counters {
    orders: HashMap<String, (u32, Instant)>,
    addresses: HashMap<IpAddr, (u32, Instant)>,
}

/// Failed card attempts, counted per order and per client address.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    counters: Mutex<Counters>,
}

fn current<K: std::hash::Hash + Eq>(map: &HashMap<K, (u32, Instant)>, key: &K) -> u32 {
    map.get(key)
        .filter(|(_, since)| since.elapsed() < WINDOW)
        .map_or(0, |(n, _)| *n)
}

fn bump<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, (u32, Instant)>, key: K) {
    if map.len() >= MAX_KEYS && !map.contains_key(&key) {
        map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        if map.len() >= MAX_KEYS {
            // Still full of live keys: forget the oldest, so a flood of addresses cannot exhaust
            // memory (it can only make us forget, and the per-order count still holds).
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }
    let entry = map.entry(key).or_insert((0, Instant::now()));
    if entry.1.elapsed() >= WINDOW {
        *entry = (0, Instant::now());
    }
    entry.0 = entry.0.saturating_add(1);
}

impl Attempts {
    /// Whether another card attempt may be made for `order` from `address`.
    pub(crate) fn allowed(&self, order: &str, address: Option<IpAddr>) -> bool {
        let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        current(&c.orders, &order.to_owned()) < PER_ORDER
            && address.is_none_or(|a| current(&c.addresses, &a) < PER_ADDRESS)
    }

    /// Counts a failed attempt.
    pub(crate) fn failed(&self, order: &str, address: Option<IpAddr>) {
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        bump(&mut c.orders, order.to_owned());
        if let Some(a) = address {
            bump(&mut c.addresses, a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bill(n: u64) -> BillNumber {
        BillNumber::new(n).unwrap()
    }

    #[test]
    fn a_token_is_good_for_its_order_only() {
        let csrf = Csrf::new();
        let token = csrf.token(bill(1_234_567_890_123_456));
        assert_eq!(token.len(), 32);
        assert!(csrf.check(bill(1_234_567_890_123_456), &token));
        assert!(!csrf.check(bill(1_234_567_890_123_457), &token));
        assert!(!csrf.check(bill(1_234_567_890_123_456), &token[..30]));
        assert!(!csrf.check(bill(1_234_567_890_123_456), "zz"));
    }

    #[test]
    fn another_process_key_refuses_the_token() {
        let token = Csrf::new().token(bill(1_234_567_890_123_456));
        assert!(!Csrf::new().check(bill(1_234_567_890_123_456), &token));
    }

    #[test]
    fn failures_close_the_order_then_the_address() {
        let a = Attempts::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_ORDER {
            assert!(a.allowed("m/1", Some(ip)));
            a.failed("m/1", Some(ip));
        }
        assert!(!a.allowed("m/1", None), "the order is closed");
        assert!(a.allowed("m/2", Some(ip)), "another order from the address");
        for _ in PER_ORDER..PER_ADDRESS {
            a.failed("m/2", Some(ip));
        }
        assert!(!a.allowed("m/3", Some(ip)), "the address is closed");
        assert!(a.allowed("m/3", Some("192.0.2.2".parse().unwrap())));
    }
}
