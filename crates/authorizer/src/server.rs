//! The authorizer process: open the store, start the link, serve the admin endpoint, and stop
//! cleanly when told to (mini-redis style: `main` parses flags and calls [`run`]).
//!
//! Owns the wiring between parts, nothing else. It must never start serving before the
//! configuration and the store are known good.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::link::{CardRef, CardResolver, Link, LinkError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("data directory: {0}")]
    DataDir(std::io::Error),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("link: {0}")]
    Link(#[from] LinkError),
    #[error("admin endpoint: {0}")]
    Admin(std::io::Error),
}

/// Until the vault client is wired in (order engine issue), the process cannot find a PAN again:
/// reversals from store-and-forward go without DE 2, identified by DE 90 and DE 37.
#[derive(Debug)]
struct NoVaultYet;

impl CardResolver for NoVaultYet {
    fn resolve<'a>(&'a self, _card: &'a CardRef) -> BoxFuture<'a, Option<card::Pan>> {
        Box::pin(async { None })
    }
}

/// Runs the authorizer until `shutdown` resolves.
pub async fn run(
    config: Config,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    std::fs::create_dir_all(&config.data_dir).map_err(RunError::DataDir)?;
    let store = store::Store::open(config.store_engine, &config.data_dir.join("authorizer.db"))?;
    let link = Link::start(config.link, store, Arc::new(NoVaultYet))?;
    tracing::info!(admin = ?admin.local_addr().ok(), "authorizer running");
    let served = crate::admin::serve(admin, link.clone(), shutdown).await;
    link.shutdown().await;
    served.map_err(RunError::Admin)
}
