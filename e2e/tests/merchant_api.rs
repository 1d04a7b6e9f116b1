//! The merchant API end to end: the real `vault`, `simulator` and `authorizer` processes, driven
//! over HTTP as a merchant's server would. One Click's token.cfm and rem_token.cfm with seed 001's
//! example requests as written (the dev merchant's credentials in place of LOGIN/PASSWORD), after
//! a card was saved through the vault's facade role; each of their errors; and a fault in every
//! Format read back by real CSV, XML and JSON parsers.

use std::path::Path;

use card::{Expiry, Pan};
use quick_xml::events::Event;
use serde_json::{Value, json};
use testkit::http::{Answer, request};
use testkit::processes::{
    AuthorizerPeers, AuthorizerProcess, Binaries, ClientLogin, SimulatorProcess, VaultProcess,
    VaultSetup,
};
use vault::{
    ClientOptions, CustomerNumber, MerchantId, PaymentRef, Timestamp, TokenizeRequest, VaultClient,
    VaultEndpoint,
};

/// Seed 001's token.cfm example, as written, with the dev merchant's login and password.
const SEED_TOKEN_LIST: &str = r#"{"merchant":{"merchant_id":"452739", "login":"demo_login", "password":"Demopass2026"}, "customernumber":"1234", "language":"RU"}"#;

/// A merchant outside the dev merchants' shared customer list.
const OUTSIDER: &str = "452741";

/// The three processes with the dev merchants, and a third merchant of its own.
struct Stack {
    _dir: tempfile::TempDir,
    _sim: SimulatorProcess,
    _vault: VaultProcess,
    setup: VaultSetup,
    authorizer: AuthorizerProcess,
}

impl Stack {
    async fn start() -> Stack {
        let bins = Binaries::locate().expect("binaries");
        let dir = tempfile::tempdir().unwrap();
        let sim = SimulatorProcess::start(&bins.simulator, &dir.path().join("simulator"))
            .await
            .unwrap();
        let setup = VaultSetup::init_merchants(
            &bins.vault,
            &dir.path().join("vault"),
            &[
                ("452739", Some("demo-entity")),
                ("452740", Some("demo-entity")),
                (OUTSIDER, None),
            ],
        )
        .await
        .unwrap();
        let vault = setup.serve().await.unwrap();
        let merchants = dir.path().join("merchants.toml");
        std::fs::write(&merchants, merchants_with_outsider()).unwrap();
        let authorizer = AuthorizerProcess::start_with(
            &bins.authorizer,
            &dir.path().join("authorizer"),
            &AuthorizerPeers::new(&sim, &setup),
            &merchants,
        )
        .await
        .unwrap();
        Stack {
            _dir: dir,
            _sim: sim,
            _vault: vault,
            setup,
            authorizer,
        }
    }

    async fn client(&self, login: &ClientLogin) -> VaultClient {
        VaultClient::connect_with(
            VaultEndpoint::Unix(self.setup.socket()),
            login.credentials(),
            ClientOptions::default(),
        )
        .await
        .unwrap()
    }

    /// Saves a card for a customer of the dev merchant through the facade role, and records one
    /// successful payment with it (a grant of the facade role, detokenize and record of the
    /// authorizer role, as a payment makes them), so that it reaches the listing threshold of 1.
    async fn saved_card(&self, customer: &str, pan: &str) -> String {
        let facade = self.client(&self.setup.facade).await;
        let merchant = MerchantId::parse("452739").unwrap();
        let customer = CustomerNumber::parse(customer).unwrap();
        let saved = facade
            .tokenize(TokenizeRequest {
                merchant: merchant.clone(),
                customer: customer.clone(),
                pan: Pan::parse(pan).unwrap(),
                expiry: Expiry::new(12, 2099).unwrap(),
                holder: None,
            })
            .await
            .unwrap();
        let payment = PaymentRef::parse("saved-card-first-use").unwrap();
        let grant = facade
            .grant_detokenize(&merchant, &customer, saved.token, &payment)
            .await
            .unwrap();
        let authorizer = self.client(&self.setup.authorizer).await;
        drop(
            authorizer
                .detokenize(&merchant, &customer, saved.token, &payment, grant)
                .await
                .unwrap(),
        );
        authorizer
            .record_payment(
                &merchant,
                &customer,
                saved.token,
                &payment,
                Timestamp::now(),
            )
            .await
            .unwrap();
        saved.token.to_string()
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        request(self.authorizer.api_addr, "POST", path, body).await
    }
}

/// The dev merchants file, and a third merchant (One Click on, its own customers) with the
/// first one's password hash.
fn merchants_with_outsider() -> String {
    let dev_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/merchants.dev.toml");
    let dev = std::fs::read_to_string(dev_path).unwrap();
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
    let a = request(stack.authorizer.api_addr, "GET", path, "").await;
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
                            a.unescape_value().unwrap().into_owned(),
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
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.local_name().as_ref() == name => inside = true,
            Event::Text(t) if inside => return t.unescape().unwrap().into_owned(),
            Event::End(_) if inside => return String::new(),
            Event::Eof => panic!("no {name:?} in {xml}"),
            _ => {}
        }
    }
}
