//! What the order engine asks of the link and what it gets back, and how each request becomes
//! ISO 8583 fields.
//!
//! Owns the mapping from payment terms (purchase, refund, credential-on-file, 3-D Secure) to
//! DE 3, 22, 25 and 48. It must never keep a PAN or a CVC beyond building one frame: they are
//! borrowed here and copied only into the builder's zeroizing arena.

use card::{Cvc, Expiry, Pan};
use iso8583::{Amount, MessageBuilder, MitReason, Mti, ResponseCode, Rrn, Stan, tag};
use serde::{Deserialize, Serialize};

use super::config::{AcquirerId, TerminalId};
use super::saf::PendingReversal;
use super::trace::Timestamp;

/// What kind of money movement an authorization is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    /// 0100: authorization only (two-stage; completed later by a 0220 or cancelled by a 0400).
    Authorization,
    /// 0200 with DE 3 = 000000: one-stage purchase.
    Purchase,
    /// 0200 with DE 3 = 200000: money back to the card.
    Refund,
}

impl TransactionKind {
    pub fn mti(self) -> Mti {
        match self {
            TransactionKind::Authorization => Mti::AUTH_REQUEST,
            TransactionKind::Purchase | TransactionKind::Refund => Mti::FINANCIAL_REQUEST,
        }
    }

    pub fn processing_code(self) -> ProcessingCode {
        match self {
            TransactionKind::Authorization | TransactionKind::Purchase => {
                ProcessingCode(*b"000000")
            }
            TransactionKind::Refund => ProcessingCode(*b"200000"),
        }
    }
}

/// DE 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingCode(pub [u8; 6]);

/// DE 49: ISO 4217 numeric currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency(u16);

impl Currency {
    pub const RUB: Currency = Currency(643);
    pub const USD: Currency = Currency(840);
    pub const EUR: Currency = Currency(978);

    pub fn new(code: u16) -> Option<Currency> {
        (1..=999).contains(&code).then_some(Currency(code))
    }

    pub fn code(self) -> u16 {
        self.0
    }

    fn ascii(self) -> [u8; 3] {
        let c = self.0;
        [
            b'0' + (c / 100 % 10) as u8,
            b'0' + (c / 10 % 10) as u8,
            b'0' + (c % 10) as u8,
        ]
    }
}

/// DE 48.03: the network's ID of a first-use transaction, which later MITs quote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkTxnId(String);

impl NetworkTxnId {
    pub fn parse(s: &str) -> Option<NetworkTxnId> {
        ((1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| NetworkTxnId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// DE 38.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalCode([u8; 6]);

impl ApprovalCode {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// How a stored credential is used (DE 48.01/02/03, DE 22, DE 25). An MIT cannot be built
/// without the network ID of the first use it hangs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOnFile {
    /// A one-off payment with a keyed card, nothing stored.
    None,
    /// `I`: first use, the card is being stored with the cardholder's consent.
    FirstUse,
    /// `C`: a later payment started by the cardholder (One Click, Token Pay).
    Cardholder,
    /// `M`: a later payment started by the merchant.
    Merchant {
        reason: MitReason,
        original: NetworkTxnId,
    },
}

/// The 3-D Secure result of a cardholder's authentication at the ACS (DE 48.20-23). ECI `07`
/// without a CAVV is how a merchant that disabled 3-D Secure for the order says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDs {
    /// `05` authenticated, `06` attempted, `07` not authenticated.
    pub eci: String,
    /// Base64, 28 characters.
    pub cavv: Option<String>,
    pub version: Option<String>,
    /// UUID, 36 characters.
    pub ds_transaction_id: Option<String>,
}

/// An opaque reference the link can turn back into a PAN through [`super::CardResolver`] (the
/// vault token, for the authorizer): store-and-forward keeps this, never the PAN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardRef(pub String);

/// DE 42 (card acceptor ID) and, optionally, DE 43 and DE 18.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub id: String,
    pub name_location: Option<String>,
    pub category_code: Option<u16>,
}

/// A 0100 or 0200. Borrowed card data lives only until the frame is encoded.
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    pub kind: TransactionKind,
    pub pan: &'a Pan,
    pub expiry: Expiry,
    pub cvc: Option<&'a Cvc>,
    /// How to find the PAN again if this request has to be reversed from store-and-forward.
    pub card: CardRef,
    pub amount: Amount,
    pub currency: Currency,
    pub cof: CredentialOnFile,
    pub three_ds: Option<ThreeDs>,
    pub merchant: Merchant,
}

/// The identity of a request on the network: what a later 0220 or 0400 quotes in DE 90.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRef {
    pub mti: u16,
    pub stan: u32,
    /// DE 7, `MMDDhhmmss`.
    pub transmission: String,
    pub rrn: String,
    pub amount: u64,
    pub processing_code: ProcessingCode,
    pub currency: Currency,
    pub merchant: Merchant,
    pub card: CardRef,
}

impl TransactionRef {
    /// DE 90: original MTI, STAN, DE 7, acquirer (right-justified, zero-padded to 11), 11 zeros.
    pub fn original_data_elements(&self, acquirer: &AcquirerId) -> String {
        format!(
            "{:04}{:06}{}{:0>11}{}",
            self.mti,
            self.stan,
            self.transmission,
            acquirer.as_str(),
            "00000000000"
        )
    }
}

/// An authorization with its trace numbers reserved and not yet sent (see `Link::prepare`).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) trace: Trace,
    pub(crate) reference: TransactionRef,
}

impl Prepared {
    /// What the request will be known by on the network, and what a reversal of it quotes.
    pub fn reference(&self) -> &TransactionRef {
        &self.reference
    }
}

/// What became of a reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalState {
    /// The network answered the 0400 (or a 0420/0421 with 0430).
    Acknowledged,
    /// No answer yet: it is in the persistent store-and-forward queue, repeated until a 0430.
    Queued,
}

/// The answer to an authorization, as far as money is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Approved {
        reference: TransactionRef,
        approval_code: ApprovalCode,
        /// Present on an approved first use (DE 48.03): later MITs quote it.
        network_txn_id: Option<NetworkTxnId>,
    },
    Declined {
        reference: TransactionRef,
        code: ResponseCode,
    },
    /// No answer in time (or the connection died under it): the link reversed it. The payment
    /// did not happen, whatever the network thought for a moment.
    TimedOutReversed {
        reference: TransactionRef,
        reversal: ReversalState,
    },
}

impl LinkOutcome {
    pub fn reference(&self) -> &TransactionRef {
        match self {
            LinkOutcome::Approved { reference, .. }
            | LinkOutcome::Declined { reference, .. }
            | LinkOutcome::TimedOutReversed { reference, .. } => reference,
        }
    }
}

/// A 0220: completes a Delayed authorization for the final amount (at most the authorized one).
#[derive(Debug)]
pub struct CompletionRequest<'a> {
    pub pan: &'a Pan,
    pub expiry: Expiry,
    pub amount: Amount,
    pub original: &'a TransactionRef,
}

/// The fields every request of the link carries, fixed by configuration.
#[derive(Debug, Clone)]
pub(crate) struct Acceptor {
    pub acquirer: AcquirerId,
    pub terminal: TerminalId,
}

/// Trace numbers given to one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trace {
    pub stan: Stan,
    pub rrn: Rrn,
    pub now: Timestamp,
}

impl AuthorizationRequest<'_> {
    pub(crate) fn reference(&self, trace: &Trace) -> TransactionRef {
        TransactionRef {
            mti: self.kind.mti().value(),
            stan: trace.stan.value(),
            transmission: String::from_utf8_lossy(&trace.now.transmission).into_owned(),
            rrn: trace.rrn.as_str().to_owned(),
            amount: self.amount.0,
            processing_code: self.kind.processing_code(),
            currency: self.currency,
            merchant: self.merchant.clone(),
            card: self.card.clone(),
        }
    }

    pub(crate) fn builder(&self, acceptor: &Acceptor, trace: &Trace) -> MessageBuilder {
        let (entry_mode, condition): (&[u8], &[u8]) = match self.cof {
            CredentialOnFile::None | CredentialOnFile::FirstUse => (b"010", b"59"),
            CredentialOnFile::Cardholder => (b"100", b"59"),
            CredentialOnFile::Merchant { .. } => (b"100", b"08"),
        };
        let mut b = MessageBuilder::new(self.kind.mti());
        b.field(2, self.pan.expose())
            .field(3, &self.kind.processing_code().0)
            .amount(self.amount)
            .field(7, &trace.now.transmission)
            .stan(trace.stan)
            .field(12, &trace.now.local_time)
            .field(13, &trace.now.local_date)
            .field(14, &self.expiry.yymm())
            .field(22, entry_mode)
            .field(25, condition)
            .field(32, acceptor.acquirer.as_str().as_bytes())
            .rrn(trace.rrn)
            .field(41, acceptor.terminal.as_bytes())
            .field(49, &self.currency.ascii());
        merchant_fields(&mut b, &self.merchant);

        let mut de48: Vec<(u8, &[u8])> = Vec::with_capacity(8);
        match &self.cof {
            CredentialOnFile::None => {}
            CredentialOnFile::FirstUse => de48.push((tag::COF_INDICATOR, b"I")),
            CredentialOnFile::Cardholder => de48.push((tag::COF_INDICATOR, b"C")),
            CredentialOnFile::Merchant { reason, original } => {
                de48.push((tag::COF_INDICATOR, b"M"));
                de48.push((tag::MIT_REASON, reason.code()));
                de48.push((tag::NETWORK_TRANSACTION_ID, original.as_str().as_bytes()));
            }
        }
        if let Some(cvc) = self.cvc {
            de48.push((tag::CVC2, cvc.expose()));
        }
        if let Some(t) = &self.three_ds {
            de48.push((tag::ECI, t.eci.as_bytes()));
            let optional = [
                (tag::CAVV, &t.cavv),
                (tag::THREE_DS_VERSION, &t.version),
                (tag::DS_TRANSACTION_ID, &t.ds_transaction_id),
            ];
            for (tag, value) in optional {
                if let Some(v) = value {
                    de48.push((tag, v.as_bytes()));
                }
            }
        }
        if !de48.is_empty() {
            b.de48(&de48);
        }
        b
    }
}

fn merchant_fields(b: &mut MessageBuilder, m: &Merchant) {
    b.field(42, m.id.as_bytes());
    if let Some(n) = &m.name_location {
        b.field(43, n.as_bytes());
    }
    if let Some(mcc) = m.category_code {
        b.field(18, format!("{mcc:04}").as_bytes());
    }
}

/// A 0220 for `req`.
pub(crate) fn completion_builder(
    req: &CompletionRequest<'_>,
    acceptor: &Acceptor,
    trace: &Trace,
) -> MessageBuilder {
    let o = req.original;
    let mut b = MessageBuilder::new(Mti::COMPLETION_ADVICE);
    b.field(2, req.pan.expose())
        .field(3, &o.processing_code.0)
        .amount(req.amount)
        .field(7, &trace.now.transmission)
        .stan(trace.stan)
        .field(14, &req.expiry.yymm())
        .field(32, acceptor.acquirer.as_str().as_bytes())
        .field(37, o.rrn.as_bytes())
        .field(41, acceptor.terminal.as_bytes())
        .field(49, &o.currency.ascii())
        .field(90, o.original_data_elements(&acceptor.acquirer).as_bytes());
    merchant_fields(&mut b, &o.merchant);
    b
}

/// A 0400, 0420 or 0421 for a queued reversal: in full, or partial with DE 95 carrying the amount
/// that stays authorized (DE 4 stays the original amount). `pan` is absent only when the card is
/// gone: the network still finds the original by DE 90 and DE 37.
pub(crate) fn reversal_builder(
    mti: Mti,
    reversal: &PendingReversal,
    pan: Option<&Pan>,
    acceptor: &Acceptor,
    trace: &Trace,
) -> MessageBuilder {
    let original = &reversal.original;
    let mut b = MessageBuilder::new(mti);
    if let Some(pan) = pan {
        b.field(2, pan.expose());
    }
    b.field(3, &original.processing_code.0)
        .amount(Amount(original.amount))
        .field(7, &trace.now.transmission)
        .stan(trace.stan)
        .field(32, acceptor.acquirer.as_str().as_bytes())
        .field(37, original.rrn.as_bytes())
        .field(41, acceptor.terminal.as_bytes())
        .field(49, &original.currency.ascii())
        .field(
            90,
            original
                .original_data_elements(&acceptor.acquirer)
                .as_bytes(),
        );
    if let Some(remaining) = reversal.remaining {
        // Transaction and settlement amounts (same currency here), then two zero fees.
        b.field(
            95,
            format!("{remaining:012}{remaining:012}C00000000C00000000").as_bytes(),
        );
    }
    merchant_fields(&mut b, &original.merchant);
    b
}

/// A 0800 with DE 70 = `code` (001 sign-on, 301 echo).
pub(crate) fn network_builder(code: &[u8; 3], trace: &Trace) -> MessageBuilder {
    let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
    b.field(7, &trace.now.transmission)
        .stan(trace.stan)
        .field(70, code);
    b
}

/// Reads the parts of an 0110/0210 the order engine needs.
pub(crate) fn outcome_of(response: &iso8583::Message, reference: TransactionRef) -> LinkOutcome {
    let code = response
        .response_code()
        .unwrap_or(ResponseCode::FORMAT_ERROR);
    if !code.is_approved() {
        return LinkOutcome::Declined { reference, code };
    }
    let mut approval = [b' '; 6];
    if let Some(a) = response.approval_code() {
        let n = a.len().min(6);
        approval[..n].copy_from_slice(&a[..n]);
    }
    let network_txn_id = response
        .de48()
        .and_then(|d| d.network_transaction_id())
        .and_then(|id| std::str::from_utf8(id).ok())
        .and_then(NetworkTxnId::parse);
    LinkOutcome::Approved {
        reference,
        approval_code: ApprovalCode(approval),
        network_txn_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::trace::{RrnSequence, StanSequence};

    fn acceptor() -> Acceptor {
        Acceptor {
            acquirer: AcquirerId::parse("4321").unwrap(),
            terminal: TerminalId::parse("T1").unwrap(),
        }
    }

    #[test]
    fn authorization_fields_follow_the_spec() {
        let pan = Pan::parse("5555555555554444").unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let now = Timestamp::now();
        let trace = Trace {
            stan: StanSequence::starting_at(0).next(),
            rrn: RrnSequence::starting_at(0).next(&now),
            now,
        };
        let req = AuthorizationRequest {
            kind: TransactionKind::Refund,
            pan: &pan,
            expiry: Expiry::parse("12/30").unwrap(),
            cvc: Some(&cvc),
            card: CardRef("tok".into()),
            amount: Amount(1234),
            currency: Currency::RUB,
            cof: CredentialOnFile::Merchant {
                reason: MitReason::Recurring,
                original: NetworkTxnId::parse("NT1").unwrap(),
            },
            three_ds: None,
            merchant: Merchant {
                id: "452739".into(),
                name_location: None,
                category_code: Some(5999),
            },
        };
        let msg = req.builder(&acceptor(), &trace).build().unwrap();
        assert_eq!(msg.mti(), Mti::FINANCIAL_REQUEST);
        assert_eq!(msg.field(3), Some(&b"200000"[..]));
        assert_eq!(msg.field(22), Some(&b"100"[..]));
        assert_eq!(msg.field(25), Some(&b"08"[..]));
        assert_eq!(msg.field(49), Some(&b"643"[..]));
        assert_eq!(msg.field(18), Some(&b"5999"[..]));
        let de48 = msg.de48().unwrap();
        assert_eq!(de48.get(tag::COF_INDICATOR), Some(&b"M"[..]));
        assert_eq!(de48.get(tag::NETWORK_TRANSACTION_ID), Some(&b"NT1"[..]));
        assert!(!format!("{msg:?}").contains("5555555555554444"));

        let mut reversal = PendingReversal {
            original: req.reference(&trace),
            remaining: None,
            attempts: 1,
        };
        let build = |r: &PendingReversal| {
            reversal_builder(Mti::REVERSAL_ADVICE, r, None, &acceptor(), &trace)
                .build()
                .unwrap()
        };
        let rev = build(&reversal);
        let de90 = rev.field(90).unwrap();
        assert_eq!(de90.len(), 42);
        assert!(de90.starts_with(b"0200"));
        assert_eq!(&de90[20..31], b"00000004321");
        assert!(rev.field(2).is_none());
        assert!(rev.field(95).is_none(), "a full reversal");
        reversal.remaining = Some(234);
        let partial = build(&reversal);
        assert_eq!(
            partial.amount(),
            Some(Amount(1234)),
            "DE 4 stays the original's"
        );
        let de95 = partial.field(95).unwrap();
        assert_eq!(de95.len(), 42);
        assert!(de95.starts_with(b"000000000234000000000234"));
    }
}
