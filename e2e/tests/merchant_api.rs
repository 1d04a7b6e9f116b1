//! The merchant API end to end: the real `vault`, `simulator` and `authorizer` processes, driven
//! over HTTP as a merchant's server would. One Click's token.cfm and rem_token.cfm with seed 001's
//! example requests as written (the dev merchant's credentials in place of LOGIN/PASSWORD), after
//! a card was saved through the vault's facade role; each of their errors; and a fault in every
//! Format read back by real CSV, XML and JSON parsers.
//!
//! The order engine's services: payments are Token Pay on a card saved through the vault's
//! facade role (a new card needs the payment pages, a later issue), one- and two-stage; charges
//! full, partial and repeated; cancels before the cut-off (a reversal in the simulator's ledger)
//! and after it (a refund), repeated by Externalrefundid and over the paid amount; Token Pay with
//! an unknown or another customer's token declined before the network; rp.cfm refused without a
//! usable agreement; orderstate and orderresult in Formats 1, 3 and 5 read back by real parsers;
//! and an authorizer SIGKILLed with a payment in flight, restarted, the order resolved and the
//! ledger agreeing.

use quick_xml::events::Event;
use serde_json::{Value, json};
use simulator::{AcsClient, Action, Ledger, LedgerEntry};
use testkit::eventually;
use testkit::http::{Answer, request};
use testkit::processes::ClientLogin;
use testkit::shop::Merchant;
use testkit::stack::StackOptions;
use testkit::vault::save_paid_card;
use vault::{CustomerNumber, MerchantId, VaultClient};

/// Seed 001's token.cfm example, as written, with the dev merchant's login and password.
const SEED_TOKEN_LIST: &str = r#"{"merchant":{"merchant_id":"452739", "login":"demo_login", "password":"Demopass2026"}, "customernumber":"1234", "language":"RU"}"#;

/// A merchant outside the dev merchants' shared customer list.
const OUTSIDER: &str = "452741";

/// The three processes with the dev merchants, and a third merchant of its own.
struct Stack {
    system: testkit::stack::Stack,
}

testkit::wraps_stack!(Stack);

impl Stack {
    async fn start() -> Stack {
        let mut vault_merchants = testkit::stack::DEV_MERCHANTS.to_vec();
        vault_merchants.push((OUTSIDER, None));
        let system = testkit::stack::Stack::start(StackOptions {
            vault_merchants,
            merchants_file: Some(merchants_with_outsider()),
            ..StackOptions::default()
        })
        .await;
        Stack { system }
    }

    async fn ledger(&self) -> Ledger {
        AcsClient::new(self.sim.acs_addr).ledger().await.unwrap()
    }

    async fn client(&self, login: &ClientLogin) -> VaultClient {
        self.setup.client(login).await.unwrap()
    }

    /// Saves a card for a customer of the dev merchant through the facade role, with one
    /// successful payment recorded (`testkit::vault::save_paid_card`), so that it reaches the
    /// listing threshold of 1.
    async fn saved_card(&self, customer: &str, pan: &str) -> String {
        let facade = self.client(&self.setup.facade).await;
        let authorizer = self.client(&self.setup.authorizer).await;
        let merchant = MerchantId::parse("452739").unwrap();
        let customer = CustomerNumber::parse(customer).unwrap();
        save_paid_card(&facade, &authorizer, &merchant, &customer, pan)
            .await
            .unwrap()
            .to_string()
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        request(self.authorizer().api_addr, "POST", path, body).await
    }

    /// A form POST as the dev merchant (452739) with its credentials.
    async fn call(&self, path: &str, params: &[(&str, &str)]) -> Answer {
        let mut form = String::from("Merchant_ID=452739&Login=demo_login&Password=Demopass2026");
        for (name, value) in params {
            form.push('&');
            form.push_str(name);
            form.push('=');
            form.push_str(&percent_encoded(value));
        }
        self.post(path, &form).await
    }

    /// tokenpay.cfm for customer `customer` with `token`, in JSON; its one order record.
    async fn token_pay(
        &self,
        order_number: &str,
        amount: &str,
        delay: bool,
        customer: &str,
        token: &str,
    ) -> Value {
        let a = Merchant::dev(self.authorizer().api_addr)
            .token_pay(order_number, amount, delay, customer, token)
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        assert!(!a.body.contains("4111111111111111"), "{}", a.body);
        only_order(&a.json())
    }

    /// orderstate.cfm's state of `order_number`'s attempts, read in Formats 1, 3 and 5 by real
    /// CSV, XML and JSON parsers; all three must agree.
    async fn states(&self, order_number: &str) -> Vec<String> {
        let ask = |format: &'static str| async move {
            self.call(
                "/orderstate/orderstate.cfm",
                &[("OrderNumber", order_number), ("Format", format)],
            )
            .await
        };
        let json = ask("5").await.json();
        let from_json: Vec<String> = root(&json)["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderstate"].as_str().unwrap().to_owned())
            .collect();
        let csv = ask("1").await;
        let from_csv: Vec<String> = csv_records(&csv.body)
            .iter()
            .filter_map(|r| r.get("orderstate").cloned())
            .collect();
        let xml = ask("3").await;
        let from_xml = xml_texts(&xml.body, b"orderstate");
        assert_eq!(from_csv, from_json, "{}", csv.body);
        assert_eq!(from_xml, from_json, "{}", xml.body);
        from_json
    }

    /// cancel.cfm of `amount` (all that is left when `None`), JSON.
    async fn cancel(&self, bill: &str, amount: Option<&str>, refund_id: &str) -> Answer {
        let mut params = vec![
            ("Billnumber", bill),
            ("Externalrefundid", refund_id),
            ("Format", "5"),
        ];
        if let Some(a) = amount {
            params.extend([("Amount", a), ("Currency", "RUB")]);
        }
        self.call("/cancel/cancel.cfm", &params).await
    }
}

/// The dev merchants file, and a third merchant (One Click on, its own customers) with the
/// first one's password hash.
fn merchants_with_outsider() -> String {
    let dev = std::fs::read_to_string(testkit::stack::dev_merchants_file()).unwrap();
    let hash_line = dev
        .lines()
        .find(|l| l.starts_with("password_hash"))
        .unwrap()
        .to_owned();
    format!(
        "{dev}\n[[merchants]]\nid = \"{OUTSIDER}\"\nname = \"Another shop\"\n\
         login = \"other_login\"\n{hash_line}\ncheckvalue_salt = \"othersalt\"\none_click = true\n"
    )
}

/// Reading an answer's JSON body.
trait JsonAnswer {
    fn json(&self) -> Value;
    /// `(faultcode, faultstring)` of seed 001's fault object.
    fn fault(&self) -> (u64, u64);
}

impl JsonAnswer for Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn fault(&self) -> (u64, u64) {
        let v = self.json();
        (
            v["fault"]["faultcode"].as_u64().unwrap(),
            v["fault"]["faultstring"].as_u64().unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_token_list_and_removal_as_seed_001_writes_them() {
    let stack = Stack::start().await;
    let token = stack.saved_card("1234", "4111111111111111").await;

    let list = stack
        .post("/pay/oneclick/v1/token.cfm", SEED_TOKEN_LIST)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(
        list.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(list.header(name), Some(value));
    }
    assert_eq!(
        list.json(),
        json!([{"expire":"12.2099","token":token,"bank":"TEST BANK (VISA TEST RANGE)","brand":"VISA","bin":411111,
                "active":true,"needCVC":true,"post":"1111"}])
    );
    // The keys in seed 001's order, with its types.
    assert!(
        list.body.starts_with(r#"[{"expire":"12.2099","token":""#),
        "{}",
        list.body
    );
    assert!(!list.body.contains("4111111111111111"));

    // The second dev merchant shares the customer list; a merchant outside it does not.
    let second = SEED_TOKEN_LIST
        .replace("452739", "452740")
        .replace("demo_login", "demo_login2");
    let shared = stack.post("/pay/oneclick/v1/token.cfm", &second).await;
    assert_eq!(shared.json()[0]["token"], json!(token));
    let outsider = SEED_TOKEN_LIST
        .replace("452739", OUTSIDER)
        .replace("demo_login", "other_login");
    let theirs = stack.post("/pay/oneclick/v1/token.cfm", &outsider).await;
    assert_eq!((theirs.status, theirs.json()), (200, json!([])));

    // Seed 001's rem_token.cfm example, as written (its token replaced by the saved card's).
    let remove = format!(
        r#"{{"merchant":{{"merchant_id":"452739","login":"demo_login", "password":"Demopass2026"}}, "token": "{token}", "language": "RU", "customernumber":"1234"}}"#
    );
    // Another merchant's customer: the same customer number and token do not reach the card.
    let foreign = remove
        .replace("452739", OUTSIDER)
        .replace("demo_login", "other_login");
    let refused = stack.post("/pay/oneclick/v1/rem_token.cfm", &foreign).await;
    assert_eq!((refused.status, refused.fault()), (404, (10, 203)));
    let removed = stack.post("/pay/oneclick/v1/rem_token.cfm", &remove).await;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert_eq!(
        removed.json(),
        json!({"token": token, "message": "Token removed"})
    );
    let again = stack.post("/pay/oneclick/v1/rem_token.cfm", &remove).await;
    assert_eq!((again.status, again.fault()), (404, (10, 203)));
    let empty = stack
        .post("/pay/oneclick/v1/token.cfm", SEED_TOKEN_LIST)
        .await;
    assert_eq!(empty.json(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_errors_and_faults_in_every_format() {
    let stack = Stack::start().await;
    let path = "/pay/oneclick/v1/token.cfm";
    let cases = [
        ("bad JSON", "{\"merchant\":", 400, (4, 0)),
        (
            "wrong password",
            &SEED_TOKEN_LIST.replace("Demopass2026", "Demopass2027"),
            401,
            (7, 141),
        ),
        (
            "unknown merchant",
            &SEED_TOKEN_LIST.replace("452739", "999999"),
            404,
            (10, 200),
        ),
        (
            "repeated parameter",
            &SEED_TOKEN_LIST.replace(r#""language":"RU""#, r#""CustomerNumber":"1234""#),
            400,
            (4, 202),
        ),
        (
            "bad customer number",
            &SEED_TOKEN_LIST.replace(r#""1234""#, r#""12 34""#),
            400,
            (4, 202),
        ),
    ];
    for (what, body, status, codes) in cases {
        let a = stack.post(path, body).await;
        assert_eq!((a.status, a.fault()), (status, codes), "{what}: {a:?}");
    }
    let oversized = format!(
        r#"{{"customernumber":"1234","pad":"{}"}}"#,
        "x".repeat(facade::JSON_BODY_LIMIT)
    );
    let a = stack.post(path, &oversized).await;
    assert_eq!((a.status, a.fault()), (413, (4, 0)));
    let a = request(stack.authorizer().api_addr, "GET", path, "").await;
    assert_eq!((a.status, a.header("allow")), (405, Some("POST")));

    // One refusal (wrong credentials on orderstate.cfm), in each Format.
    let form = |format: &str| {
        format!(
            "Merchant_ID=452739&Login=demo_login&Password=Wrongpass2026&OrderNumber=A1&Format={format}"
        )
    };
    let state = "/orderstate/orderstate.cfm";
    let csv = stack.post(state, &form("1")).await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .from_reader(csv.body.as_bytes());
    let record = reader.records().next().unwrap().unwrap();
    assert_eq!((&record[0], &record[1], &record[2]), ("error", "7", "141"));

    let xml = stack.post(state, &form("3")).await;
    assert_eq!(
        xml.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(
        xml_attributes(&xml.body, b"result"),
        [
            ("firstcode".into(), "7".into()),
            ("secondcode".into(), "141".into()),
            ("count".into(), "0".into())
        ]
    );

    let soap = stack.post(state, &form("4")).await;
    assert_eq!(xml_text(&soap.body, b"faultcode"), "7");
    assert_eq!(xml_text(&soap.body, b"faultstring"), "141");
    let json = stack.post(state, &form("5")).await;
    assert_eq!((json.status, json.fault()), (401, (7, 141)));
    // Without Format: orderstate's default, SOAP.
    let default = stack.post(state, &form("4").replace("&Format=4", "")).await;
    assert_eq!(xml_text(&default.body, b"faultcode"), "7");
}

/// The attributes of the first element named `name`, read by quick-xml.
fn xml_attributes(xml: &str, name: &[u8]) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == name => {
                return e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.normalized_value(quick_xml::XmlVersion::default())
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
            }
            Event::Eof => panic!("no {name:?} in {xml}"),
            _ => {}
        }
    }
}

/// The text of the first element whose local name is `name`, read by quick-xml.
fn xml_text(xml: &str, name: &[u8]) -> String {
    xml_texts(xml, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {name:?} in {xml}"))
}

/// `%XX` for everything but unreserved characters, as a form encoder sends it.
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The object under a JSON answer's root name (`{"tokenpay":{…}}`).
fn root(v: &Value) -> &Value {
    v.as_object()
        .and_then(|o| o.values().next())
        .unwrap_or_else(|| panic!("no root in {v}"))
}

/// The one order of a payment answer.
fn only_order(v: &Value) -> Value {
    let orders = root(v)["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{v}");
    orders[0].clone()
}

/// Each CSV line as `name → value`, read by the csv crate (`;`-separated `name:value` cells).
fn csv_records(body: &str) -> Vec<std::collections::HashMap<String, String>> {
    csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .filter_map(|cell| cell.split_once(':'))
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The text of every element named `name`, in document order, read by quick-xml.
fn xml_texts(xml: &str, name: &[u8]) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut raw: Option<String> = None;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.local_name().as_ref() == name => raw = Some(String::new()),
            // Text comes raw and entity references as events of their own: put them back
            // together and unescape the whole when the element ends.
            Event::Text(t) => {
                if let Some(raw) = raw.as_mut() {
                    raw.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(raw) = raw.as_mut() {
                    raw.push('&');
                    raw.push_str(&r.decode().unwrap());
                    raw.push(';');
                }
            }
            Event::End(_) => {
                if let Some(raw) = raw.take() {
                    out.push(quick_xml::escape::unescape(&raw).unwrap().into_owned());
                }
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// The ledger's entry of the authorization an operation's RRN (`slipno`) names.
fn authorization<'a>(ledger: &'a Ledger, rrn: &str) -> &'a LedgerEntry {
    ledger
        .entries
        .iter()
        .find(|e| e.rrn.as_deref() == Some(rrn) && matches!(e.mti.as_str(), "0100" | "0200"))
        .unwrap_or_else(|| panic!("no authorization with RRN {rrn}"))
}

/// The ledger's reversals (0400/0420) of the authorization with STAN `stan`.
fn reversals_of(ledger: &Ledger, stan: Option<u32>) -> Vec<&LedgerEntry> {
    ledger
        .entries
        .iter()
        .filter(|e| e.original.as_ref().map(|o| o.1) == stan)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_pay_one_stage_cancelled_before_and_after_the_cutoff() {
    let stack = Stack::start().await;
    let token = stack.saved_card("1234", "4111111111111111").await;

    let paid = stack
        .token_pay("one-stage-1", "100.00", false, "1234", &token)
        .await;
    assert_eq!(text(&paid, "orderstate"), "Approved", "{paid}");
    assert_eq!(text(&paid, "responsecode"), "AS000");
    assert_eq!(text(&paid, "operationtype"), "100");
    assert_eq!(text(&paid, "meannumber"), "411111****1111");
    assert_eq!(text(&paid, "cardexpirationdate"), "12/99");
    assert_eq!(
        text(&paid, "checkvalue"),
        assist::integrity::checkvalue(
            "demosalt",
            &assist::integrity::answer_x("452739", "one-stage-1", "100.00", "RUB", "Approved")
        ),
        "the answer's checkvalue over the merchant's salt"
    );
    let bill = text(&paid, "billnumber");
    let ledger = stack.ledger().await;
    let payment = authorization(&ledger, &text(&paid, "slipno"));
    assert_eq!(
        (payment.amount, &payment.action),
        (Some(10_000), &Action::Approved)
    );

    // Before the cut-off: a partial reversal (0400 with DE 95).
    let first = stack.cancel(&bill, Some("30.00"), "refund-before-1").await;
    assert_eq!(first.status, 200, "{first:?}");
    let order = only_order(&first.json());
    assert_eq!(text(&order, "orderstate"), "PartialCanceled", "{order}");
    let ledger = stack.ledger().await;
    let reversals = reversals_of(&ledger, payment.stan);
    assert_eq!(reversals.len(), 1, "{reversals:?}");
    assert_eq!(reversals[0].mti, "0400");
    assert_eq!(reversals[0].action, Action::Reversed);
    // The same Externalrefundid answers the first result and sends nothing.
    let again = stack.cancel(&bill, Some("30.00"), "refund-before-1").await;
    assert_eq!(only_order(&again.json()), order);
    assert_eq!(stack.ledger().await.entries.len(), ledger.entries.len());

    // The operator runs the merchant's cut-off: the payment has settled, a cancel is a refund.
    let cutoff = testkit::http::post(stack.authorizer().admin_addr, "/cutoff/452739", "").await;
    assert_eq!(cutoff.status, 200, "{cutoff:?}");
    let refund = stack.cancel(&bill, Some("20.00"), "refund-after-1").await;
    assert_eq!(refund.status, 200, "{refund:?}");
    let ledger = stack.ledger().await;
    let refunds: Vec<_> = ledger
        .entries
        .iter()
        .filter(|e| e.action == Action::Refunded)
        .collect();
    assert_eq!(refunds.len(), 1, "{:?}", ledger.entries);
    assert_eq!(
        (refunds[0].mti.as_str(), refunds[0].amount),
        ("0200", Some(2_000))
    );
    assert_eq!(
        reversals_of(&ledger, payment.stan).len(),
        1,
        "no second reversal"
    );

    // 100 − 30 − 20 = 50 left: 60 more is refused before the network.
    let over = stack.cancel(&bill, Some("60.00"), "refund-after-2").await;
    assert_eq!((over.status, over.fault()), (400, (5, 108)));
    assert_eq!(stack.states("one-stage-1").await, ["PartialCanceled"]);

    // orderresult: the order with its three operations, in every Format a merchant reads.
    let result = |format: &'static str| {
        let (stack, bill) = (&stack, &bill);
        async move {
            stack
                .call(
                    "/orderresult/orderresult.cfm",
                    &[("Billnumber", bill.as_str()), ("Format", format)],
                )
                .await
        }
    };
    let json = result("5").await.json();
    let operations = root(&json)["orders"][0]["operations"]
        .as_array()
        .unwrap()
        .clone();
    let kinds: Vec<_> = operations
        .iter()
        .map(|o| {
            (
                text(o, "operationtype"),
                text(o, "operationstate"),
                text(o, "amount"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("100".into(), "Success".into(), "100.00".into()),
            ("300".into(), "Success".into(), "30.00".into()),
            ("300".into(), "Success".into(), "20.00".into())
        ]
    );
    assert_eq!(text(&operations[1], "billnumber"), format!("{bill}.2"));
    let csv = result("1").await;
    let records = csv_records(&csv.body);
    assert_eq!(
        records.len(),
        4,
        "the order and its operations: {}",
        csv.body
    );
    assert_eq!(records[0]["orderstate"], "PartialCanceled");
    assert_eq!(records[3]["operationtype"], "300");
    let xml = result("3").await;
    assert_eq!(
        xml_texts(&xml.body, b"operationtype"),
        ["100", "300", "300"]
    );
    assert!(!format!("{json}{}{}", csv.body, xml.body).contains("4111111111111111"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_pay_two_stage_charged_in_full_in_part_once_and_cancelled() {
    let stack = Stack::start().await;
    let token = stack.saved_card("1234", "5555555555554444").await;
    let charge = |bill: String, amount: Option<(&'static str, &'static str)>| {
        let stack = &stack;
        async move {
            let mut params = vec![("Billnumber", bill.clone()), ("Format", "5".into())];
            if let Some((a, c)) = amount {
                params.extend([("Amount", a.to_owned()), ("Currency", c.to_owned())]);
            }
            let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
            stack.call("/charge/charge.cfm", &params).await
        }
    };

    // Partial: 30 of 50, once however often it is asked.
    let delayed = stack
        .token_pay("two-stage-1", "50.00", true, "1234", &token)
        .await;
    assert_eq!(text(&delayed, "orderstate"), "Delayed", "{delayed}");
    let bill = text(&delayed, "billnumber");
    let wrong = charge(bill.clone(), Some(("30.00", "USD"))).await;
    assert_eq!((wrong.status, wrong.fault()), (400, (5, 105)));
    let charged = charge(bill.clone(), Some(("30.00", "RUB"))).await;
    assert_eq!(charged.status, 200, "{charged:?}");
    let charged = only_order(&charged.json());
    assert_eq!(text(&charged, "orderstate"), "PartialDelayed", "{charged}");
    assert_eq!(
        (text(&charged, "operationtype"), text(&charged, "amount")),
        ("200".into(), "30.00".into())
    );
    let repeated = only_order(&charge(bill.clone(), Some(("30.00", "RUB"))).await.json());
    assert_eq!(repeated, charged);
    let completions = |l: &Ledger| l.entries.iter().filter(|e| e.mti == "0220").count();
    assert_eq!(
        completions(&stack.ledger().await),
        1,
        "one 0220 for two charge calls"
    );

    // In full, without an amount.
    let delayed = stack
        .token_pay("two-stage-2", "40.00", true, "1234", &token)
        .await;
    let full = only_order(&charge(text(&delayed, "billnumber"), None).await.json());
    assert_eq!(
        (text(&full, "orderstate"), text(&full, "amount")),
        ("Approved".into(), "40.00".into())
    );
    assert_eq!(completions(&stack.ledger().await), 2);

    // A Delayed order cancelled: the authorization reversed in full.
    let delayed = stack
        .token_pay("two-stage-3", "25.00", true, "1234", &token)
        .await;
    let stan = authorization(&stack.ledger().await, &text(&delayed, "slipno")).stan;
    let cancelled = stack
        .cancel(&text(&delayed, "billnumber"), None, "cancel-delayed-1")
        .await;
    assert_eq!(
        text(&only_order(&cancelled.json()), "orderstate"),
        "Canceled"
    );
    let ledger = stack.ledger().await;
    let reversals = reversals_of(&ledger, stan);
    assert_eq!(reversals.len(), 1);
    assert_eq!(reversals[0].action, Action::Reversed);

    assert_eq!(stack.states("two-stage-1").await, ["PartialDelayed"]);
    assert_eq!(stack.states("two-stage-3").await, ["Canceled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_pay_declines_foreign_tokens_and_rp_needs_a_usable_agreement() {
    let stack = Stack::start().await;
    let token = stack.saved_card("1234", "4111111111111111").await;
    let before = stack.ledger().await.entries.len();

    // A token nobody saved, and this customer's token named for another customer: declined
    // before the network, never paid with another card.
    let unknown = stack
        .token_pay(
            "foreign-1",
            "10.00",
            false,
            "1234",
            "54F5A3DE-4B47-4B40-03B5-7FF992D6B401",
        )
        .await;
    let theirs = stack
        .token_pay("foreign-2", "10.00", false, "5678", &token)
        .await;
    for declined in [&unknown, &theirs] {
        assert_eq!(
            (text(declined, "orderstate"), text(declined, "responsecode")),
            ("Declined".into(), "AS101".into()),
            "{declined}"
        );
        assert_eq!(text(declined, "meannumber"), "");
    }
    assert_eq!(
        stack.ledger().await.entries.len(),
        before,
        "nothing reached the network"
    );
    assert_eq!(stack.states("foreign-2").await, ["Declined"]);

    // rp.cfm on an order that does not exist, and on one paid without a recurring agreement.
    let paid = stack
        .token_pay("rp-initial-1", "10.00", false, "1234", &token)
        .await;
    let rp = |initial: String, amount: &'static str| {
        let stack = &stack;
        async move {
            stack
                .call(
                    "/recurrent/rp.cfm",
                    &[
                        ("BillNumber", initial.as_str()),
                        ("OrderNumber", "rp-next-1"),
                        ("Amount", amount),
                        ("Currency", "RUB"),
                        ("Format", "5"),
                    ],
                )
                .await
        }
    };
    let missing = rp("1234567890123456".into(), "10.00").await;
    assert_eq!((missing.status, missing.fault()), (404, (10, 201)));
    let no_agreement = rp(text(&paid, "billnumber"), "10.00").await;
    assert_eq!(
        (no_agreement.status, no_agreement.fault()),
        (403, (15, 320))
    );

    // payrequest.cfm with an agreement creates the order In Process; unpaid, it carries none yet.
    let created = stack
        .call(
            "/pay/payrequest.cfm",
            &[
                ("OrderNumber", "rp-agreement-1"),
                ("OrderAmount", "10.00"),
                ("OrderCurrency", "RUB"),
                ("CustomerNumber", "1234"),
                ("RecurringIndicator", "1"),
                ("RecurringMinAmount", "1.00"),
                ("RecurringMaxAmount", "100.00"),
                ("RecurringPeriod", "1"),
                ("RecurringMaxDate", "31.12.2099"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let page = created.json();
    assert_eq!(page["orderstate"], "In Process");
    let url = page["url"].as_str().unwrap();
    let bill = url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(stack.states("rp-agreement-1").await, ["In Process"]);
    let unpaid = rp(bill, "10.00").await;
    assert_eq!((unpaid.status, unpaid.fault()), (403, (15, 320)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_killed_with_a_payment_in_flight_resolves_it_on_restart() {
    let mut stack = Stack::start().await;
    let token = stack.saved_card("1234", "4111111111111111").await;

    // 99.01: the simulator books the payment and never answers, so it stays in flight until the
    // link's time-out; the process is killed before that.
    let api = stack.authorizer().api_addr;
    let payment_token = format!(r#"{{"Token":"{token}","CustomerNumber":"1234"}}"#);
    let form = format!(
        "Merchant_ID=452739&Login=demo_login&Password=Demopass2026&OrderNumber=crash-1\
         &OrderAmount=99.01&OrderCurrency=RUB&Lastname=Ivanov&Firstname=Ivan\
         &Email=ivan%40example.com&TokenType=5&PaymentToken={}&Format=5",
        percent_encoded(&payment_token)
    );
    let in_flight = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(api).await?;
        let head = format!(
            "POST /pay/tokenpay.cfm HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        s.write_all(head.as_bytes()).await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    });
    let mut booked = None;
    eventually("the simulator to book the payment", async || {
        booked = stack
            .ledger()
            .await
            .entries
            .into_iter()
            .find(|e| e.amount == Some(9_901) && e.action == Action::Approved);
        booked.is_some()
    })
    .await;
    let booked = booked.unwrap();
    stack.take_authorizer().kill().await.unwrap();
    // The connection died with the process: no answer is what the merchant got.
    let answer = in_flight.await.unwrap();
    assert!(answer.is_err() || answer.is_ok_and(|a| a.is_empty()));
    assert!(
        reversals_of(&stack.ledger().await, booked.stan).is_empty(),
        "the killed process reversed nothing"
    );

    // Restarted on the same database: recovery runs before the API answers.
    stack.start_authorizer().await;
    assert_eq!(stack.states("crash-1").await, ["Declined"]);
    let mut reversed = Vec::new();
    eventually("the reversal to reach the network", async || {
        reversed = reversals_of(&stack.ledger().await, booked.stan)
            .into_iter()
            .cloned()
            .collect();
        !reversed.is_empty()
    })
    .await;
    assert_eq!(reversed.len(), 1, "{reversed:?}");
    assert_eq!(reversed[0].action, Action::Reversed);
    let ledger = stack.ledger().await;
    assert!(
        ledger.balances_add_up(),
        "the journal explains every balance"
    );
    let balance = ledger.balance(booked.card.as_deref().unwrap()).unwrap();
    assert_eq!(
        balance.current, balance.opening,
        "the booked payment was given back in full: {balance:?}"
    );
}
