//! Durable key-value storage for the vault and the authorizer: one small trait ([`Engine`]), two
//! engines behind it (redb, the default, and sled), and [`Store`], which merges concurrent commits
//! into one durable append to a write-ahead log (group commit) and moves the log into the engine
//! every 25 ms, and [`DueQueue`], the durable schedule the outbox's notifications wait in.
//!
//! Keys and values are raw bytes. Callers namespace keys with a prefix per record kind
//! (`b"card/"`, `b"audit/"`) and write integers in keys big-endian and fixed-width so that byte
//! order is numeric order.
//!
//! ```
//! # fn main() -> Result<(), store::StoreError> {
//! # let dir = tempfile::tempdir().unwrap();
//! use store::{Batch, EngineKind, Store};
//!
//! let store = Store::open(EngineKind::Redb, &dir.path().join("vault.redb"))?;
//! let mut batch = Batch::default();
//! batch.put(b"card/0001", b"sealed").put(b"audit/\0\0\0\0\0\0\0\x01", b"entry");
//! store.commit_blocking(batch)?; // durable: both puts are on disk, or neither is
//! assert_eq!(store.get(b"card/0001")?.as_deref(), Some(&b"sealed"[..]));
//! assert_eq!(store.last_with_prefix(b"audit/")?.map(|(_, v)| v), Some(b"entry".to_vec()));
//! # Ok(()) }
//! ```
//!
//! This crate must never interpret, log or put into an error the values it stores (they may be
//! ciphertext) nor the keys (they may hold customer numbers); an error names a key by length at most.

mod batch;
mod cache;
mod dir;
mod due;
mod engine;
mod error;
mod group_commit;
mod journal;
mod overlay;
mod prefix;
mod redb_engine;
mod sled_engine;
mod store;
mod wal;

pub use batch::{Batch, Op};
pub use cache::{CacheMib, CacheSizeError};
pub use due::{Due, DueQueue};
pub use engine::{Engine, EngineKind, Pair, UnknownEngine};
pub use error::{BoxError, Operation, StoreError};
pub use redb_engine::RedbEngine;
pub use sled_engine::SledEngine;
pub use store::Store;
