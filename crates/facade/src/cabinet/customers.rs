//! The One Click customers screens: find a CustomerNumber, see its status and saved cards, set
//! "Deny" and lift it, remove a card after a confirmation page. Everything goes through the
//! vault's `facade` role ([`crate::SavedCards`]) under the session's merchant, so the vault's
//! scope decides whose customers these are (a union's merchants share them).
//!
//! Owns those screens. Must never show more of a card than the vault's masked listing, or tell
//! a card of another scope from one that does not exist.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use vault::{ClientError, CustomerCards, CustomerStatus, ListedCard, VaultError};

use super::html::{csrf_field, escape, query_value};
use super::i18n::{Lang, Msg};
use super::{Form, Visit, posted, visit};
use crate::Facade;

/// `GET /cabinet/customers?customer=…`.
pub(crate) async fn find(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let visit = match visit(&facade, &headers, &uri) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let query = Form::parse(uri.query().unwrap_or_default().as_bytes());
    let typed = query.get("customer");
    let mut body = format!(
        "<h1>{title}</h1><form class=\"card search\" id=\"find-customer\" method=\"get\" \
         action=\"/cabinet/customers\"><label>{label}<input id=\"customer\" name=\"customer\" \
         maxlength=\"32\" value=\"{value}\"></label><button id=\"find\" type=\"submit\">{find}</button></form>",
        title = escape(lang.t(Msg::Customers)),
        label = escape(lang.t(Msg::CustomerNumber)),
        value = escape(typed.unwrap_or_default()),
        find = escape(lang.t(Msg::Find)),
    );
    let Some(typed) = typed else {
        return visit.page(StatusCode::OK, Msg::Customers, &body);
    };
    let Ok(customer) = card::CustomerNumber::parse(typed) else {
        body.push_str(&super::html::flash(false, lang.t(Msg::BadCustomer)));
        return visit.page(StatusCode::BAD_REQUEST, Msg::Customers, &body);
    };
    match facade.cards.list(&visit.merchant.vault_id, &customer).await {
        Ok(cards) => {
            body.push_str(&customer_section(&visit, &customer, &cards));
            visit.page(StatusCode::OK, Msg::Customers, &body)
        }
        Err(e) => {
            body.push_str(&super::html::flash(false, &vault_trouble(&visit, e)));
            visit.page(StatusCode::SERVICE_UNAVAILABLE, Msg::Customers, &body)
        }
    }
}

fn customer_section(
    visit: &Visit<'_>,
    customer: &card::CustomerNumber,
    cards: &CustomerCards,
) -> String {
    let lang = visit.lang;
    let (status, deny) = match cards.status {
        CustomerStatus::New => (Msg::StatusNew, true),
        CustomerStatus::Member => (Msg::StatusMember, true),
        CustomerStatus::Deny => (Msg::StatusDeny, false),
    };
    let (button, class) = if deny {
        (Msg::SetDeny, "danger")
    } else {
        (Msg::LiftDeny, "quiet")
    };
    let mut s = format!(
        "<section id=\"customer-card\"><h2>{customer_label}: <span id=\"customer-number\">{customer}</span></h2>\
         <dl><dt>{status_label}</dt><dd id=\"status\">{status}</dd></dl>\
         <form id=\"status-form\" method=\"post\" action=\"/cabinet/customers/status\">{csrf}\
         <input type=\"hidden\" name=\"customer\" value=\"{customer}\">\
         <input type=\"hidden\" name=\"deny\" value=\"{deny}\">\
         <button class=\"{class}\" id=\"set-status\" type=\"submit\">{button}</button></form></section>",
        customer_label = escape(lang.t(Msg::Customer)),
        customer = escape(customer.as_str()),
        status_label = escape(lang.t(Msg::Status)),
        status = escape(lang.t(status)),
        csrf = csrf_field(visit.csrf()),
        deny = u8::from(deny),
        button = escape(lang.t(button)),
    );
    let _ = write!(s, "<h2>{}</h2>", escape(lang.t(Msg::SavedCards)));
    if cards.cards.is_empty() {
        let _ = write!(
            s,
            "<p id=\"no-cards\" class=\"muted\">{}</p>",
            escape(lang.t(Msg::NoCards))
        );
        return s;
    }
    let _ = write!(
        s,
        "<table id=\"cards\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>",
        escape(lang.t(Msg::Card)),
        escape(lang.t(Msg::Brand)),
        escape(lang.t(Msg::Expiry)),
        escape(lang.t(Msg::Active)),
        escape(lang.t(Msg::Payments)),
    );
    for c in &cards.cards {
        let _ = write!(
            s,
            "<tr class=\"saved-card\"><td class=\"mask\">{mask}</td><td>{brand}</td><td>{expiry}</td>\
             <td>{active}</td><td class=\"successes\">{successes}</td>\
             <td><a class=\"button quiet remove\" href=\"/cabinet/customers/remove?customer={q_customer}&amp;token={token}\">{remove}</a></td></tr>",
            mask = escape(&mask(c)),
            brand = escape(c.card.brand.assist_name()),
            expiry = escape(&expiry(c)),
            active = escape(lang.t(if c.active { Msg::Yes } else { Msg::No })),
            successes = c.successes,
            q_customer = escape(&query_value(customer.as_str())),
            token = c.token,
            remove = escape(lang.t(Msg::Remove)),
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn mask(c: &ListedCard) -> String {
    format!("{}******{}", c.card.bin, c.card.last4)
}

fn expiry(c: &ListedCard) -> String {
    format!("{:02}/{:04}", c.card.expiry.month(), c.card.expiry.year())
}

/// The sentence for a vault call that did not go through; its reasons go to the log only.
fn vault_trouble(visit: &Visit<'_>, e: ClientError) -> String {
    match e {
        ClientError::Refused(VaultError::NotFound | VaultError::CustomerDenied) => {
            visit.lang.t(Msg::NoSuchCard).to_owned()
        }
        other => {
            tracing::warn!(merchant = %visit.merchant.id, error = %other, "cabinet vault call failed");
            visit.lang.t(Msg::Unavailable).to_owned()
        }
    }
}

/// The customer of a form or query, checked by the vault's rule.
fn customer_of(form: &Form) -> Option<card::CustomerNumber> {
    form.get("customer")
        .and_then(|c| card::CustomerNumber::parse(c).ok())
}

fn customer_page(customer: &card::CustomerNumber) -> String {
    format!(
        "/cabinet/customers?customer={}",
        query_value(customer.as_str())
    )
}

/// `POST /cabinet/customers/status`: `deny=1` sets Deny, `deny=0` lifts it.
pub(crate) async fn set_status(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (visit, form) = match posted(&facade, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (Some(customer), Some(deny)) = (customer_of(&form), form.get("deny")) else {
        return visit.done("/cabinet/customers", false, visit.lang.t(Msg::BadCustomer));
    };
    let deny = deny == "1";
    // Lifting Deny: the vault derives New or Member from the cards, either clears it.
    let status = if deny {
        CustomerStatus::Deny
    } else {
        CustomerStatus::Member
    };
    let result = facade
        .cards
        .set_status(&visit.merchant.vault_id, &customer, status)
        .await;
    tracing::info!(
        target: "audit",
        merchant = %visit.merchant.id,
        customer = customer.as_str(),
        deny,
        ok = result.is_ok(),
        "cabinet customer status"
    );
    let back = customer_page(&customer);
    match result {
        Ok(()) => visit.done(
            &back,
            true,
            visit
                .lang
                .t(if deny { Msg::DenySet } else { Msg::DenyLifted }),
        ),
        Err(e) => {
            let text = vault_trouble(&visit, e);
            visit.done(&back, false, text)
        }
    }
}

/// The customer and token of a removal.
fn removal(form: &Form) -> Option<(card::CustomerNumber, card::Token)> {
    customer_of(form).zip(form.get("token").and_then(|t| card::Token::parse(t).ok()))
}

/// `GET /cabinet/customers/remove?customer=…&token=…`: the confirmation.
pub(crate) async fn confirm_remove(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let visit = match visit(&facade, &headers, &uri) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some((customer, token)) = removal(&Form::parse(uri.query().unwrap_or_default().as_bytes()))
    else {
        return visit.not_found();
    };
    // The card is shown as the vault lists it, so the merchant sees what it is removing; a
    // card not in this customer's list is not found.
    let listed = match facade.cards.list(&visit.merchant.vault_id, &customer).await {
        Ok(cards) => cards.cards.into_iter().find(|c| c.token == token),
        Err(e) => {
            let text = vault_trouble(&visit, e);
            return visit.done(&customer_page(&customer), false, text);
        }
    };
    let Some(card) = listed else {
        return visit.not_found();
    };
    let lang = visit.lang;
    let body = confirm_page(lang, visit.csrf(), &customer, &card);
    visit.page(StatusCode::OK, Msg::RemoveTitle, &body)
}

fn confirm_page(
    lang: Lang,
    csrf: &str,
    customer: &card::CustomerNumber,
    card: &ListedCard,
) -> String {
    format!(
        "<form class=\"card\" id=\"remove-form\" method=\"post\" action=\"/cabinet/customers/remove\">\
         <h1>{title}</h1><p><strong id=\"remove-mask\">{mask}</strong> {brand} {expiry} — {customer}</p>\
         <p>{text}</p>{csrf}<input type=\"hidden\" name=\"customer\" value=\"{customer}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <div class=\"actions\"><button class=\"danger\" id=\"remove-yes\" type=\"submit\">{yes}</button>\
         <a class=\"button quiet\" id=\"remove-no\" href=\"{back}\">{no}</a></div></form>",
        title = escape(lang.t(Msg::RemoveTitle)),
        mask = escape(&mask(card)),
        brand = escape(card.card.brand.assist_name()),
        expiry = escape(&expiry(card)),
        customer = escape(customer.as_str()),
        text = escape(lang.t(Msg::RemoveText)),
        csrf = csrf_field(csrf),
        token = card.token,
        yes = escape(lang.t(Msg::RemoveYes)),
        back = escape(&customer_page(customer)),
        no = escape(lang.t(Msg::Back)),
    )
}

/// `POST /cabinet/customers/remove`.
pub(crate) async fn remove(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (visit, form) = match posted(&facade, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some((customer, token)) = removal(&form) else {
        return visit.done("/cabinet/customers", false, visit.lang.t(Msg::NoSuchCard));
    };
    let result = facade
        .cards
        .remove(&visit.merchant.vault_id, &customer, token)
        .await;
    tracing::info!(
        target: "audit",
        merchant = %visit.merchant.id,
        customer = customer.as_str(),
        ok = result.is_ok(),
        "cabinet card removal"
    );
    let back = customer_page(&customer);
    match result {
        Ok(()) => visit.done(&back, true, visit.lang.t(Msg::Removed)),
        Err(e) => {
            let text = vault_trouble(&visit, e);
            visit.done(&back, false, text)
        }
    }
}
