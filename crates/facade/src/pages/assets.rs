//! The pages' two first-party files, built into the binary: `pay.css` and `pay.js`. Nothing is
//! loaded from anywhere else (no third-party scripts, fonts or images).
//!
//! Owns their bytes and caching. Must never serve anything but these two names.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("pay.css");
const JS: &str = include_str!("pay.js");

/// `GET /pay/static/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "pay.css" => (CSS, "text/css; charset=utf-8"),
        "pay.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            // Short enough that a new release reaches shoppers within the hour; the file names
            // carry no version.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}
