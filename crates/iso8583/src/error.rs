//! Codec errors. Each names where the problem is (a field, a subelement, a byte offset) and what
//! was wrong, and never carries the bytes themselves: a message may hold a PAN or a CVC.

use std::fmt;

use crate::spec::Charset;

/// Where in a message something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Mti,
    PrimaryBitmap,
    SecondaryBitmap,
    /// A data element, by number.
    Field(u8),
    /// A subelement of a structured data element, by field number and tag.
    Subelement(u8, u8),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Mti => f.write_str("MTI"),
            Location::PrimaryBitmap => f.write_str("primary bitmap"),
            Location::SecondaryBitmap => f.write_str("secondary bitmap"),
            Location::Field(n) => write!(f, "DE {n}"),
            Location::Subelement(n, tag) => write!(f, "DE {n}.{tag:02}"),
        }
    }
}

/// Why bytes from the wire are not a message of the dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message is {len} bytes, over the {max}-byte limit")]
    MessageTooLong { len: usize, max: usize },
    #[error("message ends inside the {at} (offset {offset})")]
    Truncated { at: Location, offset: usize },
    #[error("MTI must be four digits")]
    BadMti,
    #[error("secondary bitmap has bit 65 set, which this dialect never uses")]
    Bit65Set,
    #[error("bit 1 announces a secondary bitmap, but it names no field")]
    EmptySecondaryBitmap,
    #[error("bitmap names {at}, which the spec does not define")]
    UnknownField { at: Location },
    #[error("{at}: length prefix at offset {offset} is not a number")]
    BadLengthPrefix { at: Location, offset: usize },
    #[error("{at}: length {len} is over its maximum of {max}")]
    ValueTooLong {
        at: Location,
        len: usize,
        max: usize,
    },
    #[error("{at}: length {len} is under its minimum of {min}")]
    ValueTooShort {
        at: Location,
        len: usize,
        min: usize,
    },
    #[error("{at}: byte at offset {offset} is not allowed in an `{charset}` value")]
    BadCharacter {
        at: Location,
        offset: usize,
        charset: Charset,
    },
    #[error("{at}: tag at offset {offset} is not two digits")]
    BadTag { at: Location, offset: usize },
    #[error("{at} is not defined by the spec")]
    UnknownSubelement { at: Location },
    #[error("{at} appears more than once")]
    DuplicateSubelement { at: Location },
    #[error("{at} is out of ascending tag order")]
    SubelementOrder { at: Location },
    #[error("{count} bytes left after the last field (offset {offset})")]
    TrailingBytes { count: usize, offset: usize },
}

/// Why a message could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{at} is not defined by the spec")]
    UnknownField { at: Location },
    #[error("{at}: length {len} is over its maximum of {max}")]
    ValueTooLong {
        at: Location,
        len: usize,
        max: usize,
    },
    #[error("{at}: length {len} is under its minimum of {min}")]
    ValueTooShort {
        at: Location,
        len: usize,
        min: usize,
    },
    #[error("{at}: byte at offset {offset} of the value is not allowed in an `{charset}` value")]
    BadCharacter {
        at: Location,
        offset: usize,
        charset: Charset,
    },
    #[error("{0}")]
    Subelement(DecodeError),
    #[error("{at}: subelements must have ascending, unique tags")]
    SubelementOrder { at: Location },
    #[error("{at}: amount over the twelve-digit maximum")]
    AmountTooLarge { at: Location },
    #[error("message would be {len} bytes, over the {max}-byte limit")]
    MessageTooLong { len: usize, max: usize },
    #[error("{mti} has no response MTI")]
    NoResponseMti { mti: crate::Mti },
}
