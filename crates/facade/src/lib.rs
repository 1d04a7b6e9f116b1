//! The merchant API of `spec/assist-api.md` over HTTP (axum): every service's path, method and
//! body bounds, authentication, order integrity, the strict header policy, One Click through the
//! vault's `facade` role, and the engine services' mapping.
//!
//! Modules: `merchants` (the validated merchant directory and its TOML file), `auth`
//! (argon2id credentials, the keyed cache of verified ones, slow-down and audit of failures),
//! `headers` (the response header policy), `api` (path → service, method, bounded body, decode,
//! dispatch, rendering), `one_click` (token.cfm and rem_token.cfm over [`SavedCards`]), `engine`
//! (the order engine's services), `pages` (the shopper's payment pages under `/pay/page/` and
//! `/pay/static/`), `cabinet` (the merchant's cabinet under `/cabinet/`), `html` (what the two
//! share: escaping, the page language, amounts).
//!
//! Owns HTTP and the Assist mapping, nothing of the protocol's syntax (the `assist` crate), of the
//! order life cycle (the `orders` crate) or of card storage (the vault). Must never panic on
//! input, answer a 500 with internals, or put a card number or a password into an answer or a log.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod api;
pub mod auth;
pub mod cabinet;
mod detach;
mod engine;
pub mod headers;
mod html;
pub mod merchants;
pub mod one_click;
pub mod pages;

use std::sync::Arc;

use orders::Engine;

pub use api::{FORM_BODY_LIMIT, JSON_BODY_LIMIT};
pub use auth::{Authenticator, HashError, SlowDown, hash_password};
pub use cabinet::{
    CabinetOptions, MerchantOverlay, SessionPolicy, SettingsStore, SettingsStoreError,
};
pub use merchants::{Merchant, Merchants, MerchantsError};
pub use one_click::SavedCards;

/// Everything a request needs; shared by all of them.
#[derive(Debug)]
pub struct Facade {
    merchants: Merchants,
    auth: Authenticator,
    cards: Arc<dyn SavedCards>,
    orders: Arc<Engine>,
    /// Where the payment pages are served (`http://host:port`, no trailing slash).
    pages_url: String,
    /// The payment pages' own state (form key, attempt counters, cards held for 3-D Secure).
    pages: pages::Pages,
    /// The merchant's cabinet: sessions and the settings' overlay.
    cabinet: cabinet::Cabinet,
    /// The result notifications, once the authorizer made them (they render through this
    /// facade, hence attached after it and held weakly): the cabinet lists and re-sends them.
    outbox: std::sync::OnceLock<std::sync::Weak<outbox::Outbox>>,
    /// The bound on merchant API requests in flight.
    admission: admission::Admission,
}

impl Facade {
    /// A facade over a merchant directory, the vault's saved cards, the order engine and the
    /// base URL of the payment pages.
    pub fn new(
        merchants: Merchants,
        cards: Arc<dyn SavedCards>,
        orders: Arc<Engine>,
        pages: impl Into<String>,
    ) -> Facade {
        Facade {
            merchants,
            auth: Authenticator::new(SlowDown::default()),
            cards,
            orders,
            pages_url: pages.into().trim_end_matches('/').to_owned(),
            pages: pages::Pages::new(None),
            cabinet: cabinet::Cabinet::new(CabinetOptions::default(), Default::default()),
            outbox: std::sync::OnceLock::new(),
            admission: admission::Admission::new(admission::IN_FLIGHT),
        }
    }

    /// The 3DS server the payment pages authenticate a first payment that saves a card with.
    /// Without one, such a payment is declined as "3-D Secure failed" unless the order says
    /// `disable3DS=1`.
    pub fn with_three_ds(mut self, acs: Arc<dyn pages::ThreeDsServer>) -> Facade {
        self.pages = pages::Pages::new(Some(acs));
        self
    }

    /// The cabinet served with `options`, its settings kept in `store`, starting from the
    /// overlays `saved` there.
    pub fn with_cabinet(
        mut self,
        options: CabinetOptions,
        store: Arc<dyn SettingsStore>,
        saved: Vec<MerchantOverlay>,
    ) -> Facade {
        self.cabinet =
            cabinet::Cabinet::new(options, cabinet::settings::Overlays::new(store, saved));
        self
    }

    /// The result notifications the cabinet shows and re-sends (attached once; a second call
    /// changes nothing).
    pub fn attach_outbox(&self, outbox: &Arc<outbox::Outbox>) {
        let _ = self.outbox.set(Arc::downgrade(outbox));
    }

    /// The result notifications, while the authorizer runs them.
    pub(crate) fn outbox(&self) -> Option<Arc<outbox::Outbox>> {
        self.outbox.get().and_then(std::sync::Weak::upgrade)
    }

    /// The order engine's view of a merchant with the settings in force (the cabinet's over the
    /// merchants file): every engine call and the authorizer's sweep and recovery take it.
    pub fn merchant_settings(&self, merchant: &Merchant) -> orders::MerchantSettings {
        self.cabinet.settings.engine_settings(merchant)
    }

    /// Where a merchant's notifications go now (the cabinet's setting over the merchants file).
    pub fn notification_url(&self, merchant: &Merchant) -> Option<assist::values::Url> {
        self.cabinet.settings.notifications(merchant).url
    }

    /// The return URLs in force for a merchant when an order names none (the cabinet's settings
    /// over the merchants file).
    pub fn return_urls(&self, merchant: &Merchant) -> cabinet::settings::ReturnUrls {
        self.cabinet.settings.return_urls(merchant)
    }

    /// The merchant directory (the authorizer's cut-off and sweep read its calendars).
    pub fn merchants(&self) -> &Merchants {
        &self.merchants
    }

    /// The HTTP routes, with the header policy on every answer.
    pub fn router(self: Arc<Self>) -> axum::Router {
        api::router(self)
    }

    /// Prometheus text of the facade's counters, for the admin endpoint.
    pub fn metrics(&self) -> String {
        let mut text = self.auth.counts().render();
        text.push_str(&self.admission.render());
        text
    }
}
