//! How the link's requests become ISO 8583 messages, and how an answer becomes an outcome.
//!
//! Owns the mapping from payment terms (purchase, refund, credential-on-file, 3-D Secure) to the
//! message kinds of [`iso8583::kinds`](iso8583::MessageBuilder::card_request), which own the
//! codes of DE 3, 22, 25, 70 and the layout of DE 90 and 95. It must never keep a PAN or a CVC
//! beyond building one frame: they are borrowed here and copied only into the builder's zeroizing
//! arena.

use card::Pan;
use iso8583::{
    CardRequest, Condition, EntryMode, MessageBuilder, Origin, Original, ResponseCode,
    ReversalAttempt, Stan, TransmissionTime, tag,
};

use crate::config::{AcquirerId, TerminalId};
use crate::request::{
    ApprovalCode, AuthorizationRequest, CompletionRequest, CredentialOnFile, LinkOutcome, Merchant,
    NetworkTxnId, TransactionRef,
};
use crate::saf::PendingReversal;
use crate::trace;

/// The fields every request of the link carries, fixed by configuration.
#[derive(Debug, Clone)]
pub(crate) struct Acceptor {
    pub acquirer: AcquirerId,
    pub terminal: TerminalId,
}

impl Acceptor {
    /// Where a request about `merchant` goes out from, under `stan` at `transmission`.
    fn origin<'a>(
        &'a self,
        merchant: &'a Merchant,
        stan: Stan,
        transmission: TransmissionTime,
    ) -> Origin<'a> {
        Origin {
            transmission,
            stan,
            acquirer: self.acquirer.as_str().as_bytes(),
            terminal: self.terminal.as_bytes(),
            merchant: merchant.id.as_str().as_bytes(),
            merchant_name: merchant.name_location.as_deref().map(str::as_bytes),
            merchant_category: merchant.category_code,
        }
    }

    /// DE 90's view of `reference`, a request this link sent (so DE 32 was ours).
    fn original<'a>(&'a self, reference: &TransactionRef) -> Original<'a> {
        Original {
            mti: reference.mti,
            stan: reference.stan,
            transmission: reference.transmission,
            acquirer: self.acquirer.as_str().as_bytes(),
            processing: reference.processing_code,
            amount: reference.amount,
            rrn: reference.rrn,
            currency: reference.currency.code(),
        }
    }

    /// The 0100 or 0200 of `req`, sent as `reference`.
    pub fn authorization(
        &self,
        req: &AuthorizationRequest<'_>,
        reference: &TransactionRef,
    ) -> MessageBuilder {
        let (entry_mode, condition) = match req.cof {
            CredentialOnFile::None | CredentialOnFile::FirstUse => {
                (EntryMode::Keyed, Condition::Ecommerce)
            }
            CredentialOnFile::Cardholder => (EntryMode::CredentialOnFile, Condition::Ecommerce),
            CredentialOnFile::Merchant { .. } => {
                (EntryMode::CredentialOnFile, Condition::MerchantInitiated)
            }
        };
        let mut de48 = Subelements::default();
        match &req.cof {
            CredentialOnFile::None => {}
            CredentialOnFile::FirstUse => de48.push(tag::COF_INDICATOR, b"I"),
            CredentialOnFile::Cardholder => de48.push(tag::COF_INDICATOR, b"C"),
            CredentialOnFile::Merchant { reason, original } => {
                de48.push(tag::COF_INDICATOR, b"M");
                de48.push(tag::MIT_REASON, reason.code());
                de48.push(tag::NETWORK_TRANSACTION_ID, original.as_str().as_bytes());
            }
        }
        if let Some(cvc) = req.cvc {
            de48.push(tag::CVC2, cvc.expose());
        }
        if let Some(t) = &req.three_ds {
            de48.push(tag::ECI, t.eci.as_str().as_bytes());
            if let Some(cavv) = &t.cavv {
                de48.push(tag::CAVV, cavv.as_str().as_bytes());
            }
            if let Some(version) = &t.version {
                de48.push(tag::THREE_DS_VERSION, version.as_bytes());
            }
            if let Some(id) = &t.ds_transaction_id {
                de48.push(tag::DS_TRANSACTION_ID, id.as_str().as_bytes());
            }
        }
        let request = CardRequest {
            pan: req.pan.expose(),
            processing: reference.processing_code,
            amount: reference.amount,
            local_time: trace::local_time(&reference.transmission),
            local_date: trace::local_date(&reference.transmission),
            expiry: req.expiry.yymm(),
            entry_mode,
            condition,
            rrn: reference.rrn,
            additional: de48.as_slice(),
            currency: reference.currency.code(),
        };
        let origin = self.origin(&reference.merchant, reference.stan, reference.transmission);
        MessageBuilder::card_request(reference.mti, &request, &origin)
    }

    /// The 0220 of `req`, under `stan` at `transmission`.
    pub fn completion(
        &self,
        req: &CompletionRequest<'_>,
        stan: Stan,
        transmission: TransmissionTime,
    ) -> MessageBuilder {
        let o = req.original;
        MessageBuilder::completion(
            &self.original(o),
            req.pan.expose(),
            &req.expiry.yymm(),
            req.amount,
            &self.origin(&o.merchant, stan, transmission),
        )
    }

    /// A 0400, 0420 or 0421 for a queued reversal, with DE 2 when the card is still known.
    pub fn reversal(
        &self,
        attempt: ReversalAttempt,
        reversal: &PendingReversal,
        pan: Option<&Pan>,
        stan: Stan,
        transmission: TransmissionTime,
    ) -> MessageBuilder {
        let o = &reversal.original;
        MessageBuilder::reversal(
            attempt,
            &self.original(o),
            pan.map(Pan::expose),
            reversal.remaining.map(iso8583::Amount),
            &self.origin(&o.merchant, stan, transmission),
        )
    }
}

/// The DE 48 subelements of one request, ascending by tag, gathered on the stack rather than in a
/// `Vec` (an allocation per request): a request carries at most the eight below (three of
/// credential-on-file, the CVC2, four of 3-D Secure). No `Debug`: it holds the CVC2.
#[derive(Default)]
struct Subelements<'a> {
    items: [(u8, &'a [u8]); 8],
    len: usize,
}

impl<'a> Subelements<'a> {
    fn push(&mut self, tag: u8, value: &'a [u8]) {
        self.items[self.len] = (tag, value);
        self.len += 1;
    }

    fn as_slice(&self) -> &[(u8, &'a [u8])] {
        &self.items[..self.len]
    }
}

/// Reads the parts of an 0110/0210 (or 0230) the order engine needs.
pub(crate) fn outcome_of(response: &iso8583::Message, reference: TransactionRef) -> LinkOutcome {
    let code = response
        .response_code()
        .unwrap_or(ResponseCode::FORMAT_ERROR);
    if !code.is_approved() {
        return LinkOutcome::Declined { reference, code };
    }
    let network_txn_id = response
        .de48()
        .and_then(|d| d.network_transaction_id())
        .and_then(|id| std::str::from_utf8(id).ok())
        .and_then(NetworkTxnId::parse);
    LinkOutcome::Approved {
        reference,
        approval_code: ApprovalCode::of_field(response.approval_code()),
        network_txn_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{CardRef, Currency, TransactionKind};
    use crate::trace::{RrnSequence, StanSequence, Timestamp};
    use card::{Cvc, Expiry};
    use iso8583::{Amount, MitReason, Mti};

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
        let stan = StanSequence::starting_at(0).next();
        let rrn = RrnSequence::starting_at(0).next(&now);
        let req = AuthorizationRequest {
            kind: TransactionKind::Refund,
            pan: &pan,
            expiry: Expiry::parse("12/30").unwrap(),
            cvc: Some(&cvc),
            card: "452739 c1 6F9619FF-8B86-4011-B42D-00C04FC964FF"
                .parse::<CardRef>()
                .unwrap(),
            amount: Amount(1234),
            currency: Currency::RUB,
            cof: CredentialOnFile::Merchant {
                reason: MitReason::Recurring,
                original: NetworkTxnId::parse("NT1").unwrap(),
            },
            three_ds: None,
            merchant: Merchant {
                id: card::MerchantId::parse("452739").unwrap(),
                name_location: None,
                category_code: Some(5999),
            },
        };
        let reference = req.intent().reference(stan, rrn, now.transmission);
        let msg = acceptor().authorization(&req, &reference).build().unwrap();
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
            original: reference,
            remaining: None,
            attempts: 1,
        };
        let build = |r: &PendingReversal| {
            acceptor()
                .reversal(ReversalAttempt::Advice, r, None, stan, now.transmission)
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
