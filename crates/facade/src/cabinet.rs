//! The merchant's cabinet under `/cabinet/` (issue 11; seeds 000 and 003's Personal Account for
//! what this core does): log in with the merchant API's own login and password, find orders and
//! charge or cancel them, look after One Click customers, and edit the settings that are the
//! merchant's to edit. Plain server-rendered forms that work without JavaScript (POST, then a 303
//! to a page: the browser's back and reload never repeat an action), in Russian and English.
//!
//! Modules: `session` (sessions and their CSRF tokens), `i18n` (the words), `html` (escaping,
//! layout, headers, the style sheet), `login`, `orders`, `notifications` (an order's result
//! notifications and their re-send), `customers`, `settings` (each a screen's handlers and
//! markup).
//!
//! Owns the cabinet's HTTP side: which merchant a request is, whether a form is genuine, what
//! each screen shows. Every action goes through what the API's services use (the order engine's
//! `charge` and `cancel`, the vault's `facade` role), so the cabinet can do nothing the merchant's
//! server could not. Must never log a password, a session id or a CSRF token, show a card number
//! beyond BIN and last four, show a salt, or show one merchant another's order or customer.

mod customers;
mod html;
mod i18n;
mod login;
mod notifications;
mod orders;
mod session;
pub mod settings;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use zeroize::Zeroizing;

use crate::Facade;
use crate::merchants::Merchant;
use html::Chrome;
use i18n::{Lang, Msg};
use session::{Active, Flash, Sessions, same_token};

pub use session::SessionPolicy;
pub use settings::{MerchantOverlay, SettingsStore, SettingsStoreError};

/// The session cookie's name.
const SESSION_COOKIE: &str = "cabinet_session";
/// Largest form accepted; the cabinet's forms are a few short fields.
const BODY_LIMIT: usize = 16 * 1024;

/// How the cabinet is served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CabinetOptions {
    /// Sessions' expiry and bound.
    pub sessions: SessionPolicy,
    /// Mark cookies `Secure` (the cabinet is reached over HTTPS, through a TLS-terminating proxy).
    /// A request that a proxy says came over HTTPS (`X-Forwarded-Proto: https`) gets `Secure`
    /// cookies either way: the header can only make a cookie stricter.
    pub secure_cookies: bool,
}

/// The cabinet's state: shared by every request, in memory except the settings' overlay.
#[derive(Debug)]
pub(crate) struct Cabinet {
    sessions: Sessions,
    secure_cookies: bool,
    pub(crate) settings: settings::Overlays,
}

impl Cabinet {
    pub(crate) fn new(options: CabinetOptions, settings: settings::Overlays) -> Cabinet {
        Cabinet {
            sessions: Sessions::new(options.sessions),
            secure_cookies: options.secure_cookies,
            settings,
        }
    }
}

/// The cabinet's routes.
pub(crate) fn routes() -> Router<Arc<Facade>> {
    Router::new()
        .route("/cabinet", get(|| async { Redirect::to("/cabinet/") }))
        .route("/cabinet/", get(orders::search))
        .route("/cabinet/login", get(login::form).post(login::submit))
        .route("/cabinet/logout", post(login::logout))
        .route("/cabinet/lang/{code}", get(switch_language))
        .route("/cabinet/orders/{bill}", get(orders::show))
        .route("/cabinet/orders/{bill}/charge", post(orders::charge))
        .route("/cabinet/orders/{bill}/cancel", post(orders::cancel))
        .route(
            "/cabinet/orders/{bill}/notifications/{operation}/resend",
            post(notifications::resend),
        )
        .route("/cabinet/customers", get(customers::find))
        .route("/cabinet/customers/status", post(customers::set_status))
        .route(
            "/cabinet/customers/remove",
            get(customers::confirm_remove).post(customers::remove),
        )
        .route(
            "/cabinet/settings",
            get(settings::show).post(settings::save),
        )
        .route("/cabinet/static/cabinet.css", get(html::css))
        .route("/cabinet/{*rest}", get(not_found))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// A cookie's value from the request (the first of that name).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value for one of the cabinet's cookies: never readable by a script, never sent
/// by another site's request, only to the cabinet's paths.
fn set_cookie(
    cabinet: &Cabinet,
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let secure = cabinet.secure_cookies
        || headers
            .get(HeaderName::from_static("x-forwarded-proto"))
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let text = Zeroizing::new(format!(
        "{name}={value}; Path=/cabinet; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    ));
    HeaderValue::from_str(&text).ok()
}

/// 303 to `to`, with cookies to set.
fn see_other(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    for c in cookies {
        r.headers_mut().append(SET_COOKIE, c);
    }
    r
}

/// A signed-in request: the merchant, its session and the page's language.
pub(crate) struct Visit<'f> {
    pub(crate) facade: &'f Facade,
    pub(crate) merchant: &'f Merchant,
    pub(crate) lang: Lang,
    session: Zeroizing<String>,
    active: Active,
    here: String,
}

impl Visit<'_> {
    /// The session's CSRF token, for the page's forms.
    pub(crate) fn csrf(&self) -> &str {
        &self.active.csrf
    }

    /// A page in the layout, with the message a previous form left, if any.
    pub(crate) fn page(&self, status: StatusCode, title: Msg, body: &str) -> Response {
        let chrome = Chrome {
            lang: self.lang,
            merchant: Some((&self.merchant.name, self.merchant.id.0)),
            csrf: Some(&self.active.csrf),
            here: &self.here,
        };
        let flash = self
            .active
            .flash
            .as_ref()
            .map(|f| html::flash(f.ok, &f.text))
            .unwrap_or_default();
        html::respond(
            status,
            html::page(&chrome, title, &format!("{flash}{body}")),
        )
    }

    /// After a form: the message for the next page, and 303 to it.
    pub(crate) fn done(&self, to: &str, ok: bool, text: impl Into<String>) -> Response {
        self.facade.cabinet.sessions.flash(
            &self.session,
            Flash {
                ok,
                text: text.into(),
            },
        );
        see_other(to, [])
    }

    /// The "not found" page (another merchant's order, an unknown path).
    pub(crate) fn not_found(&self) -> Response {
        let body = format!(
            "<section id=\"not-found\"><h1>{}</h1><p>{}</p></section>",
            html::escape(self.lang.t(Msg::NotFound)),
            html::escape(self.lang.t(Msg::NotFoundText))
        );
        self.page(StatusCode::NOT_FOUND, Msg::NotFound, &body)
    }
}

/// The signed-in merchant of a request, or the way to the login page.
// The error is the page to answer instead, made once per request on its way out: boxing it
// would buy nothing but an allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn visit<'f>(
    facade: &'f Facade,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Visit<'f>, Response> {
    let to_login = || see_other("/cabinet/login", []);
    let session = Zeroizing::new(cookie(headers, SESSION_COOKIE).ok_or_else(to_login)?);
    let active = facade
        .cabinet
        .sessions
        .touch(&session, Instant::now())
        .ok_or_else(to_login)?;
    let merchant = facade.merchants.get(active.merchant).ok_or_else(to_login)?;
    Ok(Visit {
        facade,
        merchant,
        lang: Lang::of_request(headers),
        session,
        active,
        here: uri
            .path_and_query()
            .map_or_else(|| "/cabinet/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// A form's fields, as sent.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(bytes: &[u8]) -> Form {
        Form(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first field of this name, trimmed; an empty one counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// A signed-in POST whose form carries its session's CSRF token; else the page that says the
/// form has expired (403), or the login page.
// The error is the page to answer instead, made once per request on its way out: boxing it
// would buy nothing but an allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn posted<'f>(
    facade: &'f Facade,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(Visit<'f>, Form), Response> {
    let visit = visit(facade, headers, uri)?;
    let form = Form::parse(body);
    if !form
        .get("csrf")
        .is_some_and(|t| same_token(visit.csrf(), t))
    {
        tracing::warn!(
            target: "audit",
            merchant = %visit.merchant.id,
            path = uri.path(),
            "cabinet form refused: missing or wrong CSRF token"
        );
        return Err(form_expired(visit.lang));
    }
    Ok((visit, form))
}

/// 403: the form did not carry the token it was given.
pub(crate) fn form_expired(lang: Lang) -> Response {
    let chrome = Chrome {
        lang,
        merchant: None,
        csrf: None,
        here: "/cabinet/",
    };
    let body = format!(
        "<section id=\"form-expired\"><h1>{}</h1><p>{}</p>\
         <p><a class=\"button\" href=\"/cabinet/\">{}</a></p></section>",
        html::escape(lang.t(Msg::FormExpired)),
        html::escape(lang.t(Msg::FormExpiredText)),
        html::escape(lang.t(Msg::Back)),
    );
    html::respond(
        StatusCode::FORBIDDEN,
        html::page(&chrome, Msg::FormExpired, &body),
    )
}

/// `GET /cabinet/lang/{code}?back=…`: keeps the choice in a cookie and goes back to the page.
async fn switch_language(
    axum::extract::State(facade): axum::extract::State<Arc<Facade>>,
    axum::extract::Path(code): axum::extract::Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(lang) = Lang::from_code(&code) else {
        return not_found(axum::extract::State(facade), headers, uri).await;
    };
    let back = Form::parse(uri.query().unwrap_or_default().as_bytes())
        .get("back")
        .filter(|b| is_cabinet_path(b))
        .unwrap_or("/cabinet/")
        .to_owned();
    let year = 365 * 24 * 60 * 60;
    let cookie = set_cookie(
        &facade.cabinet,
        &headers,
        i18n::LANG_COOKIE,
        lang.code(),
        year,
    );
    see_other(&back, cookie)
}

/// A path of ours to send the browser back to: never another origin (`//host`, `/\host`).
fn is_cabinet_path(p: &str) -> bool {
    p.starts_with("/cabinet/")
        && !p.contains("//")
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Any other path under `/cabinet/`.
async fn not_found(
    axum::extract::State(facade): axum::extract::State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match visit(&facade, &headers, &uri) {
        Ok(v) => v.not_found(),
        Err(to_login) => to_login,
    }
}

#[cfg(test)]
mod tests;
