//! Builders for the message kinds of `spec/iso8583.md`, each filling the fields that kind must
//! carry, so a caller cannot forget DE 90 on a reversal or DE 14 on a completion.

use crate::Message;
use crate::builder::MessageBuilder;
use crate::types::{Amount, Mti, Rrn, Stan};

/// DE 3 processing codes the link uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingCode {
    /// `000000`: goods and services.
    Purchase,
    /// `200000`: refund (return) to the card.
    Refund,
}

impl ProcessingCode {
    pub fn code(self) -> &'static [u8; 6] {
        match self {
            ProcessingCode::Purchase => b"000000",
            ProcessingCode::Refund => b"200000",
        }
    }
}

/// DE 22: how the card data reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// `010`: keyed in by the cardholder.
    Keyed,
    /// `100`: credential on file.
    CredentialOnFile,
}

impl EntryMode {
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
    SignOn,
    SignOff,
    Echo,
}

impl NetworkCode {
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
    pub transmission: [u8; 10],
    pub stan: Stan,
    /// DE 32.
    pub acquirer: &'a [u8],
    /// DE 41.
    pub terminal: &'a [u8],
    /// DE 42.
    pub merchant: &'a [u8],
}

/// The fields of a card request (0100 or 0200) that are not about its origin.
pub struct CardRequest<'a> {
    pub pan: &'a [u8],
    pub processing: ProcessingCode,
    pub amount: Amount,
    /// DE 12 `hhmmss` and DE 13 `MMDD`, local time of the merchant.
    pub local_time: [u8; 6],
    pub local_date: [u8; 4],
    /// DE 14, `YYMM`.
    pub expiry: [u8; 4],
    pub entry_mode: EntryMode,
    pub condition: Condition,
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

/// DE 90 of a message that refers to `original`: its MTI, STAN, DE 7 and acquirer, then zeros.
pub fn original_data(original: &Message) -> [u8; 42] {
    let mut out = [b'0'; 42];
    out[..4].copy_from_slice(&original.mti().to_ascii());
    if let Some(stan) = original.field(11) {
        out[4..10].copy_from_slice(stan);
    }
    if let Some(t) = original.field(7) {
        out[10..20].copy_from_slice(t);
    }
    if let Some(acq) = original.field(32).filter(|a| a.len() <= 11) {
        out[31 - acq.len()..31].copy_from_slice(acq);
    }
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
            .field(7, &origin.transmission)
            .stan(origin.stan)
            .field(12, &request.local_time)
            .field(13, &request.local_date)
            .field(14, &request.expiry)
            .field(22, request.entry_mode.code())
            .field(25, request.condition.code())
            .field(32, origin.acquirer)
            .rrn(request.rrn)
            .field(41, origin.terminal)
            .field(42, origin.merchant);
        if !request.additional.is_empty() {
            b.de48(request.additional);
        }
        b.field(
            49,
            &crate::types::ascii_digits::<3>(u64::from(request.currency)),
        );
        b
    }

    /// A message about `original` (a reversal, a reversal advice, a completion): its card,
    /// RRN and currency, `amount` (the original's when `None`), our new origin, DE 14 when
    /// `expiry` asks for it, and DE 90 pointing back at the original.
    fn referring(
        mti: Mti,
        original: &Message,
        origin: &Origin<'_>,
        amount: Option<Amount>,
        expiry: bool,
    ) -> MessageBuilder {
        let mut b = MessageBuilder::new(mti);
        for n in [2, 3] {
            if let Some(v) = original.field(n) {
                b.field(n, v);
            }
        }
        match (amount, original.field(4)) {
            (Some(a), _) => b.amount(a),
            (None, Some(v)) => b.field(4, v),
            (None, None) => &mut b,
        };
        b.field(7, &origin.transmission).stan(origin.stan);
        if let Some(v) = original.field(14).filter(|_| expiry) {
            b.field(14, v);
        }
        b.field(32, origin.acquirer);
        if let Some(v) = original.field(37) {
            b.field(37, v);
        }
        b.field(41, origin.terminal).field(42, origin.merchant);
        if let Some(v) = original.field(49) {
            b.field(49, v);
        }
        b.field(90, &original_data(original));
        b
    }

    /// 0400 reversing `original` in full.
    pub fn reversal(original: &Message, origin: &Origin<'_>) -> MessageBuilder {
        MessageBuilder::referring(Mti::REVERSAL_REQUEST, original, origin, None, false)
    }

    /// 0420, or 0421 when `repeat`, from store-and-forward.
    pub fn reversal_advice(
        original: &Message,
        origin: &Origin<'_>,
        repeat: bool,
    ) -> MessageBuilder {
        let mti = if repeat {
            Mti::REVERSAL_ADVICE_REPEAT
        } else {
            Mti::REVERSAL_ADVICE
        };
        MessageBuilder::referring(mti, original, origin, None, false)
    }

    /// 0220 confirming a Delayed authorization for `amount` (at most what was authorized).
    pub fn completion(original: &Message, amount: Amount, origin: &Origin<'_>) -> MessageBuilder {
        MessageBuilder::referring(Mti::COMPLETION_ADVICE, original, origin, Some(amount), true)
    }

    /// 0800 network management.
    pub fn network(code: NetworkCode, transmission: [u8; 10], stan: Stan) -> MessageBuilder {
        let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
        b.field(7, &transmission).stan(stan).field(70, code.code());
        b
    }
}
