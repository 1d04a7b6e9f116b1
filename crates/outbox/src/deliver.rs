//! How a rendered notification reaches the merchant: the [`Deliver`] trait (the real one is
//! [`crate::HttpDeliver`]; tests bring their own), what it is handed ([`Request`]) and what it
//! answers ([`Reply`] or [`DeliverError`]), and the rule of which URLs may be used ([`Target`]).
//!
//! Owns that contract and the port rule. Must never put the form's fields or the URL's query into
//! an error: they may carry a customer number or a merchant's secret.

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The ports a merchant's notification URL may use, by default (the spec's rule).
pub const DEFAULT_PORTS: [u16; 4] = [80, 443, 8080, 8443];

/// A notification ready to send: where, and the form fields in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The merchant's notification URL.
    pub url: String,
    /// The spec's fields, names and values, in order.
    pub form: Vec<(String, String)>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("fields", &self.form.len())
            .finish_non_exhaustive()
    }
}

// Form encoding keeps only what RFC 3986 leaves unreserved.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'*');

impl Request {
    /// The body: `application/x-www-form-urlencoded`, UTF-8.
    pub fn body(&self) -> String {
        self.form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, FORM),
                    utf8_percent_encode(v, FORM)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The merchant's answer: its status and at most [`crate::ack::MAX_ANSWER`] + 1 bytes of body
/// (one more than an acknowledgement may have, so that a longer one is seen as such).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The start of the body.
    pub body: Bytes,
}

/// Why a notification did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// The URL can never be used (not HTTP or HTTPS, a port not allowed, no host): the merchant's
    /// settings are wrong. Not retried; shown in the attempts.
    #[error("{0}")]
    Config(String),
    /// No answer: connection refused, TLS failure, time-out, connection dropped. Retried.
    #[error("{0}")]
    Network(String),
}

/// Sends one notification. Implementations must bound their own time and the answer's size.
pub trait Deliver: Send + Sync + fmt::Debug + 'static {
    /// POSTs `request` and reads the answer.
    fn deliver<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Reply, DeliverError>>;
}

/// Where a URL points, once it passed the rule: HTTP or HTTPS, a host, an allowed port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// HTTPS.
    pub https: bool,
    /// Host name or address (brackets removed from an IPv6 address).
    pub host: String,
    /// Port, explicit or the scheme's.
    pub port: u16,
    /// Path and query to request.
    pub path_and_query: String,
}

impl Target {
    /// Checks `url` against the rule with `allowed` ports.
    pub fn parse(url: &str, allowed: &[u16]) -> Result<Target, DeliverError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| DeliverError::Config("the notification URL is not a URL".into()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(DeliverError::Config(
                    "the notification URL is neither http nor https".into(),
                ));
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| DeliverError::Config("the notification URL has no host".into()))?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !allowed.contains(&port) {
            return Err(DeliverError::Config(format!(
                "port {port} is not allowed for notifications (allowed: {})",
                allowed
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Target {
            https,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_spec_ports_by_default() {
        for url in [
            "http://shop.example/notify",
            "https://shop.example/notify?x=1",
            "http://shop.example:8080/n",
            "https://shop.example:8443/n",
        ] {
            assert!(Target::parse(url, &DEFAULT_PORTS).is_ok(), "{url}");
        }
        for url in ["http://shop.example:22/n", "https://shop.example:9090/n"] {
            assert!(
                matches!(
                    Target::parse(url, &DEFAULT_PORTS),
                    Err(DeliverError::Config(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn a_configured_port_is_allowed() {
        let t = Target::parse("http://127.0.0.1:41234/n?a=b", &[41234]).unwrap();
        assert_eq!((t.https, t.port), (false, 41234));
        assert_eq!(t.path_and_query, "/n?a=b");
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_refused_without_echoing_them() {
        for url in ["ftp://shop.example/n", "/relative?secret=1", "mailto:x@y"] {
            let err = Target::parse(url, &DEFAULT_PORTS).unwrap_err();
            assert!(matches!(err, DeliverError::Config(_)), "{url}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn the_body_is_a_utf8_form() {
        let r = Request {
            url: String::new(),
            form: vec![
                ("ordernumber".into(), "A 1&b=2".into()),
                ("lastname".into(), "Иванов".into()),
            ],
        };
        assert_eq!(
            r.body(),
            "ordernumber=A%201%26b%3D2&lastname=%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2"
        );
    }
}
