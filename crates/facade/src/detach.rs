//! Every request of the merchant API, the payment pages and the cabinet runs to its end in a task
//! of its own, whether or not its client still waits for the answer.
//!
//! The order engine's steps are each durable, and none is undone by dropping the future that
//! runs them: a handler dropped between a message sent to the network and its outcome written
//! (the client timed out, its connection closed) would leave the order In Process, the issuer's
//! approval unrecorded and nothing to reverse it until the next start's recovery. An hour-scale
//! soak found one such order after a stall (README.md, Soak). Owns that one layer; must never
//! answer before the handler has ended.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

/// A `from_fn` middleware: runs the rest of the stack in a spawned task and answers what it
/// answers; a client that goes away drops only the wait.
pub(crate) async fn run_to_end(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        // A handler that panicked: nothing of it in the answer or the log but that it did.
        Err(ended) => {
            tracing::error!(
                panicked = ended.is_panic(),
                "a request's task ended abnormally"
            );
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tokio::sync::{Notify, oneshot};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn a_handler_whose_client_went_away_still_runs_to_its_end() {
        let started = Arc::new(Notify::new());
        let (go, wait) = oneshot::channel::<()>();
        let wait = Arc::new(tokio::sync::Mutex::new(Some(wait)));
        let (done_tx, done) = oneshot::channel::<()>();
        let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
        let handler = {
            let started = started.clone();
            move || async move {
                started.notify_one();
                let wait = wait.lock().await.take().unwrap();
                let _ = wait.await;
                let _ = done_tx.lock().unwrap().take().unwrap().send(());
                "written"
            }
        };
        let app = Router::new()
            .route("/", get(handler))
            .layer(axum::middleware::from_fn(run_to_end));

        let request = axum::http::Request::get("/").body(Body::empty()).unwrap();
        let client = tokio::spawn(app.oneshot(request));
        started.notified().await;
        // The client gives up while the handler is between two steps...
        client.abort();
        assert!(client.await.unwrap_err().is_cancelled());
        // ...and the handler goes on to its end all the same.
        go.send(()).unwrap();
        done.await.expect("the handler ran to its end");
    }
}
