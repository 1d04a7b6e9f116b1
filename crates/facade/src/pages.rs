//! The payment pages (issue 12; seeds 000 and 002 screen by screen, seed 004's return URLs): what
//! a shopper sees at `/pay/page/<billnumber>` after order.cfm or payrequest.cfm, served as plain
//! HTML forms that work without JavaScript, with one first-party script and style sheet under
//! `/pay/static/`.
//!
//! Modules: `routes` (each URL and the order of checks), `render` (the HTML and its one escaping
//! function), `form` (decoding and checking the forms), `i18n` (Russian and English), `guard`
//! (form tokens, the card-testing limit), `three_ds` (the 3DS-server leg and the cards held
//! during a challenge), `assets` (`pay.js`, `pay.css`).
//!
//! Owns the shopper's side of a payment up to the engine's `pay` and the vault's list and
//! remove. The card number goes from the form to the engine (which gives it to the vault) and,
//! for a first payment that saves the card, to the ACS server to server; the CVC goes to the
//! engine's one authorization. Must never put either into a log, an error, a URL, a cookie, a
//! page after it was submitted or anything written to disk; a card waiting for a 3-D Secure
//! challenge lives in memory only, so a restart during the challenge asks the shopper to type it
//! again.

mod assets;
mod form;
mod guard;
mod i18n;
mod render;
mod routes;
mod three_ds;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::Facade;

pub use three_ds::{
    Authentication, BadAcsUrl, HELD_TTL, HttpAcs, MAX_HELD, ThreeDsError, ThreeDsServer,
};

/// The pages' state: shared by every request, in memory only.
#[derive(Debug)]
pub(crate) struct Pages {
    csrf: guard::Csrf,
    attempts: guard::Attempts,
    held: three_ds::HeldCards,
    acs: Option<Arc<dyn ThreeDsServer>>,
}

impl Pages {
    pub(crate) fn new(acs: Option<Arc<dyn ThreeDsServer>>) -> Pages {
        Pages {
            csrf: guard::Csrf::new(),
            attempts: guard::Attempts::default(),
            held: three_ds::HeldCards::default(),
            acs,
        }
    }

    /// The pages' Content-Security-Policy: our own files only, no inline code; forms may go to
    /// us and (by the 303 of a first payment) to the ACS; framed only where the merchant allows.
    pub(crate) fn csp(&self, frame_ancestors: &[String]) -> String {
        let ancestors = if frame_ancestors.is_empty() {
            "'none'".to_owned()
        } else {
            frame_ancestors.join(" ")
        };
        let acs = self
            .acs
            .as_ref()
            .map_or(String::new(), |a| format!(" {}", a.origin()));
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'{acs}; frame-ancestors {ancestors}"
        )
    }
}

/// The pages' routes.
pub(crate) fn routes() -> Router<Arc<Facade>> {
    Router::new()
        .route("/pay/page/{bill}", get(routes::show).post(routes::pay_new))
        .route("/pay/page/{bill}/oneclick", post(routes::pay_saved))
        .route("/pay/page/{bill}/3ds", get(routes::three_ds_return))
        .route(
            "/pay/page/{bill}/remove",
            get(routes::confirm_remove).post(routes::remove),
        )
        .route("/pay/page/{bill}/retry", post(routes::retry))
        .layer(DefaultBodyLimit::max(form::BODY_LIMIT))
        .route("/pay/static/{name}", get(assets::serve))
}

#[cfg(test)]
mod tests;
