//! The merchant's side of the system, as tests, the tour and a load tool play it: its server
//! that receives result notifications ([`Shop`]) and its server-to-server calls of the merchant
//! API ([`Merchant`]).
//!
//! [`Shop`] owns what it received and what it answers: the Assist acknowledgement by default, an
//! answer a test scripted, a 500 while it is told to fail, or a wait while it is held. It counts
//! the acknowledgements it gave per billnumber, so a caller can check that no notification was
//! acknowledged twice. It must never log what it receives (a notification carries a masked card
//! and the shopper's details) and never sleep.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tokio::sync::watch;

use crate::http::{Answer, Client, HttpError};

/// One notification form as the shop received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The path it was posted to, without its `/`: the merchant, as the shop tells them apart.
    pub path: String,
    /// The form's fields, decoded.
    pub fields: HashMap<String, String>,
    /// Whether the shop answered it with the acknowledgement (200 and codes 0, 0).
    pub acknowledged: bool,
}

impl Notification {
    /// Its `billnumber` field: the order's billnumber, a dot and the operation's number.
    pub fn billnumber(&self) -> &str {
        self.fields.get("billnumber").map_or("", String::as_str)
    }

    /// Whether it is about order `bill` (any of its operations).
    pub fn is_of(&self, bill: &str) -> bool {
        let b = self.billnumber();
        b == bill || b.strip_prefix(bill).is_some_and(|op| op.starts_with('.'))
    }
}

#[derive(Debug, Default)]
struct Inner {
    received: Mutex<Vec<Notification>>,
    /// How many of `received` were acknowledged, readable without the lock on them.
    acknowledgements: AtomicUsize,
    /// The only fields kept of each form, when set (a long soak keeps millions of them).
    keep: Option<&'static [&'static str]>,
    /// Answers scripted per path, given before the default acknowledgement.
    script: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    /// While set, every notification is answered 500: a merchant endpoint that fails.
    failing: AtomicBool,
    /// While set, a request waits for the release before it is answered.
    held: Mutex<Option<(watch::Sender<bool>, watch::Receiver<bool>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The merchant's notification server, on 127.0.0.1 at a port of the system's choosing; it
/// takes a form POSTed to any one-segment path (`/m1`, `/notify`) and serves until the runtime
/// it was started on ends. Clones share what was received.
#[derive(Debug, Clone)]
pub struct Shop {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Shop {
    /// Binds 127.0.0.1:0 and serves.
    pub async fn serve() -> std::io::Result<Shop> {
        Shop::start(Inner::default()).await
    }

    /// [`Shop::serve`], keeping only the fields `keep` of each form received.
    pub async fn serve_keeping(keep: &'static [&'static str]) -> std::io::Result<Shop> {
        Shop::start(Inner {
            keep: Some(keep),
            ..Inner::default()
        })
        .await
    }

    async fn start(inner: Inner) -> std::io::Result<Shop> {
        let inner = Arc::new(inner);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(notified))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Shop { addr, inner })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The notification URL of the merchant the shop knows by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Scripts the next answers to notifications posted to `path`, before the acknowledgement.
    pub fn answers(&self, path: &str, answers: &[(u16, &str)]) {
        lock(&self.inner.script).insert(
            path.into(),
            answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect(),
        );
    }

    /// While `failing`, every notification is answered 500 (recorded, not acknowledged).
    pub fn fail(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// From now on a request waits, unanswered, until [`Shop::release`].
    pub fn hold(&self) {
        *lock(&self.inner.held) = Some(watch::channel(false));
    }

    /// Answers the requests held, and holds no more.
    pub fn release(&self) {
        if let Some((release, _)) = lock(&self.inner.held).take() {
            let _ = release.send(true);
        }
    }

    /// Every notification received, in the order they came.
    pub fn received(&self) -> Vec<Notification> {
        lock(&self.inner.received).clone()
    }

    /// How many acknowledgements it has given: a count a caller can poll while notifications
    /// still arrive, where [`Shop::received`] copies every one under the lock the server needs.
    pub fn acknowledgements(&self) -> usize {
        self.inner.acknowledgements.load(Ordering::SeqCst)
    }

    /// The forms received for order `bill` (any of its operations), in the order they came.
    pub fn of(&self, bill: &str) -> Vec<HashMap<String, String>> {
        lock(&self.inner.received)
            .iter()
            .filter(|n| n.is_of(bill))
            .map(|n| n.fields.clone())
            .collect()
    }

    /// How many times each billnumber (order and operation) was acknowledged.
    pub fn acknowledged(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for n in lock(&self.inner.received).iter().filter(|n| n.acknowledged) {
            *counts.entry(n.billnumber().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// The billnumbers acknowledged more than once: empty unless a notification was delivered
    /// again after the merchant had acknowledged it.
    pub fn acknowledged_twice(&self) -> Vec<String> {
        self.acknowledged()
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(b, _)| b)
            .collect()
    }
}

/// The Assist acknowledgement of notification `billnumber`: codes 0, 0.
pub fn ack(billnumber: &str) -> String {
    // The packet date is not read by the authorizer (only the codes are); a fixed one keeps the
    // answer the same bytes every time.
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><pushpaymentresult firstcode="0" secondcode="0"><order><billnumber>{billnumber}</billnumber><packetdate>01.12.2026 10:00:00</packetdate></order></pushpaymentresult>"#
    )
}

async fn notified(
    State(shop): State<Arc<Inner>>,
    Path(path): Path<String>,
    body: String,
) -> (StatusCode, String) {
    // Only the kept fields go into the map: one filled and then trimmed keeps the capacity of
    // every field it ever held, some 3 KiB a form.
    let mut billnumber = String::new();
    let fields: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .inspect(|(name, value)| {
            if name == "billnumber" {
                billnumber.clone_from(value);
            }
        })
        .filter(|(name, _)| shop.keep.is_none_or(|keep| keep.contains(&name.as_str())))
        .collect();
    // Held before it is answered (and recorded as received at once, so a test sees the try in
    // flight); the answer is decided after the release.
    let index = {
        let mut received = lock(&shop.received);
        received.push(Notification {
            path: path.clone(),
            fields,
            acknowledged: false,
        });
        received.len() - 1
    };
    let held = lock(&shop.held).as_ref().map(|(_, until)| until.clone());
    if let Some(mut until) = held {
        let _ = until.wait_for(|released| *released).await;
    }
    let scripted = lock(&shop.script)
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let (status, answer) = match scripted {
        Some(scripted) => scripted,
        None if shop.failing.load(Ordering::SeqCst) => (500, "failing on purpose".to_owned()),
        None => (200, ack(&billnumber)),
    };
    if status == 200 && acknowledges(&answer) {
        lock(&shop.received)[index].acknowledged = true;
        shop.acknowledgements.fetch_add(1, Ordering::SeqCst);
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer,
    )
}

/// Whether the answer carries codes 0 and 0, as the authorizer reads an acknowledgement.
fn acknowledges(answer: &str) -> bool {
    answer.contains(r#"firstcode="0""#) && answer.contains(r#"secondcode="0""#)
}

/// A merchant's server calling the merchant API with its credentials, over a keep-alive
/// [`Client`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Merchant {
    /// The authorizer's merchant API, `http://host:port`.
    base: String,
    /// `Merchant_ID`.
    pub id: &'static str,
    login: &'static str,
    password: &'static str,
    http: Client,
}

impl Merchant {
    /// The dev merchant 452739 of `config/merchants.dev.toml`, at the API bound at `api`.
    pub fn dev(api: SocketAddr) -> Merchant {
        Merchant {
            base: format!("http://{api}"),
            id: "452739",
            login: "demo_login",
            password: "Demopass2026",
            http: Client::default(),
        }
    }

    /// The second dev merchant, 452740, sharing 452739's customer list.
    pub fn dev_second(api: SocketAddr) -> Merchant {
        Merchant {
            id: "452740",
            login: "demo_login2",
            ..Merchant::dev(api)
        }
    }

    /// Dev merchant `id` (452739 or 452740) at the API bound at `api`.
    ///
    /// # Panics
    /// For any other id.
    pub fn dev_by_id(api: SocketAddr, id: &str) -> Merchant {
        match id {
            "452739" => Merchant::dev(api),
            "452740" => Merchant::dev_second(api),
            other => panic!("{other} is not a dev merchant"),
        }
    }

    /// A form POST of `params` to `path` with the merchant's `Merchant_ID`, `Login` and
    /// `Password` first.
    pub async fn call(&self, path: &str, params: &[(&str, &str)]) -> Result<Answer, HttpError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("Merchant_ID", self.id),
                ("Login", self.login),
                ("Password", self.password),
            ])
            .extend_pairs(params)
            .finish();
        self.http
            .post_form(&format!("{}{path}", self.base), &form)
            .await
    }

    /// tokenpay.cfm in JSON (Format 5): a new order `order_number` of `amount` RUB paid with
    /// `customer`'s saved card `token`, two-stage when `delay`.
    pub async fn token_pay(
        &self,
        order_number: &str,
        amount: &str,
        delay: bool,
        customer: &str,
        token: &str,
    ) -> Result<Answer, HttpError> {
        let payment_token = format!(r#"{{"Token":"{token}","CustomerNumber":"{customer}"}}"#);
        self.call(
            "/pay/tokenpay.cfm",
            &[
                ("OrderNumber", order_number),
                ("OrderAmount", amount),
                ("OrderCurrency", "RUB"),
                ("Delay", if delay { "1" } else { "0" }),
                ("Lastname", "Ivanov"),
                ("Firstname", "Ivan"),
                ("Email", "ivan@example.com"),
                ("TokenType", "5"),
                ("PaymentToken", &payment_token),
                ("Format", "5"),
            ],
        )
        .await
    }

    /// A One Click service (`token.cfm`, `rem_token.cfm`) with seed 001's JSON body: the
    /// merchant object, then `fields`.
    pub async fn one_click(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Answer, HttpError> {
        let mut body = serde_json::Map::new();
        body.insert(
            "merchant".into(),
            serde_json::json!({
                "merchant_id": self.id,
                "login": self.login,
                "password": self.password,
            }),
        );
        for (name, value) in fields {
            body.insert((*name).into(), (*value).into());
        }
        let url = format!("{}{path}", self.base);
        let json = [("content-type", "application/json")];
        self.http
            .send(
                "POST",
                &url,
                &json,
                &serde_json::Value::Object(body).to_string(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn notify(shop: &Shop, billnumber: &str) -> Answer {
        Client::default()
            .post_form(
                &shop.url("m1"),
                &format!("billnumber={billnumber}&ordernumber=A%201"),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_form_is_recorded_per_path_and_acknowledged_with_its_billnumber() {
        let shop = Shop::serve().await.unwrap();
        let answer = notify(&shop, "1234567890123456.1").await;
        assert_eq!(answer.status, 200);
        assert!(
            answer
                .body
                .contains("<billnumber>1234567890123456.1</billnumber>")
        );
        let received = shop.received();
        assert_eq!(received.len(), 1);
        assert_eq!(
            (
                received[0].path.as_str(),
                received[0].fields["ordernumber"].as_str()
            ),
            ("m1", "A 1")
        );
        assert_eq!(shop.of("1234567890123456").len(), 1);
        assert!(shop.of("123456789012345").is_empty(), "not a prefix match");
    }

    #[tokio::test]
    async fn while_failing_it_answers_500_and_acknowledges_nothing() {
        let shop = Shop::serve().await.unwrap();
        shop.fail(true);
        assert_eq!(notify(&shop, "1.1").await.status, 500);
        shop.fail(false);
        assert_eq!(notify(&shop, "1.1").await.status, 200);
        assert_eq!(shop.received().len(), 2);
        assert_eq!(shop.acknowledged().get("1.1"), Some(&1));
    }

    #[tokio::test]
    async fn a_billnumber_acknowledged_twice_is_reported() {
        let shop = Shop::serve().await.unwrap();
        notify(&shop, "1.1").await;
        notify(&shop, "2.1").await;
        notify(&shop, "1.1").await;
        assert_eq!(shop.acknowledged_twice(), ["1.1"]);
    }
}
