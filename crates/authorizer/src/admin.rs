//! The admin HTTP endpoint: `/metrics` in Prometheus text (the link's and the facade's),
//! `/health` for liveness, and the operator's one command, `POST /cutoff/<merchant_id>`: the
//! merchant's settlement cut-off now (its payments' cancels are refunds from then on).
//!
//! Owns the operator's view and that command. It must never expose card data or configuration
//! secrets, and never change an order itself (the cut-off is the engine's).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use facade::Facade;
use link::{ConnectionState, Link};
use orders::Engine;

/// What the admin endpoint reads.
#[derive(Debug, Clone)]
struct Parts {
    link: Link,
    facade: Arc<Facade>,
    engine: Arc<Engine>,
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

async fn cutoff(
    State(Parts { facade, engine, .. }): State<Parts>,
    Path(merchant): Path<String>,
) -> (StatusCode, &'static str) {
    let Some(merchant) = merchant
        .parse()
        .ok()
        .and_then(|id| facade.merchants().get(assist::values::MerchantId(id)))
    else {
        return (StatusCode::NOT_FOUND, "no such merchant\n");
    };
    match engine.run_cutoff(&merchant.settings()).await {
        Ok(()) => {
            tracing::info!(merchant = %merchant.id, "cut-off run by the operator");
            (StatusCode::OK, "cut-off done\n")
        }
        Err(e) => {
            tracing::warn!(error = %e, "cut-off failed");
            (StatusCode::SERVICE_UNAVAILABLE, "cut-off failed\n")
        }
    }
}

/// The admin routes.
pub fn router(link: Link, facade: Arc<Facade>, engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/cutoff/{merchant}", post(cutoff))
        .with_state(Parts {
            link,
            facade,
            engine,
        })
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    link: Link,
    facade: Arc<Facade>,
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(link, facade, engine))
        .with_graceful_shutdown(shutdown)
        .await
}
