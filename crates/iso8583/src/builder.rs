//! Writing messages.
//!
//! A [`MessageBuilder`] collects raw field values in one zeroizing arena (a PAN or CVC copied in
//! is wiped when the builder drops), checks them all against the spec table, then writes the wire
//! form in one pass with no allocation per field. [`MessageBuilder::encode_into`] writes to any
//! buffer without producing a [`Message`], so a PAN-bearing request can go straight into a
//! zeroizing scratch buffer and from there onto the socket.

use bytes::{BufMut, BytesMut};
use zeroize::Zeroizing;

use crate::MAX_MESSAGE_LEN;
use crate::de48;
use crate::error::{EncodeError, Location};
use crate::message::{Message, Presence, Span, bit};
use crate::spec::{ASCII87, Length, Spec};
use crate::types::{Amount, Mti, ResponseCode, Rrn, Stan};

/// Fields a response echoes from its request (`spec/iso8583.md`, "Responses echo ...").
pub const ECHOED_FIELDS: [u8; 10] = [2, 3, 4, 7, 11, 32, 37, 41, 42, 49];

/// Collects field values for one message. Setters take `&mut self` and chain; the first
/// problem a setter finds is kept and reported by `build`/`encode_into`.
pub struct MessageBuilder {
    spec: &'static Spec,
    mti: Mti,
    present: Presence,
    spans: [Span; 129],
    arena: Zeroizing<Vec<u8>>,
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
            spans: [Span::default(); 129],
            arena: Zeroizing::new(Vec::with_capacity(384)),
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
        let at = Location::Field(n);
        if self.spec.field(n).is_none() {
            self.fault(EncodeError::UnknownField { at });
            return self;
        }
        if value.len() > MAX_MESSAGE_LEN {
            self.fault(EncodeError::ValueTooLong {
                at,
                len: value.len(),
                max: MAX_MESSAGE_LEN,
            });
            return self;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(value);
        self.record(n, start);
        self
    }

    /// Notes that field `n` is the arena's bytes from `start` to the end.
    fn record(&mut self, n: u8, start: usize) {
        // Values were bounded by MAX_MESSAGE_LEN; an arena past u16 can only come from setting
        // fields again and again, which the total-length check reports.
        let (Ok(s), Ok(len)) = (
            u16::try_from(start),
            u16::try_from(self.arena.len() - start),
        ) else {
            self.fault(EncodeError::MessageTooLong {
                len: self.arena.len(),
                max: MAX_MESSAGE_LEN,
            });
            return;
        };
        self.spans[usize::from(n)] = Span { start: s, len };
        self.present |= bit(n);
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

    pub(crate) fn structured(&mut self, n: u8, subelements: &[(u8, &[u8])]) -> &mut MessageBuilder {
        if subelements.windows(2).any(|w| w[0].0 >= w[1].0) {
            self.fault(EncodeError::SubelementOrder {
                at: Location::Field(n),
            });
            return self;
        }
        let start = self.arena.len();
        for &(tag, value) in subelements {
            if tag > 99 || value.len() > 99 {
                self.fault(EncodeError::ValueTooLong {
                    at: Location::Subelement(n, tag),
                    len: value.len(),
                    max: 99,
                });
                self.arena.truncate(start);
                return self;
            }
            self.arena
                .extend_from_slice(&[b'0' + tag / 10, b'0' + tag % 10]);
            let len = value.len() as u8;
            self.arena
                .extend_from_slice(&[b'0' + len / 10, b'0' + len % 10]);
            self.arena.extend_from_slice(value);
        }
        self.record(n, start);
        self
    }

    fn value(&self, n: u8) -> &[u8] {
        let s = self.spans[usize::from(n)];
        &self.arena[usize::from(s.start)..usize::from(s.start) + usize::from(s.len)]
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

    fn has_secondary(&self) -> bool {
        self.present >> 64 != 0
    }

    /// Checks every field against the table and returns the encoded length.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        if let Some(e) = &self.fault {
            return Err(e.clone());
        }
        let mut total = 4 + if self.has_secondary() { 16 } else { 8 };
        for n in self.present_fields() {
            let at = Location::Field(n);
            let spec = self.spec.field(n).ok_or(EncodeError::UnknownField { at })?;
            let value = self.value(n);
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
            if let Some(table) = spec.subelements {
                de48::validate(n, table, value, 0).map_err(EncodeError::Subelement)?;
            }
            total += match spec.length {
                Length::Fixed(len) => usize::from(len),
                var => self.spec.prefix.width(var.prefix_digits()) + value.len(),
            };
        }
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
        self.write(dst, |_, _| {});
        Ok(len)
    }

    /// Writes the 2-byte big-endian length header and then the message.
    pub fn encode_frame_into<B: BufMut>(&self, dst: &mut B) -> Result<usize, EncodeError> {
        let len = self.encoded_len()?;
        // encoded_len bounds len by MAX_MESSAGE_LEN, well inside u16.
        dst.put_u16(len as u16);
        self.write(dst, |_, _| {});
        Ok(len + 2)
    }

    /// Writes the wire form into a new buffer and returns it as a [`Message`].
    pub fn build(&self) -> Result<Message, EncodeError> {
        let len = self.encoded_len()?;
        let mut wire = BytesMut::with_capacity(len);
        let mut spans = [Span::default(); 129];
        self.write(&mut wire, |n, span| spans[usize::from(n)] = span);
        Ok(Message::from_parts(
            self.spec,
            self.mti,
            self.present,
            spans,
            wire.freeze(),
        ))
    }

    /// The one writer behind every encode: assumes `encoded_len` has passed, and reports each
    /// value's position to `on_value` so `build` can index without re-parsing.
    fn write<B: BufMut>(&self, dst: &mut B, mut on_value: impl FnMut(u8, Span)) {
        let mut pos = 0usize;
        dst.put_slice(&self.mti.to_ascii());
        let mut bits = self.present.reverse_bits();
        if self.has_secondary() {
            bits |= 1 << 127;
        }
        dst.put_u64((bits >> 64) as u64);
        pos += 12;
        if self.has_secondary() {
            dst.put_u64(bits as u64);
            pos += 8;
        }
        for n in self.present_fields() {
            let Some(spec) = self.spec.field(n) else {
                continue;
            };
            let value = self.value(n);
            let (start, len) = match spec.length {
                Length::Fixed(len) => {
                    let pad = usize::from(len) - value.len();
                    let (byte, left) = spec.charset.padding();
                    if left {
                        dst.put_bytes(byte, pad);
                        dst.put_slice(value);
                    } else {
                        dst.put_slice(value);
                        dst.put_bytes(byte, pad);
                    }
                    (pos, usize::from(len))
                }
                var => {
                    let mut prefix = [0u8; 3];
                    let width = self.spec.prefix.width(var.prefix_digits());
                    self.spec
                        .prefix
                        .write(value.len() as u16, &mut prefix[..width]);
                    dst.put_slice(&prefix[..width]);
                    dst.put_slice(value);
                    (pos + width, value.len() + width)
                }
            };
            on_value(
                n,
                Span {
                    start: start as u16,
                    len: (pos + len - start) as u16,
                },
            );
            pos += len;
        }
    }
}

impl std::fmt::Debug for MessageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be a PAN or CVC and are not yet validated: show only which fields are set.
        f.debug_struct("MessageBuilder")
            .field("mti", &self.mti)
            .field("fields", &self.present_fields().collect::<Vec<_>>())
            .finish()
    }
}
