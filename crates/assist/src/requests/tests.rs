use super::*;
use crate::integrity::{OrderIntegrity, checkvalue};

const AUTH: &str = "Merchant_ID=452739&Login=demo_login&Password=Demopass2026";

fn form(service: Service, body: &str) -> Result<Request, Rejection> {
    decode(service, Payload::Form(body.as_bytes()))
}

fn codes(r: Result<Request, Rejection>) -> (u16, u16, Format) {
    let e = r.unwrap_err();
    (e.fault.first.code(), e.fault.second.code(), e.format)
}

#[test]
fn seed_001_one_click_requests_parse_as_written() {
    let list = br#"{"merchant":{"merchant_id":"452739", "login":"LOGIN", "password":"PASSWORD"}, "customernumber":"1234", "language":"RU"}"#;
    let Ok(Request::TokenList(r)) = decode(Service::TokenList, Payload::Json(list)) else {
        panic!("token.cfm example refused");
    };
    assert_eq!(r.credentials.merchant_id, MerchantId(452739));
    assert_eq!(r.credentials.login.as_str(), "LOGIN");
    assert_eq!(r.customer_number.as_str(), "1234");
    assert_eq!(r.language, Some(Language::Ru));

    let remove = br#"{"merchant":{"merchant_id":"452739","login":"LOGIN", "password":"PASSWORD"}, "token": "54F5A3DE-4B47-4B40-03B5-7FF992D6B401", "language": "RU", "customernumber":"1234"}"#;
    let Ok(Request::TokenRemove(r)) = decode(Service::TokenRemove, Payload::Json(remove)) else {
        panic!("rem_token.cfm example refused");
    };
    assert_eq!(r.token.to_string(), "54F5A3DE-4B47-4B40-03B5-7FF992D6B401");

    let no_token = br#"{"merchant":{"merchant_id":"452739","login":"LOGIN","password":"PASSWORD"},"customernumber":"1234"}"#;
    assert_eq!(
        codes(decode(Service::TokenRemove, Payload::Json(no_token))),
        (3, 203, Format::Json)
    );
    assert_eq!(
        codes(decode(Service::TokenList, Payload::Form(b"x=1"))),
        (4, 0, Format::Json)
    );
}

#[test]
fn seed_004_form_parses_with_any_case_and_checkvalue_over_the_sent_text() {
    let body = "merchant_ID=452739&orderNumber=A20042011_28&orderAmount=237.40&orderCurrency=USD&delay=0\
        &language=RU&email=test%40test.ru&orderComment=%D0%9E%D0%BF%D0%BB%D0%B0%D1%82%D0%B0\
        &url_Return_Ok=http%3A%2F%2Fwww.URL.ru%2Fyes&url_Return_No=http%3A%2F%2Fwww.URL.ru%2Fno\
        &cardPayment=1&ymPayment=0&submit=%D0%9A%D1%83%D0%BF%D0%B8%D1%82%D1%8C&CustomerNumber=c-1";
    let cv = checkvalue("demosalt", "452739;A20042011_28;237.40;USD;c-1");
    let body = format!("{body}&checkValue={cv}");
    let Ok(Request::Order(o)) = decode(Service::Order, Payload::Query(body.as_bytes())) else {
        panic!("seed 004 form refused");
    };
    assert_eq!(o.amount.minor(), 23740);
    assert_eq!(o.currency, Some(Currency::Usd));
    assert_eq!(o.means.yandex_money, Some(false));
    assert_eq!(o.comment.as_ref().map(Text::as_str), Some("Оплата"));
    let rule = OrderIntegrity::Checkvalue {
        salt: "demosalt".into(),
    };
    assert!(
        rule.verify(&o.sealed.x, o.sealed.checkvalue(), o.sealed.signature())
            .is_ok()
    );
    // payrequest: the same parameters, POST only.
    assert!(matches!(
        form(Service::PayRequest, &body),
        Ok(Request::PayRequest(_))
    ));
    assert_eq!(
        codes(decode(Service::PayRequest, Payload::Query(body.as_bytes()))).0,
        4
    );
}

#[test]
fn recurring_agreement_rules() {
    let base = "Merchant_ID=1&OrderNumber=r1&OrderAmount=10&RecurringIndicator=1";
    let Ok(Request::Order(o)) = form(Service::Order, base) else {
        panic!()
    };
    assert_eq!(o.recurring, Some(Recurring::Unscheduled));
    assert_eq!(
        o.recurring
            .as_ref()
            .map(|r| r.require_agreement().unwrap_err().second.code()),
        Some(320)
    );
    let full = format!(
        "{base}&RecurringMinAmount=1&RecurringMaxAmount=100,00&RecurringCount=30&RecurringMaxDate=31.12.2030"
    );
    let Ok(Request::Order(o)) = form(Service::Order, &full) else {
        panic!()
    };
    let Some(Recurring::Agreement(a)) = o.recurring else {
        panic!()
    };
    assert_eq!((a.period_days, a.max_amount.minor()), (30, 10000));
    assert_eq!(
        codes(form(
            Service::Order,
            &format!("{base}&RecurringMinAmount=1")
        ))
        .0,
        3
    );
    let inverted = format!(
        "{base}&RecurringMinAmount=9&RecurringMaxAmount=1&RecurringPeriod=1&RecurringMaxDate=01.01.2030"
    );
    assert_eq!(
        codes(form(Service::Order, &inverted)),
        (5, 320, Format::Json)
    );
}

#[test]
fn token_pay_as_seed_001_lists_it() {
    let body = format!(
        "{AUTH}&OrderNumber=t1&OrderAmount=4.00&OrderCurrency=RUB&TokenType=5\
         &PaymentToken=%7B%22Token%22%3A%22B092E5A1-57BD-46E6-F380-7D5EC7730578%22%2C%22CustomerNumber%22%3A%221234%22%7D\
         &Lastname=Ivanov&Firstname=Ivan&Email=i%40x.ru"
    );
    let Ok(Request::TokenPay(t)) = form(Service::TokenPay, &body) else {
        panic!("tokenpay refused")
    };
    assert_eq!(t.payment_token.customer_number.as_str(), "1234");
    assert_eq!(t.sealed.x, "452739;t1;4.00;RUB");
    assert_eq!(t.format, Format::Json);
    assert_eq!(
        codes(form(
            Service::TokenPay,
            &body.replace("TokenType=5", "TokenType=1")
        )),
        (5, 203, Format::Json)
    );
    assert_eq!(
        codes(form(
            Service::TokenPay,
            &body.replace("&Email=i%40x.ru", "")
        )),
        (3, 120, Format::Json)
    );
    let long = format!("{body}&OrderComment={}", "x".repeat(257));
    assert_eq!(
        codes(form(Service::TokenPay, &long)),
        (4, 110, Format::Json)
    );
}

#[test]
fn charge_cancel_and_rp_rules() {
    let charge = format!("{AUTH}&Billnumber=5360051305345061&Format=3");
    let Ok(Request::Charge(c)) = form(Service::Charge, &charge) else {
        panic!()
    };
    assert_eq!(c.amount, None);
    assert_eq!(
        codes(form(Service::Charge, &format!("{charge}&Amount=1"))),
        (3, 105, Format::Xml)
    );
    assert_eq!(
        codes(form(Service::Charge, &format!("{charge}&Currency=RUB"))),
        (3, 108, Format::Xml)
    );
    assert_eq!(
        codes(form(Service::Charge, &format!("{AUTH}&Format=2"))),
        (4, 103, Format::Csv)
    );
    assert_eq!(
        codes(form(Service::Charge, "Merchant_ID=1&Login=demo_login")),
        (3, 102, Format::Csv)
    );

    let cancel = format!(
        "{AUTH}&Billnumber=5360051305345061.1&Amount=1,5&Currency=RUB&Externalrefundid=refund-0001"
    );
    let Ok(Request::Cancel(c)) = form(Service::WsCancel, &cancel) else {
        panic!()
    };
    assert_eq!(c.reason, CancelReason::Customer);
    assert_eq!(c.amount.map(|a| a.0.minor()), Some(150));
    assert_eq!(
        codes(form(Service::Cancel, &format!("{cancel}&CancelReason=4"))),
        (4, 308, Format::Soap)
    );

    let rp = format!("{AUTH}&BillNumber=5360051305345061.2&OrderNumber=n2&Amount=1&Currency=RUB");
    assert_eq!(codes(form(Service::Recurrent, &rp)), (5, 143, Format::Csv));
    assert!(form(Service::Recurrent, &rp.replace(".2", ".1")).is_ok());
}

#[test]
fn periods_default_to_three_days_and_orderresult_limits_them() {
    let now = time::macros::datetime!(2026-03-10 12:00 UTC);
    let Ok(Request::OrderResult(r)) = form(Service::OrderResult, AUTH) else {
        panic!()
    };
    assert_eq!(r.window(now).unwrap_err().second.code(), 4);
    let day =
        format!("{AUTH}&StartYear=2026&StartMonth=3&StartDay=9&EndYear=2026&EndMonth=3&EndDay=9");
    let Ok(Request::OrderResult(r)) = form(Service::OrderResult, &day) else {
        panic!()
    };
    let (s, e) = r.window(now).unwrap();
    assert_eq!((s.hour(), e.hour(), e.minute()), (0, 23, 59));
    let Ok(Request::OrderState(r)) = form(Service::OrderState, &format!("{AUTH}&Ordernumber=A1"))
    else {
        panic!()
    };
    let (s, e) = r.period.resolve(now).unwrap();
    assert_eq!(e - s, Duration::days(3));
    assert_eq!(
        codes(form(
            Service::OrderState,
            &format!("{AUTH}&Ordernumber=A1&StartYear=2026")
        )),
        (3, 104, Format::Soap)
    );
    let backwards = format!("{AUTH}&Ordernumber=A1&StartYear=2026&StartMonth=2&StartDay=30");
    assert_eq!(
        codes(form(Service::OrderState, &backwards)),
        (5, 104, Format::Soap)
    );
}

#[test]
fn services_by_path() {
    for s in Service::ALL {
        assert_eq!(Service::from_path(s.path()), Some(s));
    }
    assert_eq!(
        Service::from_path("/ORDERSTATE/orderstate.cfm"),
        Some(Service::OrderState)
    );
    assert_eq!(Service::from_path("/nope"), None);
}
