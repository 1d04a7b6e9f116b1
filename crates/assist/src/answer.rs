//! The one data model of every answer: orders with the spec's fields, their operations, checkdata,
//! payrequest's page URL and the One Click card lists, or a [`Fault`].
//!
//! Owns the field lists of the spec ("every field is present, empty when it does not apply") and
//! their order, as [`Field`] lists the renderers only spell. Must never hold a full card number:
//! a card is a BIN and last four digits ([`MaskedCard`]), so no constructor can take a PAN.

use card::{Bin, Expiry, Last4};
use time::PrimitiveDateTime;

use crate::codes::{Fault, OperationState, OperationType, OrderState, ResponseCode};
use crate::integrity::{AnswerIntegrity, answer_x};
use crate::requests::Service;
use crate::values::{Amount, BillNumber, BillRef, CardToken, ClientIp, Currency, MerchantId};

/// A value in an answer. Text everywhere except the One Click fields seed 001 types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (every Format).
    Text(String),
    /// A JSON number (One Click `bin`).
    Number(u64),
    /// A JSON boolean (One Click `active`, `needCVC`).
    Bool(bool),
}

/// One named piece of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A value.
    Value(&'static str, Value),
    /// A nested object that only JSON carries (`customer`, `threedsdata`, `checkdata`): its
    /// values are already flat in the record for the other Formats.
    JsonObject(&'static str, Vec<Field>),
    /// Repeated records: XML repeats `xml_item` (inside `xml_wrapper` when given), JSON has an
    /// array under `json`, CSV a line per record.
    List {
        /// The JSON member.
        json: &'static str,
        /// The XML element wrapping the items, if any.
        xml_wrapper: Option<&'static str>,
        /// The XML element of one item.
        xml_item: &'static str,
        /// The records.
        items: Vec<Vec<Field>>,
    },
}

fn text(name: &'static str, v: impl ToString) -> Field {
    Field::Value(name, Value::Text(v.to_string()))
}

fn opt(name: &'static str, v: Option<impl ToString>) -> Field {
    text(name, v.map(|v| v.to_string()).unwrap_or_default())
}

/// `DD.MM.YYYY HH:MM:SS`, UTC, as answers print dates.
pub fn format_date(d: PrimitiveDateTime) -> String {
    format!(
        "{:02}.{:02}.{:04} {:02}:{:02}:{:02}",
        d.day(),
        u8::from(d.month()),
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// A card as answers show it: `411111****1111`. Holds six and four digits, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedCard {
    /// First six digits.
    pub bin: Bin,
    /// Last four digits.
    pub last4: Last4,
}

impl std::fmt::Display for MaskedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}****{}", self.bin, self.last4)
    }
}

/// The customer's fields of an order (the JSON `customer` object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerData {
    /// First name.
    pub firstname: String,
    /// Last name.
    pub lastname: String,
    /// Middle name.
    pub middlename: String,
    /// E-mail.
    pub email: String,
    /// The shopper's IP.
    pub ipaddress: Option<ClientIp>,
}

/// `packetdate`, `signature`, `checkvalue` of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckData {
    /// When the answer was made.
    pub packetdate: PrimitiveDateTime,
    /// Our RSA signature, or empty.
    pub signature: String,
    /// The checkvalue, or empty.
    pub checkvalue: String,
}

/// An order as answers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Our number.
    pub billnumber: BillNumber,
    /// The merchant's number.
    pub ordernumber: String,
    /// Test mode.
    pub testmode: bool,
    /// Comment.
    pub ordercomment: String,
    /// Amount.
    pub orderamount: Amount,
    /// Currency.
    pub ordercurrency: Currency,
    /// Conversion rate, `1` without conversion.
    pub rate: String,
    /// Created.
    pub orderdate: PrimitiveDateTime,
    /// State.
    pub orderstate: OrderState,
    /// Customer.
    pub customer: CustomerData,
    /// Error code of a failed order, else empty.
    pub errorcode: String,
    /// Integrity of this record.
    pub checkdata: CheckData,
}

impl OrderRecord {
    /// Fills `checkdata` over X = merchant_id + ordernumber + amount + currency + orderstate.
    pub fn seal(
        &mut self,
        merchant: MerchantId,
        how: &AnswerIntegrity<'_>,
        packetdate: PrimitiveDateTime,
    ) -> Result<(), Fault> {
        let x = answer_x(
            &merchant.to_string(),
            &self.ordernumber,
            &self.orderamount.to_string(),
            self.ordercurrency.alpha(),
            self.orderstate.as_str(),
        );
        let (signature, checkvalue) = how.seal(&x)?;
        self.checkdata = CheckData {
            packetdate,
            signature,
            checkvalue,
        };
        Ok(())
    }

    /// The spec's order fields, in its order, then the JSON-only objects.
    pub fn fields(&self) -> Vec<Field> {
        let c = &self.customer;
        let d = &self.checkdata;
        vec![
            text("billnumber", self.billnumber),
            text("ordernumber", &self.ordernumber),
            text("testmode", u8::from(self.testmode)),
            text("ordercomment", &self.ordercomment),
            text("orderamount", &self.orderamount),
            text("ordercurrency", self.ordercurrency),
            text("rate", &self.rate),
            text("orderdate", format_date(self.orderdate)),
            text("orderstate", self.orderstate),
            text("firstname", &c.firstname),
            text("lastname", &c.lastname),
            text("middlename", &c.middlename),
            text("email", &c.email),
            text("errorcode", &self.errorcode),
            text("packetdate", format_date(d.packetdate)),
            text("signature", &d.signature),
            text("checkvalue", &d.checkvalue),
            Field::JsonObject(
                "customer",
                vec![
                    text("firstname", &c.firstname),
                    text("lastname", &c.lastname),
                    text("middlename", &c.middlename),
                    text("email", &c.email),
                    opt("ipaddress", c.ipaddress),
                ],
            ),
            Field::JsonObject(
                "checkdata",
                vec![
                    text("packetdate", format_date(d.packetdate)),
                    text("signature", &d.signature),
                    text("checkvalue", &d.checkvalue),
                ],
            ),
        ]
    }
}

/// The card an operation used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMeans {
    /// Scheme name (`VISA`, `MasterCard`, `MIR`).
    pub meantypename: String,
    /// Product, when known.
    pub meansubtype: String,
    /// The masked number.
    pub meannumber: MaskedCard,
    /// Cardholder name.
    pub cardholder: String,
    /// Expiry.
    pub expiry: Option<Expiry>,
    /// Issuer.
    pub issuebank: String,
    /// Issuer's country.
    pub bankcountry: String,
}

/// 3-D Secure data of an operation (JSON `threedsdata`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreeDsData {
    /// Protocol version.
    pub version: String,
    /// Authentication result letter.
    pub alphaauthresult: String,
    /// Whether a challenge was shown.
    pub challenge: String,
    /// ECI.
    pub eci: String,
}

/// An operation as answers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRecord {
    /// Extended billnumber.
    pub billnumber: BillRef,
    /// Type.
    pub operationtype: OperationType,
    /// State.
    pub operationstate: OperationState,
    /// Amount.
    pub amount: Amount,
    /// Currency.
    pub currency: Currency,
    /// Shopper's IP.
    pub ipaddress: Option<ClientIp>,
    /// The card, when one was used.
    pub card: Option<CardMeans>,
    /// Result, when there is one.
    pub responsecode: Option<ResponseCode>,
    /// Message for the merchant.
    pub message: String,
    /// Message for the customer.
    pub customermessage: String,
    /// Recommendation.
    pub recommendation: String,
    /// Approval code.
    pub approvalcode: String,
    /// Protocol name.
    pub protocoltypename: String,
    /// Processing name.
    pub processingname: String,
    /// When.
    pub operationdate: Option<PrimitiveDateTime>,
    /// Authorization result.
    pub authresult: String,
    /// Whether authorization was required.
    pub authrequired: String,
    /// Slip number.
    pub slipno: String,
    /// 3-D Secure.
    pub threeds: ThreeDsData,
}

impl OperationRecord {
    /// The spec's operation fields, in its order, then `threedsdata` for JSON. `skip_billnumber`
    /// drops the extended billnumber where the record is merged into its order's (flat answers).
    pub fn fields(&self, skip_billnumber: bool) -> Vec<Field> {
        let card = self.card.as_ref();
        let expiry = card
            .and_then(|c| c.expiry)
            .map(|e| format!("{:02}/{:02}", e.month(), e.year() % 100));
        let t = &self.threeds;
        let mut out = vec![
            text("billnumber", self.billnumber),
            text("operationtype", self.operationtype.code()),
            text("operationstate", self.operationstate.as_str()),
            text("amount", &self.amount),
            text("currency", self.currency),
            opt("ipaddress", self.ipaddress),
            opt("meantypename", card.map(|c| &c.meantypename)),
            opt("meansubtype", card.map(|c| &c.meansubtype)),
            opt("meannumber", card.map(|c| c.meannumber)),
            opt("cardholder", card.map(|c| &c.cardholder)),
            opt("cardexpirationdate", expiry),
            opt("issuebank", card.map(|c| &c.issuebank)),
            opt("bankcountry", card.map(|c| &c.bankcountry)),
            opt("responsecode", self.responsecode),
            text("message", &self.message),
            text("customermessage", &self.customermessage),
            text("recommendation", &self.recommendation),
            text("approvalcode", &self.approvalcode),
            text("protocoltypename", &self.protocoltypename),
            text("processingname", &self.processingname),
            opt("operationdate", self.operationdate.map(format_date)),
            text("authresult", &self.authresult),
            text("authrequired", &self.authrequired),
            text("slipno", &self.slipno),
            Field::JsonObject(
                "threedsdata",
                vec![
                    text("version", &t.version),
                    text("alphaauthresult", &t.alphaauthresult),
                    text("challenge", &t.challenge),
                    text("eci", &t.eci),
                ],
            ),
        ];
        if skip_billnumber {
            out.remove(0);
        }
        out
    }
}

/// A saved card as One Click's token.cfm lists it (seed 001).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    /// Token.
    pub token: CardToken,
    /// First six digits.
    pub bin: Bin,
    /// Last four digits.
    pub last4: Last4,
    /// Scheme name.
    pub brand: String,
    /// Issuer.
    pub bank: String,
    /// Expiry (`MM.YYYY`).
    pub expire: Expiry,
    /// Usable.
    pub active: bool,
    /// A payment with it asks for the CVC.
    pub need_cvc: bool,
}

impl SavedCard {
    /// Seed 001's fields in its example's order, with its types.
    pub fn fields(&self) -> Vec<Field> {
        vec![
            text("expire", self.expire.assist_format()),
            text("token", self.token),
            text("bank", &self.bank),
            text("brand", &self.brand),
            Field::Value("bin", Value::Number(u64::from(self.bin.as_u32()))),
            Field::Value("active", Value::Bool(self.active)),
            Field::Value("needCVC", Value::Bool(self.need_cvc)),
            text("post", self.last4),
        ]
    }
}

/// payrequest.cfm's state word: `In Process`, or `Decline` with an empty URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayRequestState {
    /// Created; the URL leads to the payment page.
    InProcess,
    /// Refused; no URL.
    Decline,
}

/// payrequest.cfm's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequestAnswer {
    /// The payment page (empty on Decline).
    pub url: String,
    /// When the order expires.
    pub expirationtime: PrimitiveDateTime,
    /// State.
    pub state: PayRequestState,
}

/// What a successful call answers, shaped per service by the spec's table.
// One Body is built per request and rendered at once, never kept in bulk: boxing the large
// variants would buy nothing but an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// tokenpay, rp, charge: the order and the operation this call made, flat.
    Payment(OrderRecord, OperationRecord),
    /// cancel/wscancel: the order with its operations.
    Cancel(OrderRecord, Vec<OperationRecord>),
    /// orderstate: every attempt of an ordernumber.
    States(Vec<OrderRecord>),
    /// orderresult: orders with their operations.
    Results(Vec<(OrderRecord, Vec<OperationRecord>)>),
    /// payrequest.
    PayRequest(PayRequestAnswer),
    /// One Click token.cfm.
    Tokens(Vec<SavedCard>),
    /// One Click rem_token.cfm.
    TokenRemoved(CardToken),
}

/// An answer: the service it answers, and its body or its fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Which service (names the XML/JSON root and the SOAP element).
    pub service: Service,
    /// Content or refusal.
    pub result: Result<Body, Fault>,
}

impl Body {
    /// The number of orders (or cards) it carries: XML's `count`.
    pub fn count(&self) -> usize {
        match self {
            Body::Payment(..) | Body::Cancel(..) | Body::PayRequest(_) | Body::TokenRemoved(_) => 1,
            Body::States(v) => v.len(),
            Body::Results(v) => v.len(),
            Body::Tokens(v) => v.len(),
        }
    }

    /// The body as fields, per the spec's table of answer shapes.
    pub fn fields(&self) -> Vec<Field> {
        let orders = |items| Field::List {
            json: "orders",
            xml_wrapper: Some("orders"),
            xml_item: "order",
            items,
        };
        let operations = |ops: &[OperationRecord]| Field::List {
            json: "operations",
            xml_wrapper: None,
            xml_item: "operation",
            items: ops.iter().map(|o| o.fields(false)).collect(),
        };
        match self {
            Body::Payment(order, op) => {
                let mut flat = order.fields();
                flat.extend(op.fields(true));
                vec![orders(vec![flat])]
            }
            Body::Cancel(order, ops) => {
                let mut record = order.fields();
                record.push(operations(ops));
                vec![orders(vec![record])]
            }
            Body::States(list) => vec![Field::List {
                json: "orders",
                xml_wrapper: None,
                xml_item: "order",
                items: list.iter().map(OrderRecord::fields).collect(),
            }],
            Body::Results(list) => vec![Field::List {
                json: "orders",
                xml_wrapper: None,
                xml_item: "order",
                items: list
                    .iter()
                    .map(|(o, ops)| {
                        let mut record = o.fields();
                        record.push(operations(ops));
                        record
                    })
                    .collect(),
            }],
            Body::PayRequest(p) => {
                let state = match p.state {
                    PayRequestState::InProcess => "In Process",
                    PayRequestState::Decline => "Decline",
                };
                vec![
                    text("url", &p.url),
                    text("URL", &p.url),
                    text("expirationtime", format_date(p.expirationtime)),
                    text("orderstate", state),
                ]
            }
            Body::Tokens(cards) => vec![Field::List {
                json: "",
                xml_wrapper: None,
                xml_item: "token",
                items: cards.iter().map(SavedCard::fields).collect(),
            }],
            Body::TokenRemoved(token) => {
                vec![text("token", token), text("message", "Token removed")]
            }
        }
    }
}

/// The names of the spec's order fields, in order (tests hold every answer to them).
pub const ORDER_FIELDS: [&str; 17] = [
    "billnumber",
    "ordernumber",
    "testmode",
    "ordercomment",
    "orderamount",
    "ordercurrency",
    "rate",
    "orderdate",
    "orderstate",
    "firstname",
    "lastname",
    "middlename",
    "email",
    "errorcode",
    "packetdate",
    "signature",
    "checkvalue",
];

/// The names of the spec's operation fields, in order.
pub const OPERATION_FIELDS: [&str; 24] = [
    "billnumber",
    "operationtype",
    "operationstate",
    "amount",
    "currency",
    "ipaddress",
    "meantypename",
    "meansubtype",
    "meannumber",
    "cardholder",
    "cardexpirationdate",
    "issuebank",
    "bankcountry",
    "responsecode",
    "message",
    "customermessage",
    "recommendation",
    "approvalcode",
    "protocoltypename",
    "processingname",
    "operationdate",
    "authresult",
    "authrequired",
    "slipno",
];
