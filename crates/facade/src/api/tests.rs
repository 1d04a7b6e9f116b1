//! The HTTP side in process, over a fake vault and an order engine without a network: routing,
//! methods, body limits, the header policy, authentication and integrity faults, One Click's
//! answers, and the engine services up to the network (order.cfm's redirect, payrequest's URL,
//! the engine's refusals in the request's Format). Payments are `e2e/tests/merchant_api.rs`.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode, header};
use futures::future::BoxFuture;
use tower::ServiceExt as _;
use vault::{
    ClientError, CustomerCards, CustomerNumber, CustomerStatus, ListedCard, MaskedCard, MerchantId,
    Token, VaultError,
};

use super::*;
use crate::merchants::Merchants;

#[derive(Debug, Default)]
pub(crate) struct FakeVault {
    pub(crate) cards: Mutex<Vec<(MerchantId, CustomerNumber, ListedCard)>>,
    /// The status every customer has; Member when not set.
    pub(crate) status: Mutex<Option<CustomerStatus>>,
    /// Customers set to Deny one by one (the cabinet's tests).
    pub(crate) denied: Mutex<Vec<(MerchantId, CustomerNumber)>>,
}

impl SavedCards for FakeVault {
    fn list<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
    ) -> BoxFuture<'a, Result<CustomerCards, ClientError>> {
        let cards = self
            .cards
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, c, _)| m == merchant && c == customer)
            .map(|(_, _, card)| card.clone())
            .collect();
        let who = (merchant.clone(), customer.clone());
        let status = if self.denied.lock().unwrap().contains(&who) {
            CustomerStatus::Deny
        } else {
            self.status
                .lock()
                .unwrap()
                .unwrap_or(CustomerStatus::Member)
        };
        Box::pin(async move { Ok(CustomerCards { status, cards }) })
    }

    fn remove<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        token: Token,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        let mut cards = self.cards.lock().unwrap();
        let before = cards.len();
        cards.retain(|(m, c, card)| !(m == merchant && c == customer && card.token == token));
        let found = cards.len() < before;
        Box::pin(async move {
            if found {
                Ok(())
            } else {
                Err(ClientError::Refused(VaultError::NotFound))
            }
        })
    }

    fn set_status<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        status: CustomerStatus,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        let who = (merchant.clone(), customer.clone());
        let mut denied = self.denied.lock().unwrap();
        denied.retain(|d| d != &who);
        if status == CustomerStatus::Deny {
            denied.push(who);
        }
        Box::pin(async { Ok(()) })
    }
}

use crate::one_click::SavedCards;

const TOKEN: &str = "B092E5A1-57BD-46E6-F380-7D5EC7730578";

pub(crate) fn cheap_hash(password: &str) -> String {
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(8, 1, 1, None).unwrap(),
    )
    .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
    .unwrap()
    .to_string()
}

/// The facade over two merchants (452739 with One Click and customer 1234's card, 452741),
/// a fake vault and an engine without a network; the cabinet's tests use it too.
pub(crate) fn app() -> Router {
    let hash = cheap_hash("Demopass2026");
    let merchants = Merchants::parse(
        &format!(
            "[[merchants]]\nid = \"452739\"\nname = \"a\"\nlogin = \"demo_login\"\n\
             password_hash = \"{hash}\"\ncheckvalue_salt = \"demosalt\"\none_click = true\n\
             [[merchants]]\nid = \"452741\"\nname = \"b\"\nlogin = \"other_login\"\n\
             password_hash = \"{hash}\"\ncheckvalue_salt = \"s\"\n"
        ),
        "test",
    )
    .unwrap();
    let vault = FakeVault::default();
    let card = ListedCard {
        token: Token::parse(TOKEN).unwrap(),
        card: MaskedCard::of(
            &card::Pan::parse("4627100000004724").unwrap(),
            card::Expiry::new(12, 2030).unwrap(),
            "CJSC ALFA-BANK".into(),
        ),
        active: true,
        need_cvc: true,
        successes: 1,
    };
    vault.cards.lock().unwrap().push((
        MerchantId::parse("452739").unwrap(),
        CustomerNumber::parse("1234").unwrap(),
        card,
    ));
    Arc::new(Facade::new(
        merchants,
        Arc::new(vault),
        offline_engine(),
        "http://pages.test",
    ))
    .router()
}

/// The network of an engine whose tests never pay: nothing is ever sent.
#[derive(Debug)]
struct NoNetwork;

impl orders::Acquirer for NoNetwork {
    fn prepare(&self, _: link::Intent<'_>) -> link::Prepared {
        unreachable!("the facade's unit tests never pay")
    }

    fn authorize<'a>(
        &'a self,
        _: link::Prepared,
        _: link::AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<link::LinkOutcome, link::AuthorizeError>> {
        unreachable!("the facade's unit tests never pay")
    }

    fn complete<'a>(
        &'a self,
        _: link::CompletionRequest<'a>,
    ) -> BoxFuture<'a, Result<link::LinkOutcome, link::CompleteError>> {
        unreachable!("the facade's unit tests never charge")
    }

    fn reverse<'a>(
        &'a self,
        _: &'a link::TransactionRef,
        _: Option<iso8583::Amount>,
    ) -> BoxFuture<'a, Result<link::ReversalState, link::ReverseError>> {
        unreachable!("the facade's unit tests never cancel")
    }
}

/// The vault of an engine whose tests never pay: away.
#[derive(Debug)]
struct NoSecrets;

impl orders::CardSecrets for NoSecrets {
    fn save<'a>(
        &'a self,
        _: &'a MerchantId,
        _: &'a CustomerNumber,
        _: orders::NewCard<'a>,
        _: orders::OperationRef,
    ) -> BoxFuture<'a, Result<Token, orders::SecretsUnavailable>> {
        Box::pin(async { Err(orders::SecretsUnavailable("no vault".into())) })
    }

    fn hold<'a>(
        &'a self,
        _: &'a MerchantId,
        _: &'a CustomerNumber,
        _: orders::NewCard<'a>,
        _: orders::OperationRef,
    ) -> BoxFuture<'a, Result<Token, orders::SecretsUnavailable>> {
        Box::pin(async { Err(orders::SecretsUnavailable("no vault".into())) })
    }

    fn resolve<'a>(
        &'a self,
        _: &'a link::CardRef,
        _: orders::OperationRef,
        _: card::CardUse,
    ) -> BoxFuture<'a, Result<Option<orders::ResolvedCard>, orders::SecretsUnavailable>> {
        Box::pin(async { Err(orders::SecretsUnavailable("no vault".into())) })
    }

    fn record_payment<'a>(
        &'a self,
        _: &'a link::CardRef,
        _: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), orders::SecretsUnavailable>> {
        Box::pin(async { Err(orders::SecretsUnavailable("no vault".into())) })
    }
}

/// An engine over a store of its own (kept for the test's life by leaking its directory).
pub(crate) fn offline_engine() -> Arc<orders::Engine> {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = store::Store::open(store::EngineKind::Redb, &dir.join("orders.redb")).unwrap();
    Arc::new(orders::Engine::new(
        store,
        Arc::new(NoNetwork),
        Arc::new(NoSecrets),
        Arc::new(orders::SystemClock),
    ))
}

async fn call(request: Request<HttpBody>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn post(path: &str, body: impl Into<String>) -> Request<HttpBody> {
    Request::post(path)
        .body(HttpBody::from(body.into()))
        .unwrap()
}

fn token_list(password: &str) -> String {
    format!(
        r#"{{"merchant":{{"merchant_id":"452739", "login":"demo_login", "password":"{password}"}}, "customernumber":"1234", "language":"RU"}}"#
    )
}

fn fault(body: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    (
        v["fault"]["faultcode"].as_u64().unwrap(),
        v["fault"]["faultstring"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn every_answer_carries_the_header_policy() {
    for request in [
        post("/pay/oneclick/v1/token.cfm", token_list("Demopass2026")),
        post("/pay/oneclick/v1/token.cfm", "{"),
        Request::get("/nowhere").body(HttpBody::empty()).unwrap(),
        Request::get("/pay/oneclick/v1/token.cfm")
            .body(HttpBody::empty())
            .unwrap(),
    ] {
        let (_, headers, _) = call(request).await;
        for (name, value) in crate::headers::POLICY {
            assert_eq!(headers[&name], value);
        }
    }
}

#[tokio::test]
async fn token_list_answers_seed_001s_json() {
    let (status, headers, body) = call(post(
        "/pay/oneclick/v1/token.cfm",
        token_list("Demopass2026"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        body,
        r#"[{"expire":"12.2030","token":"B092E5A1-57BD-46E6-F380-7D5EC7730578","bank":"CJSC ALFA-BANK","brand":"VISA","bin":462710,"active":true,"needCVC":true,"post":"4724"}]"#
    );
}

#[tokio::test]
async fn routing_and_methods() {
    let (status, _, _) = call(post("/pay/nothing.cfm", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Paths are case-insensitive, as Assist's are.
    let (status, _, _) = call(post(
        "/PAY/OneClick/v1/TOKEN.cfm",
        token_list("Demopass2026"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = call(
        Request::get("/pay/oneclick/v1/token.cfm")
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "POST");
    assert_eq!(fault(&body), (4, 0));
    let (status, headers, _) = call(
        Request::delete("/pay/order.cfm")
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, POST");
}

#[tokio::test]
async fn oversized_bodies_are_refused_declared_or_streamed() {
    let big = "x".repeat(JSON_BODY_LIMIT + 1);
    let (status, _, body) = call(post("/pay/oneclick/v1/token.cfm", big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(fault(&body), (4, 0));
    // Without a length: read up to the limit, then refused.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let (status, _, _) = call(
        Request::post("/pay/oneclick/v1/token.cfm")
            .body(HttpBody::from_stream(stream))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A form service allows more; over its own limit, the same.
    let (status, _, body) = call(post(
        "/orderstate/orderstate.cfm",
        "a".repeat(FORM_BODY_LIMIT + 1),
    ))
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body.contains("<faultcode>4</faultcode>"),
        "SOAP by default: {body}"
    );
}

#[tokio::test]
async fn credentials_merchants_and_switches() {
    let (status, _, body) = call(post(
        "/pay/oneclick/v1/token.cfm",
        token_list("Wrongpass2026"),
    ))
    .await;
    assert_eq!((status, fault(&body)), (StatusCode::UNAUTHORIZED, (7, 141)));
    let unknown = token_list("Demopass2026").replace("452739", "999999");
    let (status, _, body) = call(post("/pay/oneclick/v1/token.cfm", unknown)).await;
    assert_eq!((status, fault(&body)), (StatusCode::NOT_FOUND, (10, 200)));
    let no_one_click = token_list("Demopass2026")
        .replace("452739", "452741")
        .replace("demo_login", "other_login");
    let (status, _, body) = call(post("/pay/oneclick/v1/token.cfm", no_one_click)).await;
    assert_eq!((status, fault(&body)), (StatusCode::FORBIDDEN, (8, 200)));
}

#[tokio::test]
async fn rem_token_removes_once() {
    let body = format!(
        r#"{{"merchant":{{"merchant_id":"452739","login":"demo_login", "password":"Demopass2026"}}, "token": "{TOKEN}", "language": "RU", "customernumber":"1234"}}"#
    );
    let app = app();
    let send = |b: String| {
        let app = app.clone();
        async move {
            let r = app
                .oneshot(post("/pay/oneclick/v1/rem_token.cfm", b))
                .await
                .unwrap();
            let status = r.status();
            let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, first) = send(body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first,
        format!(r#"{{"token":"{TOKEN}","message":"Token removed"}}"#)
    );
    let (status, again) = send(body).await;
    assert_eq!((status, fault(&again)), (StatusCode::NOT_FOUND, (10, 203)));
}

#[tokio::test]
async fn an_order_form_needs_the_merchants_checkvalue() {
    let form = "Merchant_ID=452739&OrderNumber=A1&OrderAmount=10.00&OrderCurrency=RUB";
    let (status, _, body) = call(
        Request::get(format!("/pay/order.cfm?{form}&checkvalue=00"))
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((status, fault(&body)), (StatusCode::BAD_REQUEST, (5, 158)));
    let good = assist::integrity::checkvalue("demosalt", "452739;A1;10.00;RUB");
    let (status, _, body) = call(post(
        "/pay/order.cfm",
        format!("{form}&checkvalue={good}&Merchant_ID=452739"),
    ))
    .await;
    assert_eq!(
        (status, fault(&body)),
        (StatusCode::BAD_REQUEST, (4, 100)),
        "a repeated parameter"
    );
}

#[tokio::test]
async fn order_forms_create_orders_and_engine_refusals_keep_the_format() {
    let form = "Merchant_ID=452739&OrderNumber=A1&OrderAmount=10.00&OrderCurrency=RUB";
    let good = assist::integrity::checkvalue("demosalt", "452739;A1;10.00;RUB");
    let (status, headers, _) = call(
        Request::get(format!("/pay/order.cfm?{form}&checkvalue={good}"))
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap();
    let bill = location
        .strip_prefix("http://pages.test/pay/page/")
        .unwrap();
    assert_eq!(bill.len(), 16, "{location}");

    let (status, _, body) = call(post(
        "/pay/payrequest.cfm",
        format!("{form}&Login=demo_login&Password=Demopass2026"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["orderstate"], "In Process");
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .starts_with("http://pages.test/pay/page/")
    );
    assert_eq!(v["url"], v["URL"]);

    // An unknown order, refused by the engine (10/201), in CSV and JSON.
    let charge =
        "Merchant_ID=452739&Login=demo_login&Password=Demopass2026&Billnumber=1234567890123456";
    let (_, _, body) = call(post("/charge/charge.cfm", format!("{charge}&Format=1"))).await;
    assert_eq!(body.trim(), "error;10;201;");
    let (status, _, body) = call(post("/charge/charge.cfm", format!("{charge}&Format=5"))).await;
    assert_eq!((status, fault(&body)), (StatusCode::NOT_FOUND, (10, 201)));
}
