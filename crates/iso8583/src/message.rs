//! A decoded (or built) message: the wire bytes plus an index of where each field's value lies.
//!
//! Decoding validates everything the spec table says about every present field and then only
//! records offsets, so field access is a slice of the original [`Bytes`], with no copy and no heap
//! allocation. A message is immutable; to answer one, start a [`MessageBuilder::response_to`].
//! `Debug` masks the PAN and hides whatever the table marks as hidden (CVC2).

use std::fmt;

use bytes::Bytes;
use zeroize::Zeroize;

use crate::MAX_MESSAGE_LEN;
use crate::de48::{self, De48};
use crate::error::{DecodeError, Location};
use crate::spec::{ASCII87, Exposure, Spec};
use crate::types::{Amount, Mti, ResponseCode, Rrn, Stan, parse_digits};

/// Offset and length of a value (without its length prefix) inside the wire bytes. The 8 KiB
/// message limit keeps both within `u16`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    pub(crate) start: u16,
    pub(crate) len: u16,
}

/// Which data elements are present: bit `n - 1` for field `n`, which is the primary and secondary
/// bitmaps read as one 128-bit number with the bit order reversed.
pub(crate) type Presence = u128;

/// The presence bit of field `n`, `1..=128`.
#[inline]
pub(crate) fn bit(n: u8) -> Presence {
    1u128 << (n - 1)
}

/// An ISO 8583 message of a [`Spec`].
#[derive(Clone)]
pub struct Message {
    spec: &'static Spec,
    mti: Mti,
    present: Presence,
    spans: [Span; 129],
    wire: Bytes,
}

/// A bounds-checked cursor over the wire bytes: every read says what it was reading, so a short
/// message reports which part it ended in.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize, at: Location) -> Result<&'a [u8], DecodeError> {
        let out = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or(DecodeError::Truncated {
                at,
                offset: self.pos,
            })?;
        self.pos += n;
        Ok(out)
    }

    fn bitmap(&mut self, at: Location) -> Result<u64, DecodeError> {
        let b = self.take(8, at)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

impl Message {
    /// Decodes a message of the link dialect ([`ASCII87`]).
    pub fn decode(wire: Bytes) -> Result<Message, DecodeError> {
        Message::decode_with(&ASCII87, wire)
    }

    /// Decodes a message of any dialect. `wire` is the message without its frame header.
    pub fn decode_with(spec: &'static Spec, wire: Bytes) -> Result<Message, DecodeError> {
        if wire.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::MessageTooLong {
                len: wire.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut r = Reader { buf: &wire, pos: 0 };
        let mti = Mti::from_ascii(r.take(4, Location::Mti)?).ok_or(DecodeError::BadMti)?;
        let primary = r.bitmap(Location::PrimaryBitmap)?;
        let secondary = if primary & (1 << 63) != 0 {
            let s = r.bitmap(Location::SecondaryBitmap)?;
            if s & (1 << 63) != 0 {
                return Err(DecodeError::Bit65Set);
            }
            // A secondary bitmap naming no field has no canonical form to re-encode to (the
            // builder omits it), so two byte strings would mean one message: refuse it.
            if s == 0 {
                return Err(DecodeError::EmptySecondaryBitmap);
            }
            s
        } else {
            0
        };
        // Field 1 is the MSB of the primary bitmap; it only says that the secondary follows.
        let present = (u128::from(primary) << 64 | u128::from(secondary)).reverse_bits() & !bit(1);
        let mut spans = [Span::default(); 129];
        // The two bitmap halves one after the other: on a 64-bit word, finding and clearing the
        // lowest set bit are single instructions, on a 128-bit one several.
        for (first, mut remaining) in [(1, present as u64), (65, (present >> 64) as u64)] {
            while remaining != 0 {
                let n = first + remaining.trailing_zeros() as u8;
                remaining &= remaining - 1;
                let at = Location::Field(n);
                let row = spec.codec(n).ok_or(DecodeError::UnknownField { at })?;
                let len = if row.width == 0 {
                    usize::from(row.max)
                } else {
                    let offset = r.pos;
                    let prefix = r.take(usize::from(row.width), at)?;
                    let len = spec
                        .prefix
                        .read(prefix)
                        .ok_or(DecodeError::BadLengthPrefix { at, offset })?;
                    if len > row.max {
                        return Err(DecodeError::ValueTooLong {
                            at,
                            len: usize::from(len),
                            max: usize::from(row.max),
                        });
                    }
                    usize::from(len)
                };
                let start = r.pos;
                let value = r.take(len, at)?;
                if !row.charset.accepts(value) {
                    let i = row.charset.first_rejected(value).unwrap_or(0);
                    return Err(DecodeError::BadCharacter {
                        at,
                        offset: start + i,
                        charset: row.charset,
                    });
                }
                if row.structured
                    && let Some(table) = spec.subelements(n, row)
                {
                    de48::validate(n, table, value, start)?;
                }
                // Both fit: the whole message is at most MAX_MESSAGE_LEN bytes.
                spans[usize::from(n)] = Span {
                    start: start as u16,
                    len: len as u16,
                };
            }
        }
        if r.pos != wire.len() {
            return Err(DecodeError::TrailingBytes {
                count: wire.len() - r.pos,
                offset: r.pos,
            });
        }
        Ok(Message {
            spec,
            mti,
            present,
            spans,
            wire,
        })
    }

    /// Assembles a message from parts the builder has already written and validated.
    pub(crate) fn from_parts(
        spec: &'static Spec,
        mti: Mti,
        present: Presence,
        spans: [Span; 129],
        wire: Bytes,
    ) -> Message {
        Message {
            spec,
            mti,
            present,
            spans,
            wire,
        }
    }

    /// The dialect the message was decoded or built with; its table says how a field may be shown.
    pub fn spec(&self) -> &'static Spec {
        self.spec
    }

    /// The message type indicator: what the message is (0100 authorization, 0400 reversal, …).
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// The message as it goes on the wire (without the frame header).
    pub fn as_bytes(&self) -> &Bytes {
        &self.wire
    }

    /// Whether field `n` is present; `false` for a number outside 1 to 128.
    pub fn has(&self, n: u8) -> bool {
        (1..=128).contains(&n) && self.present & bit(n) != 0
    }

    /// The value of field `n`, without its length prefix; padding of fixed fields included.
    #[inline]
    pub fn field(&self, n: u8) -> Option<&[u8]> {
        if !self.has(n) {
            return None;
        }
        let s = self.spans[usize::from(n)];
        self.wire
            .get(usize::from(s.start)..usize::from(s.start) + usize::from(s.len))
    }

    /// Field numbers present, ascending.
    pub fn fields(&self) -> impl Iterator<Item = u8> + '_ {
        (2..=128u8).filter(|&n| self.has(n))
    }

    /// DE 11, the system trace audit number that matches a response to its request; `None` when
    /// absent or not six digits.
    pub fn stan(&self) -> Option<Stan> {
        Stan::new(u32::try_from(parse_digits(self.field(11)?)?).ok()?)
    }

    /// DE 37, the retrieval reference number that names the transaction to both sides.
    pub fn rrn(&self) -> Option<Rrn> {
        Rrn::from_ascii(self.field(37)?)
    }

    /// DE 4 in minor units of the DE 49 currency.
    pub fn amount(&self) -> Option<Amount> {
        parse_digits(self.field(4)?).map(Amount)
    }

    /// DE 49, the ISO 4217 numeric currency code (e.g. 643 for roubles).
    pub fn currency(&self) -> Option<u16> {
        u16::try_from(parse_digits(self.field(49)?)?).ok()
    }

    /// DE 3, the processing code: `000000` purchase or authorization, `200000` refund.
    pub fn processing_code(&self) -> Option<&[u8]> {
        self.field(3)
    }

    /// DE 39, the issuer's answer; `None` in a request.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_ascii(self.field(39)?)
    }

    /// DE 38, the issuer's approval code, present only when approved.
    pub fn approval_code(&self) -> Option<&[u8]> {
        self.field(38)
    }

    /// DE 41, the card acceptor's terminal ID, part of how a response is matched to its request.
    pub fn terminal_id(&self) -> Option<&[u8]> {
        self.field(41)
    }

    /// DE 42, the card acceptor (merchant) ID.
    pub fn merchant_id(&self) -> Option<&[u8]> {
        self.field(42)
    }

    /// DE 7, `MMDDhhmmss`.
    pub fn transmission_time(&self) -> Option<&[u8]> {
        self.field(7)
    }

    /// DE 70: network management information code.
    pub fn network_code(&self) -> Option<u16> {
        u16::try_from(parse_digits(self.field(70)?)?).ok()
    }

    /// DE 48 as a map of subelements.
    pub fn de48(&self) -> Option<De48<'_>> {
        let table = self.spec.field(48)?.subelements?;
        Some(De48::new(self.field(48)?, table))
    }

    /// The PAN in DE 2 as a [`card::Pan`] (which zeroizes and never prints), if it is a valid one.
    pub fn pan(&self) -> Option<card::Pan> {
        card::Pan::from_ascii(self.field(2)?).ok()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Field<'a>(&'a Message, u8);
        impl fmt::Debug for Field<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Field(msg, n) = *self;
                let value = msg.field(n).unwrap_or_default();
                match (
                    msg.de48().filter(|_| n == 48),
                    msg.spec.field(n).map(|s| s.exposure),
                ) {
                    (Some(de48), _) => de48.fmt(f),
                    (None, Some(Exposure::MaskPan)) => f.write_str(&card::mask_digits(value)),
                    (None, Some(Exposure::Hidden) | None) => f.write_str("<hidden>"),
                    (None, Some(Exposure::Clear)) => {
                        write!(f, "{:?}", String::from_utf8_lossy(value))
                    }
                }
            }
        }
        let mut map = f.debug_map();
        map.entry(&"mti", &self.mti);
        for n in self.fields() {
            map.entry(&n, &Field(self, n));
        }
        map.finish()
    }
}

/// A message may hold a PAN (DE 2, echoed in every response) or a CVC2 (DE 48.10). When the last
/// holder of its bytes drops it, the bytes are wiped. Bytes still shared (a clone of the
/// message, or a caller's `Bytes` it was decoded from) are left to their last owner.
impl Drop for Message {
    fn drop(&mut self) {
        if let Ok(mut owned) = std::mem::take(&mut self.wire).try_into_mut() {
            owned.zeroize();
        }
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        std::ptr::eq(self.spec, other.spec) && self.wire == other.wire
    }
}

impl Eq for Message {}
