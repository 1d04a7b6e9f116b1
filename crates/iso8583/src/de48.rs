//! Structured fields: a sequence of `TT` tag, `LL` length, value, in ascending tag order, each tag
//! at most once (DE 48). Validation is shared by the decoder and the builder; the view borrows
//! the already-validated bytes.

use crate::error::{DecodeError, Location};
use crate::spec::{Exposure, SubelementSpec, SubelementTable, subelement};
use crate::types::{CofIndicator, MitReason, tag};

/// Checks a structured value against its subelement table. `base` is the value's offset in the
/// message, so that errors point at the right byte. Out of line: inlined, it crowds the
/// registers of the decode loop around it.
#[inline(never)]
pub(crate) fn validate(
    field: u8,
    table: SubelementTable<'_>,
    value: &[u8],
    base: usize,
) -> Result<(), DecodeError> {
    if is_valid(table, value) {
        Ok(())
    } else {
        explain(field, table, value, base)
    }
}

/// Whether [`explain`] would find nothing wrong: the same checks, answering only yes or no, so
/// that a good value (nearly every one) costs no error bookkeeping. Each head is read as one
/// word.
#[inline]
fn is_valid(table: SubelementTable<'_>, value: &[u8]) -> bool {
    let mut pos = 0;
    // The lowest tag allowed next: ascending, each once.
    let mut lowest = 0;
    while pos < value.len() {
        let Some(head) = value.get(pos..pos + 4) else {
            return false;
        };
        let Some((tag, len)) = parse_head([head[0], head[1], head[2], head[3]]) else {
            return false;
        };
        if u16::from(tag) < lowest {
            return false;
        }
        lowest = u16::from(tag) + 1;
        let Some(spec) = table.get(tag) else {
            return false;
        };
        let start = pos + 4;
        let Some(body) = value.get(start..start + usize::from(len)) else {
            return false;
        };
        if len > spec.max || len < spec.min || !spec.charset.accepts(body) {
            return false;
        }
        pos = start + usize::from(len);
    }
    true
}

/// `TT` and `LL` of a subelement head, if its four bytes are digits.
#[inline(always)]
fn parse_head(head: [u8; 4]) -> Option<(u8, u8)> {
    const ZEROS: u32 = 0x3030_3030;
    let w = u32::from_le_bytes(head);
    // A byte under '0' borrows into its high bit when '0' is subtracted (and had that bit clear);
    // one over '9' carries into it when 0x46 is added (or had it set already).
    let outside = (w.wrapping_sub(ZEROS) & !w | w.wrapping_add(0x4646_4646) | w) & 0x8080_8080;
    if outside != 0 {
        return None;
    }
    let [t, u, l, m] = (w - ZEROS).to_le_bytes();
    Some((t * 10 + u, l * 10 + m))
}

/// [`validate`] for a value that [`is_valid`] turned down: finds the first fault, in the order
/// the format is read.
#[cold]
#[inline(never)]
fn explain(
    field: u8,
    table: SubelementTable<'_>,
    value: &[u8],
    base: usize,
) -> Result<(), DecodeError> {
    let mut pos = 0;
    let mut previous: Option<u8> = None;
    while pos < value.len() {
        let offset = base + pos;
        let head = value.get(pos..pos + 4).ok_or(DecodeError::Truncated {
            at: Location::Field(field),
            offset,
        })?;
        let tag = two_digits(&head[..2]).ok_or(DecodeError::BadTag {
            at: Location::Field(field),
            offset,
        })?;
        let at = Location::Subelement(field, tag);
        let len = usize::from(two_digits(&head[2..]).ok_or(DecodeError::BadLengthPrefix {
            at,
            offset: offset + 2,
        })?);
        match previous {
            Some(p) if p == tag => return Err(DecodeError::DuplicateSubelement { at }),
            Some(p) if p > tag => return Err(DecodeError::SubelementOrder { at }),
            _ => {}
        }
        previous = Some(tag);
        let spec = table
            .get(tag)
            .ok_or(DecodeError::UnknownSubelement { at })?;
        let start = pos + 4;
        let body = value
            .get(start..start + len)
            .ok_or(DecodeError::Truncated {
                at,
                offset: base + start,
            })?;
        check(spec, at, body, base + start)?;
        pos = start + len;
    }
    Ok(())
}

pub(crate) fn check(
    spec: &SubelementSpec,
    at: Location,
    body: &[u8],
    offset: usize,
) -> Result<(), DecodeError> {
    if body.len() > usize::from(spec.max) {
        return Err(DecodeError::ValueTooLong {
            at,
            len: body.len(),
            max: usize::from(spec.max),
        });
    }
    if body.len() < usize::from(spec.min) {
        return Err(DecodeError::ValueTooShort {
            at,
            len: body.len(),
            min: usize::from(spec.min),
        });
    }
    if !spec.charset.accepts(body) {
        let i = spec.charset.first_rejected(body).unwrap_or(0);
        return Err(DecodeError::BadCharacter {
            at,
            offset: offset + i,
            charset: spec.charset,
        });
    }
    Ok(())
}

fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [h, l] if h.is_ascii_digit() && l.is_ascii_digit() => Some((h - b'0') * 10 + (l - b'0')),
        _ => None,
    }
}

/// A read-only view of a validated DE 48.
#[derive(Clone, Copy)]
pub struct De48<'a> {
    raw: &'a [u8],
    table: &'static [SubelementSpec],
}

impl<'a> De48<'a> {
    pub(crate) fn new(raw: &'a [u8], table: &'static [SubelementSpec]) -> De48<'a> {
        De48 { raw, table }
    }

    /// Subelements in wire (ascending tag) order.
    pub fn iter(&self) -> Subelements<'a> {
        Subelements { rest: self.raw }
    }

    /// The value of subelement `tag`, if present; each tag occurs at most once.
    pub fn get(&self, tag: u8) -> Option<&'a [u8]> {
        self.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    /// 48.01, the credential-on-file indicator: first use, or a later use started by the
    /// cardholder (CIT) or the merchant (MIT).
    pub fn cof_indicator(&self) -> Option<CofIndicator> {
        self.get(tag::COF_INDICATOR)
            .and_then(CofIndicator::from_code)
    }

    /// 48.02, why a merchant-initiated transaction was made (recurring, unscheduled, instalment).
    pub fn mit_reason(&self) -> Option<MitReason> {
        self.get(tag::MIT_REASON).and_then(MitReason::from_code)
    }

    /// 48.03, the network transaction ID: returned with a first-use approval, and carried by every
    /// later MIT to name that first transaction.
    pub fn network_transaction_id(&self) -> Option<&'a [u8]> {
        self.get(tag::NETWORK_TRANSACTION_ID)
    }

    /// How a subelement may be shown; unknown tags cannot occur in a validated view.
    pub fn exposure(&self, tag: u8) -> Exposure {
        subelement(self.table, tag).map_or(Exposure::Hidden, |s| s.exposure)
    }
}

impl std::fmt::Debug for De48<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (tag, value) in self.iter() {
            if self.exposure(tag) != Exposure::Hidden {
                map.entry(&format_args!("{tag:02}"), &String::from_utf8_lossy(value));
            }
        }
        map.finish()
    }
}

/// Iterator over `(tag, value)` of a validated structured field.
#[derive(Debug, Clone)]
pub struct Subelements<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Subelements<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // The bytes were validated when the message was decoded or built, so a short or
        // malformed remainder cannot occur; stopping there keeps this total anyway.
        let tag = two_digits(self.rest.get(..2)?)?;
        let len = usize::from(two_digits(self.rest.get(2..4)?)?);
        let value = self.rest.get(4..4 + len)?;
        self.rest = &self.rest[4 + len..];
        Some((tag, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ASCII87, DE48_SUBELEMENTS};

    fn run(v: &[u8]) -> Result<(), DecodeError> {
        let codec = ASCII87.codec(48).unwrap();
        validate(48, ASCII87.subelements(48, codec).unwrap(), v, 0)
    }

    #[test]
    fn accepts_ascending_known_tags() {
        run(b"0101I1003123200205").unwrap();
        let view = De48::new(b"0101I1003123200205", &DE48_SUBELEMENTS);
        assert_eq!(view.cof_indicator(), Some(CofIndicator::FirstUse));
        assert_eq!(view.get(20), Some(&b"05"[..]));
        assert!(
            !format!("{view:?}").contains("123"),
            "CVC2 must not be shown"
        );
    }

    #[test]
    fn heads_are_read_as_words() {
        for w in 0..=0xffffu32 {
            // Every pair of bytes in the tag's place and in the length's, the other two digits.
            for head in [
                [w as u8, (w >> 8) as u8, b'0', b'7'],
                [b'4', b'2', w as u8, (w >> 8) as u8],
            ] {
                let expected = two_digits(&head[..2]).zip(two_digits(&head[2..]));
                assert_eq!(parse_head(head), expected, "{head:?}");
            }
        }
    }

    #[test]
    fn the_quick_check_agrees_with_the_explaining_one() {
        let (row, good) = (
            ASCII87.codec(48).unwrap(),
            &b"0101I10031232002052128AAABBEg0VhI0VniQEjRWAAAAAAA=22052.2.0"[..],
        );
        let table = ASCII87.subelements(48, row).unwrap();
        assert_eq!(explain(48, table, good, 0), Ok(()));
        let agree = |v: &[u8]| {
            let explained = explain(48, table, v, 0);
            assert_eq!(is_valid(table, v), explained.is_ok(), "{explained:?}");
        };
        agree(good);
        for i in 0..good.len() {
            agree(&good[..i]);
            for b in [
                0u8, b' ', b'/', b'0', b'1', b'3', b'9', b':', b'A', b'z', 0x7f, 0xff,
            ] {
                let mut v = good.to_vec();
                v[i] = b;
                agree(&v);
            }
        }
    }

    #[test]
    fn names_each_fault() {
        let sub = |t| Location::Subelement(48, t);
        assert_eq!(
            run(b"0101I0101C"),
            Err(DecodeError::DuplicateSubelement { at: sub(1) })
        );
        assert_eq!(
            run(b"100312"),
            Err(DecodeError::Truncated {
                at: sub(10),
                offset: 4
            })
        );
        assert_eq!(
            run(b"2001I0101I"),
            Err(DecodeError::ValueTooShort {
                at: sub(20),
                len: 1,
                min: 2
            })
        );
        assert_eq!(run(b"200205"), Ok(()));
        assert_eq!(
            run(b"2002050101I"),
            Err(DecodeError::SubelementOrder { at: sub(1) })
        );
        assert_eq!(
            run(b"9901X"),
            Err(DecodeError::UnknownSubelement { at: sub(99) })
        );
        assert_eq!(
            run(b"x101I"),
            Err(DecodeError::BadTag {
                at: Location::Field(48),
                offset: 0
            })
        );
        assert_eq!(
            run(b"01"),
            Err(DecodeError::Truncated {
                at: Location::Field(48),
                offset: 0
            })
        );
        assert!(matches!(
            run(b"10031x3"),
            Err(DecodeError::BadCharacter { offset: 5, .. })
        ));
    }
}
