//! The vault protocol server: accepts connections on the Unix socket (mode 0600, per-client
//! secret) and, when configured, on TCP with mutual TLS (client certificate), authenticates each
//! connection once, then serves pipelined requests concurrently and answers them as they finish.
//!
//! Owns the listeners, connection tasks, the retention sweep and graceful shutdown (stop
//! accepting, stop reading, finish what was started). Must never log a frame's contents.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hsm::Hsm;
use store::Store;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::config::{ClientEntry, Config};
use crate::model::{ClientSecret, VaultError};
use crate::protocol::{self, Op, Reply, Request, Response};
use crate::service::{Caller, CardVault, OpenError};

/// Connections served at once; the next waits in the listen backlog (back-pressure, not failure).
const MAX_CONNECTIONS: usize = 1024;
/// Requests of one connection being handled at once; past that the connection is not read.
const MAX_IN_FLIGHT: usize = 4096;
/// Time a new connection has to finish its TLS handshake and say hello.
const HANDSHAKE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the vault")]
    Open(#[from] OpenError),
    #[error("cannot open the HSM")]
    Hsm(#[from] hsm::HsmError),
    #[error("cannot open the vault database")]
    Store(#[from] store::StoreError),
    #[error("cannot set up the TLS listener")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {path}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The sockets `run` serves; bound by the caller so tests can use their own paths and port 0.
#[derive(Debug)]
pub struct Listeners {
    pub unix: UnixListener,
    pub tls: Option<TcpListener>,
}

/// Binds the Unix socket readable and writable by the vault's user only (a stale socket file
/// from a crashed run is replaced).
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

/// Opens the store and the HSM, loads the keys and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let store = Store::open(config.engine, &config.database_path())?;
    let hsm = Hsm::open(&config.hsm)?;
    let vault = CardVault::open(&config, store, hsm)?;
    serve(config, vault, listeners, shutdown).await
}

/// Serves an already opened vault (the bench and tests in this crate use it directly).
pub async fn serve(
    config: Config,
    vault: CardVault,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let clients: Arc<[ClientEntry]> = config.clients.clone().into();
    let acceptor = match &config.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            &t.files,
        )?)),
        None => None,
    };
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
    tokio::pin!(shutdown);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = Arc::clone(&connections).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listeners.unix.accept() => {
                if let Ok((stream, _)) = accepted {
                    let conn = connection(vault.clone(), Arc::clone(&clients), stream, None, stop.clone());
                    tasks.spawn(async move {
                        conn.await;
                        drop(permit);
                    });
                }
            }
            accepted = accept_tcp(listeners.tls.as_ref()) => {
                if let (Ok((tcp, _)), Some(acceptor)) = (accepted, acceptor.clone()) {
                    let (vault, clients, stop) = (vault.clone(), Arc::clone(&clients), stop.clone());
                    tasks.spawn(async move {
                        let _permit = permit;
                        let _ = tcp.set_nodelay(true);
                        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await else { return };
                        let caller = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|cert| identify(&clients, cert));
                        match caller {
                            Some(caller) => connection(vault, clients, tls, Some(caller), stop).await,
                            None => {
                                let _ = vault.refused("unknown-certificate").await;
                            }
                        }
                    });
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Every call is answered: seal the final head, so a restart verifies the whole log.
    if let Err(e) = vault.seal_audit().await {
        tracing::error!(error = %crate::service::Chain(&e), "final audit checkpoint failed");
    }
    Ok(())
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

/// The configured client whose `tls_name` the (already CA-verified) certificate is valid for.
fn identify(
    clients: &[ClientEntry],
    cert: &rustls::pki_types::CertificateDer<'_>,
) -> Option<Caller> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    clients.iter().find_map(|c| {
        let name = rustls::pki_types::ServerName::try_from(c.tls_name.as_deref()?).ok()?;
        ee.verify_is_valid_for_subject_name(&name).ok()?;
        Some(Caller {
            client: c.id.clone(),
            role: c.role,
        })
    })
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &ClientSecret, b: &ClientSecret) -> bool {
    let (a, b) = (a.expose(), b.expose());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn connection<S>(
    vault: CardVault,
    clients: Arc<[ClientEntry]>,
    stream: S,
    tls_caller: Option<Caller>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let mut read = FramedRead::new(read, protocol::codec());
    let mut write = FramedWrite::new(write, protocol::codec());
    // The first frame must be Hello: it names the client (and over the Unix socket proves it).
    let first = tokio::select! {
        f = tokio::time::timeout(HANDSHAKE, read.next()) => f,
        _ = stop.changed() => return,
    };
    let Ok(Some(Ok(frame))) = first else { return };
    let hello = Request::decode(&frame);
    let caller = match (hello, tls_caller) {
        (
            Ok(Request {
                op: Op::Hello { .. },
                ..
            }),
            Some(caller),
        ) => Some(caller),
        (
            Ok(Request {
                op: Op::Hello { client, secret },
                ..
            }),
            None,
        ) => clients
            .iter()
            .find(|c| c.id == client && c.secret.as_ref().is_some_and(|s| same_secret(s, &secret)))
            .map(|c| Caller {
                client: c.id.clone(),
                role: c.role,
            }),
        _ => None,
    };
    let Some(caller) = caller else {
        let claimed = match Request::decode(&frame) {
            Ok(Request {
                op: Op::Hello { client, .. },
                ..
            }) => client,
            _ => String::new(),
        };
        let result = vault.refused(&claimed).await;
        let _ = write.send(Response { id: 0, result }.encode()).await;
        return;
    };
    if write
        .send(
            Response {
                id: 0,
                result: Ok(Reply::Welcome(caller.role)),
            }
            .encode(),
        )
        .await
        .is_err()
    {
        return;
    }
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
