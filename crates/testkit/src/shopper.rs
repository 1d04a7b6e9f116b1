//! A shopper without scripts, over plain HTTP (no browser): reads the payment page's form,
//! posts a typed card or a saved card's CVC, follows the redirects to the simulator's ACS and
//! back, answers a 3-D Secure challenge, and reads the page that shows the result.
//!
//! Owns only the walk from page to page; the pages decide everything. Cheap to clone and safe
//! to use from many tasks at once (one keep-alive [`Client`]), so a load tool can run many
//! shoppers. Must never put a card number or a CVC anywhere but the one form body that carries
//! it: not in an error, a URL or a log.

use std::net::SocketAddr;

use crate::http::{Answer, Client, HttpError};

/// The most redirects one submission follows: page → ACS → page's return → page is three.
const MAX_REDIRECTS: usize = 8;

/// A card as the shopper types it on the page.
#[derive(Clone, Copy)]
pub struct TypedCard<'a> {
    /// The number.
    pub pan: &'a str,
    /// Expiry month, `MM`.
    pub exp_month: &'a str,
    /// Expiry year, `YY`.
    pub exp_year: &'a str,
    /// The CVC.
    pub cvc: &'a str,
    /// The name on the card.
    pub holder: &'a str,
    /// "Remember this card" ticked: saved, with 3-D Secure first.
    pub remember: bool,
}

impl std::fmt::Debug for TypedCard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedCard")
            .field("pan", &crate::cards::masked(self.pan))
            .field("remember", &self.remember)
            .finish_non_exhaustive()
    }
}

impl<'a> TypedCard<'a> {
    /// `pan` with the CVC the simulator's issuer expects, expiry 12/30 and a holder's name,
    /// remembered.
    pub fn remembered(pan: &'a str) -> TypedCard<'a> {
        TypedCard {
            pan,
            exp_month: "12",
            exp_year: "30",
            cvc: crate::cards::CVC,
            holder: "IVAN IVANOV",
            remember: true,
        }
    }
}

/// What the page showed once the submission settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageState {
    /// The result page of an approved payment.
    Paid,
    /// The result page of a declined payment.
    Declined,
    /// A notice (its id: `processing`, `timed-out`, `limit`, `unavailable`, …).
    Notice(String),
    /// The form again (its HTTP status): the submission was refused (a field, a stale form).
    Form(u16),
}

/// A submission's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// What the page showed at the end.
    pub state: PageState,
    /// Whether the ACS asked for a challenge (and the shopper answered it).
    pub challenged: bool,
    /// The card as the result page shows it (`•••• 1111  12/30`), if it does.
    pub card: Option<String>,
}

/// Why a walk stopped before a page with a result: the system answered something no page
/// flow gives. Never quotes a page (it could show a card's last digits with other details).
#[derive(Debug, thiserror::Error)]
pub enum ShopperError {
    /// The request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A page lacked what the next step needs (a form field, a chip).
    #[error("{page}: no {what}")]
    Missing {
        /// The page's URL.
        page: String,
        /// What was looked for.
        what: &'static str,
    },
    /// An answer no page flow gives at this point.
    #[error("{url}: status {status}")]
    Status {
        /// Where it came from.
        url: String,
        /// Its status.
        status: u16,
    },
    /// More than [`MAX_REDIRECTS`] redirects in a row.
    #[error("more than {MAX_REDIRECTS} redirects from {0}")]
    Redirects(String),
}

/// The shopper's browser, with scripts off, at the authorizer's API.
#[derive(Debug, Clone)]
pub struct Shopper {
    /// `http://host:port` of the authorizer's merchant API, where the pages are.
    origin: String,
    http: Client,
}

impl Shopper {
    /// A shopper for the pages served at `api`.
    pub fn new(api: SocketAddr) -> Shopper {
        Shopper {
            origin: format!("http://{api}"),
            http: Client::default(),
        }
    }

    /// An absolute URL for `location`: as it is if it has an origin, else on the pages' own.
    fn url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.origin)
        }
    }

    /// Pays order page `page` (`/pay/page/{bill}` or the absolute URL payrequest.cfm gave) with
    /// a typed card; a challenge at the ACS is answered with `challenge_code`.
    pub async fn pay_new(
        &self,
        page: &str,
        card: TypedCard<'_>,
        challenge_code: &str,
    ) -> Result<Submitted, ShopperError> {
        let page = self.url(page);
        let form = self.page(&page).await?;
        let csrf = hidden(&form.body, "csrf").ok_or(ShopperError::Missing {
            page: page.clone(),
            what: "csrf form token",
        })?;
        // Finished before the await: the serializer is not `Send`, and a load tool runs shoppers
        // on spawned tasks.
        let body = {
            let mut body = form_urlencoded::Serializer::new(String::new());
            body.extend_pairs([
                ("csrf", csrf.as_str()),
                ("pan", card.pan),
                ("exp_month", card.exp_month),
                ("exp_year", card.exp_year),
                ("cvc", card.cvc),
                ("holder", card.holder),
            ]);
            if card.remember {
                body.append_pair("remember", "1");
            }
            body.finish()
        };
        let answer = self.http.post_form(&page, &body).await?;
        self.settle(&page, answer, challenge_code).await
    }

    /// Pays order page `page` One Click: chooses the saved card ending in `last4` among the
    /// page's chips and types only its CVC.
    pub async fn pay_saved(
        &self,
        page: &str,
        last4: &str,
        cvc: &str,
    ) -> Result<Submitted, ShopperError> {
        let page = self.url(page);
        let first = self.page(&page).await?;
        let chip = chip_href(&first.body, last4).ok_or(ShopperError::Missing {
            page: page.clone(),
            what: "saved card chip",
        })?;
        let chosen = self.page(&self.url(&chip)).await?;
        let missing = |what| ShopperError::Missing {
            page: page.clone(),
            what,
        };
        let csrf = hidden(&chosen.body, "csrf").ok_or_else(|| missing("csrf form token"))?;
        let token = hidden(&chosen.body, "card").ok_or_else(|| missing("chosen card"))?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", csrf.as_str()), ("card", &token), ("cvc", cvc)])
            .finish();
        let answer = self
            .http
            .post_form(&format!("{page}/oneclick"), &body)
            .await?;
        self.settle(&page, answer, "").await
    }

    /// The page at `url`, which must answer 200.
    async fn page(&self, url: &str) -> Result<Answer, ShopperError> {
        let answer = self.http.get(url).await?;
        match answer.status {
            200 => Ok(answer),
            status => Err(ShopperError::Status {
                url: url.to_owned(),
                status,
            }),
        }
    }

    /// Follows a submission's answer to the page that shows its result, answering a challenge
    /// of the ACS on the way.
    async fn settle(
        &self,
        page: &str,
        mut answer: Answer,
        challenge_code: &str,
    ) -> Result<Submitted, ShopperError> {
        let mut url = page.to_owned();
        let mut challenged = false;
        for _ in 0..MAX_REDIRECTS {
            if let (303 | 302, Some(location)) = (answer.status, answer.header("location")) {
                url = absolute(&url, location);
                answer = self.http.get(&url).await?;
                continue;
            }
            if let Some(acs_trans_id) = challenge(&answer.body) {
                challenged = true;
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("acs_trans_id", acs_trans_id.as_str())])
                    .append_pair("code", challenge_code)
                    .finish();
                url = absolute(&url, "/acs/challenge");
                answer = self.http.post_form(&url, &body).await?;
                continue;
            }
            return Ok(Submitted {
                state: state_of(&answer).ok_or(ShopperError::Status {
                    url,
                    status: answer.status,
                })?,
                challenged,
                card: between(&answer.body, "<p class=\"chip\">", "</p>").map(unescape),
            });
        }
        Err(ShopperError::Redirects(page.to_owned()))
    }
}

/// `location` resolved against `from`'s origin.
fn absolute(from: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let scheme_end = from.find("://").map_or(0, |i| i + 3);
    let origin_end = from[scheme_end..]
        .find('/')
        .map_or(from.len(), |i| scheme_end + i);
    format!("{}{location}", &from[..origin_end])
}

/// The value of the hidden input `name` of a page.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    between(page, &format!(r#"name="{name}" value=""#), "\"").map(unescape)
}

/// The text between the first `start` and the next `end`.
fn between<'p>(page: &'p str, start: &str, end: &str) -> Option<&'p str> {
    let at = page.find(start)? + start.len();
    let len = page[at..].find(end)?;
    Some(&page[at..at + len])
}

/// The pages escape `&` and quotes in attribute values and text; a link or a value read back
/// must be unescaped before it is sent.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The link of the active chip of the saved card ending in `last4`.
fn chip_href(page: &str, last4: &str) -> Option<String> {
    between(page, &format!(r#"data-last4="{last4}" href=""#), "\"").map(unescape)
}

/// The ACS's transaction of a challenge page, if `page` is one.
fn challenge(page: &str) -> Option<String> {
    page.contains(r#"<form id="challenge""#)
        .then(|| hidden(page, "acs_trans_id"))
        .flatten()
}

fn state_of(answer: &Answer) -> Option<PageState> {
    let page = &answer.body;
    if let Some(state) = between(page, r#"id="result" data-state=""#, "\"") {
        return match state {
            "paid" => Some(PageState::Paid),
            _ => Some(PageState::Declined),
        };
    }
    if let Some(id) = between(page, r#"<section class="notice" id=""#, "\"") {
        return Some(PageState::Notice(id.to_owned()));
    }
    page.contains(r#"name="csrf""#)
        .then_some(PageState::Form(answer.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_without_an_origin_is_on_the_page_s_own() {
        assert_eq!(
            absolute("http://127.0.0.1:9/acs/creq?x=1", "/acs/challenge"),
            "http://127.0.0.1:9/acs/challenge"
        );
        assert_eq!(absolute("http://a:1/p", "http://b:2/q"), "http://b:2/q");
    }

    #[test]
    fn hidden_values_are_read_back_unescaped() {
        let page = r#"<input type="hidden" name="csrf" value="a&amp;b">"#;
        assert_eq!(hidden(page, "csrf").as_deref(), Some("a&b"));
        assert_eq!(hidden(page, "card"), None);
    }
}
