//! The authorizer process: open the store, start the link with the vault as its card resolver,
//! serve the admin endpoint, and stop cleanly when told to (mini-redis style: `main` parses flags
//! and calls [`run`]).
//!
//! Owns the wiring between parts, nothing else. It must never start serving before the
//! configuration and the store are known good.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use link::{Link, StartError};

use crate::cards::VaultCards;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("data directory")]
    DataDir(#[source] std::io::Error),
    #[error("store")]
    Store(#[from] store::StoreError),
    #[error("link")]
    Link(#[from] StartError),
    #[error("admin endpoint")]
    Admin(#[source] std::io::Error),
}

/// Runs the authorizer until `shutdown` resolves.
pub async fn run(
    config: Config,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    std::fs::create_dir_all(&config.data_dir).map_err(RunError::DataDir)?;
    let store = store::Store::open(config.store_engine, &config.data_dir.join("authorizer.db"))?;
    let v = config.vault;
    let cards = VaultCards::connecting(v.endpoint, v.credentials, v.options);
    // The vault may come up after us: reversals wait for it (held, not sent without the card).
    match cards.ready().await {
        Ok(()) => tracing::info!("vault connected"),
        Err(e) => tracing::warn!(error = %e, "vault not usable yet; reversals will wait for it"),
    }
    let link = Link::start(config.link, store, Arc::new(cards))?;
    tracing::info!(admin = ?admin.local_addr().ok(), "authorizer running");
    let served = crate::admin::serve(admin, link.clone(), shutdown).await;
    link.shutdown().await;
    served.map_err(RunError::Admin)
}
