//! The only crate that talks PKCS#11 (through `cryptoki`).
//!
//! It owns the vault's key hierarchy inside the HSM: versioned key-encryption keys (AES-256,
//! sensitive, never extractable, wrap and unwrap only) that wrap data-encryption keys, and
//! versioned fingerprint keys (HMAC-SHA-256, never extractable, sign only), and their retirement. It hands out unwrapped DEKs only in zeroizing buffers and
//! must never log, print or return the value of a key that lives in the HSM.
#![forbid(unsafe_code)]

mod context;
mod error;
mod keys;
mod pool;
pub mod softhsm;

use std::sync::atomic::{AtomicU64, Ordering};

pub use error::HsmError;
pub use keys::{Dek, Hsm, HsmConfig, KeyInfo, KeyKind, KeyVersion, Pin, Usage, WrappedDek, today};

/// Every cryptographic call made into the HSM module by this process, so that benches and tests
/// can show that steady-state seal and unseal make none.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// How many cryptographic HSM calls (generate, wrap, unwrap, sign) this process has made.
pub fn calls() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

fn count_call() {
    CALLS.fetch_add(1, Ordering::Relaxed);
}
