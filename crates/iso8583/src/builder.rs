//! Writing messages.
//!
//! A [`MessageBuilder`] checks each value against the spec table as it is set, while it is hot in
//! cache, and writes it straight away in wire form (length prefix, value, padding) into one
//! zeroizing arena: a PAN or CVC copied in is wiped when the builder drops. Encoding then only
//! puts the MTI and bitmaps in front of the pieces; when the fields were set in ascending order,
//! as the message-kind builders set them, the arena already is the message body and goes out in
//! one copy. [`MessageBuilder::encode_into`] writes to any buffer without producing a
//! [`Message`], so a PAN-bearing request can go straight into a zeroizing scratch buffer.

use bytes::{BufMut, BytesMut};
use zeroize::Zeroizing;

use crate::MAX_MESSAGE_LEN;
use crate::de48;
use crate::error::{DecodeError, EncodeError, Location};
use crate::message::{Message, Presence, Span, bit};
use crate::spec::{ASCII87, FieldSpec, Length, Spec, subelement};
use crate::types::{Amount, Mti, ResponseCode, Rrn, Stan};

/// Fields a response echoes from its request (`spec/iso8583.md`, "Responses echo ...").
pub const ECHOED_FIELDS: [u8; 10] = [2, 3, 4, 7, 11, 32, 37, 41, 42, 49];

/// Collects field values for one message. Setters take `&mut self` and chain; the first
/// problem a setter finds is kept and reported by `build`/`encode_into`.
pub struct MessageBuilder {
    spec: &'static Spec,
    mti: Mti,
    present: Presence,
    /// Where each field's wire form (prefix, value, padding) lies in the arena.
    pieces: [Span; 129],
    arena: Zeroizing<Vec<u8>>,
    /// Every field so far was set once, each with a higher number than the one before, so the
    /// arena holds the message body in order.
    in_order: bool,
    /// The highest field number set so far.
    last: u8,
    /// Encoded length of the live pieces: the arena minus the pieces that were replaced.
    body_len: usize,
    fault: Option<EncodeError>,
}

impl MessageBuilder {
    /// A message of the link dialect ([`ASCII87`]).
    pub fn new(mti: Mti) -> MessageBuilder {
        MessageBuilder::with_spec(&ASCII87, mti)
    }

    pub fn with_spec(spec: &'static Spec, mti: Mti) -> MessageBuilder {
        MessageBuilder {
            spec,
            mti,
            present: 0,
            pieces: [Span::default(); 129],
            arena: Zeroizing::new(Vec::with_capacity(384)),
            in_order: true,
            last: 0,
            body_len: 0,
            fault: None,
        }
    }

    /// The answer to `request`: its response MTI, with the fields a response echoes.
    pub fn response_to(request: &Message) -> MessageBuilder {
        let mti = request.mti();
        let mut b = MessageBuilder::with_spec(request.spec(), mti.response().unwrap_or(mti));
        if mti.response().is_none() {
            b.fault(EncodeError::NoResponseMti { mti });
        }
        for n in ECHOED_FIELDS {
            if let Some(v) = request.field(n) {
                b.field(n, v);
            }
        }
        b
    }

    fn fault(&mut self, e: EncodeError) {
        self.fault.get_or_insert(e);
    }

    /// Sets field `n` to `value`: the raw content, without length prefix. A fixed-length field
    /// may be given shorter: `n` values are zero-padded on the left, others space-padded on the
    /// right. Setting a field again replaces it.
    pub fn field(&mut self, n: u8, value: &[u8]) -> &mut MessageBuilder {
        let Some(spec) = self.spec.field(n) else {
            self.fault(EncodeError::UnknownField {
                at: Location::Field(n),
            });
            return self;
        };
        let checked = check(spec, value).and_then(|()| match spec.subelements {
            Some(table) => de48::validate(n, table, value, 0).map_err(EncodeError::Subelement),
            None => Ok(()),
        });
        match checked {
            Ok(()) => self.put(spec, value),
            Err(e) => self.fault(e),
        }
        self
    }

    /// Writes a checked value's wire form at the end of the arena and indexes it.
    fn put(&mut self, spec: &FieldSpec, value: &[u8]) {
        let start = self.arena.len();
        match spec.length {
            Length::Fixed(len) => {
                let pad = usize::from(len) - value.len();
                let (byte, left) = spec.charset.padding();
                if left {
                    self.arena.resize(start + pad, byte);
                    self.arena.extend_from_slice(value);
                } else {
                    self.arena.extend_from_slice(value);
                    self.arena.resize(start + usize::from(len), byte);
                }
            }
            var => {
                let mut prefix = [0u8; 3];
                let width = self.spec.prefix.width(var.prefix_digits());
                // `check` bounded the value by the field's maximum, at most 999.
                self.spec
                    .prefix
                    .write(value.len() as u16, &mut prefix[..width]);
                self.arena.extend_from_slice(&prefix[..width]);
                self.arena.extend_from_slice(value);
            }
        }
        self.index(spec.number, start);
    }

    /// Records the arena's bytes from `start` to the end as field `n`, replacing any earlier
    /// piece.
    fn index(&mut self, n: u8, start: usize) {
        let len = self.arena.len() - start;
        // Pieces are at most 1,002 bytes; the arena passes u16 only when fields are set again and
        // again, far past any message's size.
        let (Ok(s), Ok(l)) = (u16::try_from(start), u16::try_from(len)) else {
            self.fault(EncodeError::MessageTooLong {
                len: self.arena.len(),
                max: MAX_MESSAGE_LEN,
            });
            return;
        };
        if self.present & bit(n) != 0 {
            self.body_len -= usize::from(self.pieces[usize::from(n)].len);
        }
        self.in_order &= n > self.last;
        self.last = self.last.max(n);
        self.pieces[usize::from(n)] = Span { start: s, len: l };
        self.present |= bit(n);
        self.body_len += len;
    }

    pub fn stan(&mut self, stan: Stan) -> &mut MessageBuilder {
        self.field(11, &stan.to_ascii())
    }

    pub fn rrn(&mut self, rrn: Rrn) -> &mut MessageBuilder {
        self.field(37, rrn.as_bytes())
    }

    pub fn amount(&mut self, amount: Amount) -> &mut MessageBuilder {
        match amount.to_ascii() {
            Some(digits) => self.field(4, &digits),
            None => {
                self.fault(EncodeError::AmountTooLarge {
                    at: Location::Field(4),
                });
                self
            }
        }
    }

    pub fn response_code(&mut self, code: ResponseCode) -> &mut MessageBuilder {
        self.field(39, code.as_bytes())
    }

    /// Sets DE 48 from `(tag, value)` pairs, which must come in ascending tag order, each once.
    pub fn de48(&mut self, subelements: &[(u8, &[u8])]) -> &mut MessageBuilder {
        self.structured(48, subelements)
    }

    /// Sets a structured field from its subelements, checking each against the field's table.
    pub(crate) fn structured(&mut self, n: u8, subelements: &[(u8, &[u8])]) -> &mut MessageBuilder {
        let at = Location::Field(n);
        let Some((spec, table)) = self.spec.field(n).and_then(|f| Some((f, f.subelements?))) else {
            self.fault(EncodeError::UnknownField { at });
            return self;
        };
        if subelements.windows(2).any(|w| w[0].0 >= w[1].0) {
            self.fault(EncodeError::SubelementOrder { at });
            return self;
        }
        let mut len = 0;
        for &(tag, value) in subelements {
            let sub = Location::Subelement(n, tag);
            let checked = match subelement(table, tag) {
                Some(s) => de48::check(s, sub, value, 0),
                None => Err(DecodeError::UnknownSubelement { at: sub }),
            };
            if let Err(e) = checked {
                self.fault(EncodeError::Subelement(e));
                return self;
            }
            len += 4 + value.len();
        }
        let max = usize::from(spec.length.max());
        if len > max {
            self.fault(EncodeError::ValueTooLong { at, len, max });
            return self;
        }
        let start = self.arena.len();
        let mut prefix = [0u8; 3];
        let width = self.spec.prefix.width(spec.length.prefix_digits());
        self.spec.prefix.write(len as u16, &mut prefix[..width]);
        self.arena.extend_from_slice(&prefix[..width]);
        for &(tag, value) in subelements {
            // Both are under 100: the table's tags are two digits and its maxima are below 100.
            let l = value.len() as u8;
            self.arena.extend_from_slice(&[
                b'0' + tag / 10,
                b'0' + tag % 10,
                b'0' + l / 10,
                b'0' + l % 10,
            ]);
            self.arena.extend_from_slice(value);
        }
        self.index(n, start);
        self
    }

    fn has_secondary(&self) -> bool {
        self.present >> 64 != 0
    }

    /// The encoded length, or the first problem found while the fields were set.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        if let Some(e) = &self.fault {
            return Err(e.clone());
        }
        let total = 4 + if self.has_secondary() { 16 } else { 8 } + self.body_len;
        if total > MAX_MESSAGE_LEN {
            return Err(EncodeError::MessageTooLong {
                len: total,
                max: MAX_MESSAGE_LEN,
            });
        }
        Ok(total)
    }

    /// Writes the message to `dst`; returns its length. Nothing is written on error.
    pub fn encode_into<B: BufMut>(&self, dst: &mut B) -> Result<usize, EncodeError> {
        let len = self.encoded_len()?;
        self.write_body(dst);
        Ok(len)
    }

    /// Writes the 2-byte big-endian length header and then the message.
    pub fn encode_frame_into<B: BufMut>(&self, dst: &mut B) -> Result<usize, EncodeError> {
        let len = self.encoded_len()?;
        // encoded_len bounds len by MAX_MESSAGE_LEN, well inside u16.
        dst.put_u16(len as u16);
        self.write_body(dst);
        Ok(len + 2)
    }

    /// Writes the wire form into a new buffer and returns it as a [`Message`].
    pub fn build(&self) -> Result<Message, EncodeError> {
        let len = self.encoded_len()?;
        let mut wire = BytesMut::with_capacity(len);
        let mut spans = [Span::default(); 129];
        let prefix = self.spec.prefix;
        self.write(&mut wire, |n, piece| {
            let width = self
                .spec
                .field(n)
                .map_or(0, |f| prefix.width(f.length.prefix_digits()));
            spans[usize::from(n)] = Span {
                start: piece.start + width as u16,
                len: piece.len - width as u16,
            };
        });
        Ok(Message::from_parts(
            self.spec,
            self.mti,
            self.present,
            spans,
            wire.freeze(),
        ))
    }

    fn present_fields(&self) -> impl Iterator<Item = u8> + '_ {
        let mut remaining = self.present;
        std::iter::from_fn(move || {
            (remaining != 0).then(|| {
                let n = remaining.trailing_zeros() as u8 + 1;
                remaining &= remaining - 1;
                n
            })
        })
    }

    /// Writes the MTI and bitmaps; returns the offset the first field starts at.
    fn write_head<B: BufMut>(&self, dst: &mut B) -> u16 {
        dst.put_slice(&self.mti.to_ascii());
        let mut bits = self.present.reverse_bits();
        if self.has_secondary() {
            bits |= 1 << 127;
        }
        dst.put_u64((bits >> 64) as u64);
        if self.has_secondary() {
            dst.put_u64(bits as u64);
            20
        } else {
            12
        }
    }

    /// Writes the message, assuming `encoded_len` has passed.
    fn write_body<B: BufMut>(&self, dst: &mut B) {
        self.write_head(dst);
        if self.in_order {
            dst.put_slice(&self.arena);
            return;
        }
        for n in self.present_fields() {
            let piece = self.pieces[usize::from(n)];
            let start = usize::from(piece.start);
            dst.put_slice(&self.arena[start..start + usize::from(piece.len)]);
        }
    }

    /// Writes the message and reports where each field's piece landed (offsets in the message)
    /// to `on_piece`.
    fn write<B: BufMut>(&self, dst: &mut B, mut on_piece: impl FnMut(u8, Span)) {
        let mut pos = self.write_head(dst);
        if self.in_order {
            dst.put_slice(&self.arena);
        }
        for n in self.present_fields() {
            let piece = self.pieces[usize::from(n)];
            if !self.in_order {
                let start = usize::from(piece.start);
                dst.put_slice(&self.arena[start..start + usize::from(piece.len)]);
            }
            on_piece(
                n,
                Span {
                    start: pos,
                    len: piece.len,
                },
            );
            pos += piece.len;
        }
    }
}

/// Checks a value against its field's row: length and characters. Structure (subelements) is
/// checked by the caller, which knows whether it has pairs or raw bytes.
fn check(spec: &FieldSpec, value: &[u8]) -> Result<(), EncodeError> {
    let at = Location::Field(spec.number);
    let max = usize::from(spec.length.max());
    if value.len() > max {
        return Err(EncodeError::ValueTooLong {
            at,
            len: value.len(),
            max,
        });
    }
    if !spec.charset.accepts(value) {
        let offset = spec.charset.first_rejected(value).unwrap_or(0);
        return Err(EncodeError::BadCharacter {
            at,
            offset,
            charset: spec.charset,
        });
    }
    Ok(())
}

impl std::fmt::Debug for MessageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be a PAN or CVC: show only which fields are set.
        f.debug_struct("MessageBuilder")
            .field("mti", &self.mti)
            .field("fields", &self.present_fields().collect::<Vec<_>>())
            .finish()
    }
}
