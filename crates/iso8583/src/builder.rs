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
use zeroize::Zeroize;

use crate::MAX_MESSAGE_LEN;
use crate::de48;
use crate::error::{DecodeError, EncodeError, Location};
use crate::message::{Message, Presence, Span};
use crate::spec::{ASCII87, Spec, SubelementTable, two_digits};
use crate::types::{Amount, Mti, ResponseCode, Rrn, Stan};

/// Fields a response echoes from its request (`spec/iso8583.md`, "Responses echo ...").
pub const ECHOED_FIELDS: [u8; 10] = [2, 3, 4, 7, 11, 32, 37, 41, 42, 49];

/// Collects field values for one message. Setters take `&mut self` and chain; the first
/// problem a setter finds is kept and reported by `build`/`encode_into`.
pub struct MessageBuilder {
    spec: &'static Spec,
    mti: Mti,
    /// Which fields are set: bit `n - 1` of the pair read as one little-endian 128-bit number,
    /// as in [`Presence`]. Two words because setting a bit of a `u128` at a variable position
    /// takes a double-word shift and two conditional moves, once per field.
    present: [u64; 2],
    /// Where each field's wire form (prefix, value, padding) lies in the arena, once it is
    /// needed. While the fields come in ascending order, each once, the arena is their wire
    /// forms end to end, and where each lies can be read back from the prefixes
    /// ([`MessageBuilder::for_each_piece`]); so the index is only made (from that reading) when a
    /// field comes out of order or again. That spares the common builder a 516-byte array to
    /// clear and to keep up, and keeps the builder small to move. A dialect whose prefixes cannot
    /// state every length ([`Spec::prefixes_exact`]) keeps the index from the start.
    pieces: Option<Box<[Span; 129]>>,
    arena: Arena,
    /// Every field so far was set once, each with a higher number than the one before, so the
    /// arena holds the message body in order.
    in_order: bool,
    /// The highest field number set so far.
    last: u8,
    /// Encoded length of the live pieces while `pieces` is kept: the arena minus the pieces that
    /// were replaced. Without `pieces`, it is the arena's length.
    body_len: usize,
    fault: Option<EncodeError>,
}

impl MessageBuilder {
    /// A message of the link dialect ([`ASCII87`]).
    pub fn new(mti: Mti) -> MessageBuilder {
        MessageBuilder::with_spec(&ASCII87, mti)
    }

    /// A message of any dialect: a response in the dialect of its request, or a test table.
    pub fn with_spec(spec: &'static Spec, mti: Mti) -> MessageBuilder {
        MessageBuilder {
            spec,
            mti,
            present: [0; 2],
            pieces: (!spec.prefixes_exact()).then(|| Box::new([Span::default(); 129])),
            arena: Arena::new(),
            in_order: true,
            last: 0,
            body_len: 0,
            fault: None,
        }
    }

    /// The MTI of the message being built.
    pub fn mti(&self) -> Mti {
        self.mti
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

    // Out of line: keeping the error paths away from the setters' hot paths frees registers.
    #[cold]
    #[inline(never)]
    fn fault(&mut self, e: EncodeError) {
        self.fault.get_or_insert(e);
    }

    /// Sets field `n` to `value`: the raw content, without length prefix. A fixed-length field
    /// may be given shorter: `n` values are zero-padded on the left, others space-padded on the
    /// right. Setting a field again replaces it.
    pub fn field(&mut self, n: u8, value: &[u8]) -> &mut MessageBuilder {
        let at = Location::Field(n);
        let Some(row) = self.spec.codec(n) else {
            self.fault(EncodeError::UnknownField { at });
            return self;
        };
        let max = usize::from(row.max);
        if value.len() > max {
            self.fault(EncodeError::ValueTooLong {
                at,
                len: value.len(),
                max,
            });
            return self;
        }
        // The wire form goes after the pieces so far and is checked as it is copied there; it
        // only becomes a piece once every check has passed.
        let width = usize::from(row.width);
        let (pad, left) = row.charset.padding();
        let (wire_len, value_at) = match width {
            0 if left => (max, max - value.len()),
            0 => (max, 0),
            _ => (width + value.len(), width),
        };
        let room = self.arena.room(wire_len);
        if width != 0 {
            // `max` bounds the value by the field's maximum, at most 999.
            self.spec
                .prefix
                .write(value.len() as u16, &mut room[..width]);
        } else if wire_len > value.len() {
            // Padding is rare (the kinds pass full-length values), and a call to fill nothing is
            // not free.
            if left {
                room[..value_at].fill(pad);
            } else {
                room[value.len()..].fill(pad);
            }
        }
        if !row.charset.copy_accepted(&mut room[value_at..], value) {
            self.fault(EncodeError::BadCharacter {
                at,
                offset: row.charset.first_rejected(value).unwrap_or(0),
                charset: row.charset,
            });
            return self;
        }
        if row.structured
            && let Some(table) = self.spec.subelements(n, row)
            && let Err(e) = de48::validate(n, table, value, 0)
        {
            self.fault(EncodeError::Subelement(e));
            return self;
        }
        let start = self.arena.commit(wire_len);
        self.index(n, start);
        self
    }

    /// Records the arena's bytes from `start` to the end as field `n`, replacing any earlier
    /// piece.
    #[inline(always)]
    fn index(&mut self, n: u8, start: usize) {
        let len = self.arena.len - start;
        // Pieces are at most 1,002 bytes; the arena passes u16 only when fields are set again and
        // again, far past any message's size.
        let (Ok(s), Ok(l)) = (u16::try_from(start), u16::try_from(len)) else {
            self.fault(EncodeError::MessageTooLong {
                len: self.arena.len,
                max: MAX_MESSAGE_LEN,
            });
            // The piece is not kept, so the arena still holds only indexed pieces.
            self.arena.len = start;
            return;
        };
        if n > self.last {
            // Every field so far is below `n`: nothing to replace, and the order holds. This is
            // how the message kinds set fields.
            self.last = n;
        } else if self.in_order {
            self.leave_order(start);
        }
        // `n` is a field of the spec, 2..=128.
        let i = n - 1;
        let (word, bit) = (usize::from(i >> 6) & 1, 1 << (i & 63));
        if let Some(pieces) = self.pieces.as_deref_mut() {
            let piece = &mut pieces[usize::from(n)];
            if self.present[word] & bit != 0 {
                self.body_len -= usize::from(piece.len);
            }
            *piece = Span { start: s, len: l };
            self.body_len += len;
        }
        self.present[word] |= bit;
    }

    /// Notes that the fields no longer come in order, and makes the index of the pieces so far
    /// (which are the arena up to `start`, end to end) if there is none yet.
    #[cold]
    #[inline(never)]
    fn leave_order(&mut self, start: usize) {
        self.in_order = false;
        if self.pieces.is_none() {
            let mut pieces = Box::new([Span::default(); 129]);
            self.for_each_piece(|n, piece| pieces[usize::from(n)] = piece);
            self.pieces = Some(pieces);
            self.body_len = start;
        }
    }

    /// Calls `on_piece` with each set field and where its wire form lies in the arena, in field
    /// order.
    fn for_each_piece(&self, mut on_piece: impl FnMut(u8, Span)) {
        if let Some(pieces) = &self.pieces {
            for n in self.present_fields() {
                on_piece(n, pieces[usize::from(n)]);
            }
            return;
        }
        // Without the index, the fields were set in order, each once: the arena is their wire
        // forms end to end, each as long as its row says or its prefix states.
        let prefix = self.spec.prefix;
        let mut pos = 0;
        for n in self.present_fields() {
            let len = self
                .spec
                .codec(n)
                .map_or(0, |row| match usize::from(row.width) {
                    0 => usize::from(row.max),
                    width => {
                        let stated = self
                            .arena
                            .buf
                            .get(pos..pos + width)
                            .and_then(|p| prefix.read(p));
                        width + usize::from(stated.unwrap_or(0))
                    }
                });
            // Every piece passed the u16 checks of `index` when it was set.
            on_piece(
                n,
                Span {
                    start: pos as u16,
                    len: len as u16,
                },
            );
            pos += len;
        }
    }

    /// Sets DE 11, the system trace audit number.
    pub fn stan(&mut self, stan: Stan) -> &mut MessageBuilder {
        self.field(11, &stan.to_ascii())
    }

    /// Sets DE 37, the retrieval reference number.
    pub fn rrn(&mut self, rrn: Rrn) -> &mut MessageBuilder {
        self.field(37, rrn.as_bytes())
    }

    /// Sets DE 4 in minor units; over twelve digits is an encoding error, never cut.
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

    /// Sets DE 39, the issuer's answer.
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
        let Some((row, Some(table))) = self
            .spec
            .codec(n)
            .map(|row| (row, self.spec.subelements(n, row)))
        else {
            self.fault(EncodeError::UnknownField { at });
            return self;
        };
        // First what can only be judged on the whole: the order, and the total length against
        // the field's maximum. Then, when both pass, one pass checks each subelement as it copies
        // it into place after the length prefix.
        let mut len = 0;
        let mut lowest = 0u16;
        let mut ordered = true;
        for &(tag, value) in subelements {
            ordered &= u16::from(tag) >= lowest;
            lowest = u16::from(tag) + 1;
            len += 4 + value.len();
        }
        let width = usize::from(row.width);
        let max = usize::from(row.max);
        let prefix = self.spec.prefix;
        let written = ordered && len <= max && {
            let room = self.arena.room(width + len);
            // At most `max`, itself at most 999.
            prefix.write(len as u16, &mut room[..width]);
            write_subelements(&mut room[width..], table, subelements)
        };
        if !written {
            self.fault(structured_fault(n, table, subelements, ordered, len, max));
            return self;
        }
        let start = self.arena.commit(width + len);
        self.index(n, start);
        self
    }

    fn presence(&self) -> Presence {
        Presence::from(self.present[1]) << 64 | Presence::from(self.present[0])
    }

    fn has_secondary(&self) -> bool {
        self.present[1] != 0
    }

    /// The encoded length, or the first problem found while the fields were set.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        if let Some(e) = &self.fault {
            return Err(e.clone());
        }
        let body_len = if self.pieces.is_some() {
            self.body_len
        } else {
            self.arena.len
        };
        let total = 4 + if self.has_secondary() { 16 } else { 8 } + body_len;
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
            self.presence(),
            spans,
            wire.freeze(),
        ))
    }

    fn present_fields(&self) -> impl Iterator<Item = u8> + '_ {
        let mut remaining = self.presence();
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
        let mut bits = self.presence().reverse_bits();
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
            dst.put_slice(self.arena.pieces());
            return;
        }
        self.for_each_piece(|_, piece| dst.put_slice(self.arena.piece(piece)));
    }

    /// Writes the message and reports where each field's piece landed (offsets in the message)
    /// to `on_piece`.
    fn write<B: BufMut>(&self, dst: &mut B, mut on_piece: impl FnMut(u8, Span)) {
        let mut pos = self.write_head(dst);
        if self.in_order {
            dst.put_slice(self.arena.pieces());
        }
        self.for_each_piece(|n, piece| {
            if !self.in_order {
                dst.put_slice(self.arena.piece(piece));
            }
            on_piece(
                n,
                Span {
                    start: pos,
                    len: piece.len,
                },
            );
            pos += piece.len;
        });
    }
}

/// Writes `TT LL value` for each subelement into `out`, which is exactly long enough, checking
/// each against its row as it is copied; false at the first that does not pass.
#[inline]
fn write_subelements(
    out: &mut [u8],
    table: SubelementTable<'_>,
    subelements: &[(u8, &[u8])],
) -> bool {
    let mut pos = 0;
    for &(tag, value) in subelements {
        let Some(row) = table.get(tag) else {
            return false;
        };
        let len = value.len();
        if len > usize::from(row.max) || len < usize::from(row.min) {
            return false;
        }
        let Some(piece) = out.get_mut(pos..pos + 4 + len) else {
            return false;
        };
        // Both are under 100: the table's tags are two digits and its maxima are below 100. (Past
        // 99, `two_digits` writes what the arithmetic it replaces wrote.)
        let ([t, u], [l, m]) = (two_digits(usize::from(tag)), two_digits(len));
        piece[..4].copy_from_slice(&[t, u, l, m]);
        if !row.charset.copy_accepted(&mut piece[4..], value) {
            return false;
        }
        pos += 4 + len;
    }
    true
}

/// Why [`MessageBuilder::structured`] could not write field `n`, found in the order its checks
/// are specified: the order of the tags, then each subelement in turn, then the total length.
#[cold]
#[inline(never)]
fn structured_fault(
    n: u8,
    table: SubelementTable<'_>,
    subelements: &[(u8, &[u8])],
    ordered: bool,
    len: usize,
    max: usize,
) -> EncodeError {
    let at = Location::Field(n);
    if !ordered {
        return EncodeError::SubelementOrder { at };
    }
    for &(tag, value) in subelements {
        let sub = Location::Subelement(n, tag);
        let Some(row) = table.get(tag) else {
            return EncodeError::Subelement(DecodeError::UnknownSubelement { at: sub });
        };
        if let Err(e) = de48::check(row, sub, value, 0) {
            return EncodeError::Subelement(e);
        }
    }
    // Every subelement passed, so it was the total.
    EncodeError::ValueTooLong { at, len, max }
}

/// The builder's scratch: the fields' wire forms, end to end. It may hold a PAN or a CVC2, so it
/// is wiped when dropped, and when it grows the old buffer is wiped too. It is kept initialised
/// to its full size, with `len` marking the end of the pieces, so values are written with
/// plain slice stores, without `unsafe` and without `Vec`'s per-call length bookkeeping.
struct Arena {
    buf: Vec<u8>,
    /// End of the pieces. What follows is filler, or a value that failed its check.
    len: usize,
}

impl Arena {
    /// Enough for the link's card requests and responses without growing (the reference 0100's
    /// fields take 263 bytes).
    const INITIAL: usize = 384;

    fn new() -> Arena {
        // Filled with a byte other than zero: the compiler turns an allocation filled with zeros
        // into `calloc`, which glibc serves from outside its per-thread cache, several times
        // slower than `malloc` and a fill.
        let mut buf = Vec::with_capacity(Arena::INITIAL);
        buf.resize(Arena::INITIAL, b' ');
        Arena { buf, len: 0 }
    }

    /// The `extra` bytes after the pieces, growing the buffer if they do not fit.
    #[inline]
    fn room(&mut self, extra: usize) -> &mut [u8] {
        let end = self.len + extra;
        if end > self.buf.len() {
            self.grow(extra);
        }
        &mut self.buf[self.len..end]
    }

    #[cold]
    fn grow(&mut self, extra: usize) {
        let mut bigger = vec![0; (self.len + extra).max(2 * self.buf.len())];
        bigger[..self.len].copy_from_slice(&self.buf[..self.len]);
        wipe(&mut std::mem::replace(&mut self.buf, bigger));
    }

    /// Makes the next `len` bytes, written through [`Arena::room`], a piece; returns its start.
    #[inline]
    fn commit(&mut self, len: usize) -> usize {
        let start = self.len;
        self.len += len;
        start
    }

    fn pieces(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn piece(&self, span: Span) -> &[u8] {
        let start = usize::from(span.start);
        &self.buf[start..start + usize::from(span.len)]
    }
}

/// Wipes `buf`, spare capacity included (there is none unless the allocator gave more than
/// asked). The slice's `zeroize` is one fill that the compiler may not remove; the `Vec`'s would
/// also do it, but with a volatile store per initialised byte.
fn wipe(buf: &mut Vec<u8>) {
    if buf.capacity() > buf.len() {
        buf.spare_capacity_mut().zeroize();
    }
    buf.as_mut_slice().zeroize();
}

impl Drop for Arena {
    fn drop(&mut self) {
        wipe(&mut self.buf);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_grows_and_keeps_replaced_fields_out() {
        let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
        // Far past the arena's first size, so that it moves to a bigger buffer more than once.
        for i in 0..40u8 {
            let text = [b'A' + i % 26; 40];
            b.field(43, &text).field(11, &[b'0' + i % 10; 6]);
        }
        b.field(2, b"4111111111111111").field(48, b"0101I");
        let msg = b.build().unwrap();
        assert_eq!(msg.field(43), Some(&[b'A' + 39 % 26; 40][..]));
        assert_eq!(msg.field(11), Some(&b"999999"[..]));
        assert_eq!(msg.field(2), Some(&b"4111111111111111"[..]));
        assert_eq!(msg.de48().unwrap().get(1), Some(&b"I"[..]));
        assert_eq!(Message::decode(msg.as_bytes().clone()).unwrap(), msg);
    }

    /// A dialect whose LL field allows more than 99 bytes: its prefixes cannot be read back.
    static LOSSY: Spec = Spec::new(
        "lossy-test",
        crate::spec::Prefix::Ascii,
        &[
            crate::spec::FieldSpec {
                number: 2,
                name: "long LL",
                charset: crate::spec::Charset::Ans,
                length: crate::spec::Length::LlVar { max: 150 },
                exposure: crate::spec::Exposure::Clear,
                subelements: None,
            },
            crate::spec::FieldSpec {
                number: 3,
                name: "fixed",
                charset: crate::spec::Charset::N,
                length: crate::spec::Length::Fixed(2),
                exposure: crate::spec::Exposure::Clear,
                subelements: None,
            },
        ],
    );

    #[test]
    fn a_dialect_with_lossy_prefixes_indexes_from_the_start() {
        assert!(!LOSSY.prefixes_exact() && ASCII87.prefixes_exact());
        let mut b = MessageBuilder::with_spec(&LOSSY, Mti::AUTH_REQUEST);
        b.field(2, &[b'x'; 120])
            .field(3, b"7")
            .field(2, &[b'y'; 101]);
        let mut out = Vec::new();
        b.encode_into(&mut out).unwrap();
        // The LL prefix says 01 for 101 bytes; the pieces still come out whole and in order.
        assert_eq!(&out[12..14], b"01");
        assert_eq!(&out[14..115], &[b'y'; 101][..]);
        assert_eq!(&out[115..], b"07");
    }

    #[test]
    fn subelement_faults_come_in_the_documented_order() {
        let fault = |subs: &[(u8, &[u8])]| {
            MessageBuilder::new(Mti::AUTH_REQUEST)
                .de48(subs)
                .encoded_len()
                .unwrap_err()
        };
        let at = Location::Field(48);
        let sub = |t| Location::Subelement(48, t);
        // The order is judged on the whole list, before any subelement.
        assert_eq!(
            fault(&[(99, b"x"), (1, b"I"), (1, b"I")]),
            EncodeError::SubelementOrder { at }
        );
        assert_eq!(
            fault(&[(1, b"I"), (99, b"x")]),
            EncodeError::Subelement(DecodeError::UnknownSubelement { at: sub(99) })
        );
        assert_eq!(
            fault(&[(1, b"I"), (10, b"12a"), (20, b"5")]),
            EncodeError::Subelement(DecodeError::BadCharacter {
                at: sub(10),
                offset: 2,
                charset: crate::spec::Charset::N
            })
        );
        assert_eq!(
            fault(&[(1, b"II")]),
            EncodeError::Subelement(DecodeError::ValueTooLong {
                at: sub(1),
                len: 2,
                max: 1
            })
        );
        let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
        b.de48(&[(1, b"I"), (10, b"123")]);
        assert_eq!(b.build().unwrap().field(48), Some(&b"0101I1003123"[..]));
    }
}
