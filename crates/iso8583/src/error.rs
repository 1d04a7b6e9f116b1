//! Codec errors. Each names where the problem is (a field, a subelement, a byte offset) and what
//! was wrong, and never carries the bytes themselves: a message may hold a PAN or a CVC.

use std::fmt;

use crate::spec::Charset;

/// Where in a message something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The message type indicator: the first four bytes.
    Mti,
    /// The eight bytes after the MTI that say which of DE 1 to 64 are present.
    PrimaryBitmap,
    /// The eight bytes, present when bit 1 is set, that say which of DE 66 to 128 are present.
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
    /// The message is longer than any frame may carry; refused before any byte is read.
    #[error("message is {len} bytes, over the {max}-byte limit")]
    MessageTooLong {
        /// The message's length in bytes.
        len: usize,
        /// The framing limit, 8,192 bytes.
        max: usize,
    },
    /// The bytes end before the part being read does.
    #[error("message ends inside the {at} (offset {offset})")]
    Truncated {
        /// The part that is cut short.
        at: Location,
        /// Byte offset in the message where that part starts.
        offset: usize,
    },
    /// The first four bytes are not four ASCII digits.
    #[error("MTI must be four digits")]
    BadMti,
    /// The secondary bitmap sets bit 65, which the spec reserves and never uses.
    #[error("secondary bitmap has bit 65 set, which this dialect never uses")]
    Bit65Set,
    /// A secondary bitmap that names no field: refused, because it has no canonical encoding.
    #[error("bit 1 announces a secondary bitmap, but it names no field")]
    EmptySecondaryBitmap,
    /// The bitmap sets a bit for a field that the spec table does not define.
    #[error("bitmap names {at}, which the spec does not define")]
    UnknownField {
        /// The undefined field.
        at: Location,
    },
    /// An LLVAR or LLLVAR length prefix is not all digits.
    #[error("{at}: length prefix at offset {offset} is not a number")]
    BadLengthPrefix {
        /// The field or subelement whose prefix it is.
        at: Location,
        /// Byte offset in the message where the prefix starts.
        offset: usize,
    },
    /// A value is longer than its field or subelement allows.
    #[error("{at}: length {len} is over its maximum of {max}")]
    ValueTooLong {
        /// The field or subelement.
        at: Location,
        /// The length the prefix announces, in bytes.
        len: usize,
        /// The spec's maximum length.
        max: usize,
    },
    /// A value is shorter than its field or subelement allows (e.g. a CVC2 of two digits).
    #[error("{at}: length {len} is under its minimum of {min}")]
    ValueTooShort {
        /// The field or subelement.
        at: Location,
        /// The value's length in bytes.
        len: usize,
        /// The spec's minimum length.
        min: usize,
    },
    /// A value holds a byte that its format (`n`, `an`, `ans`) does not allow. The byte itself is
    /// not kept: it may be a digit of a PAN.
    #[error("{at}: byte at offset {offset} is not allowed in an `{charset}` value")]
    BadCharacter {
        /// The field or subelement.
        at: Location,
        /// Byte offset in the message of the first byte refused.
        offset: usize,
        /// The format the value must have.
        charset: Charset,
    },
    /// A structured field's subelement tag is not two ASCII digits.
    #[error("{at}: tag at offset {offset} is not two digits")]
    BadTag {
        /// The structured field.
        at: Location,
        /// Byte offset in the message where the tag starts.
        offset: usize,
    },
    /// A subelement tag that the spec does not define for this field.
    #[error("{at} is not defined by the spec")]
    UnknownSubelement {
        /// The subelement, by field and tag.
        at: Location,
    },
    /// A tag occurs twice in one structured field; the spec allows each at most once.
    #[error("{at} appears more than once")]
    DuplicateSubelement {
        /// The repeated subelement.
        at: Location,
    },
    /// A tag follows a greater one; the spec requires ascending order.
    #[error("{at} is out of ascending tag order")]
    SubelementOrder {
        /// The subelement out of order.
        at: Location,
    },
    /// Bytes remain after the last field the bitmap names: the sender and we disagree on the
    /// layout.
    #[error("{count} bytes left after the last field (offset {offset})")]
    TrailingBytes {
        /// How many bytes are left over.
        count: usize,
        /// Byte offset in the message where they start.
        offset: usize,
    },
}

/// Why a message could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A field number that the spec table does not define.
    #[error("{at} is not defined by the spec")]
    UnknownField {
        /// The undefined field.
        at: Location,
    },
    /// A value longer than its field allows; it is refused, never cut.
    #[error("{at}: length {len} is over its maximum of {max}")]
    ValueTooLong {
        /// The field.
        at: Location,
        /// The value's length in bytes.
        len: usize,
        /// The spec's maximum length.
        max: usize,
    },
    /// A value shorter than its field allows.
    #[error("{at}: length {len} is under its minimum of {min}")]
    ValueTooShort {
        /// The field.
        at: Location,
        /// The value's length in bytes.
        len: usize,
        /// The spec's minimum length.
        min: usize,
    },
    /// A value holds a byte that its format (`n`, `an`, `ans`) does not allow. The byte itself is
    /// not kept.
    #[error("{at}: byte at offset {offset} of the value is not allowed in an `{charset}` value")]
    BadCharacter {
        /// The field.
        at: Location,
        /// Offset within the value (not the message) of the first byte refused.
        offset: usize,
        /// The format the value must have.
        charset: Charset,
    },
    /// A subelement of a structured field is wrong, found by the decoder's own checks.
    #[error("{0}")]
    Subelement(DecodeError),
    /// Subelements given out of ascending order, or a tag given twice.
    #[error("{at}: subelements must have ascending, unique tags")]
    SubelementOrder {
        /// The structured field.
        at: Location,
    },
    /// An amount with more than the twelve digits of DE 4.
    #[error("{at}: amount over the twelve-digit maximum")]
    AmountTooLarge {
        /// The amount field.
        at: Location,
    },
    /// The message would not fit in one frame.
    #[error("message would be {len} bytes, over the {max}-byte limit")]
    MessageTooLong {
        /// The length it would have, in bytes.
        len: usize,
        /// The framing limit, 8,192 bytes.
        max: usize,
    },
    /// A response was asked for to a message that has none (e.g. a response itself).
    #[error("{mti} has no response MTI")]
    NoResponseMti {
        /// The MTI of the message answered.
        mti: crate::Mti,
    },
}
