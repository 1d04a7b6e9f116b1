//! The numbers and words of the protocol: `firstcode`/`secondcode`, `responsecode`, order and
//! operation states and types, and [`Fault`], the one error every refusal becomes.
//!
//! Owns the code tables of the spec's "Codes" and "States" sections, each as one enum with its wire
//! text or number in one `match`. Must never carry a parameter's value in a [`Fault`]: a refused
//! value may be a password or a card number typed into the wrong field.

use std::borrow::Cow;
use std::fmt;

/// Whether a request could be processed (`firstcode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirstCode {
    /// `0`: processed.
    Ok,
    /// `1`: error.
    Error,
    /// `2`: internal error.
    Internal,
    /// `3`: a required parameter is missing.
    Missing,
    /// `4`: a parameter is malformed.
    BadFormat,
    /// `5`: a parameter is well formed but its value is wrong.
    WrongValue,
    /// `7`: authentication failed.
    Authentication,
    /// `8`: not authorized.
    Authorization,
    /// `10`: object not found.
    NotFound,
    /// `11`: duplicate.
    Duplicate,
    /// `12`: locked.
    Locked,
    /// `15`: operation forbidden in the object's state.
    Forbidden,
    /// `16`: timed out.
    TimedOut,
    /// `17`: limit exceeded.
    Limit,
    /// `19`: access denied.
    AccessDenied,
}

impl FirstCode {
    /// Every firstcode, in the spec's order.
    pub const ALL: [FirstCode; 15] = [
        FirstCode::Ok,
        FirstCode::Error,
        FirstCode::Internal,
        FirstCode::Missing,
        FirstCode::BadFormat,
        FirstCode::WrongValue,
        FirstCode::Authentication,
        FirstCode::Authorization,
        FirstCode::NotFound,
        FirstCode::Duplicate,
        FirstCode::Locked,
        FirstCode::Forbidden,
        FirstCode::TimedOut,
        FirstCode::Limit,
        FirstCode::AccessDenied,
    ];

    /// The firstcode numbered `code` (the order engine names its refusals by number).
    pub fn from_code(code: u16) -> Option<FirstCode> {
        FirstCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            FirstCode::Ok => 0,
            FirstCode::Error => 1,
            FirstCode::Internal => 2,
            FirstCode::Missing => 3,
            FirstCode::BadFormat => 4,
            FirstCode::WrongValue => 5,
            FirstCode::Authentication => 7,
            FirstCode::Authorization => 8,
            FirstCode::NotFound => 10,
            FirstCode::Duplicate => 11,
            FirstCode::Locked => 12,
            FirstCode::Forbidden => 15,
            FirstCode::TimedOut => 16,
            FirstCode::Limit => 17,
            FirstCode::AccessDenied => 19,
        }
    }

    /// The HTTP status of a JSON error with this firstcode (spec: 400 bad parameters, 401
    /// authentication, 403 not allowed, 404 not found, 200 for everything else that is answered).
    pub fn http_status(self) -> u16 {
        match self {
            FirstCode::Missing
            | FirstCode::BadFormat
            | FirstCode::WrongValue
            | FirstCode::Duplicate => 400,
            FirstCode::Authentication => 401,
            FirstCode::Authorization
            | FirstCode::Locked
            | FirstCode::Forbidden
            | FirstCode::Limit
            | FirstCode::AccessDenied => 403,
            FirstCode::NotFound => 404,
            FirstCode::Ok | FirstCode::Error | FirstCode::Internal | FirstCode::TimedOut => 200,
        }
    }
}

/// What a `firstcode` is about (`secondcode`): a parameter or an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecondCode {
    /// `0`: nothing in particular (a success, or a malformed body as a whole).
    None,
    /// `4`: the period of a listing (the spec's "4/4 period too long").
    Period,
    /// `100`: Merchant_ID.
    MerchantId,
    /// `101`: Login.
    Login,
    /// `102`: Password.
    Password,
    /// `103`: Format.
    Format,
    /// `104`: a date.
    Date,
    /// `105`: a currency.
    Currency,
    /// `107`: OrderNumber.
    OrderNumber,
    /// `108`: an amount.
    Amount,
    /// `109`: Delay.
    Delay,
    /// `110`: OrderComment.
    Comment,
    /// `116`: ClientIP.
    ClientIp,
    /// `117`–`128`: the customer fields in seed 004's order (Lastname … Zip).
    CustomerField(u8),
    /// `141`: the login/password pair.
    Credentials,
    /// `143`: BillNumber.
    BillNumber,
    /// `158`: checkvalue or signature.
    Checkvalue,
    /// `200`: the merchant.
    Merchant,
    /// `201`: the order (and order attributes without a code of their own).
    Order,
    /// `202`: the customer (CustomerNumber).
    Customer,
    /// `203`: the card (a saved card's token).
    Card,
    /// `216`: the operation.
    Operation,
    /// `300`: a reversal.
    Reversal,
    /// `301`: a refund.
    Refund,
    /// `307`: a charge.
    Charge,
    /// `308`: a cancel.
    Cancel,
    /// `320`: a recurring payment (and the recurring agreement's fields).
    Recurring,
}

impl SecondCode {
    /// Every secondcode but the customer fields (117–128, [`SecondCode::CustomerField`]).
    const NAMED: [SecondCode; 26] = [
        SecondCode::None,
        SecondCode::Period,
        SecondCode::MerchantId,
        SecondCode::Login,
        SecondCode::Password,
        SecondCode::Format,
        SecondCode::Date,
        SecondCode::Currency,
        SecondCode::OrderNumber,
        SecondCode::Amount,
        SecondCode::Delay,
        SecondCode::Comment,
        SecondCode::ClientIp,
        SecondCode::Credentials,
        SecondCode::BillNumber,
        SecondCode::Checkvalue,
        SecondCode::Merchant,
        SecondCode::Order,
        SecondCode::Customer,
        SecondCode::Card,
        SecondCode::Operation,
        SecondCode::Reversal,
        SecondCode::Refund,
        SecondCode::Charge,
        SecondCode::Cancel,
        SecondCode::Recurring,
    ];

    /// The secondcode numbered `code` (the order engine names its refusals by number).
    pub fn from_code(code: u16) -> Option<SecondCode> {
        match code {
            117..=128 => u8::try_from(code).ok().map(SecondCode::CustomerField),
            _ => SecondCode::NAMED.into_iter().find(|c| c.code() == code),
        }
    }

    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            SecondCode::None => 0,
            SecondCode::Period => 4,
            SecondCode::MerchantId => 100,
            SecondCode::Login => 101,
            SecondCode::Password => 102,
            SecondCode::Format => 103,
            SecondCode::Date => 104,
            SecondCode::Currency => 105,
            SecondCode::OrderNumber => 107,
            SecondCode::Amount => 108,
            SecondCode::Delay => 109,
            SecondCode::Comment => 110,
            SecondCode::ClientIp => 116,
            SecondCode::CustomerField(n) => u16::from(n),
            SecondCode::Credentials => 141,
            SecondCode::BillNumber => 143,
            SecondCode::Checkvalue => 158,
            SecondCode::Merchant => 200,
            SecondCode::Order => 201,
            SecondCode::Customer => 202,
            SecondCode::Card => 203,
            SecondCode::Operation => 216,
            SecondCode::Reversal => 300,
            SecondCode::Refund => 301,
            SecondCode::Charge => 307,
            SecondCode::Cancel => 308,
            SecondCode::Recurring => 320,
        }
    }
}

/// A refused request: the codes clients read, and a detail naming the parameter or rule. The
/// detail never contains the refused value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} ({}/{})", first.code(), second.code())]
pub struct Fault {
    /// Why the request could not be processed.
    pub first: FirstCode,
    /// What it is about.
    pub second: SecondCode,
    /// Human-readable, names the parameter; goes into the JSON `detail` and the SOAP `detail`.
    pub detail: Cow<'static, str>,
}

impl Fault {
    /// A fault with the given codes and detail.
    pub fn new(
        first: FirstCode,
        second: SecondCode,
        detail: impl Into<Cow<'static, str>>,
    ) -> Fault {
        Fault {
            first,
            second,
            detail: detail.into(),
        }
    }

    /// The HTTP status of this fault when answered in JSON.
    pub fn http_status(&self) -> u16 {
        self.first.http_status()
    }

    /// Unknown order (10/201).
    pub fn unknown_order() -> Fault {
        Fault::new(FirstCode::NotFound, SecondCode::Order, "order not found")
    }

    /// Wrong credentials (7/141).
    pub fn wrong_credentials() -> Fault {
        Fault::new(
            FirstCode::Authentication,
            SecondCode::Credentials,
            "wrong login or password",
        )
    }

    /// Wrong or missing checkvalue/signature (5/158).
    pub fn integrity() -> Fault {
        Fault::new(
            FirstCode::WrongValue,
            SecondCode::Checkvalue,
            "checkvalue or signature does not match",
        )
    }

    /// An internal error (2/0) whose detail says nothing about the internals.
    pub fn internal() -> Fault {
        Fault::new(FirstCode::Internal, SecondCode::None, "internal error")
    }
}

/// The result of an operation as clients read it (`responsecode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    /// `AS000` approved.
    Approved,
    /// `AS100` declined, generic.
    Declined,
    /// `AS101` card number or parameters.
    CardOrParameters,
    /// `AS102` insufficient funds.
    InsufficientFunds,
    /// `AS104` card expired.
    Expired,
    /// `AS105` card limit.
    CardLimit,
    /// `AS106` PIN.
    Pin,
    /// `AS107` data error.
    DataError,
    /// `AS108` suspected fraud.
    Fraud,
    /// `AS109` gateway limit (ours: the customer's turnover limit).
    GatewayLimit,
    /// `AS110` 3-D Secure required.
    ThreeDsRequired,
    /// `AS200` repeat later.
    RepeatLater,
    /// `AS300` in progress.
    InProgress,
    /// `AS400` no such payment.
    NoSuchPayment,
    /// `AS998` system error.
    SystemError,
}

impl ResponseCode {
    /// Every response code, for tables and tests.
    pub const ALL: [ResponseCode; 15] = [
        ResponseCode::Approved,
        ResponseCode::Declined,
        ResponseCode::CardOrParameters,
        ResponseCode::InsufficientFunds,
        ResponseCode::Expired,
        ResponseCode::CardLimit,
        ResponseCode::Pin,
        ResponseCode::DataError,
        ResponseCode::Fraud,
        ResponseCode::GatewayLimit,
        ResponseCode::ThreeDsRequired,
        ResponseCode::RepeatLater,
        ResponseCode::InProgress,
        ResponseCode::NoSuchPayment,
        ResponseCode::SystemError,
    ];

    /// The text on the wire, `AS000`…`AS998`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseCode::Approved => "AS000",
            ResponseCode::Declined => "AS100",
            ResponseCode::CardOrParameters => "AS101",
            ResponseCode::InsufficientFunds => "AS102",
            ResponseCode::Expired => "AS104",
            ResponseCode::CardLimit => "AS105",
            ResponseCode::Pin => "AS106",
            ResponseCode::DataError => "AS107",
            ResponseCode::Fraud => "AS108",
            ResponseCode::GatewayLimit => "AS109",
            ResponseCode::ThreeDsRequired => "AS110",
            ResponseCode::RepeatLater => "AS200",
            ResponseCode::InProgress => "AS300",
            ResponseCode::NoSuchPayment => "AS400",
            ResponseCode::SystemError => "AS998",
        }
    }

    /// The code for its wire text.
    pub fn parse(s: &str) -> Option<ResponseCode> {
        ResponseCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order's state as answers print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OrderState {
    /// Created, not yet paid or declined.
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
    /// Declined.
    Declined,
    /// Not paid before its expiration time.
    Timeout,
}

impl OrderState {
    /// Every order state.
    pub const ALL: [OrderState; 8] = [
        OrderState::InProcess,
        OrderState::Delayed,
        OrderState::Approved,
        OrderState::PartialDelayed,
        OrderState::Canceled,
        OrderState::PartialCanceled,
        OrderState::Declined,
        OrderState::Timeout,
    ];

    /// The text on the wire (and in the answer checkvalue's X).
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
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operation did (`operationtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OperationType {
    /// `100`: a payment (also Token Pay and recurring payments).
    Payment,
    /// `200`: a charge, the confirmation of a two-stage payment.
    Charge,
    /// `300`: a cancel or a refund.
    Cancel,
}

impl OperationType {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            OperationType::Payment => 100,
            OperationType::Charge => 200,
            OperationType::Cancel => 300,
        }
    }
}

/// An operation's state as answers print it (`operationstate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OperationState {
    /// Sent, not answered yet.
    InProcess,
    /// Approved.
    Success,
    /// Declined.
    Declined,
    /// No answer in time.
    Timeout,
}

impl OperationState {
    /// The text on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::InProcess => "In Process",
            OperationState::Success => "Success",
            OperationState::Declined => "Declined",
            OperationState::Timeout => "Timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_from_their_numbers() {
        for c in FirstCode::ALL {
            assert_eq!(FirstCode::from_code(c.code()), Some(c));
        }
        for c in SecondCode::NAMED {
            assert_eq!(SecondCode::from_code(c.code()), Some(c));
        }
        assert_eq!(
            SecondCode::from_code(120),
            Some(SecondCode::CustomerField(120))
        );
        assert_eq!(FirstCode::from_code(6), None);
        assert_eq!(SecondCode::from_code(999), None);
    }

    #[test]
    fn response_codes_read_back() {
        for c in ResponseCode::ALL {
            assert_eq!(ResponseCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(ResponseCode::parse("AS999"), None);
    }

    #[test]
    fn fault_statuses_follow_the_spec() {
        assert_eq!(Fault::unknown_order().http_status(), 404);
        assert_eq!(Fault::wrong_credentials().http_status(), 401);
        assert_eq!(Fault::integrity().http_status(), 400);
        assert_eq!(
            Fault::new(FirstCode::Forbidden, SecondCode::Charge, "x").http_status(),
            403
        );
        assert_eq!(Fault::internal().http_status(), 200);
        assert_eq!(
            Fault::integrity().to_string(),
            "checkvalue or signature does not match (5/158)"
        );
    }

    #[test]
    fn states_print_as_assist_does() {
        assert_eq!(OrderState::InProcess.as_str(), "In Process");
        assert_eq!(OrderState::PartialCanceled.to_string(), "PartialCanceled");
        assert_eq!(OperationType::Cancel.code(), 300);
        assert_eq!(OperationState::Success.as_str(), "Success");
    }
}
