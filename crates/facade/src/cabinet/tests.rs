//! The cabinet in process, over the API tests' facade (a fake vault, an engine without a
//! network): the login and its cookies, the way back to the login page, CSRF refusals, the
//! header policy, another merchant's order, a customer's Deny and a card's removal, settings
//! taking effect at once. Payments, charges and cancels in a real browser are
//! `e2e/tests/cabinet.rs`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt as _;

use crate::api::tests::app;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
    }

    /// The first form's CSRF token on the page.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        self.body[at..at + 64].to_owned()
    }
}

async fn send(app: &Router, method: &str, path: &str, cookie: &str, body: &str) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if !cookie.is_empty() {
        request = request.header(header::COOKIE, cookie);
    }
    if method == "POST" {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// `name=value` of a `Set-Cookie`.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Logs in as `login`; answers the login's answer and the login form's cookie.
async fn log_in(app: &Router, login: &str, password: &str) -> Answer {
    let form = send(app, "GET", "/cabinet/login", "", "").await;
    let cookie = pair(&form.set_cookie("cabinet_login").unwrap());
    let body = format!("csrf={}&login={login}&password={password}", form.csrf());
    send(app, "POST", "/cabinet/login", &cookie, &body).await
}

/// A session cookie of the dev merchant.
async fn session(app: &Router) -> String {
    let answer = log_in(app, "demo_login", "Demopass2026").await;
    pair(&answer.set_cookie("cabinet_session").expect("a session"))
}

#[tokio::test]
async fn the_right_password_opens_a_session_in_a_strict_cookie() {
    let app = app();
    let answer = log_in(&app, "demo_login", "Demopass2026").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), Some("/cabinet/"));
    let cookie = answer.set_cookie("cabinet_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/cabinet", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP in tests: {cookie}");
    let orders = send(&app, "GET", "/cabinet/", &pair(&cookie), "").await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(orders.body.contains("id=\"search\""), "{}", orders.body);
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_login_is_the_same_refusal() {
    let app = app();
    let wrong = log_in(&app, "demo_login", "Wrongpass2026").await;
    let unknown = log_in(&app, "nobody_here", "Demopass2026").await;
    for answer in [wrong, unknown] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.set_cookie("cabinet_session").is_none());
        assert!(answer.body.contains("id=\"flash\""), "{}", answer.body);
    }
}

#[tokio::test]
async fn a_login_form_without_its_cookie_is_refused() {
    let app = app();
    let form = send(&app, "GET", "/cabinet/login", "", "").await;
    let body = format!(
        "csrf={}&login=demo_login&password=Demopass2026",
        form.csrf()
    );
    let answer = send(&app, "POST", "/cabinet/login", "", &body).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie("cabinet_session").is_none());
}

#[tokio::test]
async fn without_a_session_every_page_leads_to_the_login() {
    let app = app();
    for path in [
        "/cabinet/",
        "/cabinet/customers",
        "/cabinet/settings",
        "/cabinet/orders/1234567890123456",
    ] {
        for cookie in ["", "cabinet_session=00"] {
            let answer = send(&app, "GET", path, cookie, "").await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(answer.location(), Some("/cabinet/login"), "{path}");
        }
    }
}

#[tokio::test]
async fn a_form_without_the_sessions_token_is_refused() {
    let app = app();
    let cookie = session(&app).await;
    let page = send(&app, "GET", "/cabinet/customers?customer=1234", &cookie, "").await;
    let token = page.csrf();
    for body in [
        "customer=1234&deny=1".to_owned(),
        format!("customer=1234&deny=1&csrf={}", "0".repeat(64)),
        format!("customer=1234&deny=1&csrf={}", &token[..63]),
    ] {
        let answer = send(&app, "POST", "/cabinet/customers/status", &cookie, &body).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{body}");
        assert!(answer.body.contains("id=\"form-expired\""));
    }
    let after = send(&app, "GET", "/cabinet/customers?customer=1234", &cookie, "").await;
    assert!(
        after.body.contains("Member"),
        "nothing changed: {}",
        after.body
    );
}

#[tokio::test]
async fn pages_carry_the_strict_header_policy() {
    let app = app();
    let cookie = session(&app).await;
    for (path, cookie) in [("/cabinet/login", ""), ("/cabinet/", cookie.as_str())] {
        let answer = send(&app, "GET", path, cookie, "").await;
        let header = |n: header::HeaderName| {
            answer
                .headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let csp = header(header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(header(header::CACHE_CONTROL), "no-store");
        assert_eq!(header(header::REFERRER_POLICY), "no-referrer");
        assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!answer.body.contains("<script"), "{path}");
    }
}

#[tokio::test]
async fn an_order_that_is_not_the_merchants_is_not_found() {
    let app = app();
    let cookie = session(&app).await;
    for path in [
        "/cabinet/orders/1234567890123456",
        "/cabinet/orders/x",
        "/cabinet/nowhere",
    ] {
        let answer = send(&app, "GET", path, &cookie, "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(answer.body.contains("id=\"not-found\""));
    }
}

#[tokio::test]
async fn a_customer_is_denied_and_allowed_again() {
    let app = app();
    let cookie = session(&app).await;
    let page = send(&app, "GET", "/cabinet/customers?customer=1234", &cookie, "").await;
    assert!(page.body.contains("462710******4724"), "{}", page.body);
    let csrf = page.csrf();
    for (deny, shown) in [("1", "Deny"), ("0", "Member")] {
        let body = format!("csrf={csrf}&customer=1234&deny={deny}");
        let answer = send(&app, "POST", "/cabinet/customers/status", &cookie, &body).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        let page = send(&app, "GET", answer.location().unwrap(), &cookie, "").await;
        let status = &page.body[page.body.find("id=\"status\"").unwrap()..];
        assert!(status[..60].contains(shown), "{status}");
        assert!(
            page.body.contains("class=\"flash ok\""),
            "the outcome is shown once"
        );
    }
}

#[tokio::test]
async fn a_card_is_removed_after_its_confirmation() {
    let app = app();
    let cookie = session(&app).await;
    let token = "B092E5A1-57BD-46E6-F380-7D5EC7730578";
    let confirm = send(
        &app,
        "GET",
        &format!("/cabinet/customers/remove?customer=1234&token={token}"),
        &cookie,
        "",
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("id=\"remove-yes\""));
    let page = send(&app, "GET", "/cabinet/customers?customer=1234", &cookie, "").await;
    assert!(
        page.body.contains(token),
        "a confirmation page removes nothing"
    );
    let body = format!("csrf={}&customer=1234&token={token}", confirm.csrf());
    let answer = send(&app, "POST", "/cabinet/customers/remove", &cookie, &body).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let page = send(&app, "GET", "/cabinet/customers?customer=1234", &cookie, "").await;
    assert!(page.body.contains("id=\"no-cards\""), "{}", page.body);
}

#[tokio::test]
async fn another_merchants_customer_has_no_cards() {
    let app = app();
    let answer = log_in(&app, "other_login", "Demopass2026").await;
    let cookie = pair(&answer.set_cookie("cabinet_session").unwrap());
    let page = send(&app, "GET", "/cabinet/customers?customer=1234", &cookie, "").await;
    assert!(page.body.contains("id=\"no-cards\""), "{}", page.body);
}

#[tokio::test]
async fn settings_take_effect_at_once_and_bad_urls_are_refused() {
    let app = app();
    let cookie = session(&app).await;
    let csrf = send(&app, "GET", "/cabinet/settings", &cookie, "")
        .await
        .csrf();
    let save = |ok: &str| {
        format!(
            "csrf={csrf}&url_return_ok={}&url_return_no=",
            crate::cabinet::html::query_value(ok)
        )
    };
    let answer = send(
        &app,
        "POST",
        "/cabinet/settings",
        &cookie,
        &save("https://shop.example/ok"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let page = send(&app, "GET", "/cabinet/settings", &cookie, "").await;
    assert!(
        page.body.contains("value=\"https://shop.example/ok\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("demosalt"), "the salt is never shown");
    send(
        &app,
        "POST",
        "/cabinet/settings",
        &cookie,
        &save("javascript:alert(1)"),
    )
    .await;
    let page = send(&app, "GET", "/cabinet/settings", &cookie, "").await;
    assert!(page.body.contains("class=\"flash error\""));
    assert!(
        page.body.contains("value=\"https://shop.example/ok\""),
        "unchanged"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = app();
    let cookie = session(&app).await;
    let csrf = send(&app, "GET", "/cabinet/", &cookie, "").await.csrf();
    let answer = send(
        &app,
        "POST",
        "/cabinet/logout",
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(answer.location(), Some("/cabinet/login"));
    assert!(
        answer
            .set_cookie("cabinet_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = send(&app, "GET", "/cabinet/", &cookie, "").await;
    assert_eq!(after.location(), Some("/cabinet/login"));
}

#[tokio::test]
async fn the_language_switch_keeps_the_choice_and_only_goes_back_to_the_cabinet() {
    let app = app();
    let answer = send(
        &app,
        "GET",
        "/cabinet/lang/en?back=/cabinet/settings",
        "",
        "",
    )
    .await;
    assert_eq!(answer.location(), Some("/cabinet/settings"));
    assert!(
        answer
            .set_cookie("cabinet_lang")
            .unwrap()
            .starts_with("cabinet_lang=en")
    );
    for back in [
        "//evil.example/",
        "https://evil.example/",
        "/cabinet/\\\\evil",
    ] {
        let answer = send(
            &app,
            "GET",
            &format!(
                "/cabinet/lang/ru?back={}",
                crate::cabinet::html::query_value(back)
            ),
            "",
            "",
        )
        .await;
        assert_eq!(answer.location(), Some("/cabinet/"), "{back}");
    }
    let page = send(&app, "GET", "/cabinet/login", "cabinet_lang=en", "").await;
    assert!(page.body.contains("<html lang=\"en\""));
}
