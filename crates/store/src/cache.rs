//! [`CacheMib`]: an engine's page cache in MiB, as a config file gives it. Owns its bounds, so
//! that a process never opens its database with a cache that cannot hold the tree's branch pages
//! (every commit would read them back through the file) nor with a size that overflows.

use serde::{Deserialize, Serialize};

/// A page cache size, MiB, within [`CacheMib::MIN`]..=[`CacheMib::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct CacheMib(u64);

impl CacheMib {
    /// The smallest cache: the branch pages of a database of some millions of records.
    pub const MIN: u64 = 16;
    /// The largest: 1 TiB, far past any machine this runs on.
    pub const MAX: u64 = 1 << 20;
    /// Unless configured otherwise. It fills as the database grows and then stays that size, so
    /// a process's memory is flat once it is full. It must hold the tree's branch pages and the
    /// hot leaves: a payment's keys are spread over the whole tree (random billnumbers), and with
    /// 64 MiB the authorizer fell behind at 1,000 payments/s a minute into a soak, its commits
    /// reading leaves back through the file. 512 MiB fills within a few minutes at that rate
    /// (see README.md, Soak).
    pub const DEFAULT: CacheMib = CacheMib(512);

    /// `mib`, if within the bounds.
    pub fn new(mib: u64) -> Result<CacheMib, CacheSizeError> {
        if (Self::MIN..=Self::MAX).contains(&mib) {
            Ok(CacheMib(mib))
        } else {
            Err(CacheSizeError(mib))
        }
    }

    /// The size in MiB.
    pub fn mib(self) -> u64 {
        self.0
    }

    /// The size in bytes (at most 1 TiB, so it fits a 64-bit `usize`).
    pub(crate) fn bytes(self) -> usize {
        usize::try_from(self.0 << 20).unwrap_or(usize::MAX)
    }
}

impl Default for CacheMib {
    fn default() -> CacheMib {
        CacheMib::DEFAULT
    }
}

impl TryFrom<u64> for CacheMib {
    type Error = CacheSizeError;

    fn try_from(mib: u64) -> Result<CacheMib, CacheSizeError> {
        CacheMib::new(mib)
    }
}

impl From<CacheMib> for u64 {
    fn from(size: CacheMib) -> u64 {
        size.0
    }
}

/// A configured page cache outside [`CacheMib::MIN`]..=[`CacheMib::MAX`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a page cache of {0} MiB: expected {min} to {max} MiB", min = CacheMib::MIN, max = CacheMib::MAX)]
pub struct CacheSizeError(u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_outside_the_bounds_are_refused_by_name() {
        assert_eq!(CacheMib::new(16).map(CacheMib::mib), Ok(16));
        let err = CacheMib::new(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a page cache of 0 MiB: expected 16 to 1048576 MiB"
        );
        assert!(CacheMib::new(u64::MAX).is_err());
    }

    #[test]
    fn a_config_value_is_checked_as_it_is_read() {
        use serde::de::value::{Error, U64Deserializer};
        let from = |mib| CacheMib::deserialize(U64Deserializer::<Error>::new(mib));
        assert_eq!(from(256), Ok(CacheMib(256)));
        assert!(from(1).is_err());
    }
}
