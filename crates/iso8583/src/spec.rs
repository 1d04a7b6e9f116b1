//! The field specification as data.
//!
//! A dialect is one [`Spec`]: a table of [`FieldSpec`] rows plus how length prefixes are written.
//! The codec has no code of its own for any field number; everything it knows about DE 2 or DE 48
//! comes from a row here. A second dialect (binary BCD length prefixes, say) is a second table.

use std::fmt;

/// Which bytes a value may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `n`: ASCII digits; fixed-length values are right-justified and zero-padded.
    N,
    /// `an`: ASCII letters and digits; fixed-length values are left-justified and space-padded.
    An,
    /// `ans`: printable ASCII (0x20..=0x7E); fixed-length values are left-justified and space-padded.
    Ans,
}

impl Charset {
    /// Whether every byte of `value` belongs to the set. Written as an OR of per-byte range
    /// tests with no early exit, which the compiler turns into SIMD: this is the codec's hot loop.
    #[inline]
    pub fn accepts(self, value: &[u8]) -> bool {
        let outside =
            |test: fn(u8) -> bool| value.iter().fold(0u8, |acc, &b| acc | u8::from(!test(b)));
        match self {
            Charset::N => outside(|b| b.wrapping_sub(b'0') < 10) == 0,
            Charset::An => {
                outside(|b| ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10)) == 0
            }
            Charset::Ans => outside(|b| b.wrapping_sub(0x20) < 0x5f) == 0,
        }
    }

    /// Offset of the first byte outside the set.
    pub fn first_rejected(self, value: &[u8]) -> Option<usize> {
        value.iter().position(|&b| !self.accepts(&[b]))
    }

    /// The byte a fixed-length value is padded with, and whether padding goes on the left.
    pub(crate) fn padding(self) -> (u8, bool) {
        match self {
            Charset::N => (b'0', true),
            Charset::An | Charset::Ans => (b' ', false),
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Charset::N => "n",
            Charset::An => "an",
            Charset::Ans => "ans",
        })
    }
}

/// How long a value is and how that is said on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Exactly this many bytes, no prefix.
    Fixed(u16),
    /// LLVAR: a two-digit length prefix, then at most `max` bytes.
    LlVar { max: u16 },
    /// LLLVAR: a three-digit length prefix, then at most `max` bytes.
    LllVar { max: u16 },
}

impl Length {
    /// The longest value this length allows.
    pub fn max(self) -> u16 {
        match self {
            Length::Fixed(n) | Length::LlVar { max: n } | Length::LllVar { max: n } => n,
        }
    }

    /// Digits in the length prefix; 0 for a fixed-length field.
    pub fn prefix_digits(self) -> u8 {
        match self {
            Length::Fixed(_) => 0,
            Length::LlVar { .. } => 2,
            Length::LllVar { .. } => 3,
        }
    }
}

/// How a dialect writes the digits of a length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// One ASCII digit a byte: LL is 2 bytes, LLL is 3.
    Ascii,
    /// Packed BCD, two digits a byte, left-padded with a zero nibble: LL is 1 byte, LLL is 2.
    Bcd,
}

impl Prefix {
    /// Bytes taken by a prefix of `digits` decimal digits.
    pub fn width(self, digits: u8) -> usize {
        match self {
            Prefix::Ascii => usize::from(digits),
            Prefix::Bcd => usize::from(digits).div_ceil(2),
        }
    }

    /// Reads a length written with `digits` digits; `None` if a byte is not a digit in this encoding.
    pub fn read(self, bytes: &[u8]) -> Option<u16> {
        match self {
            Prefix::Ascii => bytes.iter().try_fold(0u16, |n, &b| {
                b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0'))
            }),
            Prefix::Bcd => bytes.iter().try_fold(0u16, |n, &b| {
                let (hi, lo) = (b >> 4, b & 0x0f);
                (hi < 10 && lo < 10).then(|| n * 100 + u16::from(hi) * 10 + u16::from(lo))
            }),
        }
    }

    /// Writes `len` with `digits` digits into `out`, which is exactly [`Prefix::width`] long.
    pub(crate) fn write(self, len: u16, out: &mut [u8]) {
        match self {
            Prefix::Ascii => {
                let mut n = len;
                for b in out.iter_mut().rev() {
                    *b = b'0' + (n % 10) as u8;
                    n /= 10;
                }
            }
            Prefix::Bcd => {
                let mut n = len;
                for b in out.iter_mut().rev() {
                    let lo = (n % 10) as u8;
                    let hi = ((n / 10) % 10) as u8;
                    *b = hi << 4 | lo;
                    n /= 100;
                }
            }
        }
    }
}

/// How a value may be shown to a person (in `Debug`, logs, the CLI's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Shown as it is.
    Clear,
    /// Card number: first six and last four digits only.
    MaskPan,
    /// Never shown, not even its length.
    Hidden,
}

/// One data element of a dialect.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub number: u8,
    pub name: &'static str,
    pub charset: Charset,
    pub length: Length,
    pub exposure: Exposure,
    /// Present when the value is a sequence of tagged subelements (DE 48).
    pub subelements: Option<&'static [SubelementSpec]>,
}

/// One subelement of a structured field: `TT` tag, `LL` length, value.
#[derive(Debug, Clone, Copy)]
pub struct SubelementSpec {
    pub tag: u8,
    pub name: &'static str,
    pub charset: Charset,
    pub min: u8,
    pub max: u8,
    pub exposure: Exposure,
}

/// A dialect: the field table, indexed by number, and its length-prefix encoding.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub prefix: Prefix,
    by_number: [Option<FieldSpec>; 129],
}

impl Spec {
    /// Builds the number index at compile time. Panics (at compile time, for a `static`) on a
    /// row numbered 0, 1 or 65, which are bitmap bits rather than data elements, or on a duplicate.
    pub const fn new(name: &'static str, prefix: Prefix, fields: &[FieldSpec]) -> Spec {
        let mut by_number: [Option<FieldSpec>; 129] = [None; 129];
        let mut i = 0;
        while i < fields.len() {
            let n = fields[i].number as usize;
            assert!(n >= 2 && n <= 128 && n != 65, "not a data element number");
            assert!(by_number[n].is_none(), "field defined twice");
            by_number[n] = Some(fields[i]);
            i += 1;
        }
        Spec {
            name,
            prefix,
            by_number,
        }
    }

    #[inline]
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        self.by_number.get(usize::from(number))?.as_ref()
    }

    /// All rows in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.by_number.iter().flatten()
    }
}

/// Subelement lookup within a field's table.
pub(crate) fn subelement(table: &[SubelementSpec], tag: u8) -> Option<&SubelementSpec> {
    table.iter().find(|s| s.tag == tag)
}

const fn fixed(number: u8, name: &'static str, charset: Charset, len: u16) -> FieldSpec {
    FieldSpec {
        number,
        name,
        charset,
        length: Length::Fixed(len),
        exposure: Exposure::Clear,
        subelements: None,
    }
}

const fn llvar(number: u8, name: &'static str, charset: Charset, max: u16) -> FieldSpec {
    FieldSpec {
        number,
        name,
        charset,
        length: Length::LlVar { max },
        exposure: Exposure::Clear,
        subelements: None,
    }
}

const fn lllvar(number: u8, name: &'static str, charset: Charset, max: u16) -> FieldSpec {
    FieldSpec {
        number,
        name,
        charset,
        length: Length::LllVar { max },
        exposure: Exposure::Clear,
        subelements: None,
    }
}

const fn sub(tag: u8, name: &'static str, charset: Charset, min: u8, max: u8) -> SubelementSpec {
    SubelementSpec {
        tag,
        name,
        charset,
        min,
        max,
        exposure: Exposure::Clear,
    }
}

use Charset::{An, Ans, N};

/// DE 48 subelements of `spec/iso8583.md`.
pub static DE48_SUBELEMENTS: [SubelementSpec; 10] = [
    sub(1, "credential-on-file indicator", An, 1, 1),
    sub(2, "MIT reason", An, 1, 1),
    sub(3, "network transaction ID", An, 1, 15),
    SubelementSpec {
        exposure: Exposure::Hidden,
        ..sub(10, "CVC2", N, 3, 4)
    },
    sub(20, "ECI", N, 2, 2),
    sub(21, "authentication value (CAVV)", Ans, 28, 28),
    sub(22, "3-D Secure protocol version", Ans, 1, 8),
    sub(23, "3-D Secure DS transaction ID", Ans, 36, 36),
    sub(30, "CVC2 result", An, 1, 1),
    sub(31, "authentication value result", N, 1, 1),
];

const FIELDS: [FieldSpec; 24] = [
    FieldSpec {
        exposure: Exposure::MaskPan,
        ..llvar(2, "Primary account number", N, 19)
    },
    fixed(3, "Processing code", N, 6),
    fixed(4, "Amount, transaction", N, 12),
    fixed(7, "Transmission date and time", N, 10),
    fixed(11, "System trace audit number", N, 6),
    fixed(12, "Local transaction time", N, 6),
    fixed(13, "Local transaction date", N, 4),
    fixed(14, "Expiration date", N, 4),
    fixed(18, "Merchant category code", N, 4),
    fixed(22, "POS entry mode", N, 3),
    fixed(25, "POS condition code", N, 2),
    llvar(32, "Acquiring institution ID", N, 11),
    fixed(37, "Retrieval reference number", An, 12),
    fixed(38, "Approval code", An, 6),
    fixed(39, "Response code", An, 2),
    fixed(41, "Card acceptor terminal ID", Ans, 8),
    fixed(42, "Card acceptor ID", Ans, 15),
    fixed(43, "Card acceptor name and location", Ans, 40),
    FieldSpec {
        subelements: Some(&DE48_SUBELEMENTS),
        ..lllvar(48, "Additional data, private", Ans, 999)
    },
    fixed(49, "Currency code, transaction", N, 3),
    lllvar(54, "Additional amounts", Ans, 120),
    fixed(70, "Network management information code", N, 3),
    fixed(90, "Original data elements", N, 42),
    fixed(95, "Replacement amounts", Ans, 42),
];

/// The link dialect of `spec/iso8583.md`: ISO 8583:1987, ASCII fields and length prefixes,
/// binary bitmaps.
pub static ASCII87: Spec = Spec::new("assist-ascii-1987", Prefix::Ascii, &FIELDS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_round_trip() {
        for prefix in [Prefix::Ascii, Prefix::Bcd] {
            for digits in [2u8, 3] {
                let mut out = [0u8; 3];
                let w = prefix.width(digits);
                prefix.write(123 % 10u16.pow(u32::from(digits)), &mut out[..w]);
                assert_eq!(
                    prefix.read(&out[..w]),
                    Some(123 % 10u16.pow(u32::from(digits)))
                );
            }
        }
        assert_eq!(Prefix::Ascii.read(b"1a"), None);
        assert_eq!(Prefix::Bcd.read(&[0x1a]), None);
    }

    #[test]
    fn table_matches_the_spec_document() {
        let de2 = ASCII87.field(2).unwrap();
        assert_eq!(de2.length, Length::LlVar { max: 19 });
        assert_eq!(de2.exposure, Exposure::MaskPan);
        assert!(ASCII87.field(48).unwrap().subelements.is_some());
        assert!(ASCII87.field(5).is_none());
        assert!(ASCII87.field(65).is_none());
        assert_eq!(ASCII87.fields().count(), 24);
    }
}
