//! The merchant's server as the benches and the soak play it: form posts to the real merchant API
//! over pooled HTTP/1.1 keep-alive connections (hyper), the dev merchant's credentials, and the
//! customers whose cards are saved for Token Pay.
//!
//! Owns the client, the failure vocabulary of one call and the reading of a Format 5 answer's one
//! order. Never prints or keeps a card number: cards are saved through the vault by name from
//! `testkit::cards`, and answers carry masked numbers only.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use futures::{StreamExt as _, TryStreamExt as _};
use testkit::http::Client;
use testkit::processes::VaultSetup;
use testkit::vault::save_paid_card;
use vault::{CustomerNumber, MerchantId};

/// The dev merchant whose credentials every call carries.
pub const MERCHANT: &str = "452739";

/// The dev merchant's credentials as the first fields of a form.
pub const CREDENTIALS: &str = "Merchant_ID=452739&Login=demo_login&Password=Demopass2026";

/// Why a call did not give what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// No answer: connecting, sending or reading failed.
    #[error("no answer: {0}")]
    Transport(String),
    /// An answer other than 200.
    #[error("HTTP {0}: {1}")]
    Status(u16, String),
    /// A 200 that is not what the call expected (the state, or not the expected JSON).
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// Not sent: too many operations were already in flight (the system had stalled).
    #[error("not sent: too many in flight")]
    Overload,
}

impl Failure {
    /// A short name of the failure's class, to count failures by kind in a report.
    pub fn class(&self) -> String {
        match self {
            Failure::Transport(_) => "transport".into(),
            Failure::Status(status, _) => format!("http {status}"),
            Failure::Unexpected(_) => "unexpected".into(),
            Failure::Overload => "overload".into(),
        }
    }
}

/// The merchant API's client over testkit's keep-alive [`Client`]. Cheap to clone; every clone
/// shares the connection pool and the API's address, which [`MerchantApi::moved_to`] changes
/// when the authorizer restarts on a new port (its `http_addr` is `127.0.0.1:0`), so callers
/// keep working across a restart.
#[derive(Debug, Clone)]
pub struct MerchantApi {
    http: Client,
    addr: Arc<RwLock<SocketAddr>>,
}

impl MerchantApi {
    /// A client of the API at `addr`.
    pub fn new(addr: SocketAddr) -> MerchantApi {
        MerchantApi {
            http: Client::default(),
            addr: Arc::new(RwLock::new(addr)),
        }
    }

    /// The API's address now.
    pub fn addr(&self) -> SocketAddr {
        *self
            .addr
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The API moved (the authorizer was restarted): the next calls go to `addr`.
    pub fn moved_to(&self, addr: SocketAddr) {
        *self
            .addr
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = addr;
    }

    /// POSTs `body` (a form, or JSON for One Click's services) to `path`; the answer's body when
    /// it is a 200.
    pub async fn post(&self, path: &str, body: String) -> Result<String, Failure> {
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let url = format!("http://{}{path}", self.addr());
        let answer = self
            .http
            .send("POST", &url, &[("content-type", content_type)], &body)
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        if answer.status != 200 {
            return Err(Failure::Status(answer.status, answer.body));
        }
        Ok(answer.body)
    }

    /// POSTs the form `fields` (after the dev merchant's credentials, with `Format=5`) to `path`
    /// and returns the answer's one order (Format 5: `{"<service>": {"orders": [{…}]}}`).
    pub async fn order(&self, path: &str, fields: &str) -> Result<serde_json::Value, Failure> {
        let body = self
            .post(path, format!("{CREDENTIALS}&Format=5&{fields}"))
            .await?;
        only_order(&body)
    }
}

/// `body` as JSON.
pub fn json(body: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(body).map_err(|_| Failure::Unexpected(body.to_owned()))
}

/// The one order of a Format 5 answer.
pub fn only_order(body: &str) -> Result<serde_json::Value, Failure> {
    let unexpected = || Failure::Unexpected(body.to_owned());
    let json = json(body)?;
    let orders = json
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|root| root["orders"].as_array());
    match orders.map(Vec::as_slice) {
        Some([order]) => Ok(order.clone()),
        _ => Err(unexpected()),
    }
}

/// A string field of an order record (empty when absent).
pub fn field<'a>(order: &'a serde_json::Value, name: &str) -> &'a str {
    order[name].as_str().unwrap_or_default()
}

/// `value` as a form field: every byte but the unreserved ones percent-encoded.
pub fn percent_encoded(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A customer of the dev merchant with a card saved (and listed) in the vault.
#[derive(Debug, Clone)]
pub struct SavedCustomer {
    /// Its CustomerNumber.
    pub name: String,
    /// Its saved card's token.
    pub token: String,
}

impl SavedCustomer {
    /// The Token Pay form (without OrderNumber) of `amount` (e.g. `1.00`), one-stage or
    /// two-stage (`delay`), without Format and credentials.
    pub fn token_pay_form(&self, amount: &str, delay: bool) -> String {
        let token = format!(
            r#"{{"Token":"{}","CustomerNumber":"{}"}}"#,
            self.token, self.name
        );
        format!(
            "OrderAmount={amount}&OrderCurrency=RUB&Delay={}&Lastname=Ivanov&Firstname=Ivan\
             &Email=ivan%40example.com&TokenType=5&PaymentToken={}",
            u8::from(delay),
            percent_encoded(&token)
        )
    }
}

/// Saves `card` (a test card number from `testkit::cards`) for customers `<prefix>-0` …
/// `<prefix>-<count - 1>` of the dev merchant through the vault's facade role, with one payment
/// recorded each (so that each is listed, as after a first payment on the page). Several at a
/// time: each waits for the vault's durable commits, which then batch.
pub async fn saved_customers(
    setup: &VaultSetup,
    prefix: &str,
    count: usize,
    card: &str,
) -> Result<Vec<SavedCustomer>, vault::ClientError> {
    /// Customers saved at a time.
    const AT_ONCE: usize = 32;
    let facade = setup.client(&setup.facade).await?;
    let authorizer = setup.client(&setup.authorizer).await?;
    let merchant = MerchantId::parse(MERCHANT).expect("the dev merchant's id is valid");
    futures::stream::iter(0..count)
        .map(|c| {
            let (facade, authorizer, merchant) = (&facade, &authorizer, &merchant);
            async move {
                let name = format!("{prefix}-{c}");
                let customer = CustomerNumber::parse(&name).expect("a valid customer number");
                let token = save_paid_card(facade, authorizer, merchant, &customer, card).await?;
                Ok(SavedCustomer {
                    name,
                    token: token.to_string(),
                })
            }
        })
        .buffered(AT_ONCE)
        .try_collect()
        .await
}
