//! Result notifications end to end: the real `vault`, `simulator` and `authorizer` processes and
//! the merchants' own HTTP servers in the test (axum on port 0; the authorizer's
//! `[notifications] allowed_ports` names the ports they were given, since only 80, 443, 8080
//! and 8443 are allowed by default).
//!
//! Payments are Token Pay on a card saved through the vault's facade role, and an rp.cfm MIT on
//! a first use paid on the payment page as a shopper without scripts pays it. Proven here: the
//! spec's fields and checkvalue of a one-stage payment, a two-stage payment and its charge, a
//! cancel, and an MIT with the card on file; a merchant
//! answering 500 twice gets the notification three times and never again; a refusal is kept and
//! not re-sent; re-sending by hand from the admin endpoint; notifications pending when the
//! authorizer is SIGKILLed are delivered after its restart; a try in flight at a SIGTERM is
//! recorded and the notification delivered after the restart; a dead merchant does not delay
//! another's.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use serde_json::Value;
use testkit::cards::MC_FRICTIONLESS;
use testkit::eventually;
use testkit::http::{Answer, post_as_dev_merchant, request, token_pay};
use testkit::stack::{StackOptions, dev_merchants_file};
use tokio::sync::watch;

/// What a merchant's server received: its path (the merchant) and the form's fields.
type Received = Vec<(String, HashMap<String, String>)>;

/// The merchants' notification server: records every form, answers what the test scripted for
/// its path (then acknowledges), and can be held so that a request waits for an answer.
#[derive(Default)]
struct Shop {
    received: Mutex<Received>,
    script: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    held: Mutex<Option<watch::Receiver<bool>>>,
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn ack(bill: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><pushpaymentresult firstcode="0" secondcode="0"><order><billnumber>{bill}</billnumber><packetdate>01.12.2026 10:00:00</packetdate></order></pushpaymentresult>"#
    )
}

async fn notified(
    State(shop): State<Arc<Shop>>,
    UrlPath(merchant): UrlPath<String>,
    body: String,
) -> (StatusCode, String) {
    let fields = form(&body);
    let bill = fields.get("billnumber").cloned().unwrap_or_default();
    shop.received
        .lock()
        .unwrap()
        .push((merchant.clone(), fields));
    let held = shop.held.lock().unwrap().clone();
    if let Some(mut until) = held {
        let _ = until.wait_for(|released| *released).await;
    }
    let scripted = shop
        .script
        .lock()
        .unwrap()
        .get_mut(&merchant)
        .and_then(VecDeque::pop_front);
    let (status, body) = scripted.unwrap_or_else(|| (200, ack(&bill)));
    (StatusCode::from_u16(status).unwrap(), body)
}

impl Shop {
    async fn serve() -> (Arc<Shop>, SocketAddr) {
        let shop = Arc::new(Shop::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/{merchant}", axum::routing::post(notified))
            .with_state(shop.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (shop, addr)
    }

    fn answers(&self, merchant: &str, answers: &[(u16, &str)]) {
        self.script.lock().unwrap().insert(
            merchant.into(),
            answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect(),
        );
    }

    /// The forms received for order `bill` (any of its operations).
    fn of(&self, bill: &str) -> Vec<HashMap<String, String>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| f["billnumber"].starts_with(bill))
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// A server that accepts connections and never answers: a dead merchant.
async fn dead_merchant() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

/// The three processes, the dev merchants notifying `urls` (452739, 452740).
struct Stack {
    system: testkit::stack::Stack,
}

testkit::wraps_stack!(Stack);

/// The dev merchants file with a notification URL (and every result asked for) per merchant.
fn merchants_notifying(first: &str, second: &str) -> String {
    let dev = std::fs::read_to_string(dev_merchants_file()).unwrap();
    let notify = |url: &str| {
        format!("notification_url = \"{url}\"\nnotify = [\"payments\", \"charges\", \"cancels\"]\n")
    };
    dev.replace(
        "checkvalue_salt = \"demosalt\"\n",
        &format!("checkvalue_salt = \"demosalt\"\n{}", notify(first)),
    )
    .replace(
        "checkvalue_salt = \"demosalt2\"\n",
        &format!("checkvalue_salt = \"demosalt2\"\n{}", notify(second)),
    )
}

impl Stack {
    /// `ports`: the merchant servers' ports, allowed besides the spec's; `retry_ms`, `timeout_ms`:
    /// the schedule and the time-out of one try.
    async fn start(urls: (&str, &str), ports: &[u16], retry_ms: &str, timeout_ms: u64) -> Stack {
        let ports: Vec<String> = [80, 443, 8080, 8443]
            .iter()
            .chain(ports)
            .map(u16::to_string)
            .collect();
        let sections = format!(
            "[notifications]\nretry_ms = {retry_ms}\ntimeout_ms = {timeout_ms}\n\
             allowed_ports = [{}]\n",
            ports.join(", ")
        );
        let system = testkit::stack::Stack::start(StackOptions {
            merchants_file: Some(merchants_notifying(urls.0, urls.1)),
            sections,
            ..StackOptions::default()
        })
        .await;
        Stack { system }
    }

    /// A saved card of `customer` (listed: one paid payment recorded) for `merchant`.
    async fn saved_card(&self, merchant: &str, customer: &str) -> String {
        self.system
            .saved_card(merchant, customer, "4111111111111111")
            .await
    }

    async fn call(&self, merchant: &str, path: &str, params: &[(&str, &str)]) -> Answer {
        post_as_dev_merchant(self.authorizer().api_addr, merchant, path, params).await
    }

    /// Token Pay of `amount` RUB; the new order's billnumber.
    async fn token_pay(
        &self,
        merchant: &str,
        number: &str,
        amount: &str,
        delay: bool,
        token: &str,
    ) -> String {
        let api = self.authorizer().api_addr;
        let a = token_pay(api, merchant, number, amount, delay, ("1234", token)).await;
        assert_eq!(a.status, 200, "{a:?}");
        let v: Value = serde_json::from_str(&a.body).unwrap();
        v["tokenpay"]["orders"][0]["billnumber"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The admin endpoint's view of an order's notifications.
    async fn notifications(&self, bill: &str) -> Vec<Value> {
        let a = request(
            self.authorizer().admin_addr,
            "GET",
            &format!("/notifications/{bill}"),
            "",
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
        serde_json::from_str::<Value>(&a.body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The HTTP status of each try of the first notification of `bill`, in order.
    async fn statuses(&self, bill: &str) -> Vec<Value> {
        self.notifications(bill).await[0]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].clone())
            .collect()
    }

    /// The state of the notification of `bill`'s operation `op`.
    async fn state(&self, bill: &str, op: u64) -> String {
        self.notifications(bill)
            .await
            .iter()
            .find(|n| n["notice"]["id"]["operation"] == op)
            .map(|n| n["notice"]["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

fn checkvalue(salt: &str, x: &str) -> String {
    assist::integrity::checkvalue(salt, x)
}

/// Asserts the spec's field list is all there and the checkvalue is over the operation.
fn assert_sealed(f: &HashMap<String, String>, number: &str, amount: &str, state: &str) {
    for name in assist::notification::FIELDS {
        assert!(f.contains_key(name), "{name} missing from {f:?}");
    }
    assert_eq!(f["merchant_id"], "452739");
    assert_eq!(f["ordernumber"], number);
    assert_eq!(
        (f["amount"].as_str(), f["currency"].as_str()),
        (amount, "RUB")
    );
    assert_eq!(f["orderstate"], state);
    let x = format!("452739{number}{amount}RUB{state}");
    assert_eq!(f["checkvalue"], checkvalue("demosalt", &x), "{f:?}");
    assert_eq!(f["meannumber"], "411111****1111");
    assert!(!f.values().any(|v| v.contains("4111111111111111")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_charges_and_cancels_are_notified_with_the_spec_fields_and_checkvalue() {
    let (shop, addr) = Shop::serve().await;
    let url = format!("http://{addr}/m1");
    let stack = Stack::start((&url, &url), &[addr.port()], "[50]", 5_000).await;
    let token = stack.saved_card("452739", "1234").await;

    let one = stack
        .token_pay("452739", "N-1", "10.00", false, &token)
        .await;
    eventually("the payment's notification", async || {
        shop.of(&one).len() == 1
    })
    .await;
    let f = &shop.of(&one)[0];
    assert_sealed(f, "N-1", "10.00", "Approved");
    assert_eq!(f["billnumber"], format!("{one}.1"));
    assert_eq!(
        (f["operationtype"].as_str(), f["responsecode"].as_str()),
        ("100", "AS000")
    );
    assert_eq!(
        (f["customernumber"].as_str(), f["token"].as_str()),
        ("1234", token.to_uppercase().as_str()),
        "seed 001: the card on file"
    );

    let two = stack
        .token_pay("452739", "N-2", "30.00", true, &token)
        .await;
    eventually("the authorization's notification", async || {
        shop.of(&two).len() == 1
    })
    .await;
    assert_sealed(&shop.of(&two)[0], "N-2", "30.00", "Delayed");
    let charged = stack
        .call(
            "452739",
            "/charge/charge.cfm",
            &[
                ("Billnumber", &two),
                ("Amount", "20.00"),
                ("Currency", "RUB"),
                ("Format", "5"),
            ],
        )
        .await;
    assert_eq!(charged.status, 200, "{charged:?}");
    eventually("the charge's notification", async || {
        shop.of(&two).len() == 2
    })
    .await;
    let f = &shop.of(&two)[1];
    assert_sealed(f, "N-2", "20.00", "PartialDelayed");
    assert_eq!(
        (f["billnumber"].as_str(), f["operationtype"].as_str()),
        (format!("{two}.2").as_str(), "200")
    );

    let cancelled = stack
        .call(
            "452739",
            "/cancel/cancel.cfm",
            &[("Billnumber", &one), ("Format", "5")],
        )
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    eventually("the cancel's notification", async || {
        shop.of(&one).len() == 2
    })
    .await;
    let f = &shop.of(&one)[1];
    assert_sealed(f, "N-1", "10.00", "Canceled");
    assert_eq!(f["operationtype"], "300");
    let metrics = stack.authorizer().metrics().await.unwrap();
    assert!(
        metrics.contains("outbox_notifications_acknowledged_total 4"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_answering_500_twice_gets_it_three_times_and_never_again() {
    let (shop, addr) = Shop::serve().await;
    let url = format!("http://{addr}/m1");
    let stack = Stack::start((&url, &url), &[addr.port()], "[50, 50, 50]", 5_000).await;
    let token = stack.saved_card("452739", "1234").await;
    shop.answers("m1", &[(500, "busy"), (500, "busy")]);
    let bill = stack
        .token_pay("452739", "R-1", "10.00", false, &token)
        .await;
    eventually("acknowledged", async || {
        stack.state(&bill, 1).await == "acknowledged"
    })
    .await;
    // A later notification to the same merchant is settled after it: had the first been sent
    // again, it would have been by then.
    let later = stack
        .token_pay("452739", "R-2", "10.00", false, &token)
        .await;
    eventually("the later one acknowledged", async || {
        stack.state(&later, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(shop.of(&bill).len(), 3);
    assert_eq!(stack.statuses(&bill).await, [500, 500, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_kept_and_not_sent_again_unless_by_hand() {
    let (shop, addr) = Shop::serve().await;
    let url = format!("http://{addr}/m1");
    let stack = Stack::start((&url, &url), &[addr.port()], "[50, 50, 50]", 5_000).await;
    let token = stack.saved_card("452739", "1234").await;
    shop.answers(
        "m1",
        &[(
            200,
            r#"<pushpaymentresult firstcode="5" secondcode="143"></pushpaymentresult>"#,
        )],
    );
    let bill = stack
        .token_pay("452739", "F-1", "10.00", false, &token)
        .await;
    eventually("refused", async || stack.state(&bill, 1).await == "refused").await;
    let later = stack
        .token_pay("452739", "F-2", "10.00", false, &token)
        .await;
    eventually("the later one acknowledged", async || {
        stack.state(&later, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(shop.of(&bill).len(), 1, "a refusal is not re-sent");
    let attempt = &stack.notifications(&bill).await[0]["attempts"][0];
    assert_eq!(
        (&attempt["firstcode"], &attempt["secondcode"]),
        (&Value::from("5"), &Value::from("143"))
    );

    let resent = request(
        stack.authorizer().admin_addr,
        "POST",
        &format!("/notifications/{bill}/resend"),
        "",
    )
    .await;
    assert_eq!(resent.status, 200, "{resent:?}");
    eventually("acknowledged after the re-send", async || {
        stack.state(&bill, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(shop.of(&bill).len(), 2);
}

/// One Token Pay (order `number`) paid to merchant m1, whose server holds its answer: the first
/// try of the notification is in flight. The stack, the server, the billnumber and what
/// releases the held answer.
async fn first_try_held(number: &str) -> (Stack, Arc<Shop>, String, watch::Sender<bool>) {
    let (shop, addr) = Shop::serve().await;
    let url = format!("http://{addr}/m1");
    let stack = Stack::start((&url, &url), &[addr.port()], "[50]", 30_000).await;
    let token = stack.saved_card("452739", "1234").await;
    let (release, held) = watch::channel(false);
    *shop.held.lock().unwrap() = Some(held);
    let bill = stack
        .token_pay("452739", number, "10.00", false, &token)
        .await;
    eventually("the first try in flight", async || {
        shop.of(&bill).len() == 1
    })
    .await;
    (stack, shop, bill, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_pending_at_a_sigkill_are_delivered_after_the_restart() {
    let (mut stack, shop, bill, release) = first_try_held("K-1").await;
    stack.take_authorizer().kill().await.unwrap();
    *shop.held.lock().unwrap() = None;
    let _ = release.send(true);
    stack.start_authorizer().await;
    eventually("acknowledged after the restart", async || {
        stack.state(&bill, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(shop.of(&bill).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_in_flight_at_a_sigterm_is_recorded_and_the_notification_stays_due() {
    let (mut stack, shop, bill, release) = first_try_held("T-1").await;
    shop.answers("m1", &[(500, "busy")]);
    let authorizer = stack.take_authorizer();
    let admin = authorizer.admin_addr;
    let stopped = tokio::spawn(authorizer.stop());
    // The admin endpoint closing says the stop has begun; only then does the merchant answer.
    eventually("the admin endpoint closed by the stop", async || {
        tokio::net::TcpStream::connect(admin).await.is_err()
    })
    .await;
    *shop.held.lock().unwrap() = None;
    let _ = release.send(true);
    stopped
        .await
        .unwrap()
        .expect("exit 0 after the try's answer");
    assert_eq!(shop.of(&bill).len(), 1, "no new try once stopping");

    stack.start_authorizer().await;
    eventually("acknowledged after the restart", async || {
        stack.state(&bill, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(
        stack.statuses(&bill).await,
        [500, 200],
        "the try in flight at the stop was recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_merchant_does_not_delay_another() {
    let (shop, addr) = Shop::serve().await;
    let dead = dead_merchant().await;
    let live_url = format!("http://{addr}/m1");
    let dead_url = format!("http://{dead}/m2");
    // A try at the dead merchant lasts a minute: longer than any wait of this test.
    let stack = Stack::start(
        (&live_url, &dead_url),
        &[addr.port(), dead.port()],
        "[50]",
        60_000,
    )
    .await;
    let token = stack.saved_card("452740", "1234").await;
    for n in 0..6 {
        stack
            .token_pay("452740", &format!("D-{n}"), "10.00", false, &token)
            .await;
    }
    let live_token = stack.saved_card("452739", "1234").await;
    let bill = stack
        .token_pay("452739", "L-1", "10.00", false, &live_token)
        .await;
    eventually("the live merchant's notification", async || {
        stack.state(&bill, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(shop.of(&bill).len(), 1);
}

/// The `csrf` form token of a payment page.
fn form_token(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("the page has a form token")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_mit_is_notified_with_the_card_on_file() {
    let (shop, addr) = Shop::serve().await;
    let url = format!("http://{addr}/m1");
    let stack = Stack::start((&url, &url), &[addr.port()], "[50]", 5_000).await;

    // The first use, as a shopper without scripts pays it on the page: an agreement, the card
    // saved with consent, 3-D Secure frictionless at the ACS.
    let created = stack
        .call(
            "452739",
            "/pay/payrequest.cfm",
            &[
                ("OrderNumber", "MIT-0"),
                ("OrderAmount", "10.00"),
                ("OrderCurrency", "RUB"),
                ("CustomerNumber", "1234"),
                ("Lastname", "Ivanov"),
                ("Firstname", "Ivan"),
                ("Email", "ivan@example.com"),
                ("RecurringIndicator", "1"),
                ("RecurringMinAmount", "1.00"),
                ("RecurringMaxAmount", "100.00"),
                ("RecurringPeriod", "30"),
                ("RecurringMaxDate", "31.12.2030"),
                ("Format", "5"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let created: Value = serde_json::from_str(&created.body).unwrap();
    let page_url = created["url"]
        .as_str()
        .or(created["payrequest"]["url"].as_str())
        .unwrap_or_else(|| panic!("no url in {created}"))
        .to_owned();
    let path = page_url.split_once("//").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let initial = path.rsplit('/').next().unwrap().to_owned();
    let page = request(stack.authorizer().api_addr, "GET", path, "").await;
    let card = format!(
        "csrf={}&pan={MC_FRICTIONLESS}&exp_month=12&exp_year=30&cvc=123&holder=IVAN+IVANOV&remember=1",
        form_token(&page.body)
    );
    let paid = request(stack.authorizer().api_addr, "POST", path, &card).await;
    assert_eq!(paid.status, 303, "{paid:?}");
    eventually("the first use's notification", async || {
        shop.of(&initial).len() == 1
    })
    .await;

    let mit = stack
        .call(
            "452739",
            "/recurrent/rp.cfm",
            &[
                ("BillNumber", &initial),
                ("OrderNumber", "MIT-1"),
                ("Amount", "20.00"),
                ("Currency", "RUB"),
                ("Format", "5"),
            ],
        )
        .await;
    assert_eq!(mit.status, 200, "{mit:?}");
    let bill = serde_json::from_str::<Value>(&mit.body).unwrap()["rp"]["orders"][0]["billnumber"]
        .as_str()
        .unwrap_or_else(|| panic!("no billnumber in {}", mit.body))
        .to_owned();
    eventually("the MIT's notification", async || shop.of(&bill).len() == 1).await;
    let f = &shop.of(&bill)[0];
    assert_eq!(
        (
            f["ordernumber"].as_str(),
            f["orderstate"].as_str(),
            f["amount"].as_str(),
            f["operationtype"].as_str()
        ),
        ("MIT-1", "Approved", "20.00", "100")
    );
    assert_eq!(
        f["checkvalue"],
        checkvalue("demosalt", "452739MIT-120.00RUBApproved")
    );
    assert_eq!(f["customernumber"], "1234", "seed 001: the card on file");
    assert!(!f["token"].is_empty(), "seed 001: the card on file");
    assert_eq!(f["meannumber"], "555555****4444");
    assert!(!f.values().any(|v| v.contains(MC_FRICTIONLESS)));
}
