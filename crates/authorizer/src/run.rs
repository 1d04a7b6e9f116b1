//! The authorizer process: open the store, start the link with the vault as its card resolver,
//! serve the merchant API (the facade) and the admin endpoint, and stop cleanly when told to
//! (mini-redis style: `main` parses flags and calls [`run`]).
//!
//! Owns the wiring between parts, nothing else. It must never start serving before the
//! configuration and the store are known good, and on shutdown both listeners stop taking new
//! connections while requests already started finish.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use facade::Facade;
use link::{Link, StartError};
use vault::Role;

use crate::cards::VaultCards;
use crate::config::Config;
use crate::saved_cards::FacadeVault;
use crate::vault_client::LazyVault;

/// Why the process stopped with an error.
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
    #[error("merchant API")]
    Api(#[source] std::io::Error),
}

/// The process's two listeners, bound by the caller (so a test can bind port 0).
#[derive(Debug)]
pub struct Listeners {
    /// The merchant API.
    pub api: TcpListener,
    /// Metrics and health.
    pub admin: TcpListener,
}

/// Runs the authorizer until `shutdown` resolves.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    std::fs::create_dir_all(&config.data_dir).map_err(RunError::DataDir)?;
    let store = store::Store::open(config.store_engine, &config.data_dir.join("authorizer.db"))?;
    // One connection per role, shared by everything that speaks in it.
    let v = config.vault;
    let authorizer_vault = Arc::new(LazyVault::connecting(v.endpoint, v.credentials, v.options));
    let f = config.facade_vault;
    let facade_vault = Arc::new(LazyVault::connecting(f.endpoint, f.credentials, f.options));
    // The vault may come up after us: reversals wait for it (held, not sent without the card),
    // and One Click answers "internal error" until it is there.
    let cards = VaultCards::shared(authorizer_vault.clone());
    match cards.ready().await {
        Ok(()) => tracing::info!("vault connected"),
        Err(e) => tracing::warn!(error = %e, "vault not usable yet; reversals will wait for it"),
    }
    if let Err(e) = facade_vault
        .expect_role(Role::Facade, "list or remove saved cards")
        .await
    {
        tracing::warn!(error = %e, "the facade's vault client is not usable yet");
    }
    let link = Link::start(config.link, store, Arc::new(cards))?;
    let facade = Arc::new(Facade::new(
        config.merchants,
        Arc::new(FacadeVault(facade_vault)),
    ));
    tracing::info!(
        api = ?listeners.api.local_addr().ok(),
        admin = ?listeners.admin.local_addr().ok(),
        "authorizer running"
    );
    // One shutdown for both servers.
    let (stop, stopped) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    let until_stopped = |mut rx: watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let api = axum::serve(listeners.api, facade.clone().router())
        .with_graceful_shutdown(until_stopped(stopped.clone()));
    let admin = crate::admin::serve(
        listeners.admin,
        link.clone(),
        facade,
        until_stopped(stopped),
    );
    let (api, admin) = tokio::join!(api, admin);
    link.shutdown().await;
    api.map_err(RunError::Api)?;
    admin.map_err(RunError::Admin)
}
