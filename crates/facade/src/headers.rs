//! The header policy of every answer the merchant API and the payment pages give, errors
//! included: nothing cached (answers carry order states and card masks), no content sniffing, no
//! referrer (a page's URL is its order's capability).
//!
//! Owns the list of headers; must never drop a header a handler set for a reason of its own
//! (`Location`, `Allow`, `Content-Type`, a page's `Content-Security-Policy`, and the
//! `Cache-Control` of the pages' two static files, the only answers that may be cached).

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::response::Response;

/// The policy's headers and values.
pub const POLICY: [(axum::http::HeaderName, &str); 3] = [
    (CACHE_CONTROL, "no-store"),
    (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (REFERRER_POLICY, "no-referrer"),
];

/// Sets the policy's headers on an answer (a `map_response` layer).
pub async fn strict(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in POLICY {
        if name == CACHE_CONTROL && headers.contains_key(CACHE_CONTROL) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
