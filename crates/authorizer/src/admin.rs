//! The admin HTTP endpoint: `/metrics` in Prometheus text (the link's and the facade's),
//! `/health` for liveness.
//!
//! Owns only the operator's read-only view. It must never expose card data, configuration
//! secrets, or anything that changes state.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use facade::Facade;
use link::{ConnectionState, Link};

/// What the admin endpoint reads.
#[derive(Debug, Clone)]
struct Parts {
    link: Link,
    facade: Arc<Facade>,
}

async fn metrics(State(parts): State<Parts>) -> impl IntoResponse {
    let mut text = parts.link.metrics().render();
    text.push_str(&parts.facade.metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn health(State(Parts { link, .. }): State<Parts>) -> impl IntoResponse {
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

/// The admin routes.
pub fn router(link: Link, facade: Arc<Facade>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(Parts { link, facade })
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    link: Link,
    facade: Arc<Facade>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(link, facade))
        .with_graceful_shutdown(shutdown)
        .await
}
