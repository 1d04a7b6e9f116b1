//! Two HTTP/1.1 clients. [`request`] and its kin, for tests of the merchant API: one request per
//! connection (`Connection: close`), read to the end, so that a test sees exactly the bytes the
//! server wrote (status, every header, the body) and no client library normalises them away;
//! they panic on a transport failure. [`Client`], for callers that make many requests and must
//! go on after a failure (the tour, a load tool, the shopper and merchant of `shopper` and
//! `shop`): pooled keep-alive connections, a time limit per request, errors instead of panics.
//!
//! Owns nothing but the request and its reading. Must never retry, follow a redirect or sleep.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

/// Why a [`Client`] request got no [`Answer`]; never quotes a request body (it may hold a card).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The method, URL or a header could not make a request: the caller's bug.
    #[error("{method} {url}: not a valid request: {source}")]
    Request {
        /// The method asked for.
        method: String,
        /// The URL asked for.
        url: String,
        /// What was wrong with it.
        source: hyper::http::Error,
    },
    /// The connection or the exchange failed (refused, reset, closed early).
    #[error("{method} {url}: {source}")]
    Send {
        /// The method asked for.
        method: String,
        /// The URL asked for.
        url: String,
        /// What the client reported.
        source: hyper_util::client::legacy::Error,
    },
    /// The body could not be read to its end.
    #[error("{method} {url}: reading the body: {source}")]
    Body {
        /// The method asked for.
        method: String,
        /// The URL asked for.
        url: String,
        /// What the connection reported.
        source: hyper::Error,
    },
    /// No complete answer within the client's time limit.
    #[error("{method} {url}: no answer within {limit:?}")]
    TimedOut {
        /// The method asked for.
        method: String,
        /// The URL asked for.
        url: String,
        /// The client's limit.
        limit: Duration,
    },
    /// The body is not UTF-8 (every page and answer of the system is).
    #[error("{method} {url}: the body is not UTF-8")]
    NotUtf8 {
        /// The method asked for.
        method: String,
        /// The URL asked for.
        url: String,
    },
}

/// A keep-alive HTTP/1.1 client: cheap to clone (the pool is shared), safe to use from many
/// tasks at once.
#[derive(Debug, Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    /// A request that takes longer is an error: a hung server must not hang its caller.
    limit: Duration,
}

impl Default for Client {
    fn default() -> Client {
        Client::new(crate::GUARD)
    }
}

impl Client {
    /// A client whose requests fail after `limit`.
    pub fn new(limit: Duration) -> Client {
        Client {
            inner: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build({
                // Without Nagle: a request written in two segments must not wait for the
                // server's delayed ACK (tens of ms in a latency figure).
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector
            }),
            limit,
        }
    }

    /// `GET url` (absolute: `http://host:port/path`).
    pub async fn get(&self, url: &str) -> Result<Answer, HttpError> {
        self.send("GET", url, &[], "").await
    }

    /// A form POST to `url` (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, url: &str, body: &str) -> Result<Answer, HttpError> {
        let form = [("content-type", "application/x-www-form-urlencoded")];
        self.send("POST", url, &form, body).await
    }

    /// One request with the caller's headers; a redirect is returned as it is, not followed.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, HttpError> {
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|source| HttpError::Request {
                method: method.to_owned(),
                url: url.to_owned(),
                source,
            })?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|source| HttpError::Send {
                    method: method.to_owned(),
                    url: url.to_owned(),
                    source,
                })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|source| HttpError::Body {
                    method: method.to_owned(),
                    url: url.to_owned(),
                    source,
                })?
                .to_bytes();
            let body = String::from_utf8(bytes.to_vec()).map_err(|_| HttpError::NotUtf8 {
                method: method.to_owned(),
                url: url.to_owned(),
            })?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.limit, exchange)
            .await
            .map_err(|_| HttpError::TimedOut {
                method: method.to_owned(),
                url: url.to_owned(),
                limit: self.limit,
            })?
    }
}
