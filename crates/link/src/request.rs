//! The link's public vocabulary: what the order engine asks of it (an authorization, a
//! completion) and what it gets back (an outcome quoting a [`TransactionRef`]).
//!
//! Owns the meaning of each term and what it accepts, nothing of ISO 8583 field numbers (that is
//! `fields`). Every type a fake of the network needs to answer with has a public constructor. It
//! must never keep a PAN or a CVC: requests borrow them, and references name the card by
//! [`CardRef`], never by number.

use std::fmt;

use card::{CustomerNumber, Cvc, Expiry, MerchantId, Pan, PaymentRef, Token};
use iso8583::{
    Amount, Cavv, DsTransactionId, Eci, MitReason, Mti, ProcessingCode, ResponseCode, Rrn, Stan,
    TransmissionTime,
};
use serde::{Deserialize, Serialize};

use crate::persisted;

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
    /// The MTI this kind is sent as: 0100 for an authorization, 0200 otherwise.
    pub fn mti(self) -> Mti {
        match self {
            TransactionKind::Authorization => Mti::AUTH_REQUEST,
            TransactionKind::Purchase | TransactionKind::Refund => Mti::FINANCIAL_REQUEST,
        }
    }

    /// DE 3 of this kind: purchase, or refund for money back to the card.
    pub fn processing_code(self) -> ProcessingCode {
        match self {
            TransactionKind::Authorization | TransactionKind::Purchase => ProcessingCode::Purchase,
            TransactionKind::Refund => ProcessingCode::Refund,
        }
    }
}

/// DE 49: ISO 4217 numeric currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency(u16);

impl Currency {
    /// Russian rouble, 643.
    pub const RUB: Currency = Currency(643);
    /// US dollar, 840.
    pub const USD: Currency = Currency(840);
    /// Euro, 978.
    pub const EUR: Currency = Currency(978);

    /// Any three-digit code `1..=999`; whether the network accepts it is the network's to say.
    pub fn new(code: u16) -> Option<Currency> {
        (1..=999).contains(&code).then_some(Currency(code))
    }

    /// The numeric code as DE 49 carries it.
    pub fn code(self) -> u16 {
        self.0
    }
}

/// DE 48.03: the network's ID of a first-use transaction, which later MITs quote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkTxnId(String);

impl NetworkTxnId {
    /// One to fifteen ASCII letters or digits, as DE 48.03 allows.
    pub fn parse(s: &str) -> Option<NetworkTxnId> {
        ((1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| NetworkTxnId(s.to_owned()))
    }

    /// The ID as the network gave it, for storing with the saved card.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// DE 38: the issuer's approval code, six letters, digits or spaces (space-padded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalCode([u8; 6]);

impl ApprovalCode {
    /// Up to six letters, digits or spaces, padded with spaces to six.
    pub fn parse(code: &str) -> Option<ApprovalCode> {
        let bytes = code.as_bytes();
        if bytes.len() > 6
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b' ')
        {
            return None;
        }
        let mut padded = [b' '; 6];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(ApprovalCode(padded))
    }

    /// DE 38 as the codec validated it (`an`, six), cut or padded to six.
    pub(crate) fn of_field(field: Option<&[u8]>) -> ApprovalCode {
        let mut padded = [b' '; 6];
        if let Some(a) = field {
            let n = a.len().min(6);
            padded[..n].copy_from_slice(&a[..n]);
        }
        ApprovalCode(padded)
    }

    /// The six characters of DE 38, trailing spaces included.
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
        /// DE 48.02: why the merchant started it.
        reason: MitReason,
        /// DE 48.03: the network ID of the approved first use this payment hangs off.
        original: NetworkTxnId,
    },
}

/// The 3-D Secure result of a cardholder's authentication at the ACS (DE 48.20-23). ECI `07`
/// without a CAVV is how a merchant that disabled 3-D Secure for the order says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDs {
    /// DE 48.20: how far the cardholder was authenticated.
    pub eci: Eci,
    /// DE 48.21: the ACS's proof of the authentication; absent when 3-D Secure was not done.
    pub cavv: Option<Cavv>,
    /// The protocol version the ACS spoke (`2.2.0`).
    pub version: Option<String>,
    /// DE 48.23: the directory server's ID of the authentication, when there was one.
    pub ds_transaction_id: Option<DsTransactionId>,
}

/// The card of a request, as the link can turn it back into a PAN through
/// [`crate::CardResolver`] (the vault, for the authorizer): store-and-forward keeps this, never
/// the PAN. A saved card is named by its merchant, the merchant's customer and the vault's token.
/// Its names are kept inline, so building, cloning and comparing one never allocates: every
/// reference of a payment carries one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardRef {
    /// The merchant the card was saved for.
    pub merchant: MerchantId,
    /// The merchant's customer the card belongs to.
    pub customer: CustomerNumber,
    /// The vault's token for the card, never the PAN.
    pub token: Token,
    /// The payment the card was detokenized for: the vault gives the card again for a reversal
    /// of that payment only. `None` in records queued before payments were bound (the vault
    /// then refuses, and the reversal goes without DE 2).
    pub payment: Option<PaymentRef>,
}

/// `<merchant> <customer> <token>[ <payment>]`: no part may hold a space, so the form is
/// unambiguous. It is how store-and-forward records have always named the card; the payment is
/// an optional fourth part, so older records still read.
impl fmt::Display for CardRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.merchant.as_str(),
            self.customer.as_str(),
            self.token
        )?;
        match &self.payment {
            Some(p) => write!(f, " {}", p.as_str()),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for CardRef {
    type Err = CardRefError;

    fn from_str(s: &str) -> Result<CardRef, CardRefError> {
        let mut parts = s.split(' ');
        let mut next = || parts.next().ok_or(CardRefError::Parts);
        let card = CardRef {
            merchant: MerchantId::parse(next()?)?,
            customer: CustomerNumber::parse(next()?)?,
            token: Token::parse(next()?)?,
            payment: parts.next().map(PaymentRef::parse).transpose()?,
        };
        match parts.next() {
            None => Ok(card),
            Some(_) => Err(CardRefError::Parts),
        }
    }
}

/// Why text is not a [`CardRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardRefError {
    /// The text is not three or four parts separated by single spaces: a corrupt record.
    #[error(
        "a card reference is a merchant, a customer, a token and optionally a payment, separated by one space"
    )]
    Parts,
    /// One part is not a valid merchant, customer, token or payment name.
    #[error("card reference part")]
    Name(#[source] card::NameError),
}

impl From<card::NameError> for CardRefError {
    fn from(e: card::NameError) -> CardRefError {
        CardRefError::Name(e)
    }
}

/// DE 42 (card acceptor ID) and, optionally, DE 43 and DE 18.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    /// DE 42: the card acceptor ID the network knows the merchant by.
    #[serde(with = "persisted::merchant_id")]
    pub id: MerchantId,
    /// DE 43: the merchant's name and location as the cardholder's statement shows it.
    pub name_location: Option<String>,
    /// DE 18: the merchant category code, which issuer rules may decline on.
    pub category_code: Option<u16>,
}

/// A 0100 or 0200. Borrowed card data lives only until the frame is encoded.
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    /// Authorization only, purchase or refund: decides the MTI and DE 3.
    pub kind: TransactionKind,
    /// DE 2; borrowed, copied only into the frame's zeroizing buffer, never kept or logged.
    pub pan: &'a Pan,
    /// DE 14, `YYMM`; an expired card is declined with 54.
    pub expiry: Expiry,
    /// DE 48.10; borrowed like the PAN and never stored. Absent for an MIT and a Token Pay CIT.
    pub cvc: Option<&'a Cvc>,
    /// How to find the PAN again if this request has to be reversed from store-and-forward.
    pub card: CardRef,
    /// DE 4, in minor units of `currency`.
    pub amount: Amount,
    /// DE 49.
    pub currency: Currency,
    /// Whether and how a stored credential is used: DE 22, DE 25 and DE 48.01-03.
    pub cof: CredentialOnFile,
    /// The 3-D Secure result, when the cardholder went through the ACS.
    pub three_ds: Option<ThreeDs>,
    /// DE 42, 43 and 18 of the merchant being paid.
    pub merchant: Merchant,
}

/// The identity of a request on the network: what a later 0220 or 0400 quotes in DE 90. Written
/// in store-and-forward records in the shape those records have always had (`persisted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRef {
    /// The MTI the request went out as (0100 or 0200).
    #[serde(with = "persisted::mti")]
    pub mti: Mti,
    /// DE 11 the request was sent under.
    #[serde(with = "persisted::stan")]
    pub stan: Stan,
    /// DE 7 of the request; with the STAN, how DE 90 names it.
    #[serde(with = "persisted::transmission")]
    pub transmission: TransmissionTime,
    /// DE 37, repeated by every follow-up.
    #[serde(with = "persisted::rrn")]
    pub rrn: Rrn,
    /// DE 4 of the request: what a reversal undoes and a completion may not exceed.
    #[serde(with = "persisted::amount")]
    pub amount: Amount,
    /// DE 3 of the request, repeated by every follow-up.
    #[serde(with = "persisted::processing_code")]
    pub processing_code: ProcessingCode,
    /// DE 49 of the request.
    pub currency: Currency,
    /// The merchant of the request, repeated by every follow-up.
    pub merchant: Merchant,
    /// How to find the PAN again for a follow-up; never the PAN itself.
    #[serde(with = "persisted::card_ref")]
    pub card: CardRef,
}

impl AuthorizationRequest<'_> {
    /// What this request will be known by on the network, without its card data.
    pub fn intent(&self) -> Intent<'_> {
        Intent {
            kind: self.kind,
            card: &self.card,
            amount: self.amount,
            currency: self.currency,
            merchant: &self.merchant,
        }
    }
}

/// What an authorization will be known by, before its card data is at hand: everything its
/// [`TransactionRef`] holds but the trace numbers. A caller can reserve those numbers and make
/// the reference durable while it still fetches the PAN (`Link::prepare`).
#[derive(Debug, Clone, Copy)]
pub struct Intent<'a> {
    /// Authorization only, purchase or refund.
    pub kind: TransactionKind,
    /// How to find the PAN again.
    pub card: &'a CardRef,
    /// DE 4.
    pub amount: Amount,
    /// DE 49.
    pub currency: Currency,
    /// The merchant being paid.
    pub merchant: &'a Merchant,
}

impl Intent<'_> {
    /// What the request is known by when sent under `stan`, `rrn` and `transmission`.
    pub(crate) fn reference(
        &self,
        stan: Stan,
        rrn: Rrn,
        transmission: TransmissionTime,
    ) -> TransactionRef {
        TransactionRef {
            mti: self.kind.mti(),
            stan,
            transmission,
            rrn,
            amount: self.amount,
            processing_code: self.kind.processing_code(),
            currency: self.currency,
            merchant: self.merchant.clone(),
            card: self.card.clone(),
        }
    }
}

/// An authorization with its trace numbers reserved and not yet sent (see `Link::prepare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    reference: TransactionRef,
}

impl Prepared {
    /// The request that will go out as `reference` (its MTI, STAN, RRN and DE 7). A fake of the
    /// network makes its own; the link makes them in `Link::prepare`.
    pub fn new(reference: TransactionRef) -> Prepared {
        Prepared { reference }
    }

    /// What the request will be known by on the network, and what a reversal of it quotes.
    pub fn reference(&self) -> &TransactionRef {
        &self.reference
    }

    /// The reference, for a caller that no longer needs the reservation.
    pub fn into_reference(self) -> TransactionRef {
        self.reference
    }

    /// Whether `req` is the request these trace numbers were reserved for.
    pub(crate) fn is_for(&self, req: &AuthorizationRequest<'_>) -> bool {
        // Field by field rather than against `req.intent().reference(..)`, which would build a
        // second reference (and clone the merchant) only to compare it. Destructured in full, so a
        // new field of the reference cannot be left out of the comparison.
        let TransactionRef {
            mti,
            stan: _,
            transmission: _,
            rrn: _,
            amount,
            processing_code,
            currency,
            merchant,
            card,
        } = &self.reference;
        *mti == req.kind.mti()
            && *processing_code == req.kind.processing_code()
            && *amount == req.amount
            && *currency == req.currency
            && *merchant == req.merchant
            && *card == req.card
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
    /// The network approved (DE 39 `00`): the money is authorized.
    Approved {
        /// What a completion or reversal of it quotes.
        reference: TransactionRef,
        /// DE 38, the issuer's approval code.
        approval_code: ApprovalCode,
        /// Present on an approved first use (DE 48.03): later MITs quote it.
        network_txn_id: Option<NetworkTxnId>,
    },
    /// The network answered with a code other than `00`: nothing moved.
    Declined {
        /// What the request was known by.
        reference: TransactionRef,
        /// DE 39, the reason for the decline.
        code: ResponseCode,
    },
    /// No answer in time (or the connection died under it): the link reversed it. The payment
    /// did not happen, whatever the network thought for a moment.
    TimedOutReversed {
        /// What the request was known by, and what its reversal quoted.
        reference: TransactionRef,
        /// Whether the reversal was already acknowledged or is queued for store-and-forward.
        reversal: ReversalState,
    },
}

impl LinkOutcome {
    /// The request's reference, whatever the outcome.
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
    /// DE 2; borrowed, copied only into the frame's zeroizing buffer.
    pub pan: &'a Pan,
    /// DE 14, mandatory on a 0220.
    pub expiry: Expiry,
    /// DE 4, the final amount; at most what was authorized.
    pub amount: Amount,
    /// The authorization being completed, quoted in DE 90.
    pub original: &'a TransactionRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_ref_reads_back_from_its_text_and_refuses_anything_else() {
        let mut card = CardRef {
            merchant: MerchantId::parse("452739").unwrap(),
            customer: CustomerNumber::parse("cust-42@example.com").unwrap(),
            token: Token::random(),
            payment: None,
        };
        assert_eq!(card.to_string().parse::<CardRef>(), Ok(card.clone()));
        card.payment = Some(PaymentRef::parse("1234567890123456.1").unwrap());
        assert_eq!(card.to_string().parse::<CardRef>(), Ok(card.clone()));
        assert_eq!(
            "452739 cust-42".parse::<CardRef>(),
            Err(CardRefError::Parts)
        );
        assert_eq!(
            format!("{card} extra").parse::<CardRef>(),
            Err(CardRefError::Parts),
            "trailing parts are refused"
        );
    }

    #[test]
    fn an_approval_code_is_padded_to_six() {
        assert_eq!(ApprovalCode::parse("A1").unwrap().as_str(), "A1    ");
        assert!(ApprovalCode::parse("1234567").is_none());
        assert!(ApprovalCode::parse("A-1").is_none());
    }
}
