//! The settings screen, and the overlay it edits: what a merchant may change itself (the
//! notification URL and which results are notified, the return URLs used when an order sends
//! none) over what the merchants file says, effective at once — the engine's settings, the
//! outbox's rendering and the payment pages read them through the facade — and kept by a
//! [`SettingsStore`] (the authorizer's store) so that a restart keeps it. The order integrity the
//! merchant uses is shown, never its salt or keys.
//!
//! Owns the overlay's shape, its rules and its screen. A change is written before it is used and
//! audited (which fields, never their old values' secrets). Must never show or log a salt.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use assist::integrity::OrderIntegrity;
use assist::values::{MerchantId, ParamValue as _, Url};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::html::{csrf_field, escape};
use super::i18n::Msg;
use super::{posted, visit};
use crate::Facade;
use crate::merchants::Merchant;

/// A merchant's own settings, as last saved from the cabinet; they replace the file's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantOverlay {
    /// Whose.
    pub merchant: u64,
    /// Where the shopper returns after a successful payment when the order names no
    /// `URL_RETURN_OK`.
    pub url_return_ok: Option<String>,
    /// Where the shopper returns after a failed payment when the order names no
    /// `URL_RETURN_NO`.
    pub url_return_no: Option<String>,
    /// Where result notifications go; none: none is sent.
    pub notification_url: Option<String>,
    /// Which results are notified.
    pub notify: NotifyChoice,
}

/// Which results a merchant asks to be notified of, as the overlay keeps them
/// ([`orders::Notifications`], serializable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyChoice {
    /// Payments that reach a final state.
    pub payments: bool,
    /// Charges of two-stage payments.
    pub charges: bool,
    /// Cancels and refunds.
    pub cancels: bool,
    /// Orders that expired unpaid.
    pub timeouts: bool,
    /// Only operations that succeeded.
    pub only_successful: bool,
}

impl From<orders::Notifications> for NotifyChoice {
    fn from(n: orders::Notifications) -> NotifyChoice {
        NotifyChoice {
            payments: n.payments,
            charges: n.charges,
            cancels: n.cancels,
            timeouts: n.timeouts,
            only_successful: n.only_successful,
        }
    }
}

impl From<NotifyChoice> for orders::Notifications {
    fn from(n: NotifyChoice) -> orders::Notifications {
        orders::Notifications {
            payments: n.payments,
            charges: n.charges,
            cancels: n.cancels,
            timeouts: n.timeouts,
            only_successful: n.only_successful,
        }
    }
}

impl MerchantOverlay {
    /// The stored form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored overlay back.
    pub fn decode(bytes: &[u8]) -> Result<MerchantOverlay, SettingsStoreError> {
        serde_json::from_slice(bytes).map_err(|_| SettingsStoreError::Corrupt)
    }
}

/// Why settings could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsStoreError {
    /// The store refused or failed the write (ours: disk, a closed store).
    #[error("the settings store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored overlay does not read back (ours: a corrupt or foreign record).
    #[error("a stored settings overlay is corrupt")]
    Corrupt,
}

/// Where overlays are kept; the authorizer implements it over its store.
pub trait SettingsStore: Send + Sync + fmt::Debug {
    /// Writes a merchant's overlay durably (replacing the one before).
    fn save<'a>(
        &'a self,
        overlay: &'a MerchantOverlay,
    ) -> BoxFuture<'a, Result<(), SettingsStoreError>>;
}

/// The return URLs in force for a merchant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnUrls {
    /// After a successful payment.
    pub ok: Option<Url>,
    /// After a failed one.
    pub no: Option<Url>,
}

/// Where a merchant's notifications go and which are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationSettings {
    /// The URL; none: none is sent.
    pub url: Option<Url>,
    /// Which results.
    pub notify: orders::Notifications,
}

/// Every merchant's overlay, and where they are kept.
#[derive(Debug, Default)]
pub(crate) struct Overlays {
    by_merchant: RwLock<HashMap<MerchantId, MerchantOverlay>>,
    store: Option<Arc<dyn SettingsStore>>,
}

impl Overlays {
    /// The overlays read at start, kept in `store` from now on. One that no longer passes the
    /// rules is dropped with a warning (the file's values apply).
    pub(crate) fn new(store: Arc<dyn SettingsStore>, saved: Vec<MerchantOverlay>) -> Overlays {
        let mut by_merchant = HashMap::new();
        for o in saved {
            if urls(&o).is_some() && notification_url(&o).is_some() {
                by_merchant.insert(MerchantId(o.merchant), o);
            } else {
                tracing::warn!(
                    merchant = o.merchant,
                    "a saved settings overlay is invalid; ignored"
                );
            }
        }
        Overlays {
            by_merchant: RwLock::new(by_merchant),
            store: Some(store),
        }
    }

    /// The return URLs in force: the overlay's once one was saved, else the file's.
    pub(crate) fn return_urls(&self, merchant: &Merchant) -> ReturnUrls {
        let overlays = self
            .by_merchant
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match overlays.get(&merchant.id).and_then(urls) {
            Some(urls) => urls,
            None => ReturnUrls {
                ok: merchant.url_return_ok.clone(),
                no: merchant.url_return_no.clone(),
            },
        }
    }

    /// The notification settings in force: the overlay's once one was saved, else the file's.
    pub(crate) fn notifications(&self, merchant: &Merchant) -> NotificationSettings {
        let overlays = self
            .by_merchant
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match overlays
            .get(&merchant.id)
            .and_then(|o| Some((notification_url(o)?, o.notify)))
        {
            Some((url, notify)) => NotificationSettings {
                url,
                notify: notify.into(),
            },
            None => NotificationSettings {
                url: merchant.notification_url.clone(),
                notify: merchant.notify,
            },
        }
    }

    /// The engine's view of a merchant with its notification settings in force.
    pub(crate) fn engine_settings(&self, merchant: &Merchant) -> orders::MerchantSettings {
        let n = self.notifications(merchant);
        orders::MerchantSettings {
            notifications: n.url.is_some().then_some(n.notify),
            ..merchant.settings()
        }
    }

    async fn save(&self, overlay: MerchantOverlay) -> Result<(), SettingsStoreError> {
        if let Some(store) = &self.store {
            store.save(&overlay).await?;
        }
        self.by_merchant
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(MerchantId(overlay.merchant), overlay);
        Ok(())
    }
}

/// The overlay's notification URL, if it passes the API's rule for a URL.
fn notification_url(o: &MerchantOverlay) -> Option<Option<Url>> {
    o.notification_url
        .as_deref()
        .map(Url::parse)
        .transpose()
        .ok()
}

/// The overlay's URLs, if each passes the API's rule for a URL.
fn urls(o: &MerchantOverlay) -> Option<ReturnUrls> {
    let url = |u: &Option<String>| u.as_deref().map(Url::parse).transpose().ok();
    Some(ReturnUrls {
        ok: url(&o.url_return_ok)?,
        no: url(&o.url_return_no)?,
    })
}

/// The notification switches: the form's field names and their words.
const SWITCHES: [(&str, Msg); 5] = [
    ("notify_payments", Msg::NotifyPayments),
    ("notify_charges", Msg::NotifyCharges),
    ("notify_cancels", Msg::NotifyCancels),
    ("notify_timeouts", Msg::NotifyTimeouts),
    ("notify_only_successful", Msg::NotifyOnlySuccessful),
];

fn switch(n: &NotifyChoice, name: &str) -> bool {
    match name {
        "notify_payments" => n.payments,
        "notify_charges" => n.charges,
        "notify_cancels" => n.cancels,
        "notify_timeouts" => n.timeouts,
        _ => n.only_successful,
    }
}

/// `GET /cabinet/settings`.
pub(crate) async fn show(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let visit = match visit(&facade, &headers, &uri) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let lang = visit.lang;
    let settings = &facade.cabinet.settings;
    let returns = settings.return_urls(visit.merchant);
    let notifications = settings.notifications(visit.merchant);
    let url_field = |id: &str, label: Msg, value: &Option<Url>| {
        format!(
            "<label>{}<input id=\"{id}\" name=\"{id}\" type=\"url\" maxlength=\"255\" value=\"{}\"></label>",
            escape(lang.t(label)),
            escape(value.as_ref().map_or("", |u| u.as_str()))
        )
    };
    let chosen = NotifyChoice::from(notifications.notify);
    let switches: String = SWITCHES
        .iter()
        .map(|(name, label)| {
            format!(
                "<label class=\"check\"><input type=\"checkbox\" id=\"{name}\" name=\"{name}\" value=\"1\"{}> {}</label>",
                if switch(&chosen, name) { " checked" } else { "" },
                escape(lang.t(*label))
            )
        })
        .collect();
    let integrity = match &visit.merchant.integrity {
        OrderIntegrity::Checkvalue { .. } => escape(lang.t(Msg::IntegrityCheckvalue)),
        OrderIntegrity::Signature { keys } => {
            format!("{} {}", escape(lang.t(Msg::IntegritySignature)), keys.len())
        }
    };
    let body = format!(
        "<h1>{title}</h1><form class=\"card\" id=\"settings-form\" method=\"post\" action=\"/cabinet/settings\">{csrf}\
         <h2>{notify_title}</h2>{notification_url}<fieldset class=\"switches\"><legend>{notify_which}</legend>{switches}</fieldset>\
         <h2>{returns_title}</h2>{ok}{no}<button id=\"save\" type=\"submit\">{save}</button></form>\
         <section id=\"integrity\"><h2>{integrity_title}</h2><p id=\"integrity-kind\">{integrity}</p></section>",
        title = escape(lang.t(Msg::Settings)),
        csrf = csrf_field(visit.csrf()),
        notify_title = escape(lang.t(Msg::Notifications)),
        notification_url = url_field("notification_url", Msg::NotificationUrl, &notifications.url),
        notify_which = escape(lang.t(Msg::NotifyWhich)),
        returns_title = escape(lang.t(Msg::ReturnUrls)),
        ok = url_field("url_return_ok", Msg::ReturnOk, &returns.ok),
        no = url_field("url_return_no", Msg::ReturnNo, &returns.no),
        save = escape(lang.t(Msg::Save)),
        integrity_title = escape(lang.t(Msg::Integrity)),
    );
    visit.page(StatusCode::OK, Msg::Settings, &body)
}

/// `POST /cabinet/settings`: the whole form replaces the merchant's overlay.
pub(crate) async fn save(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (visit, form) = match posted(&facade, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let on = |name| form.get(name) == Some("1");
    let overlay = MerchantOverlay {
        merchant: visit.merchant.id.0,
        url_return_ok: form.get("url_return_ok").map(str::to_owned),
        url_return_no: form.get("url_return_no").map(str::to_owned),
        notification_url: form.get("notification_url").map(str::to_owned),
        notify: NotifyChoice {
            payments: on("notify_payments"),
            charges: on("notify_charges"),
            cancels: on("notify_cancels"),
            timeouts: on("notify_timeouts"),
            only_successful: on("notify_only_successful"),
        },
    };
    if urls(&overlay).is_none() || notification_url(&overlay).is_none() {
        return visit.done("/cabinet/settings", false, visit.lang.t(Msg::BadUrl));
    }
    let settings = &facade.cabinet.settings;
    let before = (
        settings.return_urls(visit.merchant),
        settings.notifications(visit.merchant),
    );
    let result = settings.save(overlay.clone()).await;
    let changed = |old: Option<&Url>, new: &Option<String>| old.map(Url::as_str) != new.as_deref();
    tracing::info!(
        target: "audit",
        merchant = %visit.merchant.id,
        url_return_ok_changed = changed(before.0.ok.as_ref(), &overlay.url_return_ok),
        url_return_no_changed = changed(before.0.no.as_ref(), &overlay.url_return_no),
        notification_url_changed = changed(before.1.url.as_ref(), &overlay.notification_url),
        notify_changed = NotifyChoice::from(before.1.notify) != overlay.notify,
        ok = result.is_ok(),
        "cabinet settings change"
    );
    match result {
        Ok(()) => visit.done("/cabinet/settings", true, visit.lang.t(Msg::SettingsSaved)),
        Err(e) => {
            tracing::warn!(merchant = %visit.merchant.id, error = %e, "cabinet settings not saved");
            visit.done("/cabinet/settings", false, visit.lang.t(Msg::Unavailable))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_reads_back_as_written() {
        let o = MerchantOverlay {
            merchant: 452739,
            url_return_ok: Some("https://shop.example/ok".into()),
            url_return_no: None,
            notification_url: None,
            notify: NotifyChoice::default(),
        };
        assert_eq!(MerchantOverlay::decode(&o.encode()).unwrap(), o);
        assert!(matches!(
            MerchantOverlay::decode(b"{\"merchant\":1,\"salt\":\"x\"}"),
            Err(SettingsStoreError::Corrupt)
        ));
    }

    #[tokio::test]
    async fn the_files_urls_apply_until_the_merchant_saves_its_own() {
        let merchants = crate::Merchants::parse(
            "[[merchants]]\nid = \"1\"\nname = \"n\"\nlogin = \"login_one\"\n\
             password_hash = \"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$0m1jCTGqeKwl7TbbszBs1A\"\n\
             checkvalue_salt = \"s\"\nurl_return_ok = \"https://file.example/ok\"\n",
            "t",
        )
        .unwrap();
        let m = merchants.get(MerchantId(1)).unwrap();
        let overlays = Overlays::default();
        let from_file = overlays.return_urls(m);
        assert_eq!(
            from_file.ok.map(|u| u.to_string()).as_deref(),
            Some("https://file.example/ok")
        );
        overlays
            .save(MerchantOverlay {
                merchant: 1,
                url_return_no: Some("https://shop.example/no".into()),
                ..MerchantOverlay::default()
            })
            .await
            .unwrap();
        let saved = overlays.return_urls(m);
        assert_eq!(saved.ok, None, "cleared in the cabinet");
        assert_eq!(
            saved.no.map(|u| u.to_string()).as_deref(),
            Some("https://shop.example/no")
        );
    }

    #[test]
    fn only_http_urls_pass() {
        let with = |u: &str| MerchantOverlay {
            merchant: 1,
            url_return_ok: Some(u.into()),
            ..MerchantOverlay::default()
        };
        assert!(urls(&with("https://shop.example/ok?x=1")).is_some());
        assert!(urls(&with("javascript:alert(1)")).is_none());
        assert!(urls(&with("https://shop.example/a b")).is_none());
    }
}
