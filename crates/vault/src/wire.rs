//! Byte-level reading and writing for the vault protocol and the stored records: big-endian
//! integers, length-prefixed byte strings, and the code tables that name enums by one byte. The
//! reader is checked everywhere: it never panics and never reads past its slice, whatever the input.

/// One code table, both directions: `$to` (exhaustive over the type, so a new variant without a
/// code does not compile) and `$from` are generated from the same list, so a code cannot be
/// written on one side and forgotten or mistyped on the other.
macro_rules! code_table {
    ($(#[$doc:meta])* $vis:vis $to:ident / $from:ident : $ty:ty { $($variant:path = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        $vis fn $to(value: $ty) -> u8 {
            match value {
                $($variant => $code,)+
            }
        }
        /// The value a code stands for; `None` for a code not in the table.
        $vis fn $from(code: u8) -> Option<$ty> {
            match code {
                $($code => Some($variant),)+
                _ => None,
            }
        }
    };
}
pub(crate) use code_table;

/// Why bytes are not a valid message or record: names a field and an offset, never a value.
/// From a peer it is the peer's fault (answered `bad request`); from the store, corruption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the message does (the offset where more was needed).
    #[error("message ends early at byte {0}")]
    Truncated(usize),
    /// A field's bytes break its type's rules (an unknown code, a bad tag, an invalid name).
    #[error("{field}: invalid value at byte {at}")]
    Invalid {
        /// The field's name in the protocol or record.
        field: &'static str,
        /// The offset just after what was read of it.
        at: usize,
    },
    /// Bytes are left after a complete message (how many).
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

/// A cursor over a borrowed message.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, at: 0 }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated(self.at))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid(field)),
        }
    }

    /// A byte string with a 2-byte length prefix.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.invalid(field))
    }

    /// Whether an optional value follows (a 0/1 tag).
    pub fn present(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        self.bool(field)
    }

    pub fn invalid(&self, field: &'static str) -> DecodeError {
        DecodeError::Invalid { field, at: self.at }
    }

    /// Whether every byte has been read (for optional fields at the end of a stored record).
    #[cfg(feature = "server")]
    pub fn at_end(&self) -> bool {
        self.at == self.buf.len()
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.at {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Appends the same encodings the [`Reader`] reads.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_slice(&mut self, v: &[u8]);
    fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.put_slice(&v.to_be_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }
    /// Callers bound their strings well below 64 KiB; a longer one is cut rather than mis-framed.
    fn put_bytes(&mut self, v: &[u8]) {
        let v = &v[..v.len().min(usize::from(u16::MAX))];
        self.put_u16(u16::try_from(v.len()).unwrap_or(u16::MAX));
        self.put_slice(v);
    }
    fn put_str(&mut self, v: &str) {
        self.put_bytes(v.as_bytes());
    }
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_slice(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
}

impl Writer for bytes::BytesMut {
    fn put_u8(&mut self, v: u8) {
        self.extend_from_slice(&[v]);
    }
    fn put_slice(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
}
