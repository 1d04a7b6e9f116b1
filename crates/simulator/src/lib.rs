//! The processing-centre simulator: the outside world of the authorizer's link. An issuer and
//! card network answering ISO 8583 over mutual TLS by deterministic rules (the test-card table of
//! `README.md`), a 3-D Secure ACS on HTTP, fault injection, and a ledger of everything it saw.
//!
//! This file owns the public entry points: [`SimConfig`], [`Simulator::start`] and its
//! [`SimulatorHandle`] for in-process tests, and [`run`] for the binary. It must never depend on
//! the authorizer (it shares only `iso8583` and `card` with it) and never log card data.
#![forbid(unsafe_code)]

pub mod acs;
pub mod acs_client;
pub mod auth_value;
pub mod cards;
pub mod config;
pub mod faults;
pub mod fuzzing;
mod issuer;
pub mod ledger;
pub mod pki;
mod ready;
mod request;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use acs::AuthResult;
pub use acs_client::AcsClient;
pub use auth_value::IssuerKey;
pub use faults::{Fault, FaultMatch, FaultRule, Faults, Latency};
pub use issuer::MAGIC_DECLINES;
pub use ledger::{Action, Balance, Delivery, Ledger, LedgerEntry};
pub use pki::{DevPki, ServerTls};
pub use ready::Ready;

use crate::issuer::Issuer;
use crate::server::Network;

/// Everything the simulator needs to run, validated. `Default` is the dev setup with a fresh,
/// throw-away PKI: use [`SimConfig::with_pki`] when a client must trust the server.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Server identity and the CA that client certificates must chain to.
    pub tls: ServerTls,
    /// Initial fault settings (replaceable at run time through the handle).
    pub faults: Faults,
    /// Where the ledger of this run is written as JSON lines; memory only when `None`.
    pub ledger_path: Option<PathBuf>,
    /// Most ledger entries kept in memory (the file keeps all); older ones are trimmed and the
    /// snapshot says how many. Default [`config::DEFAULT_LEDGER_IN_MEMORY`]; benches and soaks
    /// should set a small cap.
    pub ledger_in_memory: usize,
    /// How long the issuer remembers a payment: its approval for a reversal, completion or
    /// refund, and its STAN for duplicate detection. Older ones are forgotten, so a long run's
    /// memory stays flat. Default [`config::DEFAULT_REMEMBER`].
    pub remember: Duration,
    /// The key of CAVVs and card fingerprints; random per run when `None`.
    pub issuer_key: Option<IssuerKey>,
    /// Concurrent ISO connections; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take over the TLS handshake before it is dropped, so a silent peer
    /// cannot hold a connection slot.
    pub handshake_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig::with_pki(&DevPki::generate())
    }
}

impl SimConfig {
    /// Dev defaults, serving with the server certificate of `pki`.
    pub fn with_pki(pki: &DevPki) -> SimConfig {
        SimConfig {
            tls: pki.server_tls(),
            faults: Faults::default(),
            ledger_path: None,
            ledger_in_memory: config::DEFAULT_LEDGER_IN_MEMORY,
            remember: config::DEFAULT_REMEMBER,
            issuer_key: None,
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The server certificate, key or client CA could not be turned into a TLS configuration.
    #[error("TLS setup: {0}")]
    Tls(#[from] pki::PkiError),
    /// The ledger file could not be created.
    #[error("cannot open the ledger file {path}: {source}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },
    /// A listener given to [`Simulator::start`] cannot report its bound address.
    #[error("listener has no local address: {0}")]
    Listener(std::io::Error),
}

/// Entry point for in-process use.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Serves ISO 8583 on `iso_listener` and the ACS pages and ledger endpoint on
    /// `acs_listener` until the handle is shut down (or dropped).
    pub async fn start(
        config: SimConfig,
        iso_listener: TcpListener,
        acs_listener: TcpListener,
    ) -> Result<SimulatorHandle, SimError> {
        let iso_addr = iso_listener.local_addr().map_err(SimError::Listener)?;
        let acs_addr = acs_listener.local_addr().map_err(SimError::Listener)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config.tls.server_config()?);
        let issuer = Issuer::new(
            config.issuer_key.unwrap_or_else(IssuerKey::random),
            config.ledger_path.as_deref(),
            config.ledger_in_memory,
            config.remember,
        )
        .map_err(|source| SimError::Ledger {
            path: config.ledger_path.clone().unwrap_or_default(),
            source,
        })?;
        let issuer = Arc::new(issuer);
        let network = Arc::new(Network::new(issuer.clone(), config.faults));
        let (stop, stopped) = watch::channel(false);

        let iso = tokio::spawn(server::serve(
            iso_listener,
            acceptor,
            network.clone(),
            config.max_connections,
            config.handshake_timeout,
            stopped.clone(),
        ));
        let http = tokio::spawn(http_serve(acs_listener, network.clone(), stopped));
        tracing::info!(%iso_addr, %acs_addr, fault_seed = network.faults().seed, "simulator listening");
        Ok(SimulatorHandle {
            iso_addr,
            acs_addr,
            network,
            stop,
            tasks: vec![iso, http],
        })
    }
}

async fn http_serve(
    listener: TcpListener,
    network: Arc<Network>,
    mut stopped: watch::Receiver<bool>,
) {
    // `/health` is liveness for a supervisor: both listeners were bound before this serves and
    // the simulator needs nothing outside itself, so serving is being ready; no `/ready`.
    let issuer = network.issuer.clone();
    let app = acs::routes(Arc::new(acs::Acs::new(issuer.clone())))
        .merge(ledger_routes(issuer))
        .merge(fault_routes(network))
        .route("/health", axum::routing::get(|| async { "ok\n" }));
    let shutdown = async move {
        let _ = stopped.changed().await;
    };
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%err, "ACS HTTP server failed");
    }
}

/// `GET /ledger` (entries and balances) and `GET /ledger/balances`: read-only JSON.
fn ledger_routes(issuer: Arc<Issuer>) -> axum::Router {
    use axum::extract::State;
    use axum::{Json, routing};
    axum::Router::new()
        .route(
            "/ledger",
            routing::get(|State(i): State<Arc<Issuer>>| async move { Json(i.ledger()) }),
        )
        .route(
            "/ledger/balances",
            routing::get(|State(i): State<Arc<Issuer>>| async move { Json(i.ledger().balances) }),
        )
        .with_state(issuer)
}

/// The simulator's control of its own faults, for a soak or a test that drives the binary from
/// outside (the in-process [`SimulatorHandle::set_faults`] and
/// [`SimulatorHandle::disconnect_all`] over HTTP):
///
/// - `GET /faults`: the fault settings in force, as JSON ([`Faults`]);
/// - `PUT /faults`: replaces them (a [`Faults`] as JSON; absent keys take their defaults, so
///   `{}` clears every fault); 204, or 422 for a body that is not one;
/// - `POST /faults/disconnect`: closes every open ISO connection now; 204.
///
/// Unauthenticated, like `/ledger`: the simulator is a test-only component that stands in for the
/// network and listens on loopback; it must never be exposed to anything else.
fn fault_routes(network: Arc<Network>) -> axum::Router {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::{Json, routing};
    axum::Router::new()
        .route(
            "/faults",
            routing::get(
                |State(n): State<Arc<Network>>| async move { Json((*n.faults()).clone()) },
            )
            .put(
                |State(n): State<Arc<Network>>, Json(faults): Json<Faults>| async move {
                    tracing::info!(seed = faults.seed, "fault settings replaced over HTTP");
                    n.set_faults(faults);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/faults/disconnect",
            routing::post(|State(n): State<Arc<Network>>| async move {
                n.disconnect_all();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(network)
}

/// A running simulator. Dropping it stops the servers; [`SimulatorHandle::shutdown`] also
/// waits for them and flushes the ledger file.
#[derive(Debug)]
pub struct SimulatorHandle {
    /// Where the ISO 8583 listener is bound: the port to dial when port 0 was asked for.
    pub iso_addr: SocketAddr,
    /// Where the ACS pages and the ledger endpoint are bound.
    pub acs_addr: SocketAddr,
    network: Arc<Network>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// A consistent snapshot of the ledger: every message so far and the balances.
    pub fn ledger(&self) -> Ledger {
        self.network.issuer.ledger()
    }

    /// Replaces the fault settings; applies to the next message and the next connection.
    pub fn set_faults(&self, faults: Faults) {
        self.network.set_faults(faults);
    }

    /// The fault settings in force now.
    pub fn faults(&self) -> Faults {
        (*self.network.faults()).clone()
    }

    /// Closes every open ISO connection now (the listener keeps accepting).
    pub fn disconnect_all(&self) {
        self.network.disconnect_all();
    }

    /// The base URL of the ACS pages, e.g. `http://127.0.0.1:8584`.
    pub fn acs_url(&self) -> String {
        format!("http://{}", self.acs_addr)
    }

    /// Stops both servers, waits for their tasks to end and flushes the ledger file, so a test
    /// that reads the file afterwards sees every entry.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        self.network.issuer.flush();
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.network.issuer.flush();
    }
}

/// The binary's body: serve until `shutdown` completes, then stop gracefully.
pub async fn run(
    config: SimConfig,
    iso_listener: TcpListener,
    acs_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let handle = Simulator::start(config, iso_listener, acs_listener).await?;
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}
