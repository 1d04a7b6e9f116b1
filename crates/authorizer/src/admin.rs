//! The admin HTTP endpoint: `/metrics` in Prometheus text (the link's, the facade's and the
//! outbox's), `/health` for liveness, `/ready` for readiness, and the operator's commands: `POST /cutoff/<merchant_id>`,
//! the merchant's settlement cut-off now (its payments' cancels are refunds from then on);
//! `GET /notifications/<billnumber>`, an order's result notifications with every attempt (JSON);
//! `POST /notifications/<billnumber>/resend`, every notification of the order re-sent by hand
//! (`<billnumber>.<n>`: only operation n's).
//!
//! Owns the operator's view and those commands. It must never expose card data or configuration
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
use outbox::{NoticeId, Outbox, OutboxError};

use crate::vault_client::{LazyVault, describe};

/// What the admin endpoint reads.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The link (metrics, readiness).
    pub link: Link,
    /// The vault connections of both roles (`authorizer`, `facade`), for readiness: a payment
    /// needs the first to detokenize and the second to grant it.
    pub vaults: [Arc<LazyVault>; 2],
    /// The merchant directory and the facade's counters.
    pub facade: Arc<Facade>,
    /// The cut-off.
    pub engine: Arc<Engine>,
    /// Result notifications.
    pub outbox: Arc<Outbox>,
}

async fn metrics(State(parts): State<Parts>) -> impl IntoResponse {
    let mut text = parts.link.metrics().render();
    text.push_str(&parts.facade.metrics());
    text.push_str(&parts.outbox.metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Liveness: answered while the process serves at all. A supervisor restarts a process whose
/// `/health` stops answering; a peer being away is no reason to, so nothing else is checked.
async fn health() -> &'static str {
    "ok\n"
}

/// Readiness: 200 when a payment could be taken now, else 503 with the first reason (short,
/// plain, nothing about cards or secrets). Recovery has run and the store is open by
/// construction: `run` starts serving this endpoint only after both (before, a probe's connection
/// waits unanswered in the listen backlog). What can come and go is checked on each probe: a
/// link connection signed on, and the vault answering both of the authorizer's clients (without
/// a request while their connections are open, so probes add nothing to the vault's audit log).
async fn ready(State(Parts { link, vaults, .. }): State<Parts>) -> (StatusCode, &'static str) {
    let metrics = link.metrics();
    if !(0..metrics.slots.len()).any(|i| metrics.state(i) == ConnectionState::Up) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no link connection is up\n",
        );
    }
    for vault in &vaults {
        if let Err(e) = vault.reachable().await {
            tracing::debug!(error = %describe(&e), "readiness: the vault does not answer");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the vault does not answer\n",
            );
        }
    }
    (StatusCode::OK, "ready\n")
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
    match engine.run_cutoff(&facade.merchant_settings(merchant)).await {
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

/// `<billnumber>` or `<billnumber>.<n>` as the operator types it.
fn bill_ref(text: &str) -> Option<(u64, Option<u32>)> {
    let (bill, op) = match text.split_once('.') {
        Some((b, n)) => (b, Some(n.parse().ok()?)),
        None => (text, None),
    };
    (bill.len() == 16 && bill.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Some((bill.parse().ok()?, op)))
        .flatten()
}

async fn notifications(
    State(Parts { outbox, .. }): State<Parts>,
    Path(bill): Path<String>,
) -> axum::response::Response {
    let Some((bill, _)) = bill_ref(&bill) else {
        return (StatusCode::BAD_REQUEST, "not a billnumber\n").into_response();
    };
    match outbox.notifications(None, bill) {
        Ok(list) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&list).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "reading notifications failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "reading notifications failed\n",
            )
                .into_response()
        }
    }
}

async fn resend(
    State(Parts { outbox, .. }): State<Parts>,
    Path(bill): Path<String>,
) -> (StatusCode, String) {
    let Some((bill, op)) = bill_ref(&bill) else {
        return (StatusCode::BAD_REQUEST, "not a billnumber\n".into());
    };
    let ids: Vec<NoticeId> = match outbox.notifications(None, bill) {
        Ok(list) => list
            .into_iter()
            .map(|v| v.notice.id)
            .filter(|id| op.is_none_or(|n| n == id.operation))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading notifications failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "reading notifications failed\n".into(),
            );
        }
    };
    if ids.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            "no notification of this order\n".into(),
        );
    }
    for id in &ids {
        match outbox.resend(None, *id).await {
            Ok(_) => {}
            Err(e @ OutboxError::InFlight(_)) => return (StatusCode::CONFLICT, format!("{e}\n")),
            Err(e) => {
                tracing::warn!(error = %e, "re-sending a notification failed");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "re-sending failed\n".into(),
                );
            }
        }
    }
    (StatusCode::OK, format!("re-sent {}\n", ids.len()))
}

/// The admin routes.
pub fn router(parts: Parts) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/cutoff/{merchant}", post(cutoff))
        .route("/notifications/{bill}", get(notifications))
        .route("/notifications/{bill}/resend", post(resend))
        .with_state(parts)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(parts))
        .with_graceful_shutdown(shutdown)
        .await
}
