//! The order engine's records → `assist` answers: an order with its state, customer, error code
//! and checkdata; its operations with type, state, masked card, AS code, approval code and RRN;
//! and the result notification built from the same two.
//!
//! Owns that translation in this one direction. Must never show more of a card than the engine
//! keeps (BIN, last four, brand, expiry), and never call the engine.

use assist::answer::{
    Body, CardMeans, CheckData, CustomerData, MaskedCard, OperationRecord, OrderRecord, ThreeDsData,
};
use assist::codes::{self, Fault};
use assist::integrity::{AnswerIntegrity, OrderIntegrity};
use assist::notification::Notification;
use assist::values::{Amount, BillNumber, BillRef, CardToken, ClientIp, Currency};
use orders::{Operation, OperationResult};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::merchants::Merchant;

/// Answers for one merchant, made at one instant (`packetdate`).
pub(super) struct Answers<'a> {
    merchant: &'a Merchant,
    packetdate: PrimitiveDateTime,
}

impl<'a> Answers<'a> {
    /// Answers for `merchant` made now.
    pub(super) fn new(merchant: &'a Merchant, now: OffsetDateTime) -> Answers<'a> {
        Answers {
            merchant,
            packetdate: utc(now),
        }
    }

    /// tokenpay.cfm, rp.cfm, charge.cfm: the order and the operation just made, flat.
    pub(super) fn payment(&self, r: &OperationResult) -> Result<Body, Fault> {
        let op = r.operation().ok_or_else(Fault::internal)?;
        Ok(Body::Payment(
            self.order(&r.order)?,
            operation(&r.order, op)?,
        ))
    }

    /// cancel.cfm / wscancel.cfm: the order and its operations.
    pub(super) fn cancel(&self, r: &OperationResult) -> Result<Body, Fault> {
        Ok(Body::Cancel(self.order(&r.order)?, operations(&r.order)?))
    }

    /// orderstate.cfm: each attempt's order fields.
    pub(super) fn states(&self, records: &[orders::OrderRecord]) -> Result<Body, Fault> {
        records
            .iter()
            .map(|r| self.order(r))
            .collect::<Result<_, _>>()
            .map(Body::States)
    }

    /// orderresult.cfm: each order with its operations.
    pub(super) fn results(&self, records: &[orders::OrderRecord]) -> Result<Body, Fault> {
        records
            .iter()
            .map(|r| Ok((self.order(r)?, operations(r)?)))
            .collect::<Result<_, _>>()
            .map(Body::Results)
    }

    /// The result notification of operation `n` of `r` (0: the order's own timeout), sealed over
    /// the operation's amount with the merchant's checkvalue (a signing merchant gets an empty
    /// one, as with answers, until the gateway has a key of its own).
    pub(super) fn notification(
        &self,
        r: &orders::OrderRecord,
        n: u32,
    ) -> Result<Notification, Fault> {
        let operation = match n {
            0 => None,
            n => Some(operation(r, r.operation(n).ok_or_else(Fault::internal)?)?),
        };
        let on_file = r.card.as_ref().filter(|c| c.saved);
        let (customernumber, token) = match (&r.customer_number, on_file) {
            (Some(c), Some(card)) => (
                Some(c.as_str().to_owned()),
                Some(CardToken(card.card.token.0)),
            ),
            _ => (None, None),
        };
        let mut notification = Notification {
            merchant: self.merchant.id,
            order: self.order(r)?,
            operation,
            customernumber,
            token,
        };
        if let OrderIntegrity::Checkvalue { salt } = &self.merchant.integrity {
            notification.seal(&AnswerIntegrity::Checkvalue(salt), self.packetdate)?;
        }
        Ok(notification)
    }

    /// An order, sealed with the merchant's checkvalue. A merchant that signs its orders gets
    /// our signature once the gateway has a key of its own; until then the field is empty.
    fn order(&self, r: &orders::OrderRecord) -> Result<OrderRecord, Fault> {
        let d = &r.details;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut order = OrderRecord {
            billnumber: billnumber(r.bill)?,
            ordernumber: r.order_number.as_str().to_owned(),
            testmode: self.merchant.test_mode,
            ordercomment: text(&d.comment),
            orderamount: Amount::from_minor(r.amount),
            ordercurrency: currency(r.currency)?,
            rate: "1".into(),
            orderdate: utc(r.created_at.to_datetime()),
            orderstate: r.state,
            customer: CustomerData {
                firstname: text(&d.firstname),
                lastname: text(&d.lastname),
                middlename: text(&d.middlename),
                email: text(&d.email),
                ipaddress: ip(d.client_ip.as_deref()),
            },
            errorcode: error_code(r),
            checkdata: CheckData {
                packetdate: self.packetdate,
                signature: String::new(),
                checkvalue: String::new(),
            },
        };
        if let OrderIntegrity::Checkvalue { salt } = &self.merchant.integrity {
            order.seal(
                self.merchant.id,
                &AnswerIntegrity::Checkvalue(salt),
                self.packetdate,
            )?;
        }
        Ok(order)
    }
}

fn operations(r: &orders::OrderRecord) -> Result<Vec<OperationRecord>, Fault> {
    r.operations.iter().map(|op| operation(r, op)).collect()
}

fn operation(r: &orders::OrderRecord, op: &Operation) -> Result<OperationRecord, Fault> {
    let card = r.card.as_ref().and_then(|c| {
        let m = &c.masked;
        Some(CardMeans {
            meantypename: m.brand.clone(),
            meansubtype: String::new(),
            meannumber: MaskedCard {
                bin: card::Bin::parse(&m.bin)?,
                last4: card::Last4::parse(&m.last4)?,
            },
            cardholder: String::new(),
            expiry: card::Expiry::new(m.expiry_month, m.expiry_year).ok(),
            issuebank: String::new(),
            bankcountry: String::new(),
        })
    });
    let reference = op
        .transactions
        .iter()
        .rev()
        .find_map(|t| t.reference.as_ref());
    Ok(OperationRecord {
        billnumber: BillRef::extended(billnumber(r.bill)?, op.number),
        operationtype: op.kind,
        operationstate: op.state,
        amount: Amount::from_minor(op.amount),
        currency: currency(r.currency)?,
        ipaddress: ip(op.client_ip.as_deref()),
        card,
        responsecode: Some(op.assist_code()),
        message: String::new(),
        customermessage: String::new(),
        recommendation: String::new(),
        approvalcode: op.approval_code.clone().unwrap_or_default(),
        protocoltypename: String::new(),
        processingname: String::new(),
        operationdate: Some(utc(op.finished_at.unwrap_or(op.created_at).to_datetime())),
        authresult: String::new(),
        authrequired: String::new(),
        slipno: reference
            .map(|t| t.rrn.as_str().to_owned())
            .unwrap_or_default(),
        threeds: ThreeDsData::default(),
    })
}

/// The error code of an order that failed: its last payment's AS code; empty otherwise.
fn error_code(r: &orders::OrderRecord) -> String {
    if !matches!(
        r.state,
        orders::OrderState::Declined | orders::OrderState::Timeout
    ) {
        return String::new();
    }
    r.operations
        .iter()
        .rev()
        .find(|op| op.kind == codes::OperationType::Payment)
        .map(|op| op.assist_code().as_str().to_owned())
        .unwrap_or_default()
}

/// Our billnumber as answers print it (always 16 digits).
pub(super) fn billnumber(b: orders::BillNumber) -> Result<BillNumber, Fault> {
    BillNumber::new(b.get()).ok_or_else(Fault::internal)
}

/// The order's currency by its ISO number; the engine only keeps currencies `assist` accepted.
fn currency(c: link::Currency) -> Result<Currency, Fault> {
    Currency::from_numeric(c.code()).ok_or_else(Fault::internal)
}

fn ip(text: Option<&str>) -> Option<ClientIp> {
    text.and_then(|t| t.parse().ok()).map(ClientIp)
}

/// UTC without its offset, as answers print dates.
pub(super) fn utc(t: OffsetDateTime) -> PrimitiveDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(t.date(), t.time())
}
