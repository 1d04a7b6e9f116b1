//! A plain HTTP/1.1 client for tests of the merchant API: one request per connection
//! (`Connection: close`), read to the end, so that a test sees exactly the bytes the server wrote
//! (status, every header, the body) and no client library normalises them away.
//!
//! Owns nothing but the request and its reading. Must never retry, follow a redirect or sleep.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What came back: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Each header as `(lower-case name, value)`, in the order they came.
    pub headers: Vec<(String, String)>,
    /// The body, as text (the merchant API answers UTF-8 only).
    pub body: String,
}

impl Answer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on its own connection; panics on a transport failure or a malformed answer,
/// which is what a test wants.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    request_with(addr, method, path, &[], body).await
}

/// [`request`] with headers of the caller's (a cookie, a content type).
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read the answer");
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A form POST (the Assist services' encoding).
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Answer {
    request(addr, "POST", path, body).await
}

/// A form POST to the merchant API at `api` as dev merchant `merchant` of ARCHITECTURE.md
/// (452739 or 452740, with its login and password), each of `params` form-encoded after those.
pub async fn post_as_dev_merchant(
    api: SocketAddr,
    merchant: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Answer {
    let login = match merchant {
        "452739" => "demo_login",
        "452740" => "demo_login2",
        other => panic!("{other} is not a dev merchant"),
    };
    let mut body = format!("Merchant_ID={merchant}&Login={login}&Password=Demopass2026");
    for (name, value) in params {
        body.push('&');
        body.push_str(name);
        body.push('=');
        body.extend(form_urlencoded::byte_serialize(value.as_bytes()));
    }
    post(api, path, &body).await
}

/// Token Pay (`/pay/tokenpay.cfm`, answered in Format 5, JSON) of `amount` RUB as dev merchant
/// `merchant` with `customer`'s saved card `token`; two-stage when `delay`.
pub async fn token_pay(
    api: SocketAddr,
    merchant: &str,
    order_number: &str,
    amount: &str,
    delay: bool,
    (customer, token): (&str, &str),
) -> Answer {
    let payment_token = format!(r#"{{"Token":"{token}","CustomerNumber":"{customer}"}}"#);
    post_as_dev_merchant(
        api,
        merchant,
        "/pay/tokenpay.cfm",
        &[
            ("OrderNumber", order_number),
            ("OrderAmount", amount),
            ("OrderCurrency", "RUB"),
            ("Delay", if delay { "1" } else { "0" }),
            ("Lastname", "Ivanov"),
            ("Firstname", "Ivan"),
            ("Email", "ivan@example.com"),
            ("TokenType", "5"),
            ("PaymentToken", &payment_token),
            ("Format", "5"),
        ],
    )
    .await
}
