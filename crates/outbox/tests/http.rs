//! [`HttpDeliver`] against local servers: HTTPS verified against the configured dev CA (and
//! refused without it), the bounded answer, the total time-out, the port rule before any
//! connection.

use std::sync::Arc;
use std::time::Duration;

use outbox::ack::Verdict;
use outbox::{Deliver, DeliverError, HttpConfig, HttpDeliver, Request};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const ACK: &str = r#"<pushpaymentresult firstcode="0" secondcode="0"/>"#;

/// Reads one request (headers and a Content-Length body) and writes `answer` (a whole HTTP/1.1
/// response).
async fn answer_once<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: Vec<u8>) -> String {
    let mut read = Vec::new();
    let mut buf = [0; 4096];
    let body_len = loop {
        let n = s.read(&mut buf).await.unwrap();
        read.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&read).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            break end + 4 + len;
        }
    };
    while read.len() < body_len {
        let n = s.read(&mut buf).await.unwrap();
        read.extend_from_slice(&buf[..n]);
    }
    s.write_all(&answer).await.unwrap();
    s.shutdown().await.ok();
    String::from_utf8_lossy(&read).to_string()
}

fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn client(port: u16, extra_ca: Option<std::path::PathBuf>, total: Duration) -> HttpDeliver {
    HttpDeliver::new(HttpConfig {
        allowed_ports: vec![port],
        connect_timeout: Duration::from_secs(5),
        total_timeout: total,
        extra_ca,
    })
    .unwrap()
}

fn notification(url: String) -> Request {
    Request {
        url,
        form: vec![("billnumber".into(), "1234567890123456.1".into())],
    }
}

/// A dev CA (PEM) and a TLS server config for `localhost` signed by it.
fn dev_pki() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}

/// A TLS server answering one request with an acknowledgement; what it received.
async fn https_merchant(
    config: Arc<rustls::ServerConfig>,
) -> (u16, tokio::task::JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.ok()?;
        Some(answer_once(tls, response("200 OK", ACK)).await)
    });
    (port, served)
}

#[tokio::test]
async fn https_is_verified_against_the_configured_dev_ca() {
    let (ca_pem, config) = dev_pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let (port, served) = https_merchant(config).await;
    let reply = client(port, Some(ca), Duration::from_secs(10))
        .deliver(&notification(format!(
            "https://localhost:{port}/notify?shop=1"
        )))
        .await
        .unwrap();
    assert_eq!(
        Verdict::of(reply.status, &reply.body),
        Verdict::Acknowledged
    );
    let request = served.await.unwrap().unwrap();
    assert!(
        request.starts_with("POST /notify?shop=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with("billnumber=1234567890123456.1"),
        "{request}"
    );
}

#[tokio::test]
async fn https_signed_by_an_unknown_ca_is_not_trusted() {
    let (_, config) = dev_pki();
    let (port, _served) = https_merchant(config).await;
    let err = client(port, None, Duration::from_secs(10))
        .deliver(&notification(format!("https://localhost:{port}/notify")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliverError::Network(why) if why.contains("TLS")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_long_answer_is_read_only_past_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        answer_once(tcp, response("200 OK", &" ".repeat(1 << 20))).await
    });
    let reply = client(port, None, Duration::from_secs(10))
        .deliver(&notification(format!("http://127.0.0.1:{port}/n")))
        .await
        .unwrap();
    assert_eq!(reply.body.len(), outbox::ack::MAX_ANSWER + 1);
    assert!(matches!(
        Verdict::of(reply.status, &reply.body),
        Verdict::Retry(_)
    ));
}

#[tokio::test]
async fn a_merchant_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = tokio::spawn(async move { listener.accept().await });
    let err = client(port, None, Duration::from_millis(200))
        .deliver(&notification(format!("http://127.0.0.1:{port}/n")))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliverError::Network(_)), "{err:?}");
}

#[tokio::test]
async fn a_port_outside_the_list_is_refused_before_connecting() {
    let err = client(8443, None, Duration::from_secs(1))
        .deliver(&notification("http://127.0.0.1:22/n".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliverError::Config(_)), "{err:?}");
}
