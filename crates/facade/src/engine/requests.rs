//! Assist requests → the order engine's arguments: typed `assist` values into `orders`, `card`
//! and `link` ones, every parameter the engine keeps copied into the order's details.
//!
//! Owns that translation in this one direction. Must never call the engine, and never refuse
//! what `assist` accepted except where the two crates' rules differ (a fault naming the
//! parameter, as `assist` would).

use std::collections::BTreeMap;

use assist::codes::{Fault, FirstCode, SecondCode};
use assist::requests::{
    CancelRequest, ChargeRequest, Customer, OrderRequest, RecurrentRequest, Recurring,
    TokenPayRequest,
};
use assist::values::{self, Amount, BillRef, ClientIp, Currency, Language, Text};
use orders::{NewOrder, OrderDetails, RecurringPayment, RecurringRequest};

use crate::merchants::Merchant;
use crate::one_click::customer;

/// order.cfm / payrequest.cfm: the order to create.
pub(super) fn new_order(merchant: &Merchant, r: &OrderRequest) -> Result<NewOrder, Fault> {
    let mut details = details(&r.customer, r.comment.as_ref(), r.language, r.client_ip);
    details.url_return = r.return_urls.any.as_ref().map(|u| u.as_str().to_owned());
    details.url_return_ok = r.return_urls.ok.as_ref().map(|u| u.as_str().to_owned());
    details.url_return_no = r.return_urls.no.as_ref().map(|u| u.as_str().to_owned());
    // Kept with the order, not acted on yet (README.md lists them).
    keep(
        &mut details.extra,
        "Account",
        r.account.as_ref().map(|a| a.as_str()),
    );
    keep(
        &mut details.extra,
        "ChequeItems",
        r.fiscal.cheque_items.as_ref().map(|c| c.as_str()),
    );
    keep(
        &mut details.extra,
        "challengeResponseNotificationUrl",
        r.challenge_url.as_ref().map(|u| u.as_str()),
    );
    Ok(NewOrder {
        order_number: order_number(&r.order_number)?,
        amount: r.amount.minor(),
        currency: currency(r.currency.unwrap_or(merchant.currency)),
        two_stage: r.delay,
        customer_number: r.customer_number.as_ref().map(customer).transpose()?,
        details,
        recurring: r.recurring.as_ref().map(|rec| match rec {
            Recurring::Agreement(a) => RecurringRequest::Scheduled {
                min_amount: a.min_amount.minor(),
                max_amount: a.max_amount.minor(),
                period_days: a.period_days,
                max_date: a.max_date.0,
            },
            Recurring::Unscheduled => RecurringRequest::Unscheduled,
        }),
        expires_at: None,
        disable_3ds: r.disable_3ds,
    })
}

/// tokenpay.cfm: the order, whose customer is the token's, and the saved card.
pub(super) fn token_pay(
    merchant: &Merchant,
    r: &TokenPayRequest,
) -> Result<(NewOrder, card::Token), Fault> {
    let mut details = details(&r.customer, r.comment.as_ref(), r.language, r.client_ip);
    keep(
        &mut details.extra,
        "ChequeItems",
        r.fiscal.cheque_items.as_ref().map(|c| c.as_str()),
    );
    let order = NewOrder {
        order_number: order_number(&r.order_number)?,
        amount: r.amount.minor(),
        currency: currency(r.currency.unwrap_or(merchant.currency)),
        two_stage: r.delay,
        customer_number: Some(customer(&r.payment_token.customer_number)?),
        details,
        recurring: None,
        expires_at: None,
        disable_3ds: true,
    };
    Ok((order, card::Token(r.payment_token.token.0)))
}

/// rp.cfm.
pub(super) fn recurring(r: &RecurrentRequest) -> Result<RecurringPayment, Fault> {
    let mut details = details(
        &Customer::default(),
        r.comment.as_ref(),
        r.language,
        r.client_ip,
    );
    keep(
        &mut details.extra,
        "ChequeItems",
        r.cheque_items.as_ref().map(|c| c.as_str()),
    );
    Ok(RecurringPayment {
        initial: bill(r.initial)?,
        order_number: order_number(&r.order_number)?,
        amount: r.amount.minor(),
        currency: currency(r.currency),
        details,
    })
}

/// charge.cfm: the order, and the amount with the currency it was sent in.
pub(super) fn charge(
    r: &ChargeRequest,
) -> Result<(orders::BillNumber, Option<(u64, link::Currency)>), Fault> {
    Ok((bill(r.bill.bill)?, amount(r.amount.as_ref())))
}

/// cancel.cfm / wscancel.cfm.
pub(super) fn cancel(
    r: &CancelRequest,
) -> Result<(orders::BillNumber, orders::CancelRequest), Fault> {
    let amount = amount(r.amount.as_ref());
    let reason = match r.reason {
        values::CancelReason::Shop => orders::CancelReason::Shop,
        values::CancelReason::Customer => orders::CancelReason::Customer,
        values::CancelReason::Fraud => orders::CancelReason::Fraud,
    };
    Ok((
        bill(r.bill.bill)?,
        orders::CancelRequest {
            amount: amount.map(|(a, _)| a),
            currency: amount.map(|(_, c)| c),
            reason,
            external_id: r.external_refund_id.as_ref().map(|e| e.as_str().to_owned()),
            client_ip: r.client_ip.map(|ip| ip.to_string()),
        },
    ))
}

/// orderresult.cfm's billnumber (plain or extended: the order either way).
pub(super) fn order_of(r: BillRef) -> Result<orders::BillNumber, Fault> {
    bill(r.bill)
}

/// The merchant's number as the engine keeps it.
pub(super) fn order_number(n: &values::OrderNumber) -> Result<orders::OrderNumber, Fault> {
    orders::OrderNumber::parse(n.as_str()).map_err(|e| {
        Fault::new(
            FirstCode::WrongValue,
            SecondCode::OrderNumber,
            e.to_string(),
        )
    })
}

fn details(
    c: &Customer,
    comment: Option<&Text>,
    language: Option<Language>,
    client_ip: Option<ClientIp>,
) -> OrderDetails {
    let line = |l: &Option<values::Line>| l.as_ref().map(|l| l.as_str().to_owned());
    let mut extra = BTreeMap::new();
    for (name, value) in [
        ("Address", &c.address),
        ("HomePhone", &c.home_phone),
        ("WorkPhone", &c.work_phone),
        ("MobilePhone", &c.mobile_phone),
        ("Fax", &c.fax),
        ("Country", &c.country),
        ("State", &c.state),
        ("City", &c.city),
        ("Zip", &c.zip),
    ] {
        keep(&mut extra, name, value.as_ref().map(|v| v.as_str()));
    }
    OrderDetails {
        firstname: line(&c.firstname),
        lastname: line(&c.lastname),
        middlename: line(&c.middlename),
        email: c.email.as_ref().map(|e| e.as_str().to_owned()),
        client_ip: client_ip.map(|ip| ip.to_string()),
        comment: comment.map(|t| t.as_str().to_owned()),
        language: language.map(|l| l.as_str().to_owned()),
        url_return: None,
        url_return_ok: None,
        url_return_no: None,
        extra,
    }
}

fn keep(extra: &mut BTreeMap<String, String>, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        extra.insert(name.to_owned(), v.to_owned());
    }
}

fn amount(a: Option<&(Amount, Currency)>) -> Option<(u64, link::Currency)> {
    a.map(|(amount, c)| (amount.minor(), currency(*c)))
}

/// The ISO 4217 number the network carries; every currency `assist` accepts has one.
pub(super) fn currency(c: Currency) -> link::Currency {
    link::Currency::new(c.numeric()).unwrap_or(link::Currency::RUB)
}

fn bill(b: values::BillNumber) -> Result<orders::BillNumber, Fault> {
    // A 16-digit number whose first digit is 0 is no billnumber of ours.
    orders::BillNumber::new(b.get()).ok_or_else(Fault::unknown_order)
}
