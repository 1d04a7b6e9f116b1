//! One typed request per service of the spec's table, and [`decode`], the facade's entry point.
//!
//! Owns which parameters each service takes, which are required, and the rules between them
//! (Amount with Currency, the recurring agreement, the period filter). Everything the spec lists
//! is kept in the request, including what the engine does not act on yet. Must never look at a
//! merchant's config, a store or the clock: authentication, integrity rules and "now" are the
//! caller's, passed in where needed.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::codes::{Fault, FirstCode, SecondCode};
use crate::params::{Limits, Param, Params};
use crate::values::*;

/// A service of the spec's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `/pay/order.cfm`: the shop's form.
    Order,
    /// `/pay/payrequest.cfm`: the same, server to server.
    PayRequest,
    /// `/pay/tokenpay.cfm`: Token Pay.
    TokenPay,
    /// `/recurrent/rp.cfm`: a recurring or MIT payment.
    Recurrent,
    /// `/charge/charge.cfm`: confirm a two-stage payment.
    Charge,
    /// `/cancel/cancel.cfm`: cancel or refund.
    Cancel,
    /// `/cancel/wscancel.cfm`: the same.
    WsCancel,
    /// `/orderstate/orderstate.cfm`.
    OrderState,
    /// `/orderresult/orderresult.cfm`.
    OrderResult,
    /// `/pay/oneclick/v1/token.cfm`: a customer's saved cards.
    TokenList,
    /// `/pay/oneclick/v1/rem_token.cfm`: remove one.
    TokenRemove,
}

/// Path, answer name (XML/JSON root, SOAP `<name>Response`) and default Format of each service.
const SERVICES: [(Service, &str, &str, Format); 11] = [
    (Service::Order, "/pay/order.cfm", "order", Format::Json),
    (
        Service::PayRequest,
        "/pay/payrequest.cfm",
        "payrequest",
        Format::Json,
    ),
    (
        Service::TokenPay,
        "/pay/tokenpay.cfm",
        "tokenpay",
        Format::Json,
    ),
    (Service::Recurrent, "/recurrent/rp.cfm", "rp", Format::Csv),
    (Service::Charge, "/charge/charge.cfm", "charge", Format::Csv),
    (
        Service::Cancel,
        "/cancel/cancel.cfm",
        "wscancel",
        Format::Soap,
    ),
    (
        Service::WsCancel,
        "/cancel/wscancel.cfm",
        "wscancel",
        Format::Soap,
    ),
    (
        Service::OrderState,
        "/orderstate/orderstate.cfm",
        "orderstate",
        Format::Soap,
    ),
    (
        Service::OrderResult,
        "/orderresult/orderresult.cfm",
        "orderresult",
        Format::Csv,
    ),
    (
        Service::TokenList,
        "/pay/oneclick/v1/token.cfm",
        "token",
        Format::Json,
    ),
    (
        Service::TokenRemove,
        "/pay/oneclick/v1/rem_token.cfm",
        "rem_token",
        Format::Json,
    ),
];

impl Service {
    /// Every service.
    pub const ALL: [Service; 11] = [
        Service::Order,
        Service::PayRequest,
        Service::TokenPay,
        Service::Recurrent,
        Service::Charge,
        Service::Cancel,
        Service::WsCancel,
        Service::OrderState,
        Service::OrderResult,
        Service::TokenList,
        Service::TokenRemove,
    ];

    fn row(self) -> (Service, &'static str, &'static str, Format) {
        SERVICES
            .into_iter()
            .find(|r| r.0 == self)
            .unwrap_or(SERVICES[0])
    }

    /// The service at a path (case-insensitive, as Assist's ColdFusion paths are).
    pub fn from_path(path: &str) -> Option<Service> {
        SERVICES
            .into_iter()
            .find(|r| r.1.eq_ignore_ascii_case(path))
            .map(|r| r.0)
    }

    /// Its path.
    pub fn path(self) -> &'static str {
        self.row().1
    }

    /// The name of its answer: XML and JSON root, SOAP `<name>Response`.
    pub fn answer_name(self) -> &'static str {
        self.row().2
    }

    /// The Format answered when the request names none (order.cfm answers with a redirect; its
    /// errors, like payrequest's answers, are JSON).
    pub fn default_format(self) -> Format {
        self.row().3
    }

    /// Whether its body is JSON (the One Click services) rather than form fields.
    pub fn takes_json(self) -> bool {
        matches!(self, Service::TokenList | Service::TokenRemove)
    }

    /// Whether a GET with the fields in the query is accepted (a shopper's browser arrives there).
    pub fn accepts_get(self) -> bool {
        self == Service::Order
    }
}

/// What the facade received.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// A GET's query string (without `?`).
    Query(&'a [u8]),
    /// A POST's `application/x-www-form-urlencoded` body.
    Form(&'a [u8]),
    /// A POST's JSON body.
    Json(&'a [u8]),
}

/// A refused request and the Format to answer it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub fault: Fault,
    /// The request's Format when it named a valid one, else the service's default.
    pub format: Format,
}

/// A request, typed, one variant per service.
#[derive(Debug, Clone)]
pub enum Request {
    /// order.cfm.
    Order(OrderRequest),
    /// payrequest.cfm (the same parameters).
    PayRequest(OrderRequest),
    /// tokenpay.cfm.
    TokenPay(TokenPayRequest),
    /// rp.cfm.
    Recurrent(RecurrentRequest),
    /// charge.cfm.
    Charge(ChargeRequest),
    /// cancel.cfm and wscancel.cfm.
    Cancel(CancelRequest),
    /// orderstate.cfm.
    OrderState(OrderStateRequest),
    /// orderresult.cfm.
    OrderResult(OrderResultRequest),
    /// One Click token.cfm.
    TokenList(TokenListRequest),
    /// One Click rem_token.cfm.
    TokenRemove(TokenRemoveRequest),
}

/// Parses what the facade received for a service into its typed request. A payload of the wrong
/// kind (JSON to a form service, a GET where only POST is documented) is 4/0.
pub fn decode(service: Service, payload: Payload<'_>) -> Result<Request, Rejection> {
    let reject = |fault, format| Rejection { fault, format };
    let default = service.default_format();
    let params = match (payload, service.takes_json()) {
        (Payload::Json(body), true) => Params::from_json(
            body,
            Limits {
                max_bytes: 16 * 1024,
                ..Limits::default()
            },
        ),
        (Payload::Form(body), false) => Params::from_form(body),
        (Payload::Query(q), false) if service.accepts_get() => Params::from_form(q),
        _ => Err(Fault::new(
            FirstCode::BadFormat,
            SecondCode::None,
            "wrong request kind for this service",
        )),
    }
    .map_err(|f| reject(f, default))?;
    let format = params
        .optional::<Format>(Param::Format)
        .map_err(|f| reject(f, default))?
        .unwrap_or(default);
    Request::from_params(service, &params, format).map_err(|f| reject(f, format))
}

impl Request {
    /// Builds the typed request from a parameter set (after [`decode`] has read it).
    pub fn from_params(service: Service, p: &Params, format: Format) -> Result<Request, Fault> {
        Ok(match service {
            Service::Order => Request::Order(OrderRequest::parse(p, format)?),
            Service::PayRequest => Request::PayRequest(OrderRequest::parse(p, format)?),
            Service::TokenPay => Request::TokenPay(TokenPayRequest::parse(p, format)?),
            Service::Recurrent => Request::Recurrent(RecurrentRequest::parse(p, format)?),
            Service::Charge => Request::Charge(ChargeRequest::parse(p, format)?),
            Service::Cancel | Service::WsCancel => {
                Request::Cancel(CancelRequest::parse(p, format)?)
            }
            Service::OrderState => Request::OrderState(OrderStateRequest::parse(p, format)?),
            Service::OrderResult => Request::OrderResult(OrderResultRequest::parse(p, format)?),
            Service::TokenList => Request::TokenList(TokenListRequest::parse(p)?),
            Service::TokenRemove => Request::TokenRemove(TokenRemoveRequest::parse(p)?),
        })
    }
}

/// Merchant_ID, Login and Password of a server-to-server call, not yet verified.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Its API user.
    pub login: Login,
    /// The user's password.
    pub password: Password,
}

impl Credentials {
    fn parse(p: &Params) -> Result<Credentials, Fault> {
        Ok(Credentials {
            merchant_id: p.required(Param::MerchantId)?,
            login: p.required(Param::Login)?,
            password: p.required(Param::Password)?,
        })
    }

    /// With the One Click services' looser bounds (seed 001: login up to 20, password up to 30).
    fn parse_web_service(p: &Params) -> Result<Credentials, Fault> {
        Ok(Credentials {
            merchant_id: p.required(Param::MerchantId)?,
            login: with_rule(p, Param::Login, Login::parse_web_service)?,
            password: with_rule(p, Param::Password, Password::parse_web_service)?,
        })
    }
}

/// A required parameter parsed by a rule other than its type's usual one.
fn with_rule<T>(
    p: &Params,
    param: Param,
    rule: fn(&str) -> Result<T, Invalid>,
) -> Result<T, Fault> {
    let s = p.get(param).ok_or_else(|| param.missing())?;
    rule(s).map_err(|e| param.fault(e.first, e.why))
}

/// The customer fields of seed 004 (and seed 001's Fax).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// Last name.
    pub lastname: Option<Line>,
    /// First name.
    pub firstname: Option<Line>,
    /// Middle name.
    pub middlename: Option<Line>,
    /// E-mail.
    pub email: Option<Email>,
    /// Address.
    pub address: Option<Line>,
    /// Home phone.
    pub home_phone: Option<Line>,
    /// Work phone.
    pub work_phone: Option<Line>,
    /// Mobile phone.
    pub mobile_phone: Option<Line>,
    /// Fax.
    pub fax: Option<Line>,
    /// Country code.
    pub country: Option<Line>,
    /// Region code.
    pub state: Option<Line>,
    /// City.
    pub city: Option<Line>,
    /// Postal code.
    pub zip: Option<Line>,
}

impl Customer {
    fn parse(p: &Params) -> Result<Customer, Fault> {
        Ok(Customer {
            lastname: p.optional(Param::Lastname)?,
            firstname: p.optional(Param::Firstname)?,
            middlename: p.optional(Param::Middlename)?,
            email: p.optional(Param::Email)?,
            address: p.optional(Param::Address)?,
            home_phone: p.optional(Param::HomePhone)?,
            work_phone: p.optional(Param::WorkPhone)?,
            mobile_phone: p.optional(Param::MobilePhone)?,
            fax: p.optional(Param::Fax)?,
            country: p.optional(Param::Country)?,
            state: p.optional(Param::State)?,
            city: p.optional(Param::City)?,
            zip: p.optional(Param::Zip)?,
        })
    }
}

/// Where the shopper returns after the payment pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnUrls {
    /// For every outcome.
    pub any: Option<Url>,
    /// After an approval.
    pub ok: Option<Url>,
    /// After anything else.
    pub no: Option<Url>,
}

/// The payment-means flags as sent (`None`: not sent, the merchant's default applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaymentMeans {
    /// CardPayment.
    pub card: Option<bool>,
    /// YMPayment.
    pub yandex_money: Option<bool>,
    /// SberPayPayment.
    pub sber_pay: Option<bool>,
    /// FastPayPayment.
    pub fast_pay: Option<bool>,
    /// GooglePayPayment.
    pub google_pay: Option<bool>,
    /// ApplePayPayment.
    pub apple_pay: Option<bool>,
    /// SamsungPayPayment.
    pub samsung_pay: Option<bool>,
    /// MirPayPayment.
    pub mir_pay: Option<bool>,
}

impl PaymentMeans {
    fn parse(p: &Params) -> Result<PaymentMeans, Fault> {
        let f = |param| Ok::<_, Fault>(p.optional::<Flag>(param)?.map(|f| f.0));
        Ok(PaymentMeans {
            card: f(Param::CardPayment)?,
            yandex_money: f(Param::YmPayment)?,
            sber_pay: f(Param::SberPayPayment)?,
            fast_pay: f(Param::FastPayPayment)?,
            google_pay: f(Param::GooglePayPayment)?,
            apple_pay: f(Param::ApplePayPayment)?,
            samsung_pay: f(Param::SamsungPayPayment)?,
            mir_pay: f(Param::MirPayPayment)?,
        })
    }
}

/// Fiscal receipt fields, validated and kept; the core makes no receipts yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fiscal {
    /// ChequeItems (JSON).
    pub cheque_items: Option<ChequeItems>,
    /// GenerateReceipt.
    pub generate_receipt: Option<bool>,
    /// Tax.
    pub tax: Option<TaxRate>,
    /// ReceiptLine.
    pub receipt_line: Option<Line>,
    /// FPMode.
    pub fp_mode: Option<Number>,
    /// TaxationSystem.
    pub taxation_system: Option<Number>,
}

impl Fiscal {
    fn parse(p: &Params) -> Result<Fiscal, Fault> {
        Ok(Fiscal {
            cheque_items: p.optional(Param::ChequeItems)?,
            generate_receipt: p.optional::<Flag>(Param::GenerateReceipt)?.map(|f| f.0),
            tax: p.optional(Param::Tax)?,
            receipt_line: p.optional(Param::ReceiptLine)?,
            fp_mode: p.optional(Param::FpMode)?,
            taxation_system: p.optional(Param::TaxationSystem)?,
        })
    }
}

/// What an order asks of recurring payments (`RecurringIndicator=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurring {
    /// A scheduled agreement with its bounds.
    Agreement(Agreement),
    /// No bounds at all: an unscheduled MIT, allowed only where the merchant's config enables
    /// card-on-file MIT (seed 001); the engine calls [`Recurring::require_agreement`] otherwise.
    Unscheduled,
}

impl Recurring {
    /// The fault for an unbounded indicator where the merchant's config requires an agreement:
    /// 3/320 naming the first bound.
    pub fn require_agreement(&self) -> Result<&Agreement, Fault> {
        match self {
            Recurring::Agreement(a) => Ok(a),
            Recurring::Unscheduled => Err(Param::RecurringMinAmount.missing()),
        }
    }
}

/// A recurring agreement's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// Least amount of one payment.
    pub min_amount: Amount,
    /// Greatest amount of one payment.
    pub max_amount: Amount,
    /// Least days between two payments.
    pub period_days: u16,
    /// Last day a payment may be made.
    pub max_date: Day,
    /// The next payment's day, when given.
    pub next_date: Option<Day>,
}

const AGREEMENT: [Param; 4] = [
    Param::RecurringMinAmount,
    Param::RecurringMaxAmount,
    Param::RecurringPeriod,
    Param::RecurringMaxDate,
];

impl Recurring {
    fn parse(p: &Params) -> Result<Option<Recurring>, Fault> {
        if !p.flag(Param::RecurringIndicator)? {
            return Ok(None);
        }
        if AGREEMENT.iter().all(|&a| p.get(a).is_none())
            && p.get(Param::RecurringNextDate).is_none()
        {
            return Ok(Some(Recurring::Unscheduled));
        }
        let min_amount: Amount = p.required(Param::RecurringMinAmount)?;
        let max_amount: Amount = p.required(Param::RecurringMaxAmount)?;
        if min_amount.minor() > max_amount.minor() {
            return Err(Param::RecurringMaxAmount
                .fault(FirstCode::WrongValue, "less than RecurringMinAmount"));
        }
        let period: Number = p.required(Param::RecurringPeriod)?;
        let period_days = u16::try_from(period.0)
            .ok()
            .filter(|d| *d > 0)
            .ok_or_else(|| {
                Param::RecurringPeriod.fault(FirstCode::WrongValue, "must be 1 to 999 days")
            })?;
        Ok(Some(Recurring::Agreement(Agreement {
            min_amount,
            max_amount,
            period_days,
            max_date: p.required(Param::RecurringMaxDate)?,
            next_date: p.optional(Param::RecurringNextDate)?,
        })))
    }
}

/// The order's integrity material: X built from the values exactly as sent, and what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// X of the spec's order checkvalue and signature.
    pub x: String,
    /// The checkvalue sent.
    pub checkvalue: Option<CheckvalueText>,
    /// The signature sent.
    pub signature: Option<SignatureText>,
}

impl Sealed {
    /// X over `Merchant_ID;OrderNumber;OrderAmount` and the optional parts the spec names.
    fn parse(p: &Params, amount: Param, optional: &[Param]) -> Result<Sealed, Fault> {
        let raw = |param| p.raw(param).unwrap_or_default();
        let parts: Vec<Option<&str>> = optional.iter().map(|&o| p.raw(o)).collect();
        Ok(Sealed {
            x: crate::integrity::order_x(
                raw(Param::MerchantId),
                raw(Param::OrderNumber),
                raw(amount),
                &parts,
            ),
            checkvalue: p.optional(Param::Checkvalue)?,
            signature: p.optional(Param::Signature)?,
        })
    }

    /// The checkvalue as text, for [`crate::integrity::OrderIntegrity::verify`].
    pub fn checkvalue(&self) -> Option<&str> {
        self.checkvalue.as_ref().map(CheckvalueText::as_str)
    }

    /// The signature as text, for [`crate::integrity::OrderIntegrity::verify`].
    pub fn signature(&self) -> Option<&str> {
        self.signature.as_ref().map(SignatureText::as_str)
    }
}

fn positive(p: &Params, param: Param) -> Result<Amount, Fault> {
    let a: Amount = p.required(param)?;
    if a.minor() == 0 {
        return Err(param.fault(FirstCode::WrongValue, "must be more than zero"));
    }
    Ok(a)
}

/// Amount and Currency, sent together or not at all.
fn amount_with_currency(p: &Params) -> Result<Option<(Amount, Currency)>, Fault> {
    match (p.get(Param::Amount), p.get(Param::Currency)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(Param::Currency.missing()),
        _ => Ok(Some((
            positive(p, Param::Amount)?,
            p.required(Param::Currency)?,
        ))),
    }
}

/// order.cfm and payrequest.cfm.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Login and password when sent (payrequest: they authenticate it; order.cfm never needs them).
    pub credentials: Option<(Login, Password)>,
    /// The merchant's order number.
    pub order_number: OrderNumber,
    /// The amount.
    pub amount: Amount,
    /// The currency (absent: the merchant's).
    pub currency: Option<Currency>,
    /// Comment.
    pub comment: Option<Text>,
    /// Two-stage.
    pub delay: bool,
    /// Language.
    pub language: Option<Language>,
    /// Customer fields.
    pub customer: Customer,
    /// One Click / card-on-file customer.
    pub customer_number: Option<CustomerNumber>,
    /// Return URLs.
    pub return_urls: ReturnUrls,
    /// Payment-means flags.
    pub means: PaymentMeans,
    /// Which pages.
    pub mobile_device: Option<MobileDevice>,
    /// Recurring agreement.
    pub recurring: Option<Recurring>,
    /// Contract or account number.
    pub account: Option<Line>,
    /// Pay without 3-D Secure.
    pub disable_3ds: bool,
    /// Where the 3-D Secure challenge result goes.
    pub challenge_url: Option<Url>,
    /// Prepayment.
    pub prepayment: bool,
    /// Most bonus points.
    pub order_max_points: Option<Number>,
    /// Currency conversion (default: avoid where possible).
    pub is_convert: IsConvert,
    /// Shopper's IP.
    pub client_ip: Option<ClientIp>,
    /// Fiscal receipt.
    pub fiscal: Fiscal,
    /// checkvalue/signature material.
    pub sealed: Sealed,
    /// Answer format (payrequest).
    pub format: Format,
}

impl OrderRequest {
    fn parse(p: &Params, format: Format) -> Result<OrderRequest, Fault> {
        let credentials = match (p.get(Param::Login), p.get(Param::Password)) {
            (None, None) => None,
            _ => Some((p.required(Param::Login)?, p.required(Param::Password)?)),
        };
        Ok(OrderRequest {
            merchant_id: p.required(Param::MerchantId)?,
            credentials,
            order_number: p.required(Param::OrderNumber)?,
            amount: positive(p, Param::OrderAmount)?,
            currency: p.optional(Param::OrderCurrency)?,
            comment: p.optional(Param::OrderComment)?,
            delay: p.flag(Param::Delay)?,
            language: p.optional(Param::Language)?,
            customer: Customer::parse(p)?,
            customer_number: p.optional(Param::CustomerNumber)?,
            return_urls: ReturnUrls {
                any: p.optional(Param::UrlReturn)?,
                ok: p.optional(Param::UrlReturnOk)?,
                no: p.optional(Param::UrlReturnNo)?,
            },
            means: PaymentMeans::parse(p)?,
            mobile_device: p.optional(Param::MobileDevice)?,
            recurring: Recurring::parse(p)?,
            account: p.optional(Param::Account)?,
            disable_3ds: p.flag(Param::Disable3ds)?,
            challenge_url: p.optional(Param::ChallengeResponseNotificationUrl)?,
            prepayment: p.flag(Param::Prepayment)?,
            order_max_points: p.optional(Param::OrderMaxPoints)?,
            is_convert: p
                .optional(Param::IsConvert)?
                .unwrap_or(IsConvert::AvoidIfPossible),
            client_ip: p.optional(Param::ClientIp)?,
            fiscal: Fiscal::parse(p)?,
            sealed: Sealed::parse(
                p,
                Param::OrderAmount,
                &[
                    Param::OrderCurrency,
                    Param::OrderMaxPoints,
                    Param::CustomerNumber,
                    Param::Disable3ds,
                    Param::Prepayment,
                ],
            )?,
            format,
        })
    }
}

/// tokenpay.cfm (seed 001).
#[derive(Debug, Clone)]
pub struct TokenPayRequest {
    /// Authentication.
    pub credentials: Credentials,
    /// The merchant's order number.
    pub order_number: OrderNumber,
    /// The amount.
    pub amount: Amount,
    /// The currency (absent: the merchant's).
    pub currency: Option<Currency>,
    /// Comment (up to 256 here).
    pub comment: Option<Text>,
    /// Two-stage.
    pub delay: bool,
    /// Language.
    pub language: Option<Language>,
    /// Shopper's IP.
    pub client_ip: Option<ClientIp>,
    /// The saved card and its customer.
    pub payment_token: PaymentToken,
    /// Customer fields (Lastname, Firstname and Email required).
    pub customer: Customer,
    /// Currency conversion.
    pub is_convert: IsConvert,
    /// Fiscal receipt.
    pub fiscal: Fiscal,
    /// Signature material (X = `Merchant_ID;OrderNumber;OrderAmount;OrderCurrency`).
    pub sealed: Sealed,
    /// Answer format.
    pub format: Format,
}

impl TokenPayRequest {
    fn parse(p: &Params, format: Format) -> Result<TokenPayRequest, Fault> {
        let credentials = Credentials::parse(p)?;
        let token_type: Number = p.required(Param::TokenType)?;
        if token_type.0 != 5 {
            return Err(
                Param::TokenType.fault(FirstCode::WrongValue, "only 5 (Assist) is accepted")
            );
        }
        let comment: Option<Text> = p.optional(Param::OrderComment)?;
        if comment
            .as_ref()
            .is_some_and(|c| c.as_str().chars().count() > 256)
        {
            return Err(
                Param::OrderComment.fault(FirstCode::BadFormat, "longer than 256 characters")
            );
        }
        for required in [Param::Lastname, Param::Firstname, Param::Email] {
            if p.get(required).is_none() {
                return Err(required.missing());
            }
        }
        Ok(TokenPayRequest {
            credentials,
            order_number: p.required(Param::OrderNumber)?,
            amount: positive(p, Param::OrderAmount)?,
            currency: p.optional(Param::OrderCurrency)?,
            comment,
            delay: p.flag(Param::Delay)?,
            language: p.optional(Param::Language)?,
            client_ip: p.optional(Param::ClientIp)?,
            payment_token: p.required(Param::PaymentToken)?,
            customer: Customer::parse(p)?,
            is_convert: p
                .optional(Param::IsConvert)?
                .unwrap_or(IsConvert::AvoidIfPossible),
            fiscal: Fiscal::parse(p)?,
            sealed: Sealed::parse(p, Param::OrderAmount, &[Param::OrderCurrency])?,
            format,
        })
    }
}

/// rp.cfm: a payment on the agreement of an initial order.
#[derive(Debug, Clone)]
pub struct RecurrentRequest {
    /// Authentication.
    pub credentials: Credentials,
    /// The initial order (plain or `.1`).
    pub initial: BillNumber,
    /// The new payment's order number.
    pub order_number: OrderNumber,
    /// Its amount.
    pub amount: Amount,
    /// Its currency (must equal the initial order's: the engine checks).
    pub currency: Currency,
    /// Comment.
    pub comment: Option<Text>,
    /// Language.
    pub language: Option<Language>,
    /// Shopper's IP, when the merchant sends one.
    pub client_ip: Option<ClientIp>,
    /// Fiscal receipt lines.
    pub cheque_items: Option<ChequeItems>,
    /// Answer format.
    pub format: Format,
}

impl RecurrentRequest {
    fn parse(p: &Params, format: Format) -> Result<RecurrentRequest, Fault> {
        let credentials = Credentials::parse(p)?;
        let bill: BillRef = p.required(Param::BillNumber)?;
        if bill.operation.is_some_and(|n| n != 1) {
            return Err(Param::BillNumber.fault(
                FirstCode::WrongValue,
                "must name the initial payment (plain or .1)",
            ));
        }
        Ok(RecurrentRequest {
            credentials,
            initial: bill.bill,
            order_number: p.required(Param::OrderNumber)?,
            amount: positive(p, Param::Amount)?,
            currency: p.required(Param::Currency)?,
            comment: p.optional(Param::OrderComment)?,
            language: p.optional(Param::Language)?,
            client_ip: p.optional(Param::ClientIp)?,
            cheque_items: p.optional(Param::ChequeItems)?,
            format,
        })
    }
}

/// charge.cfm.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// Authentication.
    pub credentials: Credentials,
    /// The order.
    pub bill: BillRef,
    /// A smaller amount to charge (absent: the full authorized amount).
    pub amount: Option<(Amount, Currency)>,
    /// Shopper's IP.
    pub client_ip: Option<ClientIp>,
    /// Language.
    pub language: Option<Language>,
    /// Answer format.
    pub format: Format,
}

impl ChargeRequest {
    fn parse(p: &Params, format: Format) -> Result<ChargeRequest, Fault> {
        Ok(ChargeRequest {
            credentials: Credentials::parse(p)?,
            bill: p.required(Param::BillNumber)?,
            amount: amount_with_currency(p)?,
            client_ip: p.optional(Param::ClientIp)?,
            language: p.optional(Param::Language)?,
            format,
        })
    }
}

/// cancel.cfm and wscancel.cfm.
#[derive(Debug, Clone)]
pub struct CancelRequest {
    /// Authentication.
    pub credentials: Credentials,
    /// The order.
    pub bill: BillRef,
    /// A partial amount (absent: all that is left).
    pub amount: Option<(Amount, Currency)>,
    /// Why (default: the customer asked).
    pub reason: CancelReason,
    /// The merchant's id for idempotency.
    pub external_refund_id: Option<ExternalRefundId>,
    /// Language.
    pub language: Option<Language>,
    /// Shopper's IP.
    pub client_ip: Option<ClientIp>,
    /// Fiscal receipt lines of the refund.
    pub cheque_items: Option<ChequeItems>,
    /// Answer format.
    pub format: Format,
}

impl CancelRequest {
    fn parse(p: &Params, format: Format) -> Result<CancelRequest, Fault> {
        Ok(CancelRequest {
            credentials: Credentials::parse(p)?,
            bill: p.required(Param::BillNumber)?,
            amount: amount_with_currency(p)?,
            reason: p
                .optional(Param::CancelReason)?
                .unwrap_or(CancelReason::Customer),
            external_refund_id: p.optional(Param::ExternalRefundId)?,
            language: p.optional(Param::Language)?,
            client_ip: p.optional(Param::ClientIp)?,
            cheque_items: p.optional(Param::ChequeItems)?,
            format,
        })
    }
}

/// A period filter as sent: each end given or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// Start (UTC).
    pub start: Option<PrimitiveDateTime>,
    /// End (UTC).
    pub end: Option<PrimitiveDateTime>,
}

/// One end of a period: its five fields, and the hour and minute when they are not sent.
struct PeriodEnd {
    fields: [Param; 5],
    default_time: Time,
}

const START: PeriodEnd = PeriodEnd {
    fields: [
        Param::StartYear,
        Param::StartMonth,
        Param::StartDay,
        Param::StartHour,
        Param::StartMin,
    ],
    default_time: Time::MIDNIGHT,
};

const END: PeriodEnd = PeriodEnd {
    fields: [
        Param::EndYear,
        Param::EndMonth,
        Param::EndDay,
        Param::EndHour,
        Param::EndMin,
    ],
    default_time: match Time::from_hms(23, 59, 59) {
        Ok(t) => t,
        Err(_) => Time::MIDNIGHT,
    },
};

impl PeriodEnd {
    /// Year, month and day are required once any field of this end is sent; hour and minute
    /// default to the start or the end of the day.
    fn parse(&self, p: &Params) -> Result<Option<PrimitiveDateTime>, Fault> {
        if self.fields.iter().all(|&f| p.get(f).is_none()) {
            return Ok(None);
        }
        let [y, m, d, h, min] = self.fields;
        let num = |f: Param| p.required::<Number>(f).map(|n| n.0);
        let bad = |f: Param| f.fault(FirstCode::WrongValue, "not a valid date");
        let year = i32::try_from(num(y)?).map_err(|_| bad(y))?;
        let month = u8::try_from(num(m)?)
            .ok()
            .and_then(|n| Month::try_from(n).ok())
            .ok_or_else(|| bad(m))?;
        let day = u8::try_from(num(d)?).map_err(|_| bad(d))?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| bad(d))?;
        let time = match (p.optional::<Number>(h)?, p.optional::<Number>(min)?) {
            (None, None) => self.default_time,
            (hour, minute) => {
                let hour = u8::try_from(hour.map_or(0, |n| n.0)).map_err(|_| bad(h))?;
                let minute = u8::try_from(minute.map_or(0, |n| n.0)).map_err(|_| bad(min))?;
                Time::from_hms(hour, minute, 0).map_err(|_| bad(h))?
            }
        };
        Ok(Some(PrimitiveDateTime::new(date, time)))
    }
}

impl Period {
    fn parse(p: &Params) -> Result<Period, Fault> {
        Ok(Period {
            start: START.parse(p)?,
            end: END.parse(p)?,
        })
    }

    /// The period to search, UTC: what was sent, the start defaulting to three days before the
    /// end and the end to `now`. A start after its end is 5/104.
    pub fn resolve(
        &self,
        now: OffsetDateTime,
    ) -> Result<(PrimitiveDateTime, PrimitiveDateTime), Fault> {
        let now = now.to_offset(time::UtcOffset::UTC);
        let end = self
            .end
            .unwrap_or_else(|| PrimitiveDateTime::new(now.date(), now.time()));
        let start = self.start.unwrap_or(end - Duration::days(3));
        if start > end {
            return Err(
                Param::StartYear.fault(FirstCode::WrongValue, "period starts after it ends")
            );
        }
        Ok((start, end))
    }
}

/// orderstate.cfm.
#[derive(Debug, Clone)]
pub struct OrderStateRequest {
    /// Authentication.
    pub credentials: Credentials,
    /// Whose attempts to report.
    pub order_number: OrderNumber,
    /// Period filter.
    pub period: Period,
    /// Answer format.
    pub format: Format,
}

impl OrderStateRequest {
    fn parse(p: &Params, format: Format) -> Result<OrderStateRequest, Fault> {
        Ok(OrderStateRequest {
            credentials: Credentials::parse(p)?,
            order_number: p.required(Param::OrderNumber)?,
            period: Period::parse(p)?,
            format,
        })
    }
}

/// orderresult.cfm.
#[derive(Debug, Clone)]
pub struct OrderResultRequest {
    /// Authentication.
    pub credentials: Credentials,
    /// By the merchant's order number.
    pub order_number: Option<OrderNumber>,
    /// By our billnumber.
    pub bill: Option<BillRef>,
    /// Period filter.
    pub period: Period,
    /// Answer format.
    pub format: Format,
}

impl OrderResultRequest {
    fn parse(p: &Params, format: Format) -> Result<OrderResultRequest, Fault> {
        Ok(OrderResultRequest {
            credentials: Credentials::parse(p)?,
            order_number: p.optional(Param::OrderNumber)?,
            bill: p.optional(Param::BillNumber)?,
            period: Period::parse(p)?,
            format,
        })
    }

    /// The period to search; without an order selector it may not be longer than a day (4/4).
    pub fn window(
        &self,
        now: OffsetDateTime,
    ) -> Result<(PrimitiveDateTime, PrimitiveDateTime), Fault> {
        let (start, end) = self.period.resolve(now)?;
        if self.order_number.is_none() && self.bill.is_none() && end - start > Duration::days(1) {
            return Err(Fault::new(
                FirstCode::BadFormat,
                SecondCode::Period,
                "period too long without OrderNumber or BillNumber",
            ));
        }
        Ok((start, end))
    }
}

/// One Click token.cfm (seed 001).
#[derive(Debug, Clone)]
pub struct TokenListRequest {
    /// Authentication (One Click bounds).
    pub credentials: Credentials,
    /// Whose cards.
    pub customer_number: CustomerNumber,
    /// Language.
    pub language: Option<Language>,
}

impl TokenListRequest {
    fn parse(p: &Params) -> Result<TokenListRequest, Fault> {
        Ok(TokenListRequest {
            credentials: Credentials::parse_web_service(p)?,
            customer_number: p.required(Param::CustomerNumber)?,
            language: p.optional(Param::Language)?,
        })
    }
}

/// One Click rem_token.cfm (seed 001).
#[derive(Debug, Clone)]
pub struct TokenRemoveRequest {
    /// Authentication (One Click bounds).
    pub credentials: Credentials,
    /// Whose card.
    pub customer_number: CustomerNumber,
    /// Which card.
    pub token: CardToken,
    /// Language.
    pub language: Option<Language>,
}

impl TokenRemoveRequest {
    fn parse(p: &Params) -> Result<TokenRemoveRequest, Fault> {
        Ok(TokenRemoveRequest {
            credentials: Credentials::parse_web_service(p)?,
            customer_number: p.required(Param::CustomerNumber)?,
            token: p.required(Param::Token)?,
            language: p.optional(Param::Language)?,
        })
    }
}

#[cfg(test)]
mod tests;
