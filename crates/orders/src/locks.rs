//! Serializes work on one order (all attempts of an OrderNumber share a lock) and on one
//! customer's turnover counters, so a repeated charge, two cancels at once or two payments of
//! one customer never interleave their read-check-write steps.
//!
//! Striped: a fixed set of async mutexes chosen by hash, so memory stays bounded whatever the
//! number of orders. A caller takes every lock it needs in one call, which sorts them: two
//! callers never wait on each other in opposite orders. Must never be held across anything but
//! the one order's work.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 1024;

/// The striped locks.
#[derive(Debug)]
pub(crate) struct Locks {
    stripes: Vec<Mutex<()>>,
}

/// Held locks, released on drop.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

/// The key of an order's lock: its merchant and OrderNumber.
pub(crate) fn order_key(merchant: &card::MerchantId, order_number: &crate::OrderNumber) -> String {
    format!("o\0{}\0{}", merchant.as_str(), order_number.as_str())
}

/// The key of a customer's turnover lock.
pub(crate) fn customer_key(scope: &str, customer: &card::CustomerNumber) -> String {
    format!("c\0{scope}\0{}", customer.as_str())
}

impl Locks {
    pub fn new() -> Locks {
        Locks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Takes the locks of all `keys` (duplicates and shared stripes taken once), in stripe order.
    pub async fn lock(&self, keys: &[String]) -> Held<'_> {
        let mut guards = Vec::new();
        for i in stripes(keys) {
            guards.push(self.stripes[i].lock().await);
        }
        Held { _guards: guards }
    }

    /// [`Locks::lock`] without waiting: `None` while any of them is held (by work on these keys,
    /// or on others that share a stripe: the caller asks again later).
    pub fn try_lock(&self, keys: &[String]) -> Option<Held<'_>> {
        let guards = stripes(keys)
            .into_iter()
            .map(|i| self.stripes[i].try_lock().ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Held { _guards: guards })
    }
}

/// The stripes of `keys`, each once, in order.
fn stripes(keys: &[String]) -> Vec<usize> {
    let mut idx: Vec<usize> = keys
        .iter()
        .map(|k| {
            let mut h = DefaultHasher::new();
            k.hash(&mut h);
            usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0)
        })
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}
