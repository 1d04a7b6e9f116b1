//! The cabinet's HTML: one escaping function, one layout (the merchant's name, the menu, the
//! language switch, the logout form), the answer's headers (a Content-Security-Policy that allows
//! no script at all and only our own style sheet), and the one style sheet.
//!
//! Owns the markup's frame and the ids the browser tests rely on. Every value that is not a
//! literal of the cabinet goes through [`escape`] (shared with the payment pages in `crate::html`). Must never render an inline script or style,
//! a third-party URL, or a card number beyond its BIN and last four digits.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::i18n::{Lang, Msg};

/// No script, our own style sheet, forms to ourselves only, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

const CSS: &str = include_str!("cabinet.css");

pub(crate) use crate::html::{amount, decimal, escape};

/// `s` as one query-string value.
pub(crate) fn query_value(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What the frame of a signed-in page shows.
#[derive(Debug)]
pub(crate) struct Chrome<'a> {
    pub(crate) lang: Lang,
    /// The merchant's name and id; none on the login page.
    pub(crate) merchant: Option<(&'a str, u64)>,
    /// The session's CSRF token, for the logout form.
    pub(crate) csrf: Option<&'a str>,
    /// The path of this page (the language switch comes back to it).
    pub(crate) here: &'a str,
}

/// A whole page: the layout around `body`.
pub(crate) fn page(chrome: &Chrome<'_>, title: Msg, body: &str) -> String {
    let lang = chrome.lang;
    let mut s = String::with_capacity(4096 + body.len());
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {cabinet}</title>\
         <link rel=\"stylesheet\" href=\"/cabinet/static/cabinet.css\"></head>\n<body>\
         <header><p class=\"brand\">{cabinet}</p>",
        code = lang.code(),
        title = escape(lang.t(title)),
        cabinet = escape(lang.t(Msg::Cabinet)),
    );
    if let Some((name, id)) = chrome.merchant {
        let _ = write!(
            s,
            "<p class=\"merchant\" id=\"merchant\">{} · {id}</p><nav>\
             <a id=\"nav-orders\" href=\"/cabinet/\">{}</a>\
             <a id=\"nav-customers\" href=\"/cabinet/customers\">{}</a>\
             <a id=\"nav-settings\" href=\"/cabinet/settings\">{}</a></nav>",
            escape(name),
            escape(lang.t(Msg::Orders)),
            escape(lang.t(Msg::Customers)),
            escape(lang.t(Msg::Settings)),
        );
    }
    let other = lang.other();
    let _ = write!(
        s,
        "<a class=\"lang\" id=\"lang\" hreflang=\"{code}\" href=\"/cabinet/lang/{code}?back={back}\">{name}</a>",
        code = other.code(),
        back = query_value(chrome.here),
        name = escape(other.t(Msg::LanguageName)),
    );
    if let Some(csrf) = chrome.csrf {
        let _ = write!(
            s,
            "<form class=\"logout\" method=\"post\" action=\"/cabinet/logout\">{}\
             <button id=\"logout\" type=\"submit\">{}</button></form>",
            csrf_field(csrf),
            escape(lang.t(Msg::Logout)),
        );
    }
    let _ = write!(s, "</header>\n<main>{body}</main></body></html>\n");
    s
}

/// The hidden field every form carries.
pub(crate) fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token)
    )
}

/// A one-line message box.
pub(crate) fn flash(ok: bool, text: &str) -> String {
    format!(
        "<p class=\"flash {}\" id=\"flash\" role=\"status\">{}</p>",
        if ok { "ok" } else { "error" },
        escape(text)
    )
}

/// An HTML answer with the cabinet's policy (the facade's layer adds no-store, nosniff and
/// no-referrer to every answer).
pub(crate) fn respond(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        html,
    )
        .into_response()
}

/// `GET /cabinet/static/cabinet.css`.
pub(crate) async fn css() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        CSS,
    )
        .into_response()
}
