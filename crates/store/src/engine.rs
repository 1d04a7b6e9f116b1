//! The storage trait every engine implements, and [`EngineKind`], the configured choice between
//! the engines this crate ships. An engine owns one database (one table or tree) and must never
//! acknowledge a write before it is durable as far as the engine can promise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Batch, StoreError};

/// A key and its value, as scans return them.
pub type Pair = (Vec<u8>, Vec<u8>);

/// An ordered byte-keyed store with atomic, durable batch writes.
///
/// Readers see only whole writes: no get or scan observes part of one [`Engine::write`].
pub trait Engine: Send + Sync + 'static {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// All pairs whose key starts with `prefix`, in ascending key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Pair>, StoreError>;

    /// Pairs with `start <= key < end`, ascending, at most `limit` (for paging through big ranges).
    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>, StoreError>;

    /// The greatest pair whose key starts with `prefix` (sequence heads: audit log, queues).
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StoreError>;

    /// Applies all `batches`, in order, in ONE atomic transaction that is durable when this
    /// returns `Ok`.
    fn write(&self, batches: &[Batch]) -> Result<(), StoreError>;
}

/// Which engine a [`crate::Store`] opens; `"redb"` or `"sled"` in config files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// redb: every commit is fsynced; the default because an acknowledged write survives power loss.
    #[default]
    Redb,
    /// sled 0.34: flushes with `sync_file_range`, which survives a process crash but does not
    /// promise durability across power loss.
    Sled,
}

impl EngineKind {
    /// The name used in config files and error messages.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Redb => "redb",
            EngineKind::Sled => "sled",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A configured engine name that is neither `redb` nor `sled`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown storage engine {0:?}: expected \"redb\" or \"sled\"")]
pub struct UnknownEngine(String);

impl FromStr for EngineKind {
    type Err = UnknownEngine;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "redb" => Ok(EngineKind::Redb),
            "sled" => Ok(EngineKind::Sled),
            // Config text, not card data; cut it so a pasted blob does not flood the message.
            other => Err(UnknownEngine(other.chars().take(32).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_names() {
        for kind in [EngineKind::Redb, EngineKind::Sled] {
            assert_eq!(kind.to_string().parse::<EngineKind>(), Ok(kind));
        }
        assert_eq!(EngineKind::default(), EngineKind::Redb);
    }

    #[test]
    fn deserializes_from_config_names() {
        use serde::de::value::{Error, StrDeserializer};
        let from = |name| EngineKind::deserialize(StrDeserializer::<Error>::new(name));
        assert_eq!(from("sled"), Ok(EngineKind::Sled));
        assert_eq!(from("redb"), Ok(EngineKind::Redb));
        assert!(from("Sled").is_err());
    }

    #[test]
    fn rejects_other_names_clearly() {
        let err = "Redb".parse::<EngineKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown storage engine "Redb": expected "redb" or "sled""#
        );
        let long = "x".repeat(1000).parse::<EngineKind>().unwrap_err();
        assert!(long.to_string().len() < 100);
    }
}
