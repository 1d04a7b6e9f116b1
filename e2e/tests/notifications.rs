//! Result notifications end to end: the real `vault`, `simulator` and `authorizer` processes and
//! the merchants' notification server (`testkit::shop`, on port 0; the authorizer's
//! `[notifications] allowed_ports` names the ports they were given, since only 80, 443, 8080
//! and 8443 are allowed by default).
//!
//! Payments are Token Pay on a card saved through the vault's facade role, and an rp.cfm MIT on
//! a first use paid on the payment page as a shopper without scripts pays it. Proven here: the
//! spec's fields and checkvalue of a one-stage payment, a two-stage payment and its charge, a
//! cancel, and an MIT with the card on file; a merchant
//! answering 500 twice gets the notification three times and never again; a refusal is kept and
//! not re-sent; re-sending by hand from the admin endpoint; notifications pending when the
//! authorizer is SIGKILLed are delivered after its restart; a dead merchant does not delay
//! another's.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::Value;
use testkit::cards::MC_FRICTIONLESS;
use testkit::eventually;
use testkit::http::{Answer, request};
use testkit::shop::{Merchant, Shop};
use testkit::shopper::hidden;
use testkit::stack::{StackOptions, dev_merchants_notifying, notification_sections};
use testkit::vault::save_paid_card;
use vault::{CustomerNumber, MerchantId};

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

impl Stack {
    /// `ports`: the merchant servers' ports, allowed besides the spec's; `retry_ms`, `timeout_ms`:
    /// the schedule and the time-out of one try.
    async fn start(urls: (&str, &str), ports: &[u16], retry_ms: &str, timeout_ms: u64) -> Stack {
        let sections = notification_sections(ports, retry_ms, timeout_ms);
        let system = testkit::stack::Stack::start(StackOptions {
            merchants_file: Some(dev_merchants_notifying(urls.0, urls.1).unwrap()),
            sections,
            ..StackOptions::default()
        })
        .await;
        Stack { system }
    }

    /// A saved card of `customer` (listed: one paid payment recorded) for `merchant`.
    async fn saved_card(&self, merchant: &str, customer: &str) -> String {
        let facade = self.setup.client(&self.setup.facade).await.unwrap();
        let authorizer = self.setup.client(&self.setup.authorizer).await.unwrap();
        save_paid_card(
            &facade,
            &authorizer,
            &MerchantId::parse(merchant).unwrap(),
            &CustomerNumber::parse(customer).unwrap(),
            "4111111111111111",
        )
        .await
        .unwrap()
        .to_string()
    }

    fn merchant(&self, merchant: &str) -> Merchant {
        let api = self.authorizer().api_addr;
        if merchant == "452739" {
            Merchant::dev(api)
        } else {
            Merchant::dev_second(api)
        }
    }

    async fn call(&self, merchant: &str, path: &str, params: &[(&str, &str)]) -> Answer {
        self.merchant(merchant).call(path, params).await.unwrap()
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
        let a = self
            .merchant(merchant)
            .token_pay(number, amount, delay, "1234", token)
            .await
            .unwrap();
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
    let shop = Shop::serve().await.unwrap();
    let addr = shop.addr();
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
    let shop = Shop::serve().await.unwrap();
    let addr = shop.addr();
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
    let attempts = &stack.notifications(&bill).await[0]["attempts"];
    let statuses: Vec<_> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_kept_and_not_sent_again_unless_by_hand() {
    let shop = Shop::serve().await.unwrap();
    let addr = shop.addr();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_pending_at_a_sigkill_are_delivered_after_the_restart() {
    let shop = Shop::serve().await.unwrap();
    let addr = shop.addr();
    let url = format!("http://{addr}/m1");
    let mut stack = Stack::start((&url, &url), &[addr.port()], "[50]", 30_000).await;
    let token = stack.saved_card("452739", "1234").await;
    shop.hold();
    let bill = stack
        .token_pay("452739", "K-1", "10.00", false, &token)
        .await;
    eventually("the first try in flight", async || {
        shop.of(&bill).len() == 1
    })
    .await;
    stack.take_authorizer().kill().await.unwrap();
    shop.release();
    stack.start_authorizer().await;
    eventually("acknowledged after the restart", async || {
        stack.state(&bill, 1).await == "acknowledged"
    })
    .await;
    assert_eq!(shop.of(&bill).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_merchant_does_not_delay_another() {
    let shop = Shop::serve().await.unwrap();
    let addr = shop.addr();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_mit_is_notified_with_the_card_on_file() {
    let shop = Shop::serve().await.unwrap();
    let addr = shop.addr();
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
        hidden(&page.body, "csrf").unwrap()
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
