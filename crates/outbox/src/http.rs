//! [`HttpDeliver`]: the real [`Deliver`]: one HTTP/1.1 POST per try over a fresh connection,
//! HTTPS verified against the public roots (webpki) and an optional extra CA (a dev CA), or plain
//! HTTP, on the allowed ports only, with a connect time-out, a total time-out and a bounded answer.
//!
//! Owns the client side of a notification's HTTP. Must never disable certificate checks, follow
//! a redirect (a 3xx is an answer, retried), or read more than it needs of an answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::ack::MAX_ANSWER;
use crate::deliver::{Deliver, DeliverError, Reply, Request, Target};

/// How the HTTP client behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Ports a notification URL may use (default [`crate::DEFAULT_PORTS`]).
    pub allowed_ports: Vec<u16>,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// The whole try, connect to the last byte read.
    pub total_timeout: Duration,
    /// A CA certificate (PEM) trusted besides the public roots, for dev and test merchants.
    pub extra_ca: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            allowed_ports: crate::DEFAULT_PORTS.to_vec(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            extra_ca: None,
        }
    }
}

/// Why the client could not be built: the operator's CA file.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    /// The CA file could not be read or holds no PEM certificate.
    #[error("notification CA file {0}: no PEM certificate could be read")]
    Ca(PathBuf),
    /// rustls refused a certificate of the CA file.
    #[error("notification CA file {0}: certificate rejected")]
    CaRejected(PathBuf, #[source] rustls::Error),
    /// The crypto provider offers no TLS version; a build problem.
    #[error("TLS unavailable")]
    Protocol(#[source] rustls::Error),
}

/// The HTTP(S) client of notifications.
#[derive(Clone)]
pub struct HttpDeliver {
    config: HttpConfig,
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for HttpDeliver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDeliver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn extra_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), HttpSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|_| HttpSetupError::Ca(path.to_owned()))?;
    if certs.is_empty() {
        return Err(HttpSetupError::Ca(path.to_owned()));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| HttpSetupError::CaRejected(path.to_owned(), e))?;
    }
    Ok(())
}

impl HttpDeliver {
    /// A client with `config`; reads the extra CA file now, so a bad one stops the start.
    pub fn new(config: HttpConfig) -> Result<HttpDeliver, HttpSetupError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &config.extra_ca {
            extra_roots(&mut roots, path)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(HttpSetupError::Protocol)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpDeliver {
            config,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        })
    }

    async fn post(&self, target: &Target, body: String) -> Result<Reply, DeliverError> {
        let connect_timeout = self.config.connect_timeout;
        let timed_out = |what: &str| DeliverError::Network(format!("{what} timed out"));
        let tcp = tokio::time::timeout(
            connect_timeout,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(|e| {
            DeliverError::Network(format!("connect to {}:{}: {e}", target.host, target.port))
        })?;
        let _ = tcp.set_nodelay(true);
        if !target.https {
            return exchange(tcp, target, body).await;
        }
        let name = ServerName::try_from(target.host.clone()).map_err(|_| {
            DeliverError::Config("the notification host is not a valid name".into())
        })?;
        let tls = tokio::time::timeout(connect_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| timed_out("TLS handshake"))?
            .map_err(|e| DeliverError::Network(format!("TLS with {}: {e}", target.host)))?;
        exchange(tls, target, body).await
    }
}

/// Aborts the connection's task when the exchange ends, however it ends.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange<IO>(io: IO, target: &Target, body: String) -> Result<Reply, DeliverError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let broken = |e: hyper::Error| DeliverError::Network(format!("HTTP: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(broken)?;
    let _conn = Abort(tokio::spawn(async move {
        let _ = conn.await;
    }));
    // An IPv6 address goes back into brackets in the Host header.
    let host = match target.host.contains(':') {
        true => format!("[{}]", target.host),
        false => target.host.clone(),
    };
    let host = match (target.https, target.port) {
        (false, 80) | (true, 443) => host,
        (_, port) => format!("{host}:{port}"),
    };
    let request = hyper::Request::post(target.path_and_query.as_str())
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(hyper::header::USER_AGENT, "assist-gateway-notifications")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| DeliverError::Config("the notification URL's path is not valid".into()))?;
    let response = sender.send_request(request).await.map_err(broken)?;
    let status = response.status().as_u16();
    Ok(Reply {
        status,
        body: bounded_body(response.into_body()).await?,
    })
}

/// At most one byte more than an acknowledgement may have.
async fn bounded_body(mut body: Incoming) -> Result<Bytes, DeliverError> {
    let mut read = BytesMut::new();
    while read.len() <= MAX_ANSWER {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| DeliverError::Network(format!("reading the answer: {e}")))?;
        if let Ok(data) = frame.into_data() {
            read.extend_from_slice(&data);
        }
    }
    read.truncate(MAX_ANSWER + 1);
    Ok(read.freeze())
}

impl Deliver for HttpDeliver {
    fn deliver<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Reply, DeliverError>> {
        Box::pin(async move {
            let target = Target::parse(&request.url, &self.config.allowed_ports)?;
            tokio::time::timeout(
                self.config.total_timeout,
                self.post(&target, request.body()),
            )
            .await
            .map_err(|_| DeliverError::Network("no complete answer within the time-out".into()))?
        })
    }
}
