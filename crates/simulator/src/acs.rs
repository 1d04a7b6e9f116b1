//! The 3-D Secure access control server (ACS): HTML pages for a shopper's browser and a JSON
//! twin for tests, issuing the CAVVs that the issuer side verifies on the authorization.
//!
//! Owns the pending challenges and the page and API handlers. It must never keep a PAN (a
//! pending challenge holds the card's fingerprint) nor put one in a page, URL or log: pages
//! show the last four digits at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router, routing};
use card::Pan;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth_value::CardFingerprint;
use crate::cards::{self, Enrolment};
use crate::issuer::Issuer;

/// The one-time code that passes a challenge; any other code fails it.
pub const CHALLENGE_CODE: &str = "1234";
const MAX_PENDING: usize = 10_000;
const PENDING_TTL: Duration = Duration::from_secs(600);
const MAX_URL_LEN: usize = 2048;

/// Outcome of an authentication, as the JSON API returns it and as the redirect's query carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResult {
    /// `Y` authenticated, `A` attempted, `N` failed, `C` challenge required (JSON API only).
    pub status: String,
    /// Electronic commerce indicator for DE 48.20: `05` authenticated, `06` attempted, `07` failed;
    /// absent while a challenge is pending.
    pub eci: Option<String>,
    /// The authentication value for DE 48.21, bound to this card and `ds_trans_id`; present only
    /// for `Y` and `A`.
    pub cavv: Option<String>,
    /// The directory-server transaction ID (a UUID) for DE 48.23.
    pub ds_trans_id: String,
    /// Set when `status` is `C`: pass it to the challenge call.
    pub acs_trans_id: Option<String>,
}

#[derive(Debug)]
struct Pending {
    card: CardFingerprint,
    /// What the challenge page shows of the card (a 3DS server's browser entry has no PAN).
    last4: String,
    ds_trans_id: String,
    return_url: Option<String>,
    created: Instant,
}

/// Shared state of the ACS handlers.
#[derive(Debug)]
pub struct Acs {
    issuer: Arc<Issuer>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// What the ACS decided at the start of an authentication.
enum Start {
    Done(AuthResult),
    Challenge {
        acs_trans_id: String,
        ds_trans_id: String,
        last4: String,
    },
}

#[derive(Debug)]
enum AcsError {
    BadReturnUrl,
    UnknownTransaction,
    Busy,
}

impl IntoResponse for AcsError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            AcsError::BadReturnUrl => (
                StatusCode::BAD_REQUEST,
                "return_url must be an http(s) URL of at most 2048 bytes",
            ),
            AcsError::UnknownTransaction => (
                StatusCode::NOT_FOUND,
                "unknown or already completed ACS transaction",
            ),
            AcsError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many pending challenges",
            ),
        };
        (status, text).into_response()
    }
}

impl Acs {
    /// An ACS with no pending challenge, deciding enrolment from the test-card table and signing
    /// CAVVs with `issuer`'s key.
    pub fn new(issuer: Arc<Issuer>) -> Acs {
        Acs {
            issuer,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn result(
        &self,
        card: CardFingerprint,
        ds_trans_id: String,
        status: &str,
        eci: &str,
    ) -> AuthResult {
        let cavv = matches!(status, "Y" | "A").then(|| {
            let cavv = self
                .issuer
                .key()
                .cavv(card, ds_trans_id.as_bytes(), eci.as_bytes());
            cavv.as_str().to_owned()
        });
        AuthResult {
            status: status.to_owned(),
            eci: Some(eci.to_owned()),
            cavv,
            ds_trans_id,
            acs_trans_id: None,
        }
    }

    fn start(&self, pan: &str, return_url: Option<String>) -> Result<Start, AcsError> {
        let ds_trans_id = Uuid::new_v4().to_string();
        let digits: String = pan.chars().filter(|c| !c.is_whitespace()).collect();
        let Ok(pan) = Pan::parse_checked(&digits) else {
            return Ok(Start::Done(AuthResult {
                status: "N".into(),
                eci: Some("07".into()),
                cavv: None,
                ds_trans_id,
                acs_trans_id: None,
            }));
        };
        let card = self.issuer.key().fingerprint(pan.expose());
        match cards::profile(pan.expose()).enrolment {
            Enrolment::Frictionless => Ok(Start::Done(self.result(card, ds_trans_id, "Y", "05"))),
            Enrolment::Attempts => Ok(Start::Done(self.result(card, ds_trans_id, "A", "06"))),
            Enrolment::Challenge => {
                let acs_trans_id = Uuid::new_v4().to_string();
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if pending.len() >= MAX_PENDING {
                    pending.retain(|_, p| p.created.elapsed() < PENDING_TTL);
                    if pending.len() >= MAX_PENDING {
                        return Err(AcsError::Busy);
                    }
                }
                let last4 = pan.last4().to_string();
                pending.insert(
                    acs_trans_id.clone(),
                    Pending {
                        card,
                        last4: last4.clone(),
                        ds_trans_id: ds_trans_id.clone(),
                        return_url,
                        created: Instant::now(),
                    },
                );
                Ok(Start::Challenge {
                    acs_trans_id,
                    ds_trans_id,
                    last4,
                })
            }
        }
    }

    /// The last four digits of a pending challenge's card, for its page.
    fn pending_last4(&self, acs_trans_id: &str) -> Option<String> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(acs_trans_id)
            .filter(|p| p.created.elapsed() < PENDING_TTL)
            .map(|p| p.last4.clone())
    }

    /// Completes a challenge; one attempt per transaction.
    fn challenge(
        &self,
        acs_trans_id: &str,
        code: &str,
    ) -> Result<(AuthResult, Option<String>), AcsError> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(acs_trans_id)
            .filter(|p| p.created.elapsed() < PENDING_TTL)
            .ok_or(AcsError::UnknownTransaction)?;
        let result = if code.trim() == CHALLENGE_CODE {
            self.result(pending.card, pending.ds_trans_id, "Y", "05")
        } else {
            self.result(pending.card, pending.ds_trans_id, "N", "07")
        };
        Ok((result, pending.return_url))
    }
}

/// The ACS routes, mounted by the HTTP server next to the ledger endpoint.
pub fn routes(acs: Arc<Acs>) -> Router {
    Router::new()
        .route("/", routing::get(index))
        .route("/acs/authenticate", routing::post(page_start))
        .route("/acs/creq", routing::get(page_creq))
        .route("/acs/challenge", routing::post(page_challenge))
        .route("/acs/api/authenticate", routing::post(api_start))
        .route("/acs/api/challenge", routing::post(api_challenge))
        .with_state(acs)
}

#[derive(Deserialize)]
struct StartRequest {
    pan: String,
    #[serde(default)]
    return_url: Option<String>,
}

#[derive(Deserialize)]
struct ChallengeRequest {
    acs_trans_id: String,
    code: String,
}

fn checked_url(url: Option<String>) -> Result<Option<String>, AcsError> {
    match url {
        None => Ok(None),
        Some(url) if url.is_empty() => Ok(None),
        Some(url)
            if url.len() <= MAX_URL_LEN
                && (url.starts_with("http://") || url.starts_with("https://"))
                && url.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(url))
        }
        Some(_) => Err(AcsError::BadReturnUrl),
    }
}

async fn index() -> Html<&'static str> {
    Html(INDEX_PAGE)
}

async fn page_start(State(acs): State<Arc<Acs>>, Form(form): Form<StartRequest>) -> Response {
    let return_url = match checked_url(form.return_url) {
        Ok(url) => url,
        Err(e) => return e.into_response(),
    };
    match acs.start(&form.pan, return_url.clone()) {
        Ok(Start::Done(result)) => finish(&result, return_url.as_deref()),
        Ok(Start::Challenge {
            acs_trans_id,
            last4,
            ..
        }) => Html(challenge_page(&acs_trans_id, &last4)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct CreqQuery {
    acs_trans_id: String,
}

/// The browser's entry when a 3DS server started the authentication through the JSON API (the
/// PAN went server to server): only the ACS's transaction id comes with the browser, and the
/// challenge page is the same as after `/acs/authenticate`.
async fn page_creq(State(acs): State<Arc<Acs>>, Query(q): Query<CreqQuery>) -> Response {
    match acs.pending_last4(&q.acs_trans_id) {
        Some(last4) => Html(challenge_page(&q.acs_trans_id, &last4)).into_response(),
        None => AcsError::UnknownTransaction.into_response(),
    }
}

async fn page_challenge(
    State(acs): State<Arc<Acs>>,
    Form(form): Form<ChallengeRequest>,
) -> Response {
    match acs.challenge(&form.acs_trans_id, &form.code) {
        Ok((result, return_url)) => finish(&result, return_url.as_deref()),
        Err(e) => e.into_response(),
    }
}

async fn api_start(State(acs): State<Arc<Acs>>, Json(body): Json<StartRequest>) -> Response {
    let return_url = match checked_url(body.return_url) {
        Ok(url) => url,
        Err(e) => return e.into_response(),
    };
    match acs.start(&body.pan, return_url) {
        Ok(Start::Done(result)) => Json(result).into_response(),
        Ok(Start::Challenge {
            acs_trans_id,
            ds_trans_id,
            ..
        }) => Json(AuthResult {
            status: "C".into(),
            eci: None,
            cavv: None,
            ds_trans_id,
            acs_trans_id: Some(acs_trans_id),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn api_challenge(
    State(acs): State<Arc<Acs>>,
    Json(body): Json<ChallengeRequest>,
) -> Response {
    match acs.challenge(&body.acs_trans_id, &body.code) {
        Ok((result, _)) => Json(result).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Back to the caller: a 303 to its URL with the result in the query, or, without a URL, a page
/// that shows the result.
fn finish(result: &AuthResult, return_url: Option<&str>) -> Response {
    let Some(url) = return_url else {
        return Html(result_page(result)).into_response();
    };
    let mut location = String::from(url);
    location.push(if url.contains('?') { '&' } else { '?' });
    let mut pairs = vec![
        ("status", result.status.as_str()),
        ("ds_trans_id", &result.ds_trans_id),
    ];
    if let Some(eci) = &result.eci {
        pairs.push(("eci", eci));
    }
    if let Some(cavv) = &result.cavv {
        pairs.push(("cavv", cavv));
    }
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            location.push('&');
        }
        location.push_str(name);
        location.push('=');
        percent_encode(value, &mut location);
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

const INDEX_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Simulator ACS</title></head>
<body>
<h1>3-D Secure ACS (simulator)</h1>
<form method="post" action="/acs/authenticate">
<label>Card number <input name="pan" autocomplete="off" inputmode="numeric"></label>
<label>Return URL <input name="return_url" type="url"></label>
<button type="submit">Authenticate</button>
</form>
</body></html>
"#;

/// The challenge page; `last4` is four digits and `acs_trans_id` a pending transaction's UUID
/// (looked up before it gets here), so neither needs escaping.
fn challenge_page(acs_trans_id: &str, last4: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Verify your payment</title></head>
<body>
<h1>Verify your payment</h1>
<p>We sent a one-time code for the card ending in <span id="last4">{last4}</span>.</p>
<form id="challenge" method="post" action="/acs/challenge">
<input type="hidden" name="acs_trans_id" value="{acs_trans_id}">
<label for="code">One-time code</label>
<input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" maxlength="8" required>
<button id="submit" type="submit">Confirm</button>
</form>
</body></html>
"#
    )
}

fn result_page(result: &AuthResult) -> String {
    // Every value here is one the ACS produced itself: status letters, ECI digits, base64 and a
    // UUID, none of which can carry markup.
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authentication result</title></head>\n<body><h1>Authentication result</h1><dl>\n<dt>status</dt><dd id=\"status\">{}</dd>\n<dt>eci</dt><dd id=\"eci\">{}</dd>\n<dt>cavv</dt><dd id=\"cavv\">{}</dd>\n<dt>ds_trans_id</dt><dd id=\"ds_trans_id\">{}</dd>\n</dl></body></html>\n",
        result.status,
        result.eci.as_deref().unwrap_or(""),
        result.cavv.as_deref().unwrap_or(""),
        result.ds_trans_id,
    )
}
