//! The pages' handlers: what each URL under `/pay/page/<billnumber>` shows or does, as plain
//! forms and 303 redirects (POST-redirect-GET), with a JSON answer for the CVC-only form when
//! `pay.js` asks for one.
//!
//! Owns the order of checks of a submission (form token, the order's state, the attempt limit,
//! the fields, the vault's say on saving, 3-D Secure, the engine) and the mapping of every
//! outcome to a page. Must never answer a 500 or an engine's or vault's error text, and never
//! echo a card number or CVC into a page after it was submitted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders::{
    BillNumber, EngineError, NewCard, NewOrder, OperationResult, OrderRecord, OrderState,
    PaymentCard, RecurringRequest,
};
use time::OffsetDateTime;
use vault::CustomerStatus;

use super::form::{self, Ask, FieldErrors, Fields, field};
use super::i18n::{Lang, Msg, reason, text};
use super::render::{self, Chip, Head, NewCardView};
use super::three_ds::HeldCard;
use crate::Facade;
use crate::merchants::Merchant;

/// The client's address as the connection shows it (a proxy in front must pass the shopper's
/// own for the per-address limit to mean anything; see the README).
pub(crate) struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// One order's page, loaded.
struct Ctx<'a> {
    facade: &'a Facade,
    merchant: &'a Merchant,
    order: OrderRecord,
    head: Head,
    /// `/pay/page/<billnumber>`: every form and link of the page is relative to it.
    base: String,
    csrf: String,
}

impl Ctx<'_> {
    fn lang(&self) -> Lang {
        self.head.lang
    }

    /// The merchant's number of the order, which every attempt shares: the per-order limit.
    fn attempt_key(&self) -> String {
        format!(
            "{}/{}",
            self.order.merchant.as_str(),
            self.order.order_number.as_str()
        )
    }

    fn expired(&self) -> bool {
        OffsetDateTime::now_utc() >= self.order.expires_at.to_datetime()
    }

    /// An HTML answer with the merchant's framing policy.
    fn html(&self, status: StatusCode, body: String) -> Response {
        html(
            status,
            body,
            &self.facade.pages.csp(&self.merchant.frame_ancestors),
        )
    }

    fn see_page(&self) -> Response {
        see_other(&self.base)
    }
}

fn html(status: StatusCode, body: String, csp: &str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(l) => (StatusCode::SEE_OTHER, [(header::LOCATION, l)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// A page for a URL whose order is not ours to show.
fn not_found(facade: &Facade) -> Response {
    let head = Head {
        lang: Lang::Ru,
        merchant: String::new(),
        amount: String::new(),
        order_number: String::new(),
        comment: None,
        test: false,
    };
    let body = render::notice(
        &head,
        "not-found",
        Msg::NotFoundTitle,
        &format!(
            "{} / {}",
            text(Lang::Ru, Msg::NotFoundText),
            text(Lang::En, Msg::NotFoundText)
        ),
        None,
    );
    html(StatusCode::NOT_FOUND, body, &facade.pages.csp(&[]))
}

async fn load<'a>(facade: &'a Facade, bill: &str) -> Result<Ctx<'a>, Response> {
    let bill = (bill.len() == 16)
        .then(|| bill.parse::<u64>().ok())
        .flatten()
        .and_then(BillNumber::new)
        .ok_or_else(|| not_found(facade))?;
    let order = match facade.orders.order_of_page(bill) {
        Ok(o) => o,
        Err(EngineError::Request(_)) => return Err(not_found(facade)),
        Err(e) => {
            tracing::warn!(error = %e, "payment page: order not readable");
            return Err(not_found(facade));
        }
    };
    let merchant =
        <assist::values::MerchantId as assist::values::ParamValue>::parse(order.merchant.as_str())
            .ok()
            .and_then(|id| facade.merchants.get(id))
            .ok_or_else(|| not_found(facade))?;
    let lang = Lang::of(&order, merchant);
    let head = Head {
        lang,
        merchant: merchant.name.clone(),
        amount: render::amount(lang, order.amount, order.currency.code()),
        order_number: order.order_number.as_str().to_owned(),
        comment: order.details.comment.clone(),
        test: merchant.test_mode,
    };
    Ok(Ctx {
        facade,
        merchant,
        base: format!("/pay/page/{bill}"),
        csrf: facade.pages.csrf.token(bill),
        order,
        head,
    })
}

/// What the vault says about the order's customer: the cards to show and whether saving may be
/// offered.
struct Saved {
    chips: Vec<Chip>,
    offer_save: bool,
}

async fn saved(ctx: &Ctx<'_>) -> Saved {
    let none = Saved {
        chips: Vec::new(),
        offer_save: false,
    };
    let (true, Some(customer)) = (ctx.merchant.one_click, &ctx.order.customer_number) else {
        return none;
    };
    match ctx
        .facade
        .cards
        .list(&ctx.merchant.vault_id, customer)
        .await
    {
        Ok(listed) => Saved {
            offer_save: listed.status != CustomerStatus::Deny,
            chips: listed
                .cards
                .into_iter()
                .map(|c| Chip {
                    token: c.token.to_string(),
                    last4: c.card.last4.to_string(),
                    expiry: format!(
                        "{:02}/{:02}",
                        c.card.expiry.month(),
                        c.card.expiry.year() % 100
                    ),
                    brand: match c.card.brand {
                        card::Brand::Mir => "МИР",
                        card::Brand::Mastercard => "Mastercard",
                        card::Brand::Visa => "VISA",
                        card::Brand::Unknown => "",
                    },
                    active: c.active,
                })
                .collect(),
        },
        Err(e) => {
            // The full form still works: the card is held for this payment only.
            tracing::warn!(merchant = %ctx.merchant.id, error = %e, "payment page: saved cards not listed");
            none
        }
    }
}

fn ask(order: &OrderRecord) -> Ask {
    let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    Ask {
        firstname: missing(&order.details.firstname),
        lastname: missing(&order.details.lastname),
        email: missing(&order.details.email),
    }
}

/// What the page's form part shows.
#[derive(Default)]
struct FormState {
    chosen: Option<String>,
    new: bool,
    errors: FieldErrors,
    kept: Vec<(&'static str, String)>,
    note: Option<Msg>,
}

async fn form_page(ctx: &Ctx<'_>, status: StatusCode, state: FormState) -> Response {
    let saved = saved(ctx).await;
    let chosen = match (&state.chosen, state.new) {
        (_, true) => None,
        (Some(token), false) => saved.chips.iter().find(|c| c.active && &c.token == token),
        (None, false) => saved.chips.iter().find(|c| c.active),
    };
    let body = match chosen {
        Some(chip) => render::one_click(
            &ctx.head,
            &ctx.base,
            &ctx.csrf,
            &saved.chips,
            chip,
            &state.errors,
        ),
        None => render::new_card(
            &ctx.head,
            &ctx.base,
            &ctx.csrf,
            &NewCardView {
                chips: saved.chips.clone(),
                ask: ask(&ctx.order),
                offer_save: saved.offer_save,
                errors: state.errors,
                kept: state.kept,
                note: state.note,
            },
        ),
    };
    ctx.html(status, body)
}

/// `url_return_ok` (approved) or `url_return_no` (anything else), else `url_return`, else the
/// merchant's own (its cabinet's settings over the merchants file), with seed 004's
/// `billnumber` and `ordernumber`.
fn return_url(ctx: &Ctx<'_>, ok: bool) -> Option<String> {
    let order = &ctx.order;
    let d = &order.details;
    let url = if ok {
        &d.url_return_ok
    } else {
        &d.url_return_no
    };
    let merchants = ctx.facade.return_urls(ctx.merchant);
    let merchants = if ok { merchants.ok } else { merchants.no };
    let url = url
        .as_ref()
        .or(d.url_return.as_ref())
        .cloned()
        .or_else(|| merchants.map(|u| u.as_str().to_owned()))?;
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut out = url;
    out.push(separator);
    out.push_str("billnumber=");
    out.push_str(&order.bill.to_string());
    out.push_str("&ordernumber=");
    out.extend(percent_encoding::utf8_percent_encode(
        order.order_number.as_str(),
        percent_encoding::NON_ALPHANUMERIC,
    ));
    Some(out)
}

/// `GET /pay/page/{bill}`: the form, or the order's result.
pub(crate) async fn show(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    RawQuery(query): RawQuery,
    ClientAddr(ip): ClientAddr,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = Fields::decode(query.unwrap_or_default().as_bytes());
    let state = FormState {
        chosen: Some(q.get(field::CARD).to_owned()).filter(|s| !s.is_empty()),
        new: q.checked("new"),
        ..FormState::default()
    };
    if let Some(r) = settled(&ctx, ip) {
        return r;
    }
    form_page(&ctx, StatusCode::OK, state).await
}

/// The page of an order that cannot take a payment now (paid, declined, timed out, in flight,
/// or closed by the attempt limit); `None` when the form may be shown.
fn settled(ctx: &Ctx<'_>, ip: Option<IpAddr>) -> Option<Response> {
    let lang = ctx.lang();
    let o = &ctx.order;
    let masked = o.card.as_ref().map(|c| {
        format!(
            "•••• {}  {:02}/{:02}",
            c.masked.last4,
            c.masked.expiry_month,
            c.masked.expiry_year % 100
        )
    });
    match o.state {
        OrderState::InProcess if o.payment().is_some() => Some(notice(
            ctx,
            StatusCode::OK,
            ("processing", Msg::ProcessingTitle, Msg::ProcessingText),
            false,
        )),
        OrderState::InProcess | OrderState::Declined if ctx.expired() => Some(timed_out(ctx)),
        OrderState::Timeout => Some(timed_out(ctx)),
        OrderState::InProcess if !ctx.facade.pages.attempts.allowed(&ctx.attempt_key(), ip) => {
            Some(limit(ctx))
        }
        OrderState::InProcess => None,
        OrderState::Declined => {
            let why = o
                .payment()
                .and_then(|p| p.decline)
                .map_or(orders::ShopperReason::TryLater, |d| d.codes().shopper);
            let may_retry = ctx.facade.pages.attempts.allowed(&ctx.attempt_key(), ip);
            Some(ctx.html(
                StatusCode::OK,
                render::declined(
                    &ctx.head,
                    &ctx.base,
                    reason(lang, why),
                    may_retry.then_some(ctx.csrf.as_str()),
                    return_url(ctx, false).as_deref(),
                ),
            ))
        }
        _ => Some(ctx.html(
            StatusCode::OK,
            render::paid(
                &ctx.head,
                masked.as_deref(),
                return_url(ctx, true).as_deref(),
            ),
        )),
    }
}

fn timed_out(ctx: &Ctx<'_>) -> Response {
    let page = ("timed-out", Msg::TimedOutTitle, Msg::TimedOutText);
    notice(ctx, StatusCode::OK, page, true)
}

fn limit(ctx: &Ctx<'_>) -> Response {
    let page = ("limit", Msg::LimitTitle, Msg::LimitText);
    notice(ctx, StatusCode::TOO_MANY_REQUESTS, page, true)
}

fn unavailable(ctx: &Ctx<'_>) -> Response {
    let page = ("unavailable", Msg::UnavailableTitle, Msg::UnavailableText);
    notice(ctx, StatusCode::SERVICE_UNAVAILABLE, page, false)
}

/// A page that only tells the shopper something (`page`: its id, title and text), with the way
/// back to the shop when `back` and the order has one.
fn notice(ctx: &Ctx<'_>, status: StatusCode, page: (&str, Msg, Msg), back: bool) -> Response {
    let (id, title, body) = page;
    let url = back.then(|| return_url(ctx, false)).flatten();
    ctx.html(
        status,
        render::notice(
            &ctx.head,
            id,
            title,
            text(ctx.lang(), body),
            url.as_deref().map(|u| (u, Msg::ReturnToShop)),
        ),
    )
}

/// The checks every submission starts with: an order that can be paid, then the form's token.
/// `Some` is the answer instead of going on; a refused form token (a restart changed the key, or
/// the page was open too long) shows the form again with a note.
async fn refused(ctx: &Ctx<'_>, fields: &Fields, ip: Option<IpAddr>) -> Option<Response> {
    if let Some(r) = settled(ctx, ip) {
        // Paid, declined, closed: a second submission (or a late one) sees the state, which is
        // also what makes two simultaneous submissions harmless to the shopper.
        return Some(match r.status() {
            StatusCode::TOO_MANY_REQUESTS => r,
            _ => ctx.see_page(),
        });
    }
    if ctx
        .facade
        .pages
        .csrf
        .check(ctx.order.bill, fields.get(field::CSRF))
    {
        return None;
    }
    let state = FormState {
        chosen: Some(fields.get(field::CARD).to_owned()).filter(|s| !s.is_empty()),
        kept: kept(fields),
        note: Some(Msg::StaleForm),
        ..FormState::default()
    };
    Some(form_page(ctx, StatusCode::FORBIDDEN, state).await)
}

/// What a submission answers once the engine has spoken: the order's page (which shows the
/// result, or the state that refused the payment), or "unavailable".
fn after_payment(
    ctx: &Ctx<'_>,
    ip: Option<IpAddr>,
    result: Result<OperationResult, EngineError>,
) -> Response {
    match result {
        Ok(r) => {
            if r.order.state == OrderState::Declined {
                ctx.facade.pages.attempts.failed(&ctx.attempt_key(), ip);
            }
            ctx.see_page()
        }
        // Already paid, in flight, expired: the page shows the order as it is.
        Err(EngineError::Request(_) | EngineError::OutcomeUnknown(_)) => ctx.see_page(),
        Err(e) => {
            tracing::warn!(bill = %ctx.order.bill, error = %e, "payment page: payment failed");
            unavailable(ctx)
        }
    }
}

/// `POST /pay/page/{bill}`: pays with a typed card; 3-D Secure first when it is being saved.
pub(crate) async fn pay_new(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    ClientAddr(ip): ClientAddr,
    body: Bytes,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fields = Fields::decode(&body);
    if let Some(r) = refused(&ctx, &fields, ip).await {
        return r;
    }
    let today = OffsetDateTime::now_utc();
    let input = match form::new_card(
        &fields,
        ask(&ctx.order),
        (
            u16::try_from(today.year()).unwrap_or(u16::MAX),
            u8::from(today.month()),
        ),
    ) {
        Ok(i) => i,
        Err(errors) => {
            let state = FormState {
                new: true,
                errors,
                kept: kept(&fields),
                ..FormState::default()
            };
            return form_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, state).await;
        }
    };
    let settings = ctx.facade.merchant_settings(ctx.merchant);
    if input.payer != orders::PayerDetails::default()
        && let Err(e) = facade
            .orders
            .complete_payer(&settings, ctx.order.bill, input.payer.clone())
            .await
    {
        return after_payment(&ctx, ip, Err(e));
    }
    // The vault's word, not the form's: a Deny customer's box is never honoured.
    let save = input.remember && saved(&ctx).await.offer_save;
    let mut three_ds = None;
    if save && !ctx.order.disable_3ds {
        match &facade.pages.acs {
            Some(acs) => {
                let back = format!("{}{}/3ds", facade.pages_url, ctx.base);
                let auth = match acs.authenticate(&input.pan, &back).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "payment page: 3-D Secure not started");
                        return unavailable(&ctx);
                    }
                };
                if let ("C", Some(acs_trans_id)) = (auth.status.as_str(), &auth.acs_trans_id) {
                    let held = HeldCard::new(
                        input.pan,
                        input.expiry,
                        input.cvc,
                        input.holder,
                        auth.ds_trans_id.clone(),
                    );
                    if facade.pages.held.hold(ctx.order.bill, held).is_err() {
                        return unavailable(&ctx);
                    }
                    return see_other(&acs.challenge_url(acs_trans_id));
                }
                three_ds = auth.three_ds();
            }
            // No 3DS server configured: the engine declines the save as 3-D Secure missing.
            None => tracing::warn!("payment page: no ACS configured for a first payment"),
        }
    }
    let card = NewCard {
        pan: &input.pan,
        expiry: input.expiry,
        cvc: &input.cvc,
        holder: input.holder.as_deref(),
    };
    let result = facade
        .orders
        .pay(
            &settings,
            ctx.order.bill,
            PaymentCard::New {
                card,
                save,
                three_ds,
            },
        )
        .await;
    after_payment(&ctx, ip, result)
}

/// The values of a refused form that are shown again: never the number or the CVC.
fn kept(f: &Fields) -> Vec<(&'static str, String)> {
    [
        field::MONTH,
        field::YEAR,
        field::HOLDER,
        field::FIRSTNAME,
        field::LASTNAME,
        field::EMAIL,
    ]
    .into_iter()
    .map(|n| (n, f.get(n).chars().take(70).collect()))
    .collect()
}

/// `GET /pay/page/{bill}/3ds`: the ACS's return; pays with the held card and the result.
pub(crate) async fn three_ds_return(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    RawQuery(query): RawQuery,
    ClientAddr(ip): ClientAddr,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = Fields::decode(query.unwrap_or_default().as_bytes());
    let Some(held) = facade.pages.held.take(ctx.order.bill, q.get("ds_trans_id")) else {
        if let Some(r) = settled(&ctx, ip) {
            return r;
        }
        let state = FormState {
            new: true,
            note: Some(Msg::RetypeCard),
            ..FormState::default()
        };
        return form_page(&ctx, StatusCode::OK, state).await;
    };
    let auth = super::three_ds::Authentication {
        status: q.get("status").to_owned(),
        eci: Some(q.get("eci").to_owned()),
        cavv: Some(q.get("cavv").to_owned()).filter(|c| !c.is_empty()),
        ds_trans_id: q.get("ds_trans_id").to_owned(),
        acs_trans_id: None,
    };
    let card = NewCard {
        pan: &held.pan,
        expiry: held.expiry,
        cvc: &held.cvc,
        holder: held.holder.as_ref().map(|h| h.as_str()),
    };
    let result = facade
        .orders
        .pay(
            &ctx.facade.merchant_settings(ctx.merchant),
            ctx.order.bill,
            PaymentCard::New {
                card,
                save: true,
                three_ds: auth.three_ds(),
            },
        )
        .await;
    after_payment(&ctx, ip, result)
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
        .into_response()
}

/// `POST /pay/page/{bill}/oneclick`: a saved card and its CVC.
pub(crate) async fn pay_saved(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let as_json = wants_json(&headers);
    let done = |r: Response| -> Response {
        match (as_json, r.status()) {
            (true, StatusCode::SEE_OTHER) => {
                json(StatusCode::OK, serde_json::json!({ "location": ctx.base }))
            }
            _ => r,
        }
    };
    let fields = Fields::decode(&body);
    if let Some(r) = refused(&ctx, &fields, ip).await {
        return done(r);
    }
    let token = card::Token::parse(fields.get(field::CARD));
    let cvc = form::cvc_only(&fields);
    let (token, cvc) = match (token, cvc) {
        (Ok(t), Ok(c)) => (t, c),
        (token, cvc) => {
            let errors = match cvc {
                Err(e) => e,
                Ok(_) => vec![(field::CARD, Msg::ErrChooseCard)],
            };
            if as_json {
                let msg = errors.first().map_or("", |(_, m)| text(ctx.lang(), *m));
                return json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    serde_json::json!({ "error": msg }),
                );
            }
            let state = FormState {
                chosen: token.ok().map(|t| t.to_string()),
                errors,
                ..FormState::default()
            };
            return form_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, state).await;
        }
    };
    let result = facade
        .orders
        .pay(
            &ctx.facade.merchant_settings(ctx.merchant),
            ctx.order.bill,
            PaymentCard::OneClick { token, cvc: &cvc },
        )
        .await;
    done(after_payment(&ctx, ip, result))
}

/// `GET /pay/page/{bill}/remove?card=…`: the confirmation page.
pub(crate) async fn confirm_remove(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    RawQuery(query): RawQuery,
    ClientAddr(ip): ClientAddr,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = settled(&ctx, ip) {
        return r;
    }
    let q = Fields::decode(query.unwrap_or_default().as_bytes());
    let saved = saved(&ctx).await;
    match saved.chips.iter().find(|c| c.token == q.get(field::CARD)) {
        Some(chip) => ctx.html(
            StatusCode::OK,
            render::confirm_remove(&ctx.head, &ctx.base, &ctx.csrf, chip),
        ),
        None => ctx.see_page(),
    }
}

/// `POST /pay/page/{bill}/remove`: the vault forgets the card.
pub(crate) async fn remove(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    ClientAddr(ip): ClientAddr,
    body: Bytes,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fields = Fields::decode(&body);
    if let Some(r) = refused(&ctx, &fields, ip).await {
        return r;
    }
    let (true, Some(customer), Ok(token)) = (
        ctx.merchant.one_click,
        &ctx.order.customer_number,
        card::Token::parse(fields.get(field::CARD)),
    ) else {
        return ctx.see_page();
    };
    match facade
        .cards
        .remove(&ctx.merchant.vault_id, customer, token)
        .await
    {
        // Gone already (another tab): the page shows what is left either way.
        Ok(()) | Err(vault::ClientError::Refused(_)) => ctx.see_page(),
        Err(e) => {
            tracing::warn!(error = %e, "payment page: card not removed");
            unavailable(&ctx)
        }
    }
}

/// `POST /pay/page/{bill}/retry`: a declined order is paid again as a new attempt of the same
/// OrderNumber (Assist's model: every attempt has its billnumber), within the first's expiry.
pub(crate) async fn retry(
    State(facade): State<Arc<Facade>>,
    Path(bill): Path<String>,
    ClientAddr(ip): ClientAddr,
    body: Bytes,
) -> Response {
    let ctx = match load(&facade, &bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fields = Fields::decode(&body);
    let o = &ctx.order;
    if o.state != OrderState::Declined
        || ctx.expired()
        || !facade.pages.csrf.check(o.bill, fields.get(field::CSRF))
    {
        return ctx.see_page();
    }
    if !facade.pages.attempts.allowed(&ctx.attempt_key(), ip) {
        return limit(&ctx);
    }
    match facade
        .orders
        .create_order(&ctx.facade.merchant_settings(ctx.merchant), again(o))
        .await
    {
        Ok(next) => see_other(&format!("/pay/page/{}", next.bill)),
        Err(e) => {
            tracing::warn!(error = %e, "payment page: no new attempt");
            unavailable(&ctx)
        }
    }
}

/// The same order as a new attempt.
fn again(o: &OrderRecord) -> NewOrder {
    let recurring = o.agreement.as_ref().map(|a| match &a.terms {
        orders::AgreementTerms::Unscheduled => RecurringRequest::Unscheduled,
        orders::AgreementTerms::Scheduled {
            min_amount,
            max_amount,
            period_days,
            max_date,
        } => RecurringRequest::Scheduled {
            min_amount: *min_amount,
            max_amount: *max_amount,
            period_days: *period_days,
            max_date: time::Month::try_from(max_date.month)
                .ok()
                .and_then(|m| time::Date::from_calendar_date(max_date.year, m, max_date.day).ok())
                .unwrap_or(time::Date::MIN),
        },
    });
    NewOrder {
        order_number: o.order_number.clone(),
        amount: o.amount,
        currency: o.currency,
        two_stage: o.two_stage,
        customer_number: o.customer_number.clone(),
        details: o.details.clone(),
        recurring,
        expires_at: Some(o.expires_at.to_datetime()),
        disable_3ds: o.disable_3ds,
    }
}
