//! The orders screens: the search (by OrderNumber, billnumber, a date range in the merchant's
//! time zone, and state, over the engine's indexes), one order's page with its operations, and
//! its charge and cancel forms.
//!
//! Owns those screens. Charge and cancel are the engine's `charge` and `cancel`, the calls
//! charge.cfm and cancel.cfm make, with the merchant's own settings; a cancel carries a
//! per-form id as its `Externalrefundid`, so a form sent twice cancels once. Must never show
//! another merchant's order (the engine looks orders up under the session's merchant only), or
//! a card beyond its BIN and last four.

use std::fmt::Write as _;
use std::sync::Arc;

use assist::values::{Amount, ParamValue as _};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use orders::{
    BillNumber, CancelReason, EngineError, OperationState, OperationType, OrderNumber, OrderRecord,
    OrderState, RequestError, Timestamp,
};
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use super::html::{amount, decimal, escape, query_value};
use super::i18n::{Lang, Msg};
use super::session::random_hex;
use super::{Form, Visit, posted, visit};
use crate::Facade;

/// Most orders one search shows.
const MAX_SHOWN: usize = 200;
/// The period searched when none is given: the last week, today included.
const DEFAULT_DAYS: i64 = 6;

/// What the search form asks.
#[derive(Debug, Default, PartialEq, Eq)]
struct Search {
    number: Option<String>,
    bill: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    state: Option<OrderState>,
}

/// A search that cannot be run (a date or a billnumber that is not one).
#[derive(Debug, PartialEq, Eq)]
struct BadSearch;

impl Search {
    fn of(form: &Form) -> Result<Search, BadSearch> {
        let date = |name| form.get(name).map(parse_date).transpose();
        Ok(Search {
            number: form.get("number").map(str::to_owned),
            bill: form.get("bill").map(str::to_owned),
            from: date("from")?,
            to: date("to")?,
            state: form
                .get("state")
                .map(|s| {
                    OrderState::ALL
                        .into_iter()
                        .find(|o| o.as_str() == s)
                        .ok_or(BadSearch)
                })
                .transpose()?,
        })
    }

    /// `[from, to]` as instants: from the first day's midnight to the last day's end, in the
    /// merchant's zone.
    fn window(&self, zone: UtcOffset, today: Date) -> (OffsetDateTime, OffsetDateTime) {
        let to = self.to.unwrap_or(today);
        let from = self
            .from
            .unwrap_or_else(|| to.saturating_sub(time::Duration::days(DEFAULT_DAYS)));
        let start = from.with_time(Time::MIDNIGHT).assume_offset(zone);
        let end = to.with_time(Time::MIDNIGHT).assume_offset(zone) + time::Duration::days(1)
            - time::Duration::seconds(1);
        (start, end)
    }

    fn matches(&self, o: &OrderRecord, window: (OffsetDateTime, OffsetDateTime)) -> bool {
        let created = o.created_at.to_datetime();
        let in_window =
            (self.from.is_none() && self.to.is_none()) || (window.0..=window.1).contains(&created);
        in_window
            && self.state.is_none_or(|s| s == o.state)
            && self
                .number
                .as_deref()
                .is_none_or(|n| o.order_number.as_str() == n)
    }
}

/// `YYYY-MM-DD`, what a date field sends.
fn parse_date(s: &str) -> Result<Date, BadSearch> {
    let mut parts = s.splitn(3, '-');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .ok_or(BadSearch)
    };
    let (y, m, d) = (next()?, next()?, next()?);
    let month = u8::try_from(m).ok().and_then(|m| Month::try_from(m).ok());
    let day = u8::try_from(d).ok();
    month
        .zip(day)
        .and_then(|(m, d)| Date::from_calendar_date(y, m, d).ok())
        .ok_or(BadSearch)
}

/// A billnumber as the merchant reads it (16 digits).
fn bill_of(s: &str) -> Option<BillNumber> {
    (s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
        .and_then(BillNumber::new)
}

/// The orders a search finds, newest first; `Err` when the engine could not answer.
fn find(visit: &Visit<'_>, search: &Search) -> Result<Vec<OrderRecord>, EngineError> {
    let engine = &visit.facade.orders;
    let id = &visit.merchant.vault_id;
    let zone = visit.merchant.time_zone;
    let today = OffsetDateTime::now_utc().to_offset(zone).date();
    let window = search.window(zone, today);
    let found = if let Some(bill) = &search.bill {
        match bill_of(bill).map(|b| engine.order(id, b)) {
            None | Some(Err(EngineError::Request(RequestError::UnknownOrder))) => Vec::new(),
            Some(r) => vec![r?],
        }
    } else if let Some(number) = &search.number {
        match OrderNumber::parse(number) {
            Ok(n) => engine.orders_by_number(id, &n)?,
            Err(_) => Vec::new(),
        }
    } else {
        engine.orders_in_period(id, window.0, window.1, search.state)?
    };
    let mut found: Vec<_> = found
        .into_iter()
        .filter(|o| search.bill.is_some() || search.matches(o, window))
        .collect();
    found.reverse();
    Ok(found)
}

/// `GET /cabinet/`: the search form and what it finds.
pub(crate) async fn search(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let visit = match visit(&facade, &headers, &uri) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let form = Form::parse(uri.query().unwrap_or_default().as_bytes());
    let search = Search::of(&form);
    let mut body = search_form(lang, &form);
    let status = match search.as_ref().map(|s| find(&visit, s)) {
        Err(BadSearch) => {
            body.push_str(&super::html::flash(false, lang.t(Msg::BadSearch)));
            StatusCode::BAD_REQUEST
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cabinet order search failed");
            body.push_str(&super::html::flash(false, lang.t(Msg::Unavailable)));
            StatusCode::SERVICE_UNAVAILABLE
        }
        Ok(Ok(found)) => {
            body.push_str(&results(&visit, &found));
            StatusCode::OK
        }
    };
    visit.page(status, Msg::Orders, &body)
}

fn search_form(lang: Lang, form: &Form) -> String {
    let field = |id: &str, label: Msg, kind: &str| {
        format!(
            "<label>{}<input id=\"{id}\" name=\"{id}\" type=\"{kind}\" value=\"{}\"></label>",
            escape(lang.t(label)),
            escape(form.get(id).unwrap_or_default())
        )
    };
    let mut states = format!(
        "<option value=\"\">{}</option>",
        escape(lang.t(Msg::AnyState))
    );
    for s in OrderState::ALL {
        let selected = if form.get("state") == Some(s.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            states,
            "<option value=\"{v}\"{selected}>{v}</option>",
            v = escape(s.as_str())
        );
    }
    format!(
        "<h1>{title}</h1><form class=\"card search\" id=\"search\" method=\"get\" action=\"/cabinet/\">\
         {number}{bill}{from}{to}<label>{state}<select id=\"state\" name=\"state\">{states}</select></label>\
         <button id=\"find\" type=\"submit\">{find}</button></form>",
        title = escape(lang.t(Msg::Orders)),
        number = field("number", Msg::OrderNumber, "text"),
        bill = field("bill", Msg::Billnumber, "text"),
        from = field("from", Msg::DateFrom, "date"),
        to = field("to", Msg::DateTo, "date"),
        state = escape(lang.t(Msg::State)),
        find = escape(lang.t(Msg::Search)),
    )
}

fn results(visit: &Visit<'_>, found: &[OrderRecord]) -> String {
    let lang = visit.lang;
    if found.is_empty() {
        return format!(
            "<p id=\"no-orders\" class=\"muted\">{}</p>",
            escape(lang.t(Msg::NoOrders))
        );
    }
    let mut s = String::new();
    if found.len() > MAX_SHOWN {
        s.push_str(&super::html::flash(false, lang.t(Msg::FirstOnly)));
    }
    let _ = write!(
        s,
        "<table id=\"orders\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        escape(lang.t(Msg::Billnumber)),
        escape(lang.t(Msg::OrderNumber)),
        escape(lang.t(Msg::Created)),
        escape(lang.t(Msg::Amount)),
        escape(lang.t(Msg::State)),
        escape(lang.t(Msg::Card)),
        escape(lang.t(Msg::Customer)),
    );
    for o in found.iter().take(MAX_SHOWN) {
        let _ = write!(
            s,
            "<tr><td><a class=\"order-link\" href=\"/cabinet/orders/{bill}\">{bill}</a></td>\
             <td class=\"order-number\">{number}</td><td>{created}</td><td>{amount}</td>\
             <td class=\"order-state\">{state}</td><td>{card}</td><td>{customer}</td></tr>",
            bill = o.bill,
            number = escape(o.order_number.as_str()),
            created = when(o.created_at, visit.merchant.time_zone),
            amount = money(lang, o.amount, o.currency),
            state = escape(o.state.as_str()),
            card = masked_card(o),
            customer = escape(o.customer_number.as_ref().map_or("", |c| c.as_str())),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// An instant in the merchant's zone, `YYYY-MM-DD HH:MM:SS`.
fn when(t: Timestamp, zone: UtcOffset) -> String {
    let t = t.to_datetime().to_offset(zone);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn money(lang: Lang, minor: u64, currency: link::Currency) -> String {
    escape(&amount(lang, minor, currency.code()))
}

/// `411111******1111 VISA 12/30`, or nothing before a card is known.
fn masked_card(o: &OrderRecord) -> String {
    o.card.as_ref().map_or_else(String::new, |c| {
        let m = &c.masked;
        escape(&format!(
            "{}******{} {} {:02}/{:02}",
            m.bin,
            m.last4,
            m.brand,
            m.expiry_month,
            m.expiry_year % 100
        ))
    })
}

/// The order of the path, when it is this merchant's; the "not found" page otherwise.
// The error is the page to answer instead, made once per request on its way out: boxing it
// would buy nothing but an allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn order_of(visit: &Visit<'_>, bill: &str) -> Result<OrderRecord, Response> {
    let bill = bill_of(bill).ok_or_else(|| visit.not_found())?;
    match visit.facade.orders.order(&visit.merchant.vault_id, bill) {
        Ok(o) => Ok(o),
        Err(EngineError::Request(RequestError::UnknownOrder)) => Err(visit.not_found()),
        Err(e) => {
            tracing::warn!(error = %e, "cabinet order read failed");
            let text = escape(visit.lang.t(Msg::Unavailable));
            Err(visit.page(
                StatusCode::SERVICE_UNAVAILABLE,
                Msg::Order,
                &format!("<p class=\"flash error\">{text}</p>"),
            ))
        }
    }
}

/// `GET /cabinet/orders/{bill}`.
pub(crate) async fn show(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let visit = match visit(&facade, &headers, &uri) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let order = match order_of(&visit, &bill) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = order_page(&visit, &order);
    visit.page(StatusCode::OK, Msg::Order, &body)
}

fn order_page(visit: &Visit<'_>, o: &OrderRecord) -> String {
    let lang = visit.lang;
    let zone = visit.merchant.time_zone;
    let money = |minor| money(lang, minor, o.currency);
    let mut s = format!(
        "<h1>{} <span id=\"order-number\">{}</span></h1><section><dl>",
        escape(lang.t(Msg::Order)),
        escape(o.order_number.as_str())
    );
    let customer = o.customer_number.as_ref().map_or_else(String::new, |c| {
        format!(
            "<a href=\"/cabinet/customers?customer={}\">{}</a>",
            query_value(c.as_str()),
            escape(c.as_str())
        )
    });
    let stage = if o.two_stage {
        Msg::TwoStage
    } else {
        Msg::OneStage
    };
    for (label, id, value) in [
        (Msg::Billnumber, "bill", escape(&o.bill.to_string())),
        (Msg::State, "state", escape(o.state.as_str())),
        (Msg::Created, "created", when(o.created_at, zone)),
        (Msg::Amount, "amount", money(o.amount)),
        (Msg::Payment, "stage", escape(lang.t(stage))),
        (Msg::Authorized, "authorized", money(o.authorized)),
        (Msg::Captured, "captured", money(o.captured)),
        (Msg::CancelledSum, "cancelled", money(o.cancelled)),
        (Msg::Card, "card", masked_card(o)),
        (Msg::Customer, "customer", customer),
    ] {
        let _ = write!(
            s,
            "<dt>{}</dt><dd id=\"{id}\">{value}</dd>",
            escape(lang.t(label))
        );
    }
    s.push_str("</dl></section>");
    s.push_str(&operations(lang, zone, o));
    s.push_str(&actions(visit, o));
    s.push_str(&super::notifications::section(visit, o));
    s
}

fn operations(lang: Lang, zone: UtcOffset, o: &OrderRecord) -> String {
    let mut s = format!(
        "<h2>{}</h2><table id=\"operations\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        escape(lang.t(Msg::Operations)),
        escape(lang.t(Msg::Operation)),
        escape(lang.t(Msg::Kind)),
        escape(lang.t(Msg::Status)),
        escape(lang.t(Msg::Amount)),
        escape(lang.t(Msg::Created)),
        escape(lang.t(Msg::ApprovalCode)),
        escape(lang.t(Msg::ResponseCode)),
        escape(lang.t(Msg::NetworkCode)),
    );
    for op in &o.operations {
        let kind = match op.kind {
            OperationType::Payment => Msg::OpPayment,
            OperationType::Charge => Msg::OpCharge,
            OperationType::Cancel => Msg::OpCancel,
        };
        let network = op
            .last_transaction()
            .and_then(|t| t.response_code.as_deref())
            .unwrap_or_default();
        let _ = write!(
            s,
            "<tr class=\"operation\"><td>{bill}.{n}</td><td class=\"op-kind\">{kind}</td>\
             <td class=\"op-state\">{state}</td><td class=\"op-amount\">{amount}</td>\
             <td>{created}</td><td>{approval}</td><td class=\"op-code\">{code}</td>\
             <td>{network}</td></tr>",
            bill = o.bill,
            n = op.number,
            kind = escape(lang.t(kind)),
            state = escape(op.state.as_str()),
            amount = money(lang, op.amount, o.currency),
            created = when(op.created_at, zone),
            approval = escape(op.approval_code.as_deref().unwrap_or_default()),
            code = escape(op.assist_code().as_str()),
            network = escape(network),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// The charge and cancel forms the order's state allows.
fn actions(visit: &Visit<'_>, o: &OrderRecord) -> String {
    let lang = visit.lang;
    let csrf = super::html::csrf_field(visit.csrf());
    let idle = o.in_flight().is_none();
    let delayed = o.state == OrderState::Delayed;
    let mut s = String::new();
    if idle && delayed {
        let _ = write!(
            s,
            "<form class=\"card\" id=\"charge-form\" method=\"post\" action=\"/cabinet/orders/{bill}/charge\">\
             <h2>{title}</h2>{csrf}<label>{label}<input id=\"charge-amount\" name=\"amount\" \
             inputmode=\"decimal\" placeholder=\"{full}\"></label>\
             <button id=\"charge\" type=\"submit\">{button}</button></form>",
            bill = o.bill,
            title = escape(lang.t(Msg::ChargeTitle)),
            label = escape(lang.t(Msg::ChargeAmount)),
            full = escape(&decimal(lang, o.authorized)),
            button = escape(lang.t(Msg::ChargeButton)),
        );
    }
    let left = if delayed {
        o.authorized
    } else {
        o.cancellable()
    };
    if idle && left > 0 {
        // A Delayed order is reversed in full only (the engine's rule): no amount to type.
        let amount_field = if delayed {
            String::new()
        } else {
            format!(
                "<label>{}<input id=\"cancel-amount\" name=\"amount\" inputmode=\"decimal\" \
                 placeholder=\"{}\"></label>",
                escape(lang.t(Msg::CancelAmount)),
                escape(&decimal(lang, left)),
            )
        };
        let _ = write!(
            s,
            "<form class=\"card\" id=\"cancel-form\" method=\"post\" action=\"/cabinet/orders/{bill}/cancel\">\
             <h2>{title}</h2>{csrf}<input type=\"hidden\" name=\"once\" value=\"{once}\">{amount_field}\
             <button class=\"danger\" id=\"cancel\" type=\"submit\">{button}</button></form>",
            bill = o.bill,
            title = escape(lang.t(Msg::CancelTitle)),
            once = &random_hex()[..24],
            button = escape(lang.t(Msg::CancelButton)),
        );
    }
    if s.is_empty() {
        s
    } else {
        format!("<div class=\"actions\">{s}</div>")
    }
}

/// The typed amount in minor units; none when the field is empty.
fn typed_amount(form: &Form) -> Result<Option<u64>, ()> {
    form.get("amount")
        .map(|a| Amount::parse(a).map(|a| a.minor()).map_err(|_| ()))
        .transpose()
}

/// A charge or cancel form posted for one of the session merchant's orders.
struct OrderAction<'f> {
    visit: Visit<'f>,
    form: Form,
    order: OrderRecord,
    /// Minor units; none: all of what is left.
    amount: Option<u64>,
}

impl<'f> OrderAction<'f> {
    /// The session and its form (CSRF checked), the order it names and the typed amount; an
    /// answer instead when any of them is wrong.
    // The error is the page to answer instead, as for `order_of`.
    #[allow(clippy::result_large_err)]
    fn of(
        facade: &'f Facade,
        bill: &str,
        headers: &HeaderMap,
        uri: &Uri,
        body: &Bytes,
    ) -> Result<OrderAction<'f>, Response> {
        let (visit, form) = posted(facade, headers, uri, body)?;
        let order = order_of(&visit, bill)?;
        let Ok(amount) = typed_amount(&form) else {
            return Err(visit.done(&page_of(&order), false, visit.lang.t(Msg::BadAmount)));
        };
        Ok(OrderAction {
            visit,
            form,
            order,
            amount,
        })
    }

    /// Audits the engine's answer and leaves its message on the order's page.
    fn finish(
        &self,
        action: &'static str,
        result: Result<orders::OperationResult, EngineError>,
        success: Msg,
    ) -> Response {
        tracing::info!(
            target: "audit",
            merchant = %self.visit.merchant.id,
            bill = %self.order.bill,
            amount = self.amount,
            ok = result.is_ok(),
            action,
            "cabinet order action"
        );
        outcome(&self.visit, &page_of(&self.order), result, success)
    }
}

/// The order's page in the cabinet.
fn page_of(order: &OrderRecord) -> String {
    format!("/cabinet/orders/{}", order.bill)
}

/// `POST /cabinet/orders/{bill}/charge`: the engine's charge, as charge.cfm.
pub(crate) async fn charge(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let a = match OrderAction::of(&facade, &bill, &headers, &uri, &body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let settings = facade.merchant_settings(a.visit.merchant);
    let result = facade
        .orders
        .charge(&settings, a.order.bill, a.amount)
        .await;
    a.finish("charge", result, Msg::Charged)
}

/// `POST /cabinet/orders/{bill}/cancel`: the engine's cancel, as cancel.cfm.
pub(crate) async fn cancel(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let a = match OrderAction::of(&facade, &bill, &headers, &uri, &body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let request = orders::CancelRequest {
        amount: a.amount,
        currency: None,
        reason: CancelReason::Shop,
        // The form's own id: the same form sent twice is one cancel.
        external_id: a
            .form
            .get("once")
            .filter(|o| o.len() == 24 && o.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|o| format!("cabinet-{o}")),
        client_ip: None,
    };
    let settings = facade.merchant_settings(a.visit.merchant);
    let result = facade.orders.cancel(&settings, a.order.bill, request).await;
    a.finish("cancel", result, Msg::Cancelled)
}

/// The message an engine call leaves for the order's page.
fn outcome(
    visit: &Visit<'_>,
    back: &str,
    result: Result<orders::OperationResult, EngineError>,
    success: Msg,
) -> Response {
    let lang = visit.lang;
    match result {
        Ok(r) => match r.operation() {
            Some(op) if op.state == OperationState::Success => {
                visit.done(back, true, lang.t(success))
            }
            Some(op) => visit.done(
                back,
                false,
                format!("{} ({})", lang.t(Msg::Declined), op.assist_code().as_str()),
            ),
            None => visit.done(back, false, lang.t(Msg::Unavailable)),
        },
        Err(e) => {
            let fault = crate::engine::refusal(e);
            visit.done(
                back,
                false,
                format!("{}: {}", lang.t(Msg::Refused), fault.detail),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_calendar_days() {
        assert_eq!(
            parse_date("2026-12-01"),
            Date::from_calendar_date(2026, Month::December, 1).map_err(|_| BadSearch)
        );
        for bad in ["2026-13-01", "2026-02-30", "yesterday", "2026-12", ""] {
            assert_eq!(parse_date(bad), Err(BadSearch), "{bad}");
        }
    }

    #[test]
    fn the_window_runs_from_the_first_days_midnight_to_the_last_days_end_in_the_zone() {
        let zone = UtcOffset::from_hms(3, 0, 0).unwrap();
        let day = |d| Date::from_calendar_date(2026, Month::December, d).unwrap();
        let search = Search {
            from: Some(day(1)),
            to: Some(day(2)),
            ..Search::default()
        };
        let (start, end) = search.window(zone, day(10));
        assert_eq!(start.to_offset(UtcOffset::UTC).hour(), 21, "00:00 MSK");
        assert_eq!(
            end - start,
            time::Duration::days(2) - time::Duration::seconds(1)
        );
        let (start, _) = Search::default().window(zone, day(10));
        assert_eq!(start.date(), day(4), "the last week by default");
    }

    #[test]
    fn a_billnumber_is_digits_only() {
        assert!(bill_of("1234567890123456").is_some());
        for bad in ["", "12a4", "-1", "123456789012345678901234"] {
            assert!(bill_of(bad).is_none(), "{bad}");
        }
    }
}
