//! The vault protocol server: accepts connections on the Unix socket (mode 0600, per-client
//! secret) and, when configured, on TCP with mutual TLS (client certificate), authenticates each
//! connection once, then serves pipelined requests concurrently and answers them as they finish.
//!
//! Owns the listeners, connection tasks, admission before authentication (per listener, per
//! source, with a short deadline: see `crate::admission`), the retention sweep and graceful
//! shutdown (stop accepting, stop reading, finish what was started). Must never log a frame's
//! contents, and never let unauthenticated connections hold what authenticated clients need.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hsm::Hsm;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::admission::{Limits, LoginThrottle, Ticket, Trace, WaitingRoom};
use crate::config::{ClientEntry, Config};
use crate::model::{ClientSecret, VaultError};
use crate::peer::Peer;
use crate::protocol::{self, Op, Reply, Request, Response};
use crate::service::{Caller, CardVault, OpenError};

/// Requests of one connection being handled at once; past that the connection is not read.
const MAX_IN_FLIGHT: usize = 4096;
/// How often counted failures are summed up into the audit log (each source's window is
/// [`Trace::WINDOW`] long; this only bounds how late its summary is written).
const SUMMARISE_EVERY: Duration = Duration::from_secs(10);

/// Why `serve` cannot start or stopped serving; the vault exits with it.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The vault over its store and HSM could not be opened (keys, audit log, checkpoints).
    #[error("cannot open the vault")]
    Open(#[from] OpenError),
    /// The HSM's PKCS#11 module, token or PIN could not be used.
    #[error("cannot open the HSM")]
    Hsm(#[from] hsm::HsmError),
    /// The vault database could not be opened (missing, locked, corrupt).
    #[error("cannot open the vault database")]
    Store(#[from] store::StoreError),
    /// The TLS listener's certificate, key or CA could not be loaded.
    #[error("cannot set up the TLS listener")]
    Tls(#[from] crate::tls::TlsError),
    /// The Unix socket could not be created or bound.
    #[error("cannot listen on {path}")]
    Listen {
        /// The socket path.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The database file is reachable by group or others.
    #[error(transparent)]
    Private(#[from] crate::private::PrivateError),
}

/// The sockets `serve` serves; bound by the caller so tests can use their own paths and port 0.
#[derive(Debug)]
pub struct Listeners {
    /// The Unix socket, for clients proving themselves with a secret.
    pub unix: UnixListener,
    /// The TCP listener with mutual TLS, when configured.
    pub tls: Option<TcpListener>,
}

/// Binds the Unix socket readable and writable by the vault's user only. A socket file left by
/// a crashed run is replaced: the caller holds the data directory's lock (see
/// `crate::startup`), so no running vault owns it.
pub fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    let err = |source| ServeError::Listen {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(listener)
}

/// Opens the store (refusing one that group or others can reach), the HSM, and loads the keys:
/// everything that can fail before the vault binds and announces itself.
pub fn open(config: &Config) -> Result<CardVault, ServeError> {
    let path = config.database_path();
    let store = config.open_store()?;
    crate::private::check(&path)?;
    let hsm = Hsm::open(&config.hsm)?;
    Ok(CardVault::open(config, store, hsm)?)
}

/// What every connection task shares.
#[derive(Debug)]
struct Shared {
    vault: CardVault,
    clients: Arc<[ClientEntry]>,
    limits: Limits,
    throttle: LoginThrottle,
    trace: Trace,
}

/// One listener's admission: its unauthenticated connections and its sessions, apart from the
/// other listener's, so a flood on one does not lock clients out of the other.
#[derive(Debug, Clone)]
struct Door {
    waiting: Arc<WaitingRoom>,
    sessions: Arc<Semaphore>,
}

impl Door {
    fn new(limits: Limits) -> Door {
        Door {
            waiting: WaitingRoom::new(limits),
            sessions: Arc::new(Semaphore::new(limits.sessions)),
        }
    }
}

/// Serves an already opened vault (the bench and tests in this crate use it directly).
pub async fn serve(
    config: Config,
    vault: CardVault,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_with(config, vault, listeners, Limits::default(), shutdown).await
}

/// [`serve`] with explicit admission limits.
pub async fn serve_with(
    config: Config,
    vault: CardVault,
    listeners: Listeners,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = match &config.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            &t.files,
        )?)),
        None => None,
    };
    let shared = Arc::new(Shared {
        vault: vault.clone(),
        clients: config.clients.clone().into(),
        limits,
        throttle: LoginThrottle::default(),
        trace: Trace::default(),
    });
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // Records sealed under an older key (a rotation cut short) are re-sealed at start.
    let v = vault.clone();
    tasks.spawn(async move {
        v.reseal().await;
    });
    let (v, mut s, every) = (vault.clone(), stop.clone(), config.sweep_interval);
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => sweep(&v).await,
                _ = s.changed() => break,
            }
        }
    });
    let (metrics, mut s) = (Arc::clone(vault.metrics()), stop.clone());
    let metrics_file = config.data_dir.join("metrics.prom");
    tasks.spawn(async move {
        loop {
            if let Err(err) = metrics.write_file(&metrics_file) {
                tracing::warn!(%err, path = %metrics_file.display(), "cannot write the metrics file");
            }
            tokio::select! {
                _ = tokio::time::sleep(crate::metrics::WRITE_EVERY) => {}
                _ = s.changed() => break,
            }
        }
    });
    let (sh, mut s) = (Arc::clone(&shared), stop.clone());
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SUMMARISE_EVERY) => summarise(&sh, false).await,
                _ = s.changed() => break,
            }
        }
    });
    tokio::pin!(shutdown);
    let (unix_door, tls_door) = (Door::new(limits), Door::new(limits));
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listeners.unix.accept() => match accepted {
                Ok((stream, _)) => {
                    let peer = Peer::unix(stream.peer_cred().ok());
                    let ticket = unix_door.waiting.enter(peer.source);
                    let deadline = Instant::now() + limits.deadline;
                    let conn = login(Arc::clone(&shared), stream, peer, None, deadline, ticket, unix_door.sessions.clone(), stop.clone());
                    tasks.spawn(conn);
                }
                Err(err) => accept_failed(&err).await,
            },
            accepted = accept_tcp(listeners.tls.as_ref()) => match (accepted, acceptor.clone()) {
                (Ok((tcp, addr)), Some(acceptor)) => {
                    let peer = Peer::tcp(addr);
                    let ticket = tls_door.waiting.enter(peer.source);
                    let conn = tls_login(Arc::clone(&shared), acceptor, tcp, peer, ticket, tls_door.sessions.clone(), stop.clone());
                    tasks.spawn(conn);
                }
                (Err(err), _) => accept_failed(&err).await,
                (Ok(_), None) => {}
            },
            // Finished connections are reaped as they end, so the set holds live ones only.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    summarise(&shared, true).await;
    // Every call is answered: seal the final head, so a restart verifies the whole log.
    if let Err(e) = vault.seal_audit().await {
        tracing::error!(error = %crate::service::Chain(&e), "final audit checkpoint failed");
    }
    Ok(())
}

/// An accept that failed (out of file descriptors, most likely) is retried after a pause, so
/// the loop neither spins nor stops serving; the connections that end meanwhile free
/// descriptors.
async fn accept_failed(err: &std::io::Error) {
    tracing::warn!(%err, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Writes one summary entry per source whose failures were counted, not recorded singly.
async fn summarise(shared: &Shared, all: bool) {
    for (source, count) in shared.trace.due(all) {
        if let Err(e) = shared
            .vault
            .failures_counted(&source.to_string(), count)
            .await
        {
            tracing::error!(error = %crate::service::Chain(&e), "cannot audit counted failures");
        }
    }
}

/// One retention sweep; a failure is logged and the next sweep tries again.
async fn sweep(vault: &CardVault) {
    match vault.purge(crate::model::Timestamp::now()).await {
        Ok(erased) => tracing::info!(erased, "retention sweep done"),
        Err(e) => tracing::error!(error = %crate::service::Chain(&e), "retention sweep failed"),
    }
}

async fn accept_tcp(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &ClientSecret, b: &ClientSecret) -> bool {
    let (a, b) = (a.expose(), b.expose());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Shared {
    /// A connection that ended before it authenticated: counted always, recorded in the audit
    /// log (and the log) only within the source's allowance.
    async fn preauth_failed(&self, peer: &Peer, reason: &str) {
        self.vault.metrics().preauth_failures.inc();
        if self.trace.record(peer.source) {
            tracing::info!(
                peer = peer.describe(),
                reason,
                "connection closed before authentication"
            );
            if let Err(e) = self.vault.connection_failed(peer.describe(), reason).await {
                tracing::error!(error = %crate::service::Chain(&e), "cannot audit a connection");
            }
        }
    }
}

/// The TLS handshake and then the login, within one deadline and the TLS listener's waiting
/// room: a peer that stalls its handshake holds only its own place there, and loses it to a
/// newer connection when its source or the room is full.
async fn tls_login(
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    mut peer: Peer,
    mut ticket: Ticket,
    sessions: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now() + shared.limits.deadline;
    let handshake = tokio::select! {
        h = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => h,
        _ = &mut ticket.evicted => return shared.preauth_failed(&peer, EVICTED).await,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(_)) => return shared.preauth_failed(&peer, "TLS handshake failed").await,
        Err(_) => {
            return shared
                .preauth_failed(&peer, "no TLS handshake within the deadline")
                .await;
        }
    };
    let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return shared.preauth_failed(&peer, "no client certificate").await;
    };
    peer.presented(cert);
    let client = match crate::peer::identify(&shared.clients, cert) {
        Ok(c) => c.clone(),
        Err(e) => {
            shared.vault.metrics().login_failures.inc();
            return shared.preauth_failed(&peer, &e.to_string()).await;
        }
    };
    login(
        shared,
        tls,
        peer,
        Some(client),
        deadline,
        ticket,
        sessions,
        stop,
    )
    .await;
}

const EVICTED: &str =
    "evicted: too many unauthenticated connections on the listener or from the source";

type Reader<S> = FramedRead<ReadHalf<S>, LengthDelimitedCodec>;
type Writer<S> = FramedWrite<WriteHalf<S>, LengthDelimitedCodec>;

/// Reads the hello by `deadline` and authenticates it: over TLS the certificate already named
/// `tls_client`; over the Unix socket the hello's secret must be the named client's. A refusal
/// is answered after the login throttle's wait; a success is audited, then welcomed and served.
#[allow(clippy::too_many_arguments)]
async fn login<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: Peer,
    tls_client: Option<ClientEntry>,
    deadline: Instant,
    mut ticket: Ticket,
    sessions: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let mut read = FramedRead::new(read, protocol::codec());
    let mut write = FramedWrite::new(write, protocol::codec());
    // The first frame must be Hello: it names the client (and over the Unix socket proves it).
    let first = tokio::select! {
        f = tokio::time::timeout_at(deadline, read.next()) => f,
        _ = &mut ticket.evicted => return shared.preauth_failed(&peer, EVICTED).await,
        _ = stop.changed() => return,
    };
    let frame = match first {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
            return shared
                .preauth_failed(&peer, "first frame over the size limit")
                .await;
        }
        Ok(Some(Err(_))) => {
            return shared
                .preauth_failed(&peer, "connection failed before hello")
                .await;
        }
        Ok(None) => return shared.preauth_failed(&peer, "closed before hello").await,
        Err(_) => {
            return shared
                .preauth_failed(&peer, "no hello within the deadline")
                .await;
        }
    };
    let Ok(Request {
        op: Op::Hello { client, secret },
        ..
    }) = Request::decode(&frame)
    else {
        return shared
            .preauth_failed(&peer, "first frame is not a hello")
            .await;
    };
    let entry = match tls_client {
        Some(entry) => Some(entry),
        None => shared
            .clients
            .iter()
            .find(|c| c.id == client && c.secret.as_ref().is_some_and(|s| same_secret(s, &secret)))
            .cloned(),
    };
    drop(secret);
    let Some(entry) = entry else {
        return refuse(&shared, &peer, &client, ticket, &mut write).await;
    };
    let Ok(session) = Arc::clone(&sessions).try_acquire_owned() else {
        return shared
            .preauth_failed(&peer, "too many sessions on the listener")
            .await;
    };
    let caller = Caller {
        client: entry.id,
        role: entry.role,
        peer: peer.describe().to_string(),
    };
    if let Err(e) = shared.vault.logged_in(&caller).await {
        tracing::error!(error = %crate::service::Chain(&e), "cannot audit a login");
        return;
    }
    shared.vault.metrics().logins.inc();
    // Authenticated: the place in the waiting room goes to the next newcomer.
    drop(ticket);
    let welcome = Response {
        id: 0,
        result: Ok(Reply::Welcome(caller.role)),
    };
    if write.send(welcome.encode()).await.is_err() {
        return;
    }
    session_loop(&shared.vault, caller, read, write, session, stop).await;
}

/// A refused login: counted, recorded within the source's allowance, answered after the
/// throttle's wait (while it keeps its place in the waiting room, so one source's concurrent
/// guesses stay bounded by its share).
async fn refuse<S>(
    shared: &Shared,
    peer: &Peer,
    claimed: &str,
    mut ticket: Ticket,
    write: &mut Writer<S>,
) where
    S: AsyncWrite + Send + Unpin,
{
    shared.vault.metrics().login_failures.inc();
    let configured = shared.clients.iter().any(|c| c.id == claimed);
    let wait = shared
        .throttle
        .refused(configured.then_some(claimed), peer.source);
    let result = if shared.trace.record(peer.source) {
        shared.vault.refused(claimed, peer.describe()).await
    } else {
        Err(VaultError::Unauthenticated)
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = &mut ticket.evicted => return,
    }
    let _ = write.send(Response { id: 0, result }.encode()).await;
}

/// An authenticated connection: pipelined requests until the peer or the vault stops.
async fn session_loop<S>(
    vault: &CardVault,
    caller: Caller,
    mut read: Reader<S>,
    mut write: Writer<S>,
    _session: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let caller = Arc::new(caller);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Unbounded, yet bounded in practice: at most MAX_IN_FLIGHT answers of this connection exist.
    let (answers, mut outbox) = mpsc::unbounded_channel::<bytes::Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(first) = outbox.recv().await {
            if write.feed(first).await.is_err() {
                return;
            }
            while let Ok(more) = outbox.try_recv() {
                if write.feed(more).await.is_err() {
                    return;
                }
            }
            if SinkExt::<bytes::Bytes>::flush(&mut write).await.is_err() {
                return;
            }
            // Detokenize answers (PANs) were copied into the codec's buffer: wipe it.
            protocol::wipe_sent(write.write_buffer_mut());
        }
    });
    loop {
        let next = tokio::select! {
            f = read.next() => f,
            _ = stop.changed() => break,
        };
        let Some(Ok(mut frame)) = next else { break };
        let decoded = Request::decode(&frame);
        // A tokenize frame holds a PAN in clear: wipe it once it has been copied into a `Pan`.
        zeroize::Zeroize::zeroize(&mut frame[..]);
        match decoded {
            Ok(req) => {
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    break;
                };
                let id = req.id;
                let answers = answers.clone();
                let answer = move |result| {
                    let _ = answers.send(Response { id, result }.encode());
                    drop(permit);
                };
                if vault.call(&caller, req.op, answer).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                // An undecodable frame has no trustworthy id: answer on id 0 and hang up.
                let _ = answers.send(
                    Response {
                        id: 0,
                        result: Err(VaultError::BadRequest(e.to_string())),
                    }
                    .encode(),
                );
                break;
            }
        }
    }
    drop(answers);
    let _ = writer.await;
}
