//! The order as it is stored and as queries return it: [`OrderRecord`] with its operations and
//! their network transactions, the card it was paid with (masked), its recurring agreement and
//! its turnover bookings. Serialized with serde under an explicit [`ORDER_RECORD_VERSION`].
//!
//! Owns the shape and the invariants readers may rely on (amounts in minor units; captured ≥
//! cancelled). Must never hold a PAN or a CVC: a card is a [`link::CardRef`] (merchant,
//! customer, vault token) and a [`MaskedCard`] (BIN, last 4, brand, expiry). State changes go
//! through `state`, never by writing [`OrderRecord::state`] directly.

use std::collections::BTreeMap;

use card::{CustomerNumber, MerchantId};
use link::{CardRef, Currency, NetworkTxnId, TransactionRef};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::decline::DeclineReason;
use crate::ids::{BillNumber, OperationRef, OrderNumber};

/// The version of [`OrderRecord`]'s stored form. A reader refuses a record of a later version
/// rather than misread it; a change of shape bumps it and teaches `persist` the old one.
pub const ORDER_RECORD_VERSION: u32 = 1;

/// An order's state, as answers print it (`spec/assist-api.md` "States").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderState {
    /// Created; not yet paid or declined.
    InProcess,
    /// Authorized, waiting for a charge (two-stage).
    Delayed,
    /// Paid.
    Approved,
    /// Charged for less than authorized.
    PartialDelayed,
    /// Cancelled in full.
    Canceled,
    /// Partly cancelled.
    PartialCanceled,
    /// The payment was declined.
    Declined,
    /// Not paid before its expiration time.
    Timeout,
}

impl OrderState {
    /// The text answers print (`assist::OrderState::as_str` spells the same).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::InProcess => "In Process",
            OrderState::Delayed => "Delayed",
            OrderState::Approved => "Approved",
            OrderState::PartialDelayed => "PartialDelayed",
            OrderState::Canceled => "Canceled",
            OrderState::PartialCanceled => "PartialCanceled",
            OrderState::Declined => "Declined",
            OrderState::Timeout => "Timeout",
        }
    }

    /// Whether money was ever taken (or held) for this order: at most one attempt of an
    /// OrderNumber may be in such a state.
    pub fn was_paid(self) -> bool {
        !matches!(
            self,
            OrderState::InProcess | OrderState::Declined | OrderState::Timeout
        )
    }
}

/// The merchant's order data kept with the order (order.cfm / payrequest.cfm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    /// Firstname.
    pub firstname: Option<String>,
    /// Lastname.
    pub lastname: Option<String>,
    /// Middlename.
    pub middlename: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// ClientIP.
    pub client_ip: Option<String>,
    /// OrderComment.
    pub comment: Option<String>,
    /// Language.
    pub language: Option<String>,
    /// URL_RETURN.
    pub url_return: Option<String>,
    /// URL_RETURN_OK.
    pub url_return_ok: Option<String>,
    /// URL_RETURN_NO.
    pub url_return_no: Option<String>,
    /// Every other parameter the facade validated and the core does not act on (fiscal
    /// receipts, payment-means flags, address…), by its canonical name, kept as sent.
    pub extra: BTreeMap<String, String>,
}

/// A card as an order keeps it: enough for answers, nothing that is card data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedCard {
    /// First six digits.
    pub bin: String,
    /// Last four digits.
    pub last4: String,
    /// Scheme name as Assist prints it (`VISA`, `MasterCard`, `MIR`).
    pub brand: String,
    /// Expiry month.
    pub expiry_month: u8,
    /// Expiry year (four digits).
    pub expiry_year: u16,
}

impl MaskedCard {
    /// The masked form of `pan` and `expiry`: the PAN is only borrowed.
    pub fn of(pan: &card::Pan, expiry: card::Expiry) -> MaskedCard {
        MaskedCard {
            bin: pan.bin().to_string(),
            last4: pan.last4().to_string(),
            brand: pan.brand().assist_name().to_owned(),
            expiry_month: expiry.month(),
            expiry_year: expiry.year(),
        }
    }
}

/// The card an order was paid with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCard {
    /// How the vault finds it (a saved card's token, or a card held for this payment only).
    #[serde(with = "card_ref")]
    pub card: CardRef,
    /// What answers show.
    pub masked: MaskedCard,
    /// Saved with the shopper's consent (its token goes to the merchant).
    pub saved: bool,
    /// The network's ID of an approved first use: what later MITs quote.
    pub network_txn_id: Option<NetworkTxnId>,
}

/// A recurring agreement of an initial order (`RecurringIndicator=1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Its bounds.
    pub terms: AgreementTerms,
    /// When its last recurring payment was approved (the "too soon" rule).
    pub last_payment_at: Option<Timestamp>,
}

/// What recurring payments on an agreement may be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgreementTerms {
    /// Scheduled MITs (reason `R`) within these bounds.
    Scheduled {
        /// Least amount of one payment, minor units.
        min_amount: u64,
        /// Greatest amount of one payment, minor units.
        max_amount: u64,
        /// Least days between two recurring payments.
        period_days: u16,
        /// The last day (merchant's calendar) a payment may be made.
        max_date: Day,
    },
    /// Unscheduled MITs (reason `U`), only for merchants with card-on-file MIT enabled.
    Unscheduled,
}

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Day {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
}

impl Day {
    /// The day of a `time::Date`.
    pub fn of(d: time::Date) -> Day {
        Day {
            year: d.year(),
            month: u8::from(d.month()),
            day: d.day(),
        }
    }
}

/// An amount counted in a customer's turnover (a daily or weekly counter's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnoverBooking {
    /// The counter's store key.
    pub counter: String,
    /// Minor units counted there for this order (released by a decline or a cancel).
    pub amount: u64,
}

/// How a payment's card was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentMeans {
    /// Typed on the page; `saved` when kept with consent (COF `I`).
    NewCard {
        /// Saved with the shopper's consent.
        saved: bool,
    },
    /// A saved card with its CVC (COF `C`).
    OneClick,
    /// A saved card without CVC, shown by the merchant (COF `C`).
    TokenPay,
    /// A recurring or unscheduled MIT (COF `M`).
    Mit {
        /// `R` (true) or `U` (false).
        scheduled: bool,
    },
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationKind {
    /// A payment (also Token Pay and recurring payments).
    Payment,
    /// A charge: the confirmation of a two-stage payment.
    Charge,
    /// A cancel or a refund.
    Cancel,
}

impl OperationKind {
    /// `operationtype`: 100, 200, 300.
    pub fn code(self) -> u16 {
        match self {
            OperationKind::Payment => 100,
            OperationKind::Charge => 200,
            OperationKind::Cancel => 300,
        }
    }
}

/// An operation's state, as answers print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationState {
    /// Sent (or about to be), not answered yet.
    InProcess,
    /// Approved.
    Success,
    /// Declined.
    Declined,
    /// No answer in time; reversed.
    Timeout,
}

impl OperationState {
    /// The text answers print.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::InProcess => "In Process",
            OperationState::Success => "Success",
            OperationState::Declined => "Declined",
            OperationState::Timeout => "Timeout",
        }
    }
}

/// `CancelReason` (1 shop, 2 customer, 3 fraud), and ours for the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// 1: the shop cancelled.
    Shop,
    /// 2: the customer asked (the default).
    Customer,
    /// 3: fraud.
    Fraud,
    /// The auto-cancel period of a Delayed order ran out.
    AutoCancel,
}

/// How a cancel moved money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelMessage {
    /// Before settlement: a 0400 (with DE 95 when partial).
    Reversal,
    /// After settlement: a 0200 refund (DE 3 = 200000).
    Refund,
}

/// A cancel operation's own data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelDetails {
    /// Why.
    pub reason: CancelReason,
    /// `Externalrefundid`: a repeat with the same id answers this operation.
    pub external_id: Option<String>,
    /// Reversal or refund.
    pub message: CancelMessage,
}

/// What a network transaction was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnPurpose {
    /// 0100.
    Authorization,
    /// 0200, DE 3 = 000000.
    Purchase,
    /// 0220.
    Completion,
    /// 0400; `remaining` (DE 95) for a partial one.
    Reversal {
        /// What stays authorized, minor units.
        remaining: Option<u64>,
    },
    /// 0200, DE 3 = 200000.
    Refund,
}

/// Where a network transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// Its reference is durable; it may or may not have been sent. Recovery resolves it.
    Prepared,
    /// Answered `00`.
    Approved,
    /// Answered with another DE 39, or refused before the network.
    Declined,
    /// Not answered in time; the link reversed it.
    TimedOutReversed,
    /// A reversal the network acknowledged.
    Acknowledged,
    /// A reversal in the link's store-and-forward queue, delivered until acknowledged.
    Queued,
}

/// One ISO 8583 message of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// What it was.
    pub purpose: TxnPurpose,
    /// Its identity on the network (known before sending for 0100/0200; from the answer for a
    /// 0220; the original's for a reversal).
    pub reference: Option<TransactionRef>,
    /// Where it stands.
    pub state: TxnState,
    /// DE 39 as received.
    pub response_code: Option<String>,
    /// When it was last changed.
    pub at: Timestamp,
}

/// One operation of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Its number inside the order (`.1` is the payment).
    pub number: u32,
    /// Payment, charge or cancel.
    pub kind: OperationKind,
    /// Where it stands.
    pub state: OperationState,
    /// Minor units, in the order's currency.
    pub amount: u64,
    /// Created.
    pub created_at: Timestamp,
    /// Finished (success or not).
    pub finished_at: Option<Timestamp>,
    /// Why it was declined.
    pub decline: Option<DeclineReason>,
    /// DE 38 of an approval.
    pub approval_code: Option<String>,
    /// How the card was presented (payments).
    pub means: Option<PaymentMeans>,
    /// A cancel's data.
    pub cancel: Option<CancelDetails>,
    /// The shopper's or the merchant's IP for this operation.
    pub client_ip: Option<String>,
    /// Its network messages, in order.
    pub transactions: Vec<Transaction>,
}

impl Operation {
    /// A new operation in process.
    pub(crate) fn new(number: u32, kind: OperationKind, amount: u64, now: Timestamp) -> Operation {
        Operation {
            number,
            kind,
            state: OperationState::InProcess,
            amount,
            created_at: now,
            finished_at: None,
            decline: None,
            approval_code: None,
            means: None,
            cancel: None,
            client_ip: None,
            transactions: Vec::new(),
        }
    }

    /// Its `responsecode`: AS000, the decline's, AS300 while in process.
    pub fn assist_code(&self) -> crate::decline::AssistCode {
        match (self.state, self.decline) {
            (OperationState::Success, _) => crate::decline::AssistCode::Approved,
            (OperationState::InProcess, _) => crate::decline::AssistCode::InProgress,
            (_, Some(d)) => d.codes().assist,
            (_, None) => crate::decline::AssistCode::SystemError,
        }
    }

    /// Finishes it as declined for `reason`.
    pub(crate) fn decline(&mut self, reason: DeclineReason, now: Timestamp) {
        self.state = if reason == DeclineReason::NoAnswer {
            OperationState::Timeout
        } else {
            OperationState::Declined
        };
        self.decline = Some(reason);
        self.finished_at = Some(now);
    }

    /// Finishes it as approved.
    pub(crate) fn succeed(&mut self, approval_code: Option<String>, now: Timestamp) {
        self.state = OperationState::Success;
        self.approval_code = approval_code;
        self.finished_at = Some(now);
    }

    /// The last transaction, which recovery and answers look at.
    pub fn last_transaction(&self) -> Option<&Transaction> {
        self.transactions.last()
    }
}

/// An order, as stored and as queries return it (a snapshot: changing it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// [`ORDER_RECORD_VERSION`] when written.
    pub version: u32,
    /// Ours.
    pub bill: BillNumber,
    /// Whose.
    #[serde(with = "merchant_id")]
    pub merchant: MerchantId,
    /// The merchant's number.
    pub order_number: OrderNumber,
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 numeric.
    pub currency: Currency,
    /// `Delay=1`: authorize now, charge later.
    pub two_stage: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Becomes Timeout if not paid by then.
    pub expires_at: Timestamp,
    /// The merchant's customer, when given.
    #[serde(with = "customer_number")]
    pub customer_number: Option<CustomerNumber>,
    /// Whose customers these are for cards and turnover: the shared list or the merchant.
    pub customer_scope: String,
    /// `disable3DS=1`.
    pub disable_3ds: bool,
    /// The rest of what the merchant sent.
    pub details: OrderDetails,
    /// The recurring agreement of an initial order.
    pub agreement: Option<Agreement>,
    /// For a recurring payment: its initial order.
    pub initial: Option<BillNumber>,
    /// State; changed only through `state`.
    pub state: OrderState,
    /// The card paid with.
    pub card: Option<OrderCard>,
    /// Authorized (two-stage) or paid (one-stage), minor units.
    pub authorized: u64,
    /// Paid: equal to `authorized` for one-stage, the charged amount for two-stage.
    pub captured: u64,
    /// Given back by cancels so far; never more than `captured` (or `authorized` for a reversed
    /// Delayed order).
    pub cancelled: u64,
    /// When the money was taken (one-stage approval, or the charge): settlement runs from it.
    pub captured_at: Option<Timestamp>,
    /// When a Delayed order is reversed if not charged.
    pub auto_cancel_at: Option<Timestamp>,
    /// What this order counts in its customer's turnover.
    pub turnover: Vec<TurnoverBooking>,
    /// Its operations, in order.
    pub operations: Vec<Operation>,
}

impl OrderRecord {
    /// The operation numbered `n`.
    pub fn operation(&self, n: u32) -> Option<&Operation> {
        self.operations.iter().find(|o| o.number == n)
    }

    /// The payment operation (`.1`), once there is one.
    pub fn payment(&self) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|o| o.kind == OperationKind::Payment)
    }

    /// The reference of the next operation.
    pub(crate) fn next_operation(&self) -> OperationRef {
        OperationRef {
            bill: self.bill,
            number: u32::try_from(self.operations.len()).map_or(u32::MAX, |n| n + 1),
        }
    }

    /// The operation numbered `n`, to change.
    pub(crate) fn operation_mut(&mut self, n: u32) -> Option<&mut Operation> {
        self.operations.iter_mut().find(|o| o.number == n)
    }

    /// The network reference of the approved authorization (0100/0200) of the payment.
    pub fn payment_reference(&self) -> Option<&TransactionRef> {
        self.payment()?
            .transactions
            .iter()
            .find(|t| {
                matches!(t.purpose, TxnPurpose::Authorization | TxnPurpose::Purchase)
                    && t.state == TxnState::Approved
            })?
            .reference
            .as_ref()
    }

    /// What may still be cancelled.
    pub fn cancellable(&self) -> u64 {
        self.captured.saturating_sub(self.cancelled)
    }

    /// An operation not finished yet, which recovery must resolve.
    pub fn in_flight(&self) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|o| o.state == OperationState::InProcess)
    }
}

mod merchant_id {
    use card::MerchantId;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(m: &MerchantId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MerchantId, D::Error> {
        MerchantId::parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

mod customer_number {
    use card::CustomerNumber;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(c: &Option<CustomerNumber>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => s.serialize_some(c.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<CustomerNumber>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|c| CustomerNumber::parse(&c).map_err(D::Error::custom))
            .transpose()
    }
}

/// A card reference in the form the link's store-and-forward records use.
mod card_ref {
    use link::CardRef;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(c: &CardRef, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(c)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CardRef, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}
