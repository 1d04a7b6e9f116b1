//! Builders for the message kinds of `spec/iso8583.md`, each filling the fields that kind must
//! carry, so a caller cannot forget DE 90 on a reversal or DE 14 on a completion.
//!
//! Owns the codes of DE 3, 22, 25 and 70 and the layout of DE 90 and DE 95: every sender of the
//! workspace (the link, the simulator's tests) builds its messages here, so each code is written
//! once. A message about an earlier one takes an [`Original`], the few typed facts DE 90 and the
//! follow-up need, never a decoded message: the sender of a reversal may hold no more than that.
//! Each builder sets its fields in ascending order, so encoding copies the arena once.

use crate::Message;
use crate::builder::MessageBuilder;
use crate::types::{Amount, Mti, ProcessingCode, Rrn, Stan, TransmissionTime, ascii_digits};

/// DE 22: how the card data reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// `010`: keyed in by the cardholder.
    Keyed,
    /// `100`: credential on file.
    CredentialOnFile,
}

impl EntryMode {
    /// The three digits of DE 22.
    pub fn code(self) -> &'static [u8; 3] {
        match self {
            EntryMode::Keyed => b"010",
            EntryMode::CredentialOnFile => b"100",
        }
    }
}

/// DE 25: who is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `59`: e-commerce, the cardholder is on the web.
    Ecommerce,
    /// `08`: merchant-initiated, no cardholder.
    MerchantInitiated,
}

impl Condition {
    /// The two digits of DE 25.
    pub fn code(self) -> &'static [u8; 2] {
        match self {
            Condition::Ecommerce => b"59",
            Condition::MerchantInitiated => b"08",
        }
    }
}

/// DE 70 codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkCode {
    /// `001`: sign-on; a connection carries no traffic until it is answered with `00`.
    SignOn,
    /// `002`: sign-off before a connection is closed on purpose.
    SignOff,
    /// `301`: echo test, keeping a quiet connection alive and proving the peer still answers.
    Echo,
}

impl NetworkCode {
    /// The three digits of DE 70.
    pub fn code(self) -> &'static [u8; 3] {
        match self {
            NetworkCode::SignOn => b"001",
            NetworkCode::SignOff => b"002",
            NetworkCode::Echo => b"301",
        }
    }
}

/// Where and when a message is sent from: the fields every request of ours carries.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// DE 7, `MMDDhhmmss` in UTC.
    pub transmission: TransmissionTime,
    /// DE 11, the trace number the answer is matched by.
    pub stan: Stan,
    /// DE 32.
    pub acquirer: &'a [u8],
    /// DE 41.
    pub terminal: &'a [u8],
    /// DE 42.
    pub merchant: &'a [u8],
    /// DE 43, when the merchant's name and location are known.
    pub merchant_name: Option<&'a [u8]>,
    /// DE 18, the merchant category code, when known.
    pub merchant_category: Option<u16>,
}

/// What a message about an earlier request (a completion, a reversal) needs of that request:
/// DE 90's parts and the fields the follow-up repeats. Small and typed, so a sender can keep it
/// (the link's store-and-forward does) without keeping the original message and its PAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original<'a> {
    /// The original's MTI, the first part of DE 90.
    pub mti: Mti,
    /// The original's STAN (DE 11), in DE 90.
    pub stan: Stan,
    /// The original's DE 7, in DE 90.
    pub transmission: TransmissionTime,
    /// DE 32 of the original.
    pub acquirer: &'a [u8],
    /// The original's DE 3, repeated by the follow-up.
    pub processing: ProcessingCode,
    /// The original's DE 4: what a reversal undoes and a completion may not exceed.
    pub amount: Amount,
    /// The original's DE 37, repeated so the network finds the original without the PAN.
    pub rrn: Rrn,
    /// DE 49, ISO 4217 numeric.
    pub currency: u16,
}

impl Original<'_> {
    /// The facts of a decoded request; `None` when one of them is missing or not of this dialect.
    pub fn of(message: &Message) -> Option<Original<'_>> {
        let currency = crate::types::parse_digits(message.field(49)?)?;
        Some(Original {
            mti: message.mti(),
            stan: message.stan()?,
            transmission: TransmissionTime::from_ascii(message.transmission_time()?)?,
            acquirer: message.field(32)?,
            processing: ProcessingCode::from_code(message.processing_code()?)?,
            amount: message.amount()?,
            rrn: message.rrn()?,
            currency: u16::try_from(currency).ok()?,
        })
    }
}

/// Which reversal message: the first (0400), or one from store-and-forward (0420, then 0421).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalAttempt {
    /// 0400: the first attempt, sent at once.
    Request,
    /// 0420: the first attempt from store-and-forward.
    Advice,
    /// 0421: every later attempt from store-and-forward.
    AdviceRepeat,
}

impl ReversalAttempt {
    /// The MTI this attempt is sent as.
    pub fn mti(self) -> Mti {
        match self {
            ReversalAttempt::Request => Mti::REVERSAL_REQUEST,
            ReversalAttempt::Advice => Mti::REVERSAL_ADVICE,
            ReversalAttempt::AdviceRepeat => Mti::REVERSAL_ADVICE_REPEAT,
        }
    }
}

/// The fields of a card request (0100 or 0200) that are not about its origin.
pub struct CardRequest<'a> {
    /// DE 2, the card number; borrowed, and masked by this type's `Debug`.
    pub pan: &'a [u8],
    /// DE 3: purchase or refund.
    pub processing: ProcessingCode,
    /// DE 4, in minor units of `currency`.
    pub amount: Amount,
    /// DE 12 `hhmmss`, the merchant's local time.
    pub local_time: [u8; 6],
    /// DE 13 `MMDD`, the merchant's local date.
    pub local_date: [u8; 4],
    /// DE 14, `YYMM`.
    pub expiry: [u8; 4],
    /// DE 22: keyed in or credential on file.
    pub entry_mode: EntryMode,
    /// DE 25: cardholder present (e-commerce) or merchant-initiated.
    pub condition: Condition,
    /// DE 37, the reference later follow-ups (0220, 0400) repeat.
    pub rrn: Rrn,
    /// DE 48 subelements, ascending by tag; empty for none.
    pub additional: &'a [(u8, &'a [u8])],
    /// DE 49, ISO 4217 numeric.
    pub currency: u16,
}

impl std::fmt::Debug for CardRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardRequest")
            .field("pan", &card::mask_digits(self.pan))
            .field("amount", &self.amount)
            .field("rrn", &self.rrn)
            .finish_non_exhaustive()
    }
}

/// DE 90 of a message that refers to `original`: its MTI, STAN, DE 7 and acquirer
/// (right-justified, zero-padded to 11), then eleven zeros.
pub fn original_data(original: &Original<'_>) -> [u8; 42] {
    let mut out = [b'0'; 42];
    out[..4].copy_from_slice(&original.mti.to_ascii());
    out[4..10].copy_from_slice(&original.stan.to_ascii());
    out[10..20].copy_from_slice(original.transmission.as_bytes());
    let acq = original.acquirer;
    if acq.len() <= 11 {
        out[31 - acq.len()..31].copy_from_slice(acq);
    }
    out
}

/// DE 95 of a partial reversal: the amount that stays authorized, as the transaction and the
/// settlement amount (one currency here), then two zero fees.
fn replacement_amounts(remaining: Amount) -> [u8; 42] {
    let mut out = *b"000000000000000000000000C00000000C00000000";
    let digits: [u8; 12] = ascii_digits(remaining.0);
    out[..12].copy_from_slice(&digits);
    out[12..24].copy_from_slice(&digits);
    out
}

impl MessageBuilder {
    // Each kind sets its fields in ascending order, so the arena is the message body as it is
    // and encoding copies it once.

    /// 0100 (two-stage) or 0200 (one-stage or refund) with every mandatory field and DE 48.
    pub fn card_request(
        mti: Mti,
        request: &CardRequest<'_>,
        origin: &Origin<'_>,
    ) -> MessageBuilder {
        let mut b = MessageBuilder::new(mti);
        b.field(2, request.pan)
            .field(3, request.processing.code())
            .amount(request.amount)
            .field(7, origin.transmission.as_bytes())
            .stan(origin.stan)
            .field(12, &request.local_time)
            .field(13, &request.local_date)
            .field(14, &request.expiry);
        if let Some(mcc) = origin.merchant_category {
            b.field(18, &ascii_digits::<4>(u64::from(mcc)));
        }
        b.field(22, request.entry_mode.code())
            .field(25, request.condition.code())
            .field(32, origin.acquirer)
            .rrn(request.rrn)
            .field(41, origin.terminal)
            .field(42, origin.merchant);
        if let Some(name) = origin.merchant_name {
            b.field(43, name);
        }
        if !request.additional.is_empty() {
            b.de48(request.additional);
        }
        b.field(49, &ascii_digits::<3>(u64::from(request.currency)));
        b
    }

    /// A message about `original`: `pan` (DE 2) when known, its processing code, `amount`, our
    /// new origin, DE 14 when `expiry` is given, its RRN and currency, DE 90 pointing back at it
    /// and DE 95 when `replacement` is given.
    #[allow(clippy::too_many_arguments)]
    fn referring(
        mti: Mti,
        original: &Original<'_>,
        pan: Option<&[u8]>,
        expiry: Option<&[u8; 4]>,
        amount: Amount,
        replacement: Option<Amount>,
        origin: &Origin<'_>,
    ) -> MessageBuilder {
        let mut b = MessageBuilder::new(mti);
        if let Some(pan) = pan {
            b.field(2, pan);
        }
        b.field(3, original.processing.code())
            .amount(amount)
            .field(7, origin.transmission.as_bytes())
            .stan(origin.stan);
        if let Some(expiry) = expiry {
            b.field(14, expiry);
        }
        if let Some(mcc) = origin.merchant_category {
            b.field(18, &ascii_digits::<4>(u64::from(mcc)));
        }
        b.field(32, origin.acquirer)
            .rrn(original.rrn)
            .field(41, origin.terminal)
            .field(42, origin.merchant);
        if let Some(name) = origin.merchant_name {
            b.field(43, name);
        }
        b.field(49, &ascii_digits::<3>(u64::from(original.currency)))
            .field(90, &original_data(original));
        if let Some(remaining) = replacement {
            b.field(95, &replacement_amounts(remaining));
        }
        b
    }

    /// A reversal of `original` (0400, 0420 or 0421 by `attempt`): in full, or partial when
    /// `remaining` (the amount that stays authorized, DE 95) is given; DE 4 stays the original's
    /// amount. `pan` is absent only when the card is gone: the network still finds the original
    /// by DE 90 and DE 37.
    pub fn reversal(
        attempt: ReversalAttempt,
        original: &Original<'_>,
        pan: Option<&[u8]>,
        remaining: Option<Amount>,
        origin: &Origin<'_>,
    ) -> MessageBuilder {
        MessageBuilder::referring(
            attempt.mti(),
            original,
            pan,
            None,
            original.amount,
            remaining,
            origin,
        )
    }

    /// 0220 confirming a Delayed authorization for `amount` (at most what was authorized).
    pub fn completion(
        original: &Original<'_>,
        pan: &[u8],
        expiry: &[u8; 4],
        amount: Amount,
        origin: &Origin<'_>,
    ) -> MessageBuilder {
        MessageBuilder::referring(
            Mti::COMPLETION_ADVICE,
            original,
            Some(pan),
            Some(expiry),
            amount,
            None,
            origin,
        )
    }

    /// 0800 network management.
    pub fn network(
        code: NetworkCode,
        transmission: TransmissionTime,
        stan: Stan,
    ) -> MessageBuilder {
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        b.field(7, transmission.as_bytes())
            .stan(stan)
            .field(70, code.code());
        b
    }
}
