//! The merchant's cabinet end to end: the real `vault`, `simulator` and `authorizer` processes,
//! and a real headless Chromium (without JavaScript: the cabinet is plain forms) as the
//! merchant. Orders are made through the merchant API first (Token Pay on a card saved through
//! the vault's facade role); the cabinet then finds one, charges it and cancels part of it, sets
//! a One Click customer to Deny and back, removes a card after its confirmation, refuses a wrong
//! password, keeps its settings across a restart, and refuses a form POSTed without its CSRF
//! token (sent by a plain HTTP client carrying the browser's session cookie), points the
//! merchant's result notifications at a shop server of the test and re-sends one by hand. Every
//! screen is drawn under `target/screenshots/cabinet-<screen>.png`.

use std::net::SocketAddr;

use testkit::browser::{Browser, Options};
use testkit::eventually;
use testkit::http::request_with;
use testkit::shop::{Merchant, Shop};
use testkit::stack::StackOptions;
use testkit::vault::save_paid_card;
use vault::{CustomerNumber, MerchantId};

/// The three processes with the dev merchants (a shared customer list), the authorizer allowed
/// to notify the test's shop server.
struct Stack {
    shop: Shop,
    system: testkit::stack::Stack,
}

testkit::wraps_stack!(Stack);

impl Stack {
    async fn start() -> Stack {
        let shop = Shop::serve().await.unwrap();
        let sections = format!(
            "[notifications]\nallowed_ports = [80, 443, 8080, 8443, {}]\n",
            shop.addr().port()
        );
        let system = testkit::stack::Stack::start(StackOptions {
            sections,
            ..StackOptions::default()
        })
        .await;
        Stack { shop, system }
    }

    async fn restart_authorizer(&mut self) {
        self.take_authorizer().stop().await.unwrap();
        self.start_authorizer().await;
    }

    /// `authorizer --config <its config> customer <args>` as an operator runs it; its stdout.
    fn operator(&self, args: &[&str]) -> String {
        let config = self.authorizer_dir().join("authorizer.toml");
        let (authorizer, facade) = (&self.setup.authorizer, &self.setup.facade);
        let out = std::process::Command::new(&self.bins.authorizer)
            .arg("--config")
            .arg(config)
            .arg("customer")
            .args(args)
            .env(authorizer.env(), authorizer.env_value())
            .env(facade.env(), facade.env_value())
            .output()
            .expect("the authorizer binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn api(&self) -> SocketAddr {
        self.authorizer().api_addr
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api())
    }

    /// A card saved for `customer` of the dev merchant, with one successful payment recorded so
    /// that it is listed; its token.
    async fn saved_card(&self, customer: &str, pan: &str) -> String {
        let facade = self.setup.client(&self.setup.facade).await.unwrap();
        let authorizer = self.setup.client(&self.setup.authorizer).await.unwrap();
        save_paid_card(
            &facade,
            &authorizer,
            &MerchantId::parse("452739").unwrap(),
            &CustomerNumber::parse(customer).unwrap(),
            pan,
        )
        .await
        .unwrap()
        .to_string()
    }

    /// The dev merchant's server.
    fn merchant(&self) -> Merchant {
        Merchant::dev(self.api())
    }
}

/// The merchant's browser: no scripts, English.
async fn browser() -> Browser {
    Browser::start(Options::without_javascript()).await
}

/// Logs the browser in as the dev merchant.
async fn log_in(stack: &Stack, b: &Browser) {
    b.goto(&stack.url("/cabinet/login")).await;
    b.fill("#login", "demo_login").await;
    b.fill("#password", "Demopass2026").await;
    b.click("#submit").await;
    b.wait_for("#search").await;
}

/// Waits until the element `css` reads `expected`.
async fn text_becomes(b: &Browser, css: &str, expected: &str) {
    eventually(&format!("{css} reading {expected}"), async || {
        b.has(css).await && b.text(css).await.contains(expected)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_finds_an_order_charges_it_and_cancels_part_of_it() {
    let stack = Stack::start().await;
    let token = stack.saved_card("cab-1", "4111111111111111").await;
    let paid = stack
        .merchant()
        .token_pay("CAB-100", "150.00", true, "cab-1", &token)
        .await
        .unwrap();
    assert_eq!(paid.status, 200, "{paid:?}");
    assert!(paid.body.contains("Delayed"), "{}", paid.body);

    let b = browser().await;
    b.goto(&stack.url("/cabinet/login")).await;
    b.screenshot("cabinet-login").await;
    log_in(&stack, &b).await;
    b.fill("#number", "CAB-100").await;
    b.click("#find").await;
    text_becomes(&b, "#orders .order-state", "Delayed").await;
    b.screenshot("cabinet-orders").await;

    b.click("#orders .order-link").await;
    text_becomes(&b, "#order-number", "CAB-100").await;
    b.screenshot("cabinet-order").await;
    b.click("#charge").await;
    text_becomes(&b, "#state", "Approved").await;
    assert!(!b.has("#charge-form").await, "charged once");

    b.fill("#cancel-amount", "40.00").await;
    b.click("#cancel").await;
    text_becomes(&b, "#state", "PartialCanceled").await;
    assert!(b.text("#cancelled").await.starts_with("40.00"));
    assert!(b.text("#flash").await.contains("cancel went through"));
    let operations = b.text("#operations").await;
    assert!(
        operations.contains("charge")
            && operations.contains("cancel")
            && operations.contains("AS000"),
        "{operations}"
    );
    b.screenshot("cabinet-order-cancelled").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_denies_a_customer_lifts_it_and_removes_a_card() {
    let stack = Stack::start().await;
    stack.saved_card("cab-2", "5555555555554444").await;
    let b = browser().await;
    log_in(&stack, &b).await;
    b.click("#nav-customers").await;
    b.fill("#customer", "cab-2").await;
    b.click("#find").await;
    text_becomes(&b, "#status", "Member").await;
    assert!(b.text("#cards .mask").await.contains("555555******4444"));
    assert_eq!(b.text("#cards .successes").await, "1");
    b.screenshot("cabinet-customer").await;

    b.click("#set-status").await;
    text_becomes(&b, "#status", "Deny").await;
    b.screenshot("cabinet-customer-denied").await;
    b.click("#set-status").await;
    text_becomes(&b, "#status", "Member").await;

    b.click("#cards .remove").await;
    b.wait_for("#remove-yes").await;
    assert!(b.text("#remove-mask").await.contains("555555******4444"));
    b.screenshot("cabinet-remove-card").await;
    b.click("#remove-yes").await;
    b.wait_for("#no-cards").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_does_not_log_in() {
    let stack = Stack::start().await;
    let b = browser().await;
    b.goto(&stack.url("/cabinet/login")).await;
    b.fill("#login", "demo_login").await;
    b.fill("#password", "Wrongpass2026").await;
    b.click("#submit").await;
    text_becomes(&b, "#flash", "Wrong login or password").await;
    b.screenshot("cabinet-login-refused").await;
    b.goto(&stack.url("/cabinet/")).await;
    b.wait_for_url(&stack.url("/cabinet/login")).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_without_its_csrf_token_is_refused() {
    let stack = Stack::start().await;
    stack.saved_card("cab-3", "4111111111111111").await;
    let b = browser().await;
    log_in(&stack, &b).await;
    let session = b
        .client()
        .get_named_cookie("cabinet_session")
        .await
        .expect("the session cookie");
    let cookie = format!("cabinet_session={}", session.value());
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", cookie.as_str()),
    ];
    let refused = request_with(
        stack.api(),
        "POST",
        "/cabinet/customers/status",
        &form,
        "customer=cab-3&deny=1",
    )
    .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("id=\"form-expired\""));
    let page = request_with(
        stack.api(),
        "GET",
        "/cabinet/customers?customer=cab-3",
        &form[1..],
        "",
    )
    .await;
    assert_eq!(page.status, 200, "the cookie itself is good");
    assert!(
        page.body.contains("Member"),
        "nothing changed: {}",
        page.body
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_take_effect_and_survive_a_restart() {
    let mut stack = Stack::start().await;
    let b = browser().await;
    log_in(&stack, &b).await;
    b.click("#nav-settings").await;
    b.fill("#url_return_ok", "https://shop.example/thanks")
        .await;
    b.click("#save").await;
    text_becomes(&b, "#flash", "saved").await;
    assert!(b.text("#integrity-kind").await.contains("checkvalue"));
    assert!(
        !b.source().await.contains("demosalt"),
        "the salt is never shown"
    );
    b.screenshot("cabinet-settings").await;
    b.close().await;

    stack.restart_authorizer().await;
    let b = browser().await;
    log_in(&stack, &b).await;
    b.goto(&stack.url("/cabinet/settings")).await;
    let field = b.wait_for("#url_return_ok").await;
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some("https://shop.example/thanks")
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_deny_allow_and_remove_from_the_command_line() {
    let stack = Stack::start().await;
    let token = stack.saved_card("cab-4", "4111111111111111").await;
    let who = ["--merchant", "452739", "--customer", "cab-4"];
    let show = |stack: &Stack| stack.operator(&[&["show"][..], &who].concat());
    let shown = show(&stack);
    assert!(shown.contains("Member, 1 saved card(s)"), "{shown}");
    assert!(
        shown.contains("411111******1111") && shown.contains(&token),
        "{shown}"
    );
    assert!(
        !shown.contains("4111111111111111"),
        "never the whole number"
    );

    stack.operator(&[&["deny"][..], &who].concat());
    assert!(show(&stack).contains(": Deny,"));
    stack.operator(&[&["allow"][..], &who].concat());
    assert!(show(&stack).contains(": Member,"));
    stack.operator(&[&["remove-card"][..], &who, &["--token", &token]].concat());
    assert!(show(&stack).contains("0 saved card(s)"), "{}", show(&stack));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_points_its_notifications_at_its_server_and_re_sends_one() {
    let stack = Stack::start().await;
    let b = browser().await;
    log_in(&stack, &b).await;
    b.click("#nav-settings").await;
    let url = stack.shop.url("notify");
    b.fill("#notification_url", &url).await;
    assert!(
        b.wait_for("#notify_payments")
            .await
            .is_selected()
            .await
            .unwrap(),
        "payments by default"
    );
    b.click("#save").await;
    text_becomes(&b, "#flash", "saved").await;

    // Taken at once, without a restart: the next payment is notified.
    let token = stack.saved_card("cab-5", "4111111111111111").await;
    let paid = stack
        .merchant()
        .token_pay("CAB-200", "75.00", false, "cab-5", &token)
        .await
        .unwrap();
    assert_eq!(paid.status, 200, "{paid:?}");
    eventually("the shop notified once", async || {
        stack.shop.received().len() == 1
    })
    .await;

    b.goto(&stack.url("/cabinet/?number=CAB-200")).await;
    b.click("#orders .order-link").await;
    let order_page = b.url().await;
    eventually("the attempt shown as acknowledged", async || {
        b.goto(&order_page).await;
        b.has(".notification .notice-state").await
            && b.text(".notification .notice-state")
                .await
                .contains("acknowledged")
    })
    .await;
    b.click(".notification .resend").await;
    text_becomes(&b, "#flash", "being sent again").await;
    eventually("the shop notified again", async || {
        stack.shop.received().len() == 2
    })
    .await;
    eventually("the second attempt shown, by hand", async || {
        b.goto(&order_page).await;
        b.text(".notification .attempts").await.contains("by hand")
    })
    .await;
    // The section is below the order; its anchor scrolls to it without a script.
    b.goto(&format!("{order_page}#notification-1")).await;
    b.screenshot("cabinet-notifications").await;
    b.close().await;
}
