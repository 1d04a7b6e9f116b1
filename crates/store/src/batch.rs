//! [`Batch`]: an ordered list of puts and deletes that an engine applies in one atomic write.
//! It owns only the list; it never looks at what the bytes mean.

/// One write inside a [`Batch`].
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`, replacing any previous value.
    Put {
        /// The key to set.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Remove `key`; removing a missing key is not an error.
    Delete {
        /// The key to remove.
        key: Vec<u8>,
    },
}

// Keys and values may be customer numbers or ciphertext: show only their sizes.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Put { key, value } => f
                .debug_struct("Put")
                .field("key_len", &key.len())
                .field("value_len", &value.len())
                .finish(),
            Op::Delete { key } => f
                .debug_struct("Delete")
                .field("key_len", &key.len())
                .finish(),
        }
    }
}

/// Writes that become visible and durable together, all or none, applied in the order given
/// (a later op on the same key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
    /// Sum of key and value lengths, so group commit can cap one engine write by size without
    /// walking every batch again.
    bytes: usize,
}

impl Batch {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        self.bytes += key.len() + value.len();
        self.ops.push(Op::Put { key, value });
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        let key = key.into();
        self.bytes += key.len();
        self.ops.push(Op::Delete { key });
        self
    }

    /// True when the batch holds no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The ops in the order they must be applied.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Total key and value bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_counts_bytes() {
        let mut batch = Batch::default();
        batch.put("ab", "cde").delete("ab");
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.bytes(), 7);
        assert_eq!(
            batch.ops()[1],
            Op::Delete {
                key: b"ab".to_vec()
            }
        );
    }

    #[test]
    fn debug_shows_sizes_not_bytes() {
        let mut batch = Batch::default();
        batch.put("4111111111111111", "secret-value");
        let shown = format!("{batch:?}");
        assert!(!shown.contains("4111"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("key_len: 16"), "{shown}");
    }
}
