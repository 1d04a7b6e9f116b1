//! The admin HTTP endpoint: `/metrics` in Prometheus text, `/health` for liveness.
//!
//! Owns only the operator's read-only view. It must never expose card data, configuration
//! secrets, or anything that changes state.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use link::{ConnectionState, Link};

async fn metrics(State(link): State<Link>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        link.metrics().render(),
    )
}

async fn health(State(link): State<Link>) -> impl IntoResponse {
    if link
        .metrics()
        .slots
        .iter()
        .enumerate()
        .any(|(i, _)| link.metrics().state(i) == ConnectionState::Up)
    {
        (StatusCode::OK, "link up\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "link down\n")
    }
}

pub fn router(link: Link) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(link)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    link: Link,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(link))
        .with_graceful_shutdown(shutdown)
        .await
}
