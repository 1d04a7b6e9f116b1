//! The authorizer process: open the store, start the link with the vault as its card resolver,
//! build the order engine over the link and the vault, resolve what a previous run left in
//! flight, serve the merchant API (the facade) and the admin endpoint, sweep expired and
//! unconfirmed orders periodically, deliver result notifications (the outbox, rendering through
//! the facade), and stop cleanly when told to (mini-redis style: `main` parses flags and calls
//! [`run`]).
//!
//! Owns the wiring between parts, nothing else. It must never start serving before the
//! configuration and the store are known good and recovery has run, and on shutdown both
//! listeners stop taking new connections while requests already started finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use facade::Facade;
use link::{Link, StartError};
use orders::{Engine, EngineError, MerchantSettings, SystemClock};
use outbox::{Doorbell, Outbox};
use vault::Role;

use crate::cabinet_settings::StoredSettings;
use crate::cards::VaultCards;
use crate::config::Config;
use crate::saved_cards::FacadeVault;
use crate::secrets::VaultSecrets;
use crate::vault_client::LazyVault;

/// Why the process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `data_dir` could not be created: the host's (permissions, disk) or the configuration's.
    #[error("data directory")]
    DataDir(#[source] std::io::Error),
    /// The store (`authorizer.db`) could not be opened: ours (disk, a corrupt or locked file).
    #[error("store")]
    Store(#[from] store::StoreError),
    /// The link refused its configuration or could not open its store-and-forward queue.
    #[error("link")]
    Link(#[from] StartError),
    /// The admin endpoint stopped serving with an I/O error.
    #[error("admin endpoint")]
    Admin(#[source] std::io::Error),
    /// The merchant API's listener failed (its address unknown, or serving stopped on I/O).
    #[error("merchant API")]
    Api(#[source] std::io::Error),
    /// Resolving the orders a previous run left in flight failed before serving: ours (the
    /// store or a stored record); an order merely unresolved (network or vault away) is retried.
    #[error("recovery of the orders in flight")]
    Recover(#[source] EngineError),
    /// The cabinet's saved settings could not be read: ours (the store or a stored record).
    #[error("the cabinet's saved settings")]
    Settings(#[source] facade::SettingsStoreError),
}

/// How often expired orders time out and unconfirmed Delayed ones are auto-cancelled (the
/// deadlines are on the orders; this is only how late a deadline may be noticed), and how often
/// recovery is tried again while some order is still unresolved.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The process's two listeners, bound by the caller (so a test can bind port 0).
#[derive(Debug)]
pub struct Listeners {
    /// The merchant API.
    pub api: TcpListener,
    /// Metrics, health, readiness and the operator's commands.
    pub admin: TcpListener,
}

/// Runs the authorizer until `shutdown` resolves.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    std::fs::create_dir_all(&config.data_dir).map_err(RunError::DataDir)?;
    let store = store::Store::open_with_cache(
        config.store_engine,
        &config.data_dir.join("authorizer.db"),
        config.store_cache_mib,
    )?;
    // One connection per role, shared by everything that speaks in it.
    let v = config.vault;
    let authorizer_vault = Arc::new(LazyVault::connecting(v.endpoint, v.credentials, v.options));
    let f = config.facade_vault;
    let facade_vault = Arc::new(LazyVault::connecting(f.endpoint, f.credentials, f.options));
    // The vault may come up after us: reversals wait for it (held, not sent without the card),
    // and One Click answers "internal error" until it is there.
    let vaults = [authorizer_vault.clone(), facade_vault.clone()];
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
    let link = Link::start(config.link, store.clone(), Arc::new(cards))?;
    let doorbell = Doorbell::default();
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            Arc::new(link.clone()),
            Arc::new(VaultSecrets::shared(facade_vault.clone(), authorizer_vault)),
            Arc::new(SystemClock),
        )
        .with_doorbell(doorbell.clone()),
    );
    let pages = format!(
        "http://{}",
        listeners.api.local_addr().map_err(RunError::Api)?
    );
    let settings = StoredSettings(store.clone());
    let saved = settings.load().map_err(RunError::Settings)?;
    let facade = Arc::new(
        Facade::new(
            config.merchants,
            Arc::new(FacadeVault(facade_vault)),
            engine.clone(),
            pages,
        )
        .with_three_ds(Arc::new(config.acs))
        .with_cabinet(config.cabinet, Arc::new(settings), saved),
    );
    // Before the first request: every order a previous run left in flight is resolved (or, if
    // the network or the vault cannot be reached yet, retried by the sweeper below).
    let recovered = engine
        .recover(&settings_of(&facade))
        .await
        .map_err(RunError::Recover)?;
    tracing::info!(?recovered, "orders in flight resolved");
    // What a previous run left due is sent as soon as the loop starts.
    let n = config.notifications;
    let outbox = Arc::new(
        Outbox::new(store, facade.clone(), Arc::new(n.deliver), n.outbox).with_doorbell(doorbell),
    );
    facade.attach_outbox(&outbox);
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
    let sweeper = tokio::spawn(sweep(
        engine.clone(),
        facade.clone(),
        recovered.unresolved > 0,
        until_stopped(stopped.clone()),
    ));
    let deliveries = tokio::spawn(outbox.clone().run(until_stopped(stopped.clone())));
    // With the peer's address: the payment pages count failed card attempts per client.
    let api = axum::serve(
        listeners.api,
        facade
            .clone()
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(until_stopped(stopped.clone()));
    let admin = crate::admin::serve(
        listeners.admin,
        crate::admin::Parts {
            link: link.clone(),
            vaults,
            facade,
            engine,
            outbox,
        },
        until_stopped(stopped),
    );
    let (api, admin) = tokio::join!(api, admin);
    // Awaited, not aborted: a sweep already started finishes its order before the link stops,
    // and a notification's try in flight gets its answer (bounded by its time-out) and record.
    let _ = sweeper.await;
    let _ = deliveries.await;
    link.shutdown().await;
    api.map_err(RunError::Api)?;
    admin.map_err(RunError::Admin)
}

/// The engine's view of a merchant, from the facade's directory (whose notification settings the
/// sweep and recovery need for what they finish).
fn settings_of(facade: &Facade) -> impl Fn(&card::MerchantId) -> Option<MerchantSettings> + Sync {
    move |id| {
        facade
            .merchants()
            .by_vault_id(id)
            .map(|m| facade.merchant_settings(m))
    }
}

/// Every [`SWEEP_INTERVAL`] until `stopped`: recovery again while an order is unresolved, then
/// the sweep. Each pass runs to its end; the stop is only noticed between passes.
async fn sweep(
    engine: Arc<Engine>,
    facade: Arc<Facade>,
    mut unresolved: bool,
    stopped: impl Future<Output = ()>,
) {
    let settings = settings_of(&facade);
    let mut every = tokio::time::interval(SWEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            _ = every.tick() => {}
        }
        if unresolved {
            match engine.recover(&settings).await {
                Ok(report) => unresolved = report.unresolved > 0,
                Err(e) => tracing::warn!(error = %e, "recovery failed; trying again"),
            }
        }
        match engine.sweep(&settings).await {
            Ok(report) if report != orders::SweepReport::default() => {
                tracing::info!(?report, "swept");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed; trying again"),
        }
    }
}
