//! Logging in and out. The login form is protected like every other: before there is a session,
//! its token is a random value in a short-lived cookie and in the form (so another site cannot
//! log a merchant's browser into its own account); a login always opens a new session (so a
//! session id planted before it is worth nothing).
//!
//! Owns the login screen and the session cookie's life. The password check, its slow-down and
//! its audit are `crate::auth`'s. Must never log or echo the password.

use std::sync::Arc;
use std::time::Instant;

use assist::values::{Login, ParamValue as _, Password};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::html::{self, Chrome, escape};
use super::i18n::{Lang, Msg};
use super::session::{random_hex, same_token};
use super::{Form, SESSION_COOKIE, form_expired, posted, see_other, set_cookie, visit};
use crate::Facade;

/// The login form's own token, until a session has one.
const LOGIN_COOKIE: &str = "cabinet_login";
/// How long a login form may stay open.
const LOGIN_FORM_TTL: u64 = 30 * 60;

/// `GET /cabinet/login`.
pub(crate) async fn form(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if visit(&facade, &headers, &uri).is_ok() {
        return see_other("/cabinet/", []);
    }
    login_page(&facade, &headers, StatusCode::OK, false)
}

/// The login form with a fresh token (in its cookie and its hidden field).
fn login_page(facade: &Facade, headers: &HeaderMap, status: StatusCode, wrong: bool) -> Response {
    let lang = Lang::of_request(headers);
    let token = random_hex();
    let chrome = Chrome {
        lang,
        merchant: None,
        csrf: None,
        here: "/cabinet/login",
    };
    let error = if wrong {
        html::flash(false, lang.t(Msg::WrongLogin))
    } else {
        String::new()
    };
    let body = format!(
        "<form class=\"card login\" id=\"login-form\" method=\"post\" action=\"/cabinet/login\">\
         <h1>{title}</h1>{error}{csrf}\
         <label>{login}<input id=\"login\" name=\"login\" autocomplete=\"username\" required maxlength=\"20\"></label>\
         <label>{password}<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"20\"></label>\
         <button id=\"submit\" type=\"submit\">{submit}</button></form>",
        title = escape(lang.t(Msg::Login)),
        csrf = html::csrf_field(&token),
        login = escape(lang.t(Msg::LoginField)),
        password = escape(lang.t(Msg::PasswordField)),
        submit = escape(lang.t(Msg::LogIn)),
    );
    let mut r = html::respond(status, html::page(&chrome, Msg::Login, &body));
    if let Some(c) = set_cookie(
        &facade.cabinet,
        headers,
        LOGIN_COOKIE,
        &token,
        LOGIN_FORM_TTL,
    ) {
        r.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    r
}

/// `POST /cabinet/login`: 303 to the orders with a new session, or the form again (401).
pub(crate) async fn submit(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of_request(&headers);
    let form = Form::parse(&body);
    let expected = super::cookie(&headers, LOGIN_COOKIE).map(zeroize::Zeroizing::new);
    let genuine = match (&expected, form.get("csrf")) {
        (Some(e), Some(t)) => same_token(e, t),
        _ => false,
    };
    if !genuine {
        return form_expired(lang);
    }
    let credentials = form
        .get("login")
        .and_then(|l| Login::parse(l).ok())
        .zip(form.get("password").and_then(|p| Password::parse(p).ok()));
    let signed_in = match &credentials {
        Some((login, password)) => facade
            .auth
            .sign_in(&facade.merchants, login, password)
            .await
            .ok(),
        None => None,
    };
    let Some(merchant) = signed_in else {
        return login_page(&facade, &headers, StatusCode::UNAUTHORIZED, true);
    };
    let cabinet = &facade.cabinet;
    let id = cabinet.sessions.open(merchant.id, Instant::now());
    tracing::info!(target: "audit", merchant = %merchant.id, "cabinet login");
    let max_age = cabinet.sessions.policy().absolute.as_secs();
    let cookies = [
        set_cookie(cabinet, &headers, SESSION_COOKIE, &id, max_age),
        set_cookie(cabinet, &headers, LOGIN_COOKIE, "", 0),
    ];
    see_other("/cabinet/", cookies.into_iter().flatten())
}

/// `POST /cabinet/logout`: closes the session and forgets its cookie.
pub(crate) async fn logout(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (visit, _) = match posted(&facade, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    facade.cabinet.sessions.close(&visit.session);
    tracing::info!(target: "audit", merchant = %visit.merchant.id, "cabinet logout");
    let forget = set_cookie(&facade.cabinet, &headers, SESSION_COOKIE, "", 0);
    see_other("/cabinet/login", forget)
}
