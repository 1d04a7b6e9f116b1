use std::collections::BTreeMap;

use card::{Bin, Expiry, Last4};
use quick_xml::Reader;
use quick_xml::events::Event;
use time::macros::datetime;

use super::*;
use crate::answer::*;
use crate::codes::{
    FirstCode, OperationState, OperationType, OrderState, ResponseCode, SecondCode,
};
use crate::integrity::AnswerIntegrity;
use crate::requests::Service;
use crate::values::{Amount, BillNumber, BillRef, CardToken, Currency, MerchantId, ParamValue};

pub(crate) fn order() -> OrderRecord {
    let mut o = OrderRecord {
        billnumber: BillNumber::new(5_360_051_305_345_061).unwrap(),
        ordernumber: "ok".into(),
        testmode: false,
        ordercomment: "a;b \"c\" <d> & é".into(),
        orderamount: Amount::from_minor(400),
        ordercurrency: Currency::Rub,
        rate: "1".into(),
        orderdate: datetime!(2026-03-10 12:00:05),
        orderstate: OrderState::Canceled,
        customer: CustomerData {
            firstname: "Ivan".into(),
            ..CustomerData::default()
        },
        errorcode: String::new(),
        checkdata: CheckData {
            packetdate: datetime!(2026-03-10 12:00:06),
            signature: String::new(),
            checkvalue: String::new(),
        },
    };
    o.seal(
        MerchantId(111111),
        &AnswerIntegrity::Checkvalue("secret"),
        datetime!(2026-03-10 12:00:06),
    )
    .unwrap();
    o
}

pub(crate) fn operation(n: u32) -> OperationRecord {
    OperationRecord {
        billnumber: BillRef::extended(BillNumber::new(5_360_051_305_345_061).unwrap(), n),
        operationtype: OperationType::Payment,
        operationstate: OperationState::Success,
        amount: Amount::from_minor(400),
        currency: Currency::Rub,
        ipaddress: None,
        card: Some(CardMeans {
            meantypename: "VISA".into(),
            meansubtype: String::new(),
            meannumber: MaskedCard {
                bin: Bin::parse("411111").unwrap(),
                last4: Last4::parse("1111").unwrap(),
            },
            cardholder: "IVAN IVANOV".into(),
            expiry: Some(Expiry::new(12, 2030).unwrap()),
            issuebank: String::new(),
            bankcountry: String::new(),
        }),
        responsecode: Some(ResponseCode::Approved),
        message: String::new(),
        customermessage: String::new(),
        recommendation: String::new(),
        approvalcode: "123456".into(),
        protocoltypename: String::new(),
        processingname: String::new(),
        operationdate: Some(datetime!(2026-03-10 12:00:05)),
        authresult: String::new(),
        authrequired: String::new(),
        slipno: String::new(),
        threeds: ThreeDsData::default(),
    }
}

fn answer(service: Service, body: Body) -> Answer {
    Answer {
        service,
        result: Ok(body),
    }
}

/// Every element's text by path, as a real XML parser reads it.
fn xml_leaves(xml: &str) -> Vec<(String, String)> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                path.push(String::from_utf8(e.local_name().as_ref().to_vec()).unwrap());
                text.clear();
            }
            // Text comes raw, entity references as events of their own: put them back
            // together and unescape the whole once the element ends.
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                text.push('&');
                text.push_str(&r.decode().unwrap());
                text.push(';');
            }
            Event::End(_) => {
                let raw = std::mem::take(&mut text);
                let value = quick_xml::escape::unescape(&raw).unwrap().into_owned();
                out.push((path.join("/"), value));
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn has_all(names: &BTreeMap<String, String>, list: &[&str]) {
    for n in list {
        assert!(names.contains_key(*n), "missing {n}");
    }
}

#[test]
fn cancel_answer_in_every_format_reads_back() {
    let a = answer(
        Service::WsCancel,
        Body::Cancel(order(), vec![operation(1), operation(2)]),
    );

    let json: serde_json::Value = serde_json::from_str(&render(&a, Format::Json).body).unwrap();
    let o = &json["wscancel"]["orders"][0];
    assert_eq!(o["checkvalue"], "74DEB154081757F1E8097DDFAC35FC5C");
    assert_eq!(
        o["checkdata"]["checkvalue"],
        "74DEB154081757F1E8097DDFAC35FC5C"
    );
    assert_eq!(o["orderdate"], "10.03.2026 12:00:05");
    assert_eq!(o["customer"]["firstname"], "Ivan");
    let op = &o["operations"][1];
    assert_eq!(op["billnumber"], "5360051305345061.2");
    assert_eq!(op["meannumber"], "411111****1111");
    assert_eq!(op["cardexpirationdate"], "12/30");
    assert_eq!(op["operationtype"], "100");
    assert_eq!(op["threedsdata"]["eci"], "");
    let keys: BTreeMap<String, String> = op
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), String::new()))
        .collect();
    has_all(&keys, &OPERATION_FIELDS);

    let r = render(&a, Format::Xml);
    assert!(r.body.starts_with(
        r#"<?xml version="1.0" encoding="utf-8"?><result firstcode="0" secondcode="0" count="1">"#
    ));
    let leaves = xml_leaves(&r.body);
    let order_fields: BTreeMap<String, String> = leaves
        .iter()
        .filter_map(|(p, t)| {
            p.strip_prefix("result/orders/order/")
                .map(|n| (n.to_owned(), t.clone()))
        })
        .collect();
    has_all(&order_fields, &ORDER_FIELDS);
    assert_eq!(order_fields["ordercomment"], "a;b \"c\" <d> & é");
    assert_eq!(
        leaves
            .iter()
            .filter(|(p, _)| p == "result/orders/order/operation/billnumber")
            .count(),
        2
    );

    let soap = render(&a, Format::Soap).body;
    assert!(soap.contains(r#"<wscancelResponse xmlns="http://www.paysecure.ru/ws/">"#));
    assert!(xml_leaves(&soap).iter().any(|(p, t)| p
        == "Envelope/Body/wscancelResponse/orders/order/orderstate"
        && t == "Canceled"));

    let csv = render(&a, Format::Csv).body;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .from_reader(csv.as_bytes());
    let records: Vec<BTreeMap<String, String>> = reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let (k, v) = c.split_once(':').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect()
        })
        .collect();
    assert_eq!(records.len(), 3, "an order line and two operation lines");
    has_all(&records[0], &ORDER_FIELDS);
    assert_eq!(records[0]["ordercomment"], "a;b \"c\" <d> & é");
    has_all(&records[2], &OPERATION_FIELDS);
    assert_eq!(records[2]["operationdate"], "10.03.2026 12:00:05");
}

#[test]
fn flat_payment_answers_merge_order_and_operation() {
    let a = answer(Service::Charge, Body::Payment(order(), operation(2)));
    let leaves = xml_leaves(&render(&a, Format::Xml).body);
    let flat: BTreeMap<String, String> = leaves
        .iter()
        .filter_map(|(p, t)| {
            p.strip_prefix("result/orders/order/")
                .map(|n| (n.to_owned(), t.clone()))
        })
        .collect();
    has_all(&flat, &ORDER_FIELDS);
    has_all(&flat, &OPERATION_FIELDS);
    assert_eq!(flat["billnumber"], "5360051305345061");
    let csv = render(&a, Format::Csv).body;
    assert_eq!(csv.lines().count(), 1);
    assert!(csv.starts_with("billnumber:5360051305345061;ordernumber:ok;"));
    let json: serde_json::Value = serde_json::from_str(&render(&a, Format::Json).body).unwrap();
    assert_eq!(json["charge"]["orders"][0]["responsecode"], "AS000");
}

#[test]
fn orderstate_and_orderresult_shapes() {
    let states = answer(Service::OrderState, Body::States(vec![order(), order()]));
    let xml = render(&states, Format::Xml).body;
    assert!(
        xml.contains(r#"count="2"><order><billnumber>"#),
        "no orders wrapper"
    );
    let results = answer(
        Service::OrderResult,
        Body::Results(vec![(order(), vec![operation(1)])]),
    );
    let leaves = xml_leaves(&render(&results, Format::Xml).body);
    assert!(
        leaves
            .iter()
            .any(|(p, t)| p == "result/order/operation/meannumber" && t == "411111****1111")
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(&results, Format::Json).body).unwrap();
    assert_eq!(
        json["orderresult"]["orders"][0]["operations"][0]["responsecode"],
        "AS000"
    );
}

#[test]
fn faults_in_every_format() {
    let fault = Fault::new(
        FirstCode::WrongValue,
        SecondCode::Checkvalue,
        "checkvalue <bad>",
    );
    let a = Answer {
        service: Service::OrderState,
        result: Err(fault),
    };
    let r = render(&a, Format::Json);
    assert_eq!(r.status, 400);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"fault":{"detail":"checkvalue <bad>","faultcode":5,"faultstring":158}})
    );
    assert_eq!(render(&a, Format::Csv).body, "error;5;158;\n");
    let xml = render(&a, Format::Xml).body;
    assert!(xml.contains(r#"<result firstcode="5" secondcode="158" count="0">"#));
    let soap = xml_leaves(&render(&a, Format::Soap).body);
    assert!(soap.contains(&("Envelope/Body/Fault/faultcode".into(), "5".into())));
    assert!(soap.contains(&(
        "Envelope/Body/Fault/detail".into(),
        "checkvalue <bad>".into()
    )));
}

#[test]
fn seed_001_token_list_answer_as_its_example() {
    let card = |token: &str, bank: &str, brand: &str, bin: &str, last4: &str| SavedCard {
        token: CardToken::parse(token).unwrap(),
        bin: Bin::parse(bin).unwrap(),
        last4: Last4::parse(last4).unwrap(),
        brand: brand.into(),
        bank: bank.into(),
        expire: Expiry::new(12, 2020).unwrap(),
        active: true,
        need_cvc: true,
    };
    let a = answer(
        Service::TokenList,
        Body::Tokens(vec![
            card(
                "B092E5A1-57BD-46E6-F380-7D5EC7730578",
                "CJSC ALFA-BANK",
                "VISA",
                "462710",
                "4724",
            ),
            card(
                "0DA65AF1-F43E-486C-0782-0C07EC9ED42D",
                "Bank Hong Kong",
                "MasterCard",
                "552926",
                "6119",
            ),
        ]),
    );
    // Format is ignored: the One Click services answer JSON.
    let r = render(&a, Format::Xml);
    assert_eq!(r.content_type, "application/json; charset=utf-8");
    let seed = r#"[{"expire":"12.2020","token":"B092E5A1-57BD-46E6-F380-7D5EC7730578","bank":"CJSC ALFA-BANK","brand":"VISA","bin":462710,"active":true,"needCVC":true,"post":"4724"},{"expire":"12.2020","token":"0DA65AF1-F43E-486C-0782-0C07EC9ED42D","bank":"Bank Hong Kong","brand":"MasterCard","bin":552926,"active":true,"needCVC":true,"post":"6119"}]"#;
    assert_eq!(r.body, seed);
    let none = answer(Service::TokenList, Body::Tokens(vec![]));
    assert_eq!(render(&none, Format::Json).body, "[]");
}

#[test]
fn payrequest_answers_both_url_spellings() {
    let a = answer(
        Service::PayRequest,
        Body::PayRequest(PayRequestAnswer {
            url: "http://127.0.0.1:8080/pay/page?b=1".into(),
            expirationtime: datetime!(2026-03-11 12:00),
            state: PayRequestState::InProcess,
        }),
    );
    let json: serde_json::Value = serde_json::from_str(&render(&a, Format::Json).body).unwrap();
    assert_eq!(json["url"], json["URL"]);
    assert_eq!(json["orderstate"], "In Process");
    assert_eq!(json["expirationtime"], "11.03.2026 12:00:00");
}
