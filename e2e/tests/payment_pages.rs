//! The payment pages as a shopper sees them, in a real headless Chromium (`testkit::browser`),
//! against the real `vault`, `simulator` and `authorizer` processes: a first payment that
//! remembers the card through the ACS's challenge and back at the shop with `billnumber` and
//! `ordernumber`; the next one with the saved card's chip and only its CVC; a new card through
//! `+`, two cards and choosing one, deleting with the confirmation until the full form returns; a
//! "Deny" customer without the "remember" box; a declined card and a retry; Russian and English;
//! the phone width (360 px, emulated); the key flows with JavaScript off; and no card number or CVC in any page
//! after submission, URL, log or database file. Each screen is saved under
//! `target/screenshots/pages-*.png`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::browser::{Browser, Options};
use testkit::cards::{MC_FRICTIONLESS, PLAIN_APPROVED, STOLEN, VISA_CHALLENGE};
use testkit::http::request;
use testkit::stack::StackOptions;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vault::{CustomerNumber, CustomerStatus, MerchantId};

/// The one CVC the simulator's issuer accepts.
const CVC: &str = "123";

/// The three processes with the dev merchants, and the shop the shopper returns to.
struct Stack {
    system: testkit::stack::Stack,
    shop: SocketAddr,
}

testkit::wraps_stack!(Stack);

impl Stack {
    async fn start() -> Stack {
        Stack {
            system: testkit::stack::Stack::start(StackOptions::default()).await,
            shop: shop().await,
        }
    }

    fn api(&self) -> SocketAddr {
        self.authorizer().api_addr
    }

    /// payrequest.cfm as the dev merchant's server: the page's URL of a new order.
    async fn order(&self, number: &str, customer: Option<&str>, language: &str) -> String {
        let shop = self.shop;
        let mut form = format!(
            "Merchant_ID=452739&Login=demo_login&Password=Demopass2026&OrderNumber={number}\
             &OrderAmount=120.00&OrderCurrency=RUB&Language={language}\
             &OrderComment=test+new+payment&Firstname=Ann&Lastname=Lee&Email=ann%40shop.test\
             &URL_RETURN_OK=http%3A%2F%2F{shop}%2Fok&URL_RETURN_NO=http%3A%2F%2F{shop}%2Fno"
        );
        if let Some(c) = customer {
            form.push_str(&format!("&CustomerNumber={c}"));
        }
        let answer = request(self.api(), "POST", "/pay/payrequest.cfm", &form).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let v: Value = serde_json::from_str(&answer.body).unwrap();
        v["url"].as_str().unwrap().to_owned()
    }

    async fn deny(&self, customer: &str) {
        let facade = self.setup.client(&self.setup.facade).await.unwrap();
        facade
            .set_customer_status(
                &MerchantId::parse("452739").unwrap(),
                &CustomerNumber::parse(customer).unwrap(),
                CustomerStatus::Deny,
            )
            .await
            .unwrap();
    }

    /// Stops every process, so that their logs and databases are complete on disk.
    async fn stop(&mut self) {
        self.take_authorizer().stop().await.unwrap();
        if let Some(v) = self.vault.take() {
            v.stop().await.unwrap();
        }
    }

    fn acs(&self) -> String {
        format!("http://{}/", self.sim.acs_addr)
    }
}

/// The merchant's shop: answers every request with a page saying so (the shopper's return).
async fn shop() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let page = "<!doctype html><p id=\"shop\">Back at the shop</p>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// What a test saw, for the leak check.
#[derive(Default)]
struct Seen {
    sources: Vec<String>,
    urls: Vec<String>,
}

/// A shopper in a browser, taking screenshots named `pages-<prefix>-<screen>`.
struct Shopper {
    browser: Browser,
    prefix: &'static str,
    seen: Seen,
}

impl Shopper {
    async fn new(options: Options, prefix: &'static str) -> Shopper {
        Shopper {
            browser: Browser::start(options).await,
            prefix,
            seen: Seen::default(),
        }
    }

    async fn screen(&mut self, name: &str) {
        self.seen.sources.push(self.browser.source().await);
        self.seen.urls.push(self.browser.url().await);
        self.browser
            .screenshot(&format!("pages-{}-{name}", self.prefix))
            .await;
    }

    /// Types a card into the new-card form (the "remember" box as it is).
    async fn type_card(&self, pan: &str) {
        let b = &self.browser;
        b.fill("#pan", pan).await;
        b.fill("#exp_month", "03").await;
        b.fill("#exp_year", "30").await;
        b.fill("#cvc", CVC).await;
        b.fill("#holder", "ANN LEE").await;
    }

    /// Pays on the form shown and waits for the result page.
    async fn pay(&self) {
        self.browser.click("#pay").await;
        self.browser.wait_for("#result").await;
    }

    /// The first payment of a card that is remembered and challenged at the ACS: the form, the
    /// ACS's page (code 1234), back on the result.
    async fn first_payment_with_challenge(&mut self, stack: &Stack, url: &str) {
        self.browser.goto(url).await;
        self.browser.wait_for("#remember:checked").await;
        self.type_card(VISA_CHALLENGE).await;
        self.screen("new-card").await;
        self.browser.click("#pay").await;
        self.browser.wait_for_url(&stack.acs()).await;
        self.browser.wait_for("#code").await;
        self.screen("acs-challenge").await;
        self.browser.fill("#code", "1234").await;
        self.browser.click("#submit").await;
        self.browser.wait_for("#result").await;
        assert_eq!(state(&self.browser).await, "paid");
        self.screen("paid").await;
    }

    async fn close(self) -> Seen {
        self.browser.close().await;
        self.seen
    }
}

async fn state(b: &Browser) -> String {
    b.wait_for("#result")
        .await
        .attr("data-state")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_card_is_challenged_once_then_paid_with_its_cvc_only_in_english() {
    let stack = Stack::start().await;
    let mut shopper = Shopper::new(Options::default(), "en").await;
    let first = stack.order("en-1", Some("en-customer"), "EN").await;
    shopper.first_payment_with_challenge(&stack, &first).await;
    let b = &shopper.browser;
    assert!(b.source().await.contains("•••• 1111"));
    b.click("#return").await;
    let back = b.wait_for_url(&format!("http://{}/ok", stack.shop)).await;
    let bill = first.rsplit('/').next().unwrap();
    assert_eq!(
        back,
        format!(
            "http://{}/ok?billnumber={bill}&ordernumber=en%2D1",
            stack.shop
        )
    );

    let second = stack.order("en-2", Some("en-customer"), "EN").await;
    b.goto(&second).await;
    assert_eq!(b.text("#masked").await, "•••• •••• •••• 1111");
    assert!(!b.has("#pan").await, "only the CVC is asked for");
    shopper.screen("saved-card").await;
    let b = &shopper.browser;
    b.fill("#cvc", CVC).await;
    b.click("#pay").await;
    assert_eq!(state(b).await, "paid", "the CVC-only form, sent by pay.js");
    shopper.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_in_russian_cards_are_added_chosen_and_deleted() {
    let stack = Stack::start().await;
    // At the smallest real window (500 px): with scripts off chromedriver cannot drive an
    // emulated phone through the ACS's redirects; the 360 px layout is the next test's.
    let mut shopper = Shopper::new(
        Options {
            javascript: false,
            width: 500,
            ..Options::phone()
        },
        "ru-nojs",
    )
    .await;
    let first = stack.order("ru-1", Some("ru-customer"), "RU").await;
    shopper.first_payment_with_challenge(&stack, &first).await;
    assert!(
        shopper
            .browser
            .source()
            .await
            .contains("Оплата прошла успешно")
    );

    // `+`: a second card, remembered (frictionless at the ACS: no challenge page).
    let second = stack.order("ru-2", Some("ru-customer"), "RU").await;
    let b = &shopper.browser;
    b.goto(&second).await;
    b.wait_for("#cvc-form").await;
    b.click("#add-card").await;
    b.wait_for("#card-form").await;
    assert!(b.source().await.contains("Данные новой карты"));
    shopper.type_card(MC_FRICTIONLESS).await;
    shopper.screen("plus-new-card").await;
    shopper.pay().await;
    assert_eq!(state(&shopper.browser).await, "paid");

    // Two chips; the second card chosen, paid with its CVC.
    let third = stack.order("ru-3", Some("ru-customer"), "RU").await;
    let b = &shopper.browser;
    b.goto(&third).await;
    b.wait_for("a.chip[data-last4=\"1111\"]").await;
    b.click("a.chip[data-last4=\"4444\"]").await;
    assert_eq!(b.text("#masked").await, "•••• •••• •••• 4444");
    shopper.screen("two-cards").await;
    let b = &shopper.browser;
    b.fill("#cvc", CVC).await;
    shopper.pay().await;
    assert!(shopper.browser.source().await.contains("•••• 4444"));

    // Deleting both, each after the confirmation; the full form returns.
    let fourth = stack.order("ru-4", Some("ru-customer"), "RU").await;
    for last4 in ["4444", "1111"] {
        let b = &shopper.browser;
        b.goto(&fourth).await;
        b.click(&format!("a.basket[data-last4=\"{last4}\"]")).await;
        b.wait_for("#confirm-remove").await;
        assert!(b.source().await.contains(
            "Мы больше не будем хранить эту карту. Если вы захотите оплатить ею, все данные придётся вводить заново."
        ));
        if last4 == "4444" {
            shopper.screen("delete-confirm").await;
        }
        shopper.browser.click("#confirm").await;
        shopper.browser.wait_for("#chips, #card-form").await;
    }
    let b = &shopper.browser;
    b.goto(&fourth).await;
    b.wait_for("#card-form").await;
    assert!(!b.has("a.basket").await, "no card left");
    assert!(b.has("#remember:checked").await, "offered again");
    shopper.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_customer_gets_no_box_and_a_declined_card_can_be_retried_on_a_phone() {
    let stack = Stack::start().await;
    stack.deny("deny-customer").await;
    let mut shopper = Shopper::new(Options::phone(), "phone").await;
    let denied = stack.order("deny-1", Some("deny-customer"), "EN").await;
    let b = &shopper.browser;
    b.goto(&denied).await;
    b.wait_for("#card-form").await;
    assert!(
        !b.has("#remember").await,
        "never offered to a Deny customer"
    );
    let widths: Value = b
        .client()
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        widths,
        serde_json::json!([360, 360]),
        "a 360 px phone, no sideways scrolling"
    );
    shopper.screen("deny-form").await;

    let order = stack.order("decline-1", None, "EN").await;
    let b = &shopper.browser;
    b.goto(&order).await;
    shopper.type_card(STOLEN).await;
    shopper.pay().await;
    let b = &shopper.browser;
    assert_eq!(state(b).await, "declined");
    assert!(
        b.text("#reason")
            .await
            .contains("The bank declined the payment")
    );
    shopper.screen("declined").await;
    shopper.browser.click("#retry").await;
    shopper.browser.wait_for("#card-form").await;
    assert_ne!(shopper.browser.url().await, order, "a new attempt");
    shopper.type_card(PLAIN_APPROVED).await;
    shopper.pay().await;
    assert_eq!(state(&shopper.browser).await, "paid");
    shopper.browser.click("#return").await;
    let back = shopper
        .browser
        .wait_for_url(&format!("http://{}/ok?", stack.shop))
        .await;
    assert!(back.ends_with("&ordernumber=decline%2D1"), "{back}");
    shopper.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_or_cvc_is_left_in_pages_urls_logs_or_databases() {
    let mut stack = Stack::start().await;
    let mut shopper = Shopper::new(Options::default(), "leak").await;
    let first = stack.order("leak-1", Some("leak-customer"), "EN").await;
    shopper.first_payment_with_challenge(&stack, &first).await;
    let second = stack.order("leak-2", Some("leak-customer"), "EN").await;
    shopper.browser.goto(&second).await;
    shopper.browser.fill("#cvc", CVC).await;
    shopper.browser.click("#pay").await;
    shopper.browser.wait_for("#result").await;
    shopper.screen("one-click-paid").await;
    let third = stack.order("leak-3", None, "EN").await;
    shopper.browser.goto(&third).await;
    shopper.type_card("4111 1111 1111 1112").await;
    shopper.browser.click("#pay").await;
    shopper.browser.wait_for(".error").await;
    shopper.screen("field-error").await;
    let seen = shopper.close().await;
    stack.stop().await;

    let grouped = "4111 1111 1111 1111";
    for text in seen.sources.iter().chain(&seen.urls) {
        for pan in [
            VISA_CHALLENGE,
            grouped,
            "4111111111111112",
            "4111 1111 1111 1112",
        ] {
            assert!(!text.contains(pan), "a card number in a page or URL");
        }
        for cvc in [
            format!("value=\"{CVC}\""),
            format!("cvc={CVC}"),
            format!(">{CVC}<"),
        ] {
            assert!(!text.contains(&cvc), "a CVC in a page or URL");
        }
    }
    let mut files = files(&stack.authorizer_dir());
    files.extend(self::files(&stack.dir.path().join("vault")));
    assert!(files.iter().any(|f| f.ends_with("authorizer.log")));
    assert!(files.iter().any(|f| f.ends_with("vault.log")));
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "redb"))
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for pan in [VISA_CHALLENGE, grouped] {
            assert!(
                !contains(&bytes, pan.as_bytes()),
                "PAN in {}",
                file.display()
            );
        }
        for cvc in [format!("cvc={CVC}"), format!("\"cvc\":\"{CVC}\"")] {
            assert!(
                !contains(&bytes, cvc.as_bytes()),
                "CVC in {}",
                file.display()
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}
