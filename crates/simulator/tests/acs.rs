//! 3-D Secure: the ACS pages and JSON API issue CAVVs that the issuer side accepts once, for
//! the card they were issued for, and declines when forged or replayed.

use std::net::SocketAddr;

use bytes::Bytes;
use card::Pan;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use iso8583::{Message, Mti, tag};
use simulator::{AcsClient, AuthResult, Faults};
use testkit::cards::*;
use testkit::iso::*;
use testkit::network::Sim;

fn first_use(pan: &str, auth: &AuthResult) -> Message {
    let eci = auth.eci.as_deref().unwrap().as_bytes();
    let cavv = auth.cavv.as_deref().unwrap_or("").as_bytes();
    payment(
        Mti::AUTH_REQUEST,
        pan,
        1_000,
        &[
            (tag::COF_INDICATOR, b"I"),
            (tag::CVC2, b"123"),
            (tag::ECI, eci),
            (tag::CAVV, cavv),
            (tag::THREE_DS_VERSION, b"2.2.0"),
            (tag::DS_TRANSACTION_ID, auth.ds_trans_id.as_bytes()),
        ],
    )
}

fn cavv_result(msg: &Message) -> Option<u8> {
    msg.de48()
        .and_then(|d| d.get(tag::CAVV_RESULT))
        .map(|v| v[0])
}

#[tokio::test]
async fn a_frictionless_cavv_is_accepted_once_and_declined_when_replayed() {
    let sim = Sim::start(Faults::default()).await;
    let acs = AcsClient::new(sim.handle.acs_addr);
    let auth = acs
        .authenticate(&Pan::parse(MC_FRICTIONLESS).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (auth.status.as_str(), auth.eci.as_deref()),
        ("Y", Some("05"))
    );
    assert_eq!(auth.cavv.as_deref().unwrap().len(), 28);
    let mut client = sim.client().await;
    let approved = client.call(&first_use(MC_FRICTIONLESS, &auth)).await;
    assert_eq!(code(&approved), "00");
    assert_eq!(cavv_result(&approved), Some(b'2'));
    let replayed = client.call(&first_use(MC_FRICTIONLESS, &auth)).await;
    assert_eq!(code(&replayed), "1A");
    assert_eq!(cavv_result(&replayed), Some(b'1'));
}

#[tokio::test]
async fn a_challenge_passes_with_the_code_and_fails_without_it() {
    let sim = Sim::start(Faults::default()).await;
    let acs = AcsClient::new(sim.handle.acs_addr);
    let visa = Pan::parse(VISA_CHALLENGE).unwrap();
    let started = acs.authenticate(&visa).await.unwrap();
    assert_eq!(started.status, "C");
    let failed = acs
        .challenge(started.acs_trans_id.as_deref().unwrap(), "0000")
        .await
        .unwrap();
    assert_eq!(
        (
            failed.status.as_str(),
            failed.eci.as_deref(),
            failed.cavv.as_deref()
        ),
        ("N", Some("07"), None)
    );
    assert!(
        acs.challenge(started.acs_trans_id.as_deref().unwrap(), "1234")
            .await
            .is_err(),
        "one attempt"
    );

    let passed = acs.authenticate_passing(&visa).await.unwrap();
    assert_eq!(
        (passed.status.as_str(), passed.eci.as_deref()),
        ("Y", Some("05"))
    );
    let mut client = sim.client().await;
    assert_eq!(
        code(&client.call(&first_use(VISA_CHALLENGE, &passed)).await),
        "00"
    );

    let always = Pan::parse(ALWAYS_3DS).unwrap();
    let passed = acs.authenticate_passing(&always).await.unwrap();
    let cit = payment(
        Mti::FINANCIAL_REQUEST,
        ALWAYS_3DS,
        1_000,
        &[
            (tag::ECI, passed.eci.as_deref().unwrap().as_bytes()),
            (tag::CAVV, passed.cavv.as_deref().unwrap().as_bytes()),
            (tag::DS_TRANSACTION_ID, passed.ds_trans_id.as_bytes()),
        ],
    );
    assert_eq!(
        code(&client.call(&cit).await),
        "00",
        "a 3-DS-always card with a valid CAVV"
    );
}

#[tokio::test]
async fn a_cavv_for_another_card_or_transaction_is_forged() {
    let sim = Sim::start(Faults::default()).await;
    let acs = AcsClient::new(sim.handle.acs_addr);
    let mc = acs
        .authenticate(&Pan::parse(MC_FRICTIONLESS).unwrap())
        .await
        .unwrap();
    let mut client = sim.client().await;
    assert_eq!(
        code(&client.call(&first_use(VISA_CHALLENGE, &mc)).await),
        "1A",
        "CAVV of another card"
    );
    let other_ds = AuthResult {
        ds_trans_id: uuid::Uuid::new_v4().to_string(),
        ..mc.clone()
    };
    assert_eq!(
        code(&client.call(&first_use(MC_FRICTIONLESS, &other_ds)).await),
        "1A"
    );
    let made_up = AuthResult {
        cavv: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
        ..mc.clone()
    };
    assert_eq!(
        code(&client.call(&first_use(MC_FRICTIONLESS, &made_up)).await),
        "1A"
    );
    let not_enrolled = acs
        .authenticate(&Pan::parse(PLAIN_APPROVED).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (not_enrolled.status.as_str(), not_enrolled.eci.as_deref()),
        ("A", Some("06"))
    );
    assert_eq!(
        code(&client.call(&first_use(PLAIN_APPROVED, &not_enrolled)).await),
        "00"
    );
}

async fn http(addr: SocketAddr, path: &str, form: &str) -> (StatusCode, Option<String>, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::post(path)
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, location, String::from_utf8(body.to_vec()).unwrap())
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))?;
    let mut out = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn the_html_challenge_returns_to_the_callers_url_with_eci_cavv_and_ds_id() {
    let sim = Sim::start(Faults::default()).await;
    let addr = sim.handle.acs_addr;
    let return_url = "http%3A%2F%2Fshop.test%2Freturn%3Forder%3D7";
    let (status, _, page) = http(
        addr,
        "/acs/authenticate",
        &format!("pan={VISA_CHALLENGE}&return_url={return_url}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<form") && page.contains("action=\"/acs/challenge\""));
    assert!(
        page.contains("1111") && !page.contains(VISA_CHALLENGE),
        "only the last four digits are shown"
    );
    let acs_trans_id = page
        .split("name=\"acs_trans_id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (status, location, _) = http(
        addr,
        "/acs/challenge",
        &format!("acs_trans_id={acs_trans_id}&code=1234"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert!(
        location.starts_with("http://shop.test/return?order=7&"),
        "{location}"
    );
    assert_eq!(query_value(&location, "status").as_deref(), Some("Y"));
    assert_eq!(query_value(&location, "eci").as_deref(), Some("05"));
    let auth = AuthResult {
        status: "Y".into(),
        eci: query_value(&location, "eci"),
        cavv: query_value(&location, "cavv"),
        ds_trans_id: query_value(&location, "ds_trans_id").unwrap(),
        acs_trans_id: None,
    };
    let mut client = sim.client().await;
    assert_eq!(
        code(&client.call(&first_use(VISA_CHALLENGE, &auth)).await),
        "00"
    );

    let (status, location, _) = http(
        addr,
        "/acs/authenticate",
        &format!("pan={MC_FRICTIONLESS}&return_url={return_url}"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "frictionless: straight back");
    assert_eq!(
        query_value(&location.unwrap(), "eci").as_deref(),
        Some("05")
    );
    let (status, _, _) = http(
        addr,
        "/acs/authenticate",
        &format!("pan={VISA_CHALLENGE}&return_url=javascript:x"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = http(addr, "/acs/challenge", "acs_trans_id=nope&code=1234").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ledger_endpoint_serves_the_same_snapshot_as_the_handle() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    client
        .call(&payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 321, &[]))
        .await;
    let served = AcsClient::new(sim.handle.acs_addr).ledger().await.unwrap();
    assert_eq!(served, sim.handle.ledger());
    assert_eq!(served.entries[0].amount, Some(321));
    assert_eq!(served.entries[0].card.as_deref(), Some("411111******1111"));
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get(path)
        .header(header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_3ds_server_started_challenge_opens_in_the_browser_with_the_transaction_id_only() {
    let sim = Sim::start(Faults::default()).await;
    let addr = sim.handle.acs_addr;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = format!("{{\"pan\":\"{VISA_CHALLENGE}\",\"return_url\":\"http://shop.test/back\"}}");
    let request = Request::post("/acs/api/authenticate")
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    let answer = answer.into_body().collect().await.unwrap().to_bytes();
    let started: AuthResult = serde_json::from_slice(&answer).unwrap();
    let id = started.acs_trans_id.unwrap();

    let (status, page) = get(addr, &format!("/acs/creq?acs_trans_id={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("action=\"/acs/challenge\"") && page.contains(&id));
    assert!(page.contains("1111") && !page.contains(VISA_CHALLENGE));
    let (status, location, _) = http(
        addr,
        "/acs/challenge",
        &format!("acs_trans_id={id}&code=1234"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert!(
        location.starts_with("http://shop.test/back?status=Y&"),
        "{location}"
    );
    assert_eq!(
        query_value(&location, "ds_trans_id"),
        Some(started.ds_trans_id)
    );

    let (status, _) = get(addr, &format!("/acs/creq?acs_trans_id={id}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a finished challenge is gone"
    );
}
