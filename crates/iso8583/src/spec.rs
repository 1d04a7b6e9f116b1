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
    /// Whether every byte of `value` belongs to the set. This is the codec's hot loop: it runs
    /// over every byte of every field on decode and on build. Most values are 2 to 16 bytes,
    /// too short for the compiler's vectorised loop to pay off, so the test works on eight bytes
    /// at a time in a `u64`, and a value's last, partial word is read overlapping the previous
    /// one rather than byte by byte. The set is matched once, outside the loop.
    #[inline]
    pub fn accepts(self, value: &[u8]) -> bool {
        match self {
            Charset::N => scan(value, None, |w| any_below(w, b'0') | any_above(w, b'9')),
            Charset::An => scan(value, None, rejects_an),
            Charset::Ans => scan(value, None, |w| any_below(w, 0x20) | any_above(w, 0x7e)),
        }
    }

    /// Copies `src` to the front of `dst` and says whether every byte belongs to the set: the
    /// builder checks a value in the same pass that writes it into its arena, so each byte is
    /// loaded once. `dst` is written even when the answer is no.
    #[inline(always)]
    pub(crate) fn copy_accepted(self, dst: &mut [u8], src: &[u8]) -> bool {
        let dst = &mut dst[..src.len()];
        match self {
            Charset::N => scan(src, Some(dst), |w| any_below(w, b'0') | any_above(w, b'9')),
            Charset::An => scan(src, Some(dst), rejects_an),
            Charset::Ans => scan(src, Some(dst), |w| any_below(w, 0x20) | any_above(w, 0x7e)),
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

// Word-at-a-time byte tests. Each returns zero when no byte of the word is caught and
// something nonzero otherwise; which bits are set says nothing about which byte it was (a
// borrow or carry out of a caught byte may mark the next one too), which `accepts` does not need.

const HIGH: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// Nonzero if some byte of `w` is below `n` (`n <= 0x80`): subtracting `n` borrows into the high
/// bit of exactly such a byte, unless its high bit was set already, which `!w` rules out.
#[inline(always)]
const fn any_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(splat(n)) & !w & HIGH
}

/// Nonzero if some byte of `w` is above `n` (`n < 0x80`): adding `0x7f - n` carries into the
/// high bit of exactly such a byte, and a byte at 0x80 or over is caught by `| w`.
#[inline(always)]
const fn any_above(w: u64, n: u8) -> u64 {
    (w.wrapping_add(splat(0x7f - n)) | w) & HIGH
}

/// The high bit of each byte of `w` that lies in `lo..=hi`, for `w` whose bytes are all below
/// 0x80. Adding `0x80 - lo` sets a byte's high bit exactly when it is `>= lo`, adding
/// `0x7f - hi` exactly when it is `> hi`; neither sum passes 0xff, so bytes stay independent.
#[inline(always)]
const fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    (w + splat(0x80 - lo)) & !(w + splat(0x7f - hi)) & HIGH
}

/// Nonzero if some byte of `w` is neither an ASCII letter nor a digit. Letters are the bytes
/// that, with bit 5 set (lower case), are `a..=z`.
#[inline(always)]
const fn rejects_an(w: u64) -> u64 {
    let low = w & !HIGH;
    let inside = in_range(low | splat(0x20), b'a', b'z') | in_range(low, b'0', b'9');
    (w | !inside) & HIGH
}

/// Whether `rejects` finds nothing in `value`, read as little-endian `u64` words that together
/// cover every byte (some twice, which a membership test does not mind): whole words, then the
/// last eight bytes. A value of at most 16 bytes is read as two overlapping words, one of 4 to 8
/// as two overlapping halves, and a shorter one with its bytes repeated, so no byte outside
/// `value` is ever tested. With `out` (as long as `value`), each word is also stored at its
/// offset there, which copies `value` with a few overlapping word moves instead of a call to
/// `memcpy`.
#[inline(always)]
fn scan(value: &[u8], mut out: Option<&mut [u8]>, rejects: impl Fn(u64) -> u64) -> bool {
    let n = value.len();
    if n > 8 && n <= 16 {
        let (lo, hi) = (word(&value[..8]), word(&value[n - 8..]));
        if let Some(out) = out {
            out[..8].copy_from_slice(&lo.to_le_bytes());
            out[n - 8..].copy_from_slice(&hi.to_le_bytes());
        }
        rejects(lo) | rejects(hi) == 0
    } else if n > 16 {
        // (The compiler makes the stores of this loop one call to `memcpy`, which pays off here.)
        let mut bad = 0;
        let mut i = 0;
        while i + 8 < n {
            let w = word(&value[i..i + 8]);
            if let Some(out) = out.as_deref_mut() {
                out[i..i + 8].copy_from_slice(&w.to_le_bytes());
            }
            bad |= rejects(w);
            i += 8;
        }
        let w = word(&value[n - 8..]);
        if let Some(out) = out {
            out[n - 8..].copy_from_slice(&w.to_le_bytes());
        }
        bad | rejects(w) == 0
    } else if n >= 4 {
        let lo = half(&value[..4]);
        let hi = half(&value[n - 4..]);
        if let Some(out) = out {
            out[..4].copy_from_slice(&lo.to_le_bytes());
            out[n - 4..].copy_from_slice(&hi.to_le_bytes());
        }
        rejects(u64::from(lo) | u64::from(hi) << 32) == 0
    } else if n >= 2 {
        let lo = [value[0], value[1]];
        let hi = [value[n - 2], value[n - 1]];
        if let Some(out) = out {
            out[..2].copy_from_slice(&lo);
            out[n - 2..].copy_from_slice(&hi);
        }
        let x = u64::from(u16::from_le_bytes(lo)) | u64::from(u16::from_le_bytes(hi)) << 16;
        rejects(x | x << 32) == 0
    } else if let [b] = value {
        if let Some(out) = out {
            out[0] = *b;
        }
        rejects(splat(*b)) == 0
    } else {
        true
    }
}

/// Eight bytes as a little-endian word.
#[inline(always)]
fn word(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

#[inline(always)]
fn half(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
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
    LlVar {
        /// The longest value allowed, in bytes (at most 99).
        max: u16,
    },
    /// LLLVAR: a three-digit length prefix, then at most `max` bytes.
    LllVar {
        /// The longest value allowed, in bytes (at most 999).
        max: u16,
    },
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
    #[inline]
    pub fn read(self, bytes: &[u8]) -> Option<u16> {
        // The link's own prefixes, LL and LLL in ASCII, read without the loop.
        let digit = |b: u8| {
            let d = b.wrapping_sub(b'0');
            (d < 10).then_some(u16::from(d))
        };
        match (self, bytes) {
            (Prefix::Ascii, &[t, u]) => Some(digit(t)? * 10 + digit(u)?),
            (Prefix::Ascii, &[h, t, u]) => Some(digit(h)? * 100 + digit(t)? * 10 + digit(u)?),
            _ => self.read_any(bytes),
        }
    }

    /// [`Prefix::read`] for any width and encoding, out of line so that the common case inlines.
    #[inline(never)]
    fn read_any(self, bytes: &[u8]) -> Option<u16> {
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
    #[inline]
    pub(crate) fn write(self, len: u16, out: &mut [u8]) {
        // The link's own prefixes, LL and LLL in ASCII, written without the loop.
        if let (Prefix::Ascii, [t, u]) = (self, &mut *out) {
            [*t, *u] = two_digits(usize::from(len % 100));
            return;
        }
        if let (Prefix::Ascii, [h, t, u]) = (self, &mut *out) {
            let l = len % 1000;
            *h = b'0' + (l / 100) as u8;
            [*t, *u] = two_digits(usize::from(l % 100));
            return;
        }
        self.write_any(len, out);
    }

    /// [`Prefix::write`] for any width and encoding, out of line so that the common case inlines.
    #[inline(never)]
    fn write_any(self, len: u16, out: &mut [u8]) {
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

/// `00` to `99` in ASCII: the two-digit tags, lengths and prefixes written for every value come
/// from a load here rather than a division by ten and a remainder.
static DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

/// `v` as two ASCII digits, tens first; from 100 up the tens "digit" runs on past `9`.
#[inline]
pub(crate) fn two_digits(v: usize) -> [u8; 2] {
    match DIGIT_PAIRS.get(v) {
        Some(pair) => *pair,
        None => [b'0'.wrapping_add((v / 10) as u8), b'0' + (v % 10) as u8],
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
    /// The data element number, 2 to 128.
    pub number: u8,
    /// The spec's name for it, e.g. "Primary account number"; for people, the codec never reads it.
    pub name: &'static str,
    /// Which bytes a value may hold (`n`, `an`, `ans`).
    pub charset: Charset,
    /// How long a value is and whether a length prefix says so.
    pub length: Length,
    /// How a dump or the JSON form may show the value: in clear, masked, or not at all.
    pub exposure: Exposure,
    /// Present when the value is a sequence of tagged subelements (DE 48).
    pub subelements: Option<&'static [SubelementSpec]>,
}

/// One subelement of a structured field: `TT` tag, `LL` length, value.
#[derive(Debug, Clone, Copy)]
pub struct SubelementSpec {
    /// The two-digit tag, 0 to 99.
    pub tag: u8,
    /// The spec's name for it, e.g. "CVC2"; for people, the codec never reads it.
    pub name: &'static str,
    /// Which bytes a value may hold.
    pub charset: Charset,
    /// The shortest value allowed, in bytes.
    pub min: u8,
    /// The longest value allowed, in bytes (at most 99: `LL` is two digits).
    pub max: u8,
    /// How a dump or the JSON form may show the value; CVC2 is never shown.
    pub exposure: Exposure,
}

/// A dialect: the field table, indexed by number, and its length-prefix encoding.
pub struct Spec {
    /// The dialect's name, for logs and error messages.
    pub name: &'static str,
    /// How its length prefixes are written (ASCII digits or BCD).
    pub prefix: Prefix,
    by_number: [Option<FieldSpec>; 129],
    /// `by_number` as the codec's loops read it.
    codec: [Option<Codec>; 129],
    /// Tag to row (plus one; 0 for no row) of a structured field's subelement table, so that
    /// decoding and building find a subelement's row in one load rather than a search.
    tag_index: [[u8; 100]; INDEXED_TABLES],
    /// Whether every length prefix can state every length its field allows (no LL field allows
    /// more than 99 bytes, no LLL field more than 999), so that a run of wire forms can be split
    /// again by reading the prefixes.
    prefixes_exact: bool,
}

impl fmt::Debug for Spec {
    // The tag index is derived from the rows; shown as before it existed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("by_number", &self.by_number)
            .finish()
    }
}

/// What the codec needs of a field, in six bytes, so that the decode and build loops read one
/// small row rather than a [`FieldSpec`] and then the dialect's [`Prefix`] for the prefix width.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codec {
    /// The fixed length, or the longest value a variable-length field allows.
    pub(crate) max: u16,
    /// Bytes of length prefix in this dialect; 0 for a fixed-length field.
    pub(crate) width: u8,
    pub(crate) charset: Charset,
    /// Whether the value is a sequence of subelements.
    pub(crate) structured: bool,
    /// Which of `Spec::tag_index` serves the subelement table, plus one; 0 for none.
    slot: u8,
}

/// Structured fields a dialect can have with an O(1) tag index; any beyond are searched.
const INDEXED_TABLES: usize = 8;

/// A structured field's subelement table with its tag index, when the dialect has one.
#[derive(Clone, Copy)]
pub(crate) struct SubelementTable<'s> {
    rows: &'static [SubelementSpec],
    index: Option<&'s [u8; 100]>,
}

impl SubelementTable<'_> {
    /// The row of `tag`, if the table has one.
    #[inline]
    pub(crate) fn get(&self, tag: u8) -> Option<&'static SubelementSpec> {
        let rows = self.rows;
        match self.index {
            // The index covers every row: `Spec::new` indexes no table with a tag over 99.
            Some(index) => {
                let row = *index.get(usize::from(tag))?;
                rows.get(usize::from(row).checked_sub(1)?)
            }
            None => subelement(rows, tag),
        }
    }
}

impl Spec {
    /// Builds the number index at compile time. Panics (at compile time, for a `static`) on a
    /// row numbered 0, 1 or 65, which are bitmap bits rather than data elements, or on a duplicate.
    pub const fn new(name: &'static str, prefix: Prefix, fields: &[FieldSpec]) -> Spec {
        let mut by_number: [Option<FieldSpec>; 129] = [None; 129];
        let mut codec: [Option<Codec>; 129] = [None; 129];
        let mut tag_index = [[0u8; 100]; INDEXED_TABLES];
        let mut slots = 0;
        let mut prefixes_exact = true;
        let mut i = 0;
        while i < fields.len() {
            let n = fields[i].number as usize;
            assert!(n >= 2 && n <= 128 && n != 65, "not a data element number");
            assert!(by_number[n].is_none(), "field defined twice");
            by_number[n] = Some(fields[i]);
            let length = fields[i].length;
            let (max, digits) = match length {
                Length::Fixed(len) => (len, 0u8),
                Length::LlVar { max } => (max, 2),
                Length::LllVar { max } => (max, 3),
            };
            let width = match prefix {
                Prefix::Ascii => digits,
                Prefix::Bcd => digits.div_ceil(2),
            };
            if digits > 0 && max as u32 >= 10u32.pow(digits as u32) {
                prefixes_exact = false;
            }
            let mut row = Codec {
                max,
                width,
                charset: fields[i].charset,
                structured: fields[i].subelements.is_some(),
                slot: 0,
            };
            if let Some(rows) = fields[i].subelements
                && slots < INDEXED_TABLES
                && rows.len() < 256
                && Spec::indexable(rows)
            {
                let mut r = 0;
                while r < rows.len() {
                    // The first row of a tag wins, as in a search from the front.
                    let tag = rows[r].tag as usize;
                    if tag_index[slots][tag] == 0 {
                        tag_index[slots][tag] = r as u8 + 1;
                    }
                    r += 1;
                }
                slots += 1;
                row.slot = slots as u8;
            }
            codec[n] = Some(row);
            i += 1;
        }
        Spec {
            name,
            prefix,
            by_number,
            codec,
            tag_index,
            prefixes_exact,
        }
    }

    /// Whether every tag of `rows` is two digits, which is all a wire tag can be.
    const fn indexable(rows: &[SubelementSpec]) -> bool {
        let mut r = 0;
        while r < rows.len() {
            if rows[r].tag >= 100 {
                return false;
            }
            r += 1;
        }
        true
    }

    /// Whether every length prefix of the dialect can state every length its field allows.
    pub(crate) fn prefixes_exact(&self) -> bool {
        self.prefixes_exact
    }

    /// Field `number`'s row as the codec reads it.
    #[inline]
    pub(crate) fn codec(&self, number: u8) -> Option<Codec> {
        *self.codec.get(usize::from(number))?
    }

    /// The subelement table of structured field `number`, whose row is `codec`.
    #[inline]
    pub(crate) fn subelements(&self, number: u8, codec: Codec) -> Option<SubelementTable<'_>> {
        let rows = self.field(number)?.subelements?;
        let index = match codec.slot {
            0 => None,
            slot => self.tag_index.get(usize::from(slot) - 1),
        };
        Some(SubelementTable { rows, index })
    }

    /// The row of data element `number`; `None` when the dialect does not define it.
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
    // A CAVV proves one cardholder authentication; shown, it could be replayed with the card.
    SubelementSpec {
        exposure: Exposure::Hidden,
        ..sub(21, "authentication value (CAVV)", Ans, 28, 28)
    },
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
    // Sensitive with the PAN (PCI DSS 3.3 treats them together): never shown, even beside a
    // masked PAN.
    FieldSpec {
        exposure: Exposure::Hidden,
        ..fixed(14, "Expiration date", N, 4)
    },
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
        // The inline ASCII cases agree with the general ones, past what the digits can hold too.
        for len in 0..=1200u16 {
            for width in [2, 3] {
                let (mut fast, mut general) = ([0u8; 3], [0u8; 3]);
                Prefix::Ascii.write(len, &mut fast[..width]);
                Prefix::Ascii.write_any(len, &mut general[..width]);
                assert_eq!(fast, general);
                assert_eq!(
                    Prefix::Ascii.read(&fast[..width]),
                    Prefix::Ascii.read_any(&fast[..width])
                );
            }
        }
        assert_eq!(Prefix::Ascii.read(b"1a"), None);
        assert_eq!(Prefix::Bcd.read(&[0x1a]), None);
    }

    #[test]
    fn word_tests_agree_with_byte_tests() {
        let by_byte = |c: Charset, b: u8| match c {
            Charset::N => b.is_ascii_digit(),
            Charset::An => b.is_ascii_alphanumeric(),
            Charset::Ans => (0x20..=0x7e).contains(&b),
        };
        for c in [Charset::N, Charset::An, Charset::Ans] {
            for b in 0..=255u8 {
                // Every length and every position, so each path of `all_words` sees the byte.
                for len in 1..=20 {
                    for at in 0..len {
                        let mut v = vec![b'5'; len];
                        v[at] = b;
                        assert_eq!(c.accepts(&v), by_byte(c, b), "{c} {b:#x} {len} {at}");
                    }
                }
            }
            assert!(c.accepts(b""));
        }
        // Pairs of edge bytes, so that a borrow or carry out of one byte meets the other.
        let edges = [
            0x00, 0x1f, 0x20, 0x2f, 0x30, 0x39, 0x3a, 0x40, 0x41, 0x5a, 0x5b, 0x60, 0x61, 0x7a,
            0x7b, 0x7e, 0x7f, 0x80, 0xb0, 0xff,
        ];
        for c in [Charset::N, Charset::An, Charset::Ans] {
            for &x in &edges {
                for &y in &edges {
                    for len in 2..=17 {
                        for (i, j) in (0..len).flat_map(|i| (0..len).map(move |j| (i, j))) {
                            if i == j {
                                continue;
                            }
                            let mut v = vec![b'7'; len];
                            v[i] = x;
                            v[j] = y;
                            let expected = by_byte(c, x) && by_byte(c, y);
                            assert_eq!(c.accepts(&v), expected, "{c} {x:#x}@{i} {y:#x}@{j}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn copying_checks_and_copies_every_byte() {
        for c in [Charset::N, Charset::An, Charset::Ans] {
            for len in 0..=40 {
                let good: Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
                for bad_at in std::iter::once(None).chain((0..len).map(Some)) {
                    let mut v = good.clone();
                    if let Some(i) = bad_at {
                        v[i] = 0x7f;
                    }
                    let mut out = [0xaau8; 48];
                    assert_eq!(c.copy_accepted(&mut out, &v), c.accepts(&v));
                    assert_eq!(&out[..len], &v[..], "{c} {len}");
                    assert!(out[len..].iter().all(|&b| b == 0xaa), "{c} {len}");
                }
            }
        }
    }

    #[test]
    fn the_tag_index_finds_what_a_search_finds() {
        let row = ASCII87.codec(48).unwrap();
        let table = ASCII87.subelements(48, row).unwrap();
        assert!(table.index.is_some());
        for tag in 0..=255u8 {
            assert_eq!(
                table.get(tag).map(|s| s.name),
                subelement(&DE48_SUBELEMENTS, tag).map(|s| s.name)
            );
        }
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
