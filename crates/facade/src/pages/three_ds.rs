//! 3-D Secure for a first payment that saves a card: the 3DS-server leg (the AReq, server to
//! server: the PAN goes to the ACS's API, never through the shopper's browser), the browser's
//! trip to the ACS with nothing but the ACS's transaction id, and the typed card held while the
//! challenge runs.
//!
//! Owns [`ThreeDsServer`] (and its HTTP client of the ACS's JSON API) and [`HeldCards`]. The held
//! card lives only in this process's memory: zeroized on drop, at most [`MAX_HELD`] of them, each
//! for [`HELD_TTL`], one per order. It is never written to disk, so a crash or restart during a
//! challenge loses it and the shopper types the card again. Must never put a PAN, expiry or CVC
//! into a URL, a page, a log or an error.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use card::{Cvc, Expiry, Pan};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use iso8583::{Cavv, DsTransactionId, Eci};
use link::ThreeDs;
use orders::BillNumber;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Most cards held for challenges at once; past it a new first payment is told to try later.
pub const MAX_HELD: usize = 10_000;
/// How long a held card waits for the ACS's return (the ACS's own challenge lifetime).
pub const HELD_TTL: Duration = Duration::from_secs(600);
/// How long the ACS may take to answer the AReq.
const ACS_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest ACS answer read.
const ANSWER_LIMIT: usize = 8 * 1024;

/// The ACS's answer to the start of an authentication (its JSON API's shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Authentication {
    /// `Y` authenticated, `A` attempted, `N` failed, `C` challenge required.
    pub status: String,
    /// ECI, absent while a challenge is pending.
    pub eci: Option<String>,
    /// The authentication value of `Y` and `A`.
    pub cavv: Option<String>,
    /// The directory server's transaction id.
    pub ds_trans_id: String,
    /// With `C`: the id the browser takes to the ACS.
    pub acs_trans_id: Option<String>,
}

impl Authentication {
    /// The result for the authorization: `Some` only for `Y` and `A` with a known ECI.
    pub(crate) fn three_ds(&self) -> Option<ThreeDs> {
        if !matches!(self.status.as_str(), "Y" | "A") {
            return None;
        }
        Some(ThreeDs {
            eci: self.eci.as_deref().and_then(Eci::parse)?,
            cavv: self.cavv.as_deref().and_then(Cavv::parse),
            version: Some("2.2.0".into()),
            ds_transaction_id: DsTransactionId::parse(&self.ds_trans_id),
        })
    }
}

/// Why the ACS could not be asked. Never carries card data.
#[derive(Debug, thiserror::Error)]
pub enum ThreeDsError {
    /// No connection, a broken exchange or no answer in time: the network's fault.
    #[error("ACS unreachable: {0}")]
    Unreachable(String),
    /// The ACS answered something other than its API's success: a disagreement with it.
    #[error("ACS answered unexpectedly: {0}")]
    Answer(String),
}

/// The 3DS server's side of an authentication, as the pages use it. The authorizer gives the
/// facade an [`HttpAcs`]; unit tests a fake.
pub trait ThreeDsServer: Send + Sync + fmt::Debug {
    /// Starts an authentication of `pan`; the ACS sends the browser back to `return_url`.
    fn authenticate<'a>(
        &'a self,
        pan: &'a Pan,
        return_url: &'a str,
    ) -> BoxFuture<'a, Result<Authentication, ThreeDsError>>;

    /// Where the browser goes for a challenge: the ACS's page for `acs_trans_id`.
    fn challenge_url(&self, acs_trans_id: &str) -> String;

    /// The ACS's origin, which the pages' `form-action` must allow (a form's 303 goes there).
    fn origin(&self) -> &str;
}

/// The simulator's (or any compatible) ACS JSON API over plain HTTP/1.1: `POST
/// {base}/acs/api/authenticate`, and the browser to `GET {base}/acs/creq?acs_trans_id=…`.
#[derive(Debug, Clone)]
pub struct HttpAcs {
    base: String,
    authority: String,
}

/// The ACS URL is not `http://host:port`.
#[derive(Debug, thiserror::Error)]
#[error("the ACS URL must be http://host[:port] without a path (TLS to the ACS is not built)")]
pub struct BadAcsUrl;

impl HttpAcs {
    /// A client of the ACS at `base` (`http://127.0.0.1:8584`).
    pub fn new(base: &str) -> Result<HttpAcs, BadAcsUrl> {
        let base = base.trim_end_matches('/');
        let authority = base.strip_prefix("http://").ok_or(BadAcsUrl)?;
        let ok = !authority.is_empty()
            && authority.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !ok {
            return Err(BadAcsUrl);
        }
        Ok(HttpAcs {
            base: base.to_owned(),
            authority: authority.to_owned(),
        })
    }

    async fn start(&self, pan: &Pan, return_url: &str) -> Result<Authentication, ThreeDsError> {
        let unreachable = |e: &dyn fmt::Display| ThreeDsError::Unreachable(e.to_string());
        let digits = std::str::from_utf8(pan.expose()).unwrap_or_default();
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "pan": digits, "return_url": return_url }))
                .map_err(|e| ThreeDsError::Answer(e.to_string()))?,
        );
        let tcp = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| unreachable(&e))?;
        let driver = tokio::spawn(connection);
        let request = Request::builder()
            .method(Method::POST)
            .uri("/acs/api/authenticate")
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::copy_from_slice(&body)))
            .map_err(|e| ThreeDsError::Answer(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| ThreeDsError::Answer(e.to_string()))?
            .to_bytes();
        drop(sender);
        driver.abort();
        if !status.is_success() {
            return Err(ThreeDsError::Answer(format!("status {status}")));
        }
        serde_json::from_slice(&bytes).map_err(|e| ThreeDsError::Answer(e.to_string()))
    }
}

impl ThreeDsServer for HttpAcs {
    fn authenticate<'a>(
        &'a self,
        pan: &'a Pan,
        return_url: &'a str,
    ) -> BoxFuture<'a, Result<Authentication, ThreeDsError>> {
        Box::pin(async move {
            tokio::time::timeout(ACS_TIMEOUT, self.start(pan, return_url))
                .await
                .map_err(|_| ThreeDsError::Unreachable("no answer in time".into()))?
        })
    }

    fn challenge_url(&self, acs_trans_id: &str) -> String {
        let mut url = format!("{}/acs/creq?acs_trans_id=", self.base);
        url.extend(percent_encoding::utf8_percent_encode(
            acs_trans_id,
            percent_encoding::NON_ALPHANUMERIC,
        ));
        url
    }

    fn origin(&self) -> &str {
        &self.base
    }
}

/// A typed card waiting for its challenge's result. Every part is wiped on drop.
#[derive(Debug)]
pub(crate) struct HeldCard {
    pub(crate) pan: Pan,
    pub(crate) expiry: Expiry,
    pub(crate) cvc: Cvc,
    pub(crate) holder: Option<Zeroizing<String>>,
    /// The authentication it waits for: a return naming another is not this card's.
    ds_trans_id: String,
    since: Instant,
}

impl HeldCard {
    pub(crate) fn new(
        pan: Pan,
        expiry: Expiry,
        cvc: Cvc,
        holder: Option<String>,
        ds_trans_id: String,
    ) -> HeldCard {
        HeldCard {
            pan,
            expiry,
            cvc,
            holder: holder.map(Zeroizing::new),
            ds_trans_id,
            since: Instant::now(),
        }
    }
}

/// The cards waiting for challenges, one per order.
#[derive(Debug, Default)]
pub(crate) struct HeldCards {
    cards: Mutex<HashMap<BillNumber, HeldCard>>,
}

/// No room for another held card.
#[derive(Debug)]
pub(crate) struct NoRoom;

impl HeldCards {
    /// Holds `card` for `bill`, replacing one held before for it.
    pub(crate) fn hold(&self, bill: BillNumber, card: HeldCard) -> Result<(), NoRoom> {
        let mut cards = self.cards.lock().unwrap_or_else(PoisonError::into_inner);
        if cards.len() >= MAX_HELD && !cards.contains_key(&bill) {
            cards.retain(|_, c| c.since.elapsed() < HELD_TTL);
            if cards.len() >= MAX_HELD {
                return Err(NoRoom);
            }
        }
        cards.insert(bill, card);
        Ok(())
    }

    /// Takes `bill`'s card if it waits for `ds_trans_id` and is still fresh. A card waiting for
    /// another authentication stays.
    pub(crate) fn take(&self, bill: BillNumber, ds_trans_id: &str) -> Option<HeldCard> {
        let mut cards = self.cards.lock().unwrap_or_else(PoisonError::into_inner);
        if cards.get(&bill)?.ds_trans_id != ds_trans_id {
            return None;
        }
        cards.remove(&bill).filter(|c| c.since.elapsed() < HELD_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(ds: &str) -> HeldCard {
        HeldCard::new(
            Pan::parse("4111111111111111").unwrap(),
            Expiry::new(3, 2029).unwrap(),
            Cvc::parse("123").unwrap(),
            None,
            ds.into(),
        )
    }

    #[test]
    fn a_held_card_is_taken_once_and_only_by_its_authentication() {
        let cards = HeldCards::default();
        let bill = BillNumber::new(1_234_567_890_123_456).unwrap();
        cards.hold(bill, held("ds-1")).unwrap();
        assert!(cards.take(bill, "ds-2").is_none(), "another authentication");
        assert!(cards.take(bill, "ds-1").is_some());
        assert!(cards.take(bill, "ds-1").is_none(), "taken already");
    }

    #[test]
    fn only_y_and_a_carry_a_result() {
        let auth = |status: &str| Authentication {
            status: status.into(),
            eci: Some("05".into()),
            cavv: None,
            ds_trans_id: "f47ac10b-58cc-4372-a567-0e02b2c3d479".into(),
            acs_trans_id: None,
        };
        assert!(auth("Y").three_ds().is_some());
        assert!(auth("N").three_ds().is_none());
        assert!(auth("C").three_ds().is_none());
    }

    #[test]
    fn the_acs_url_is_plain_http_without_a_path() {
        assert!(HttpAcs::new("http://127.0.0.1:8584/").is_ok());
        assert!(HttpAcs::new("https://acs.test").is_err());
        assert!(HttpAcs::new("http://acs.test/x").is_err());
        let acs = HttpAcs::new("http://127.0.0.1:8584").unwrap();
        assert_eq!(
            acs.challenge_url("a-b"),
            "http://127.0.0.1:8584/acs/creq?acs_trans_id=a%2Db"
        );
    }
}
