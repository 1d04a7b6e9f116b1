//! A small HTTP client for the ACS's JSON API and the ledger endpoint, so that tests (ours and
//! the link's) can run a 3-D Secure authentication and read the ledger without a browser.
//!
//! Owns only request/response plumbing over one HTTP/1.1 connection per call. It must never log
//! the PAN it sends.

use std::net::SocketAddr;

use bytes::Bytes;
use card::Pan;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::acs::{AuthResult, CHALLENGE_CODE};
use crate::ledger::Ledger;

/// Why a call to the simulator's HTTP side failed. Never carries the PAN that was sent.
#[derive(Debug, thiserror::Error)]
pub enum AcsClientError {
    /// The TCP connection to the HTTP listener failed.
    #[error("cannot reach the ACS: {0}")]
    Connect(std::io::Error),
    /// The HTTP/1.1 exchange broke off (connection closed, malformed response).
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a bad header or URI); a bug on our side.
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The ACS answered with a status other than success (e.g. an unknown challenge).
    #[error("ACS answered {status}")]
    Status {
        /// The status it answered with, for the error message.
        status: StatusCode,
    },
    /// The body did not deserialise into the expected type: the client and the simulator disagree.
    #[error("ACS answered with unexpected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Talks to a simulator's HTTP side at `addr`.
#[derive(Debug, Clone, Copy)]
pub struct AcsClient {
    addr: SocketAddr,
}

#[derive(Serialize)]
struct StartBody<'a> {
    pan: &'a str,
}

#[derive(Serialize)]
struct ChallengeBody<'a> {
    acs_trans_id: &'a str,
    code: &'a str,
}

impl AcsClient {
    /// A client of the simulator whose HTTP listener (ACS and ledger) is at `addr`.
    pub fn new(addr: SocketAddr) -> AcsClient {
        AcsClient { addr }
    }

    /// Starts an authentication: a final result (`Y`, `A`, `N`) or `C` with an `acs_trans_id`.
    pub async fn authenticate(&self, pan: &Pan) -> Result<AuthResult, AcsClientError> {
        let digits = std::str::from_utf8(pan.expose()).unwrap_or_default();
        let body = Zeroizing::new(serde_json::to_vec(&StartBody { pan: digits })?);
        self.call(
            Method::POST,
            "/acs/api/authenticate",
            Bytes::copy_from_slice(&body),
        )
        .await
    }

    /// Answers a challenge with a one-time code.
    pub async fn challenge(
        &self,
        acs_trans_id: &str,
        code: &str,
    ) -> Result<AuthResult, AcsClientError> {
        let body = serde_json::to_vec(&ChallengeBody { acs_trans_id, code })?;
        self.call(Method::POST, "/acs/api/challenge", Bytes::from(body))
            .await
    }

    /// A whole authentication as the cardholder who knows the code: challenges are answered with
    /// [`CHALLENGE_CODE`]. The result carries ECI, CAVV and DS transaction ID for DE 48.
    pub async fn authenticate_passing(&self, pan: &Pan) -> Result<AuthResult, AcsClientError> {
        let started = self.authenticate(pan).await?;
        match (started.status.as_str(), &started.acs_trans_id) {
            ("C", Some(id)) => self.challenge(id, CHALLENGE_CODE).await,
            _ => Ok(started),
        }
    }

    /// The simulator's ledger, as `GET /ledger` serves it.
    pub async fn ledger(&self) -> Result<Ledger, AcsClientError> {
        self.call(Method::GET, "/ledger", Bytes::new()).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<T, AcsClientError> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(AcsClientError::Connect)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        let driver = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        drop(sender);
        let _ = driver.await;
        if !status.is_success() {
            return Err(AcsClientError::Status { status });
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}
