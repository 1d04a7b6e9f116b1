//! The client library the facade and the authorizer use: a pool of connections to the vault, each
//! pipelined (many requests in flight, answers matched by id), with a per-request timeout and
//! reconnection after a failure. Must never log or put into an error a PAN it sends or receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::model::*;
use crate::protocol::{self, Op, Reply, Request, Response};
use crate::tls::{TlsFiles, client_config};

/// Where the vault listens.
#[derive(Debug, Clone)]
pub enum VaultEndpoint {
    Unix(PathBuf),
    /// A remote vault over mutual TLS; `server_name` must be in the vault's certificate.
    Tls {
        addr: SocketAddr,
        server_name: String,
        files: TlsFiles,
    },
}

/// How the client proves who it is: a secret over the Unix socket; over TLS the certificate
/// in the endpoint's files does it.
#[derive(Debug, Clone)]
pub enum Credentials {
    Secret {
        client: String,
        secret: ClientSecret,
    },
    Certificate,
}

#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connections: usize,
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connections: 4,
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: VaultEndpoint,
    credentials: Credentials,
    options: ClientOptions,
    slots: Vec<tokio::sync::Mutex<Option<Conn>>>,
    next: AtomicUsize,
    /// The role the vault gave this client at the first handshake.
    role: Role,
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

#[derive(Debug, Clone)]
struct Conn {
    outgoing: mpsc::Sender<(Request, oneshot::Sender<Response>)>,
    ids: Arc<AtomicU64>,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl VaultClient {
    pub async fn connect(
        endpoint: VaultEndpoint,
        credentials: Credentials,
    ) -> Result<VaultClient, VaultError> {
        VaultClient::connect_with(endpoint, credentials, ClientOptions::default()).await
    }

    /// Opens the first connection (so a bad secret or endpoint fails here), the others on demand.
    pub async fn connect_with(
        endpoint: VaultEndpoint,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<VaultClient, VaultError> {
        let (first, role) = open(&endpoint, &credentials).await?;
        let slots = (0..options.connections.max(1))
            .map(|_| tokio::sync::Mutex::new(None))
            .collect::<Vec<_>>();
        *slots[0].lock().await = Some(first);
        Ok(VaultClient {
            inner: Arc::new(Inner {
                endpoint,
                credentials,
                options,
                slots,
                next: AtomicUsize::new(0),
                role,
            }),
        })
    }

    pub fn role(&self) -> Role {
        self.inner.role
    }

    pub async fn tokenize(&self, req: TokenizeRequest) -> Result<SavedCard, VaultError> {
        match self.call(Op::Tokenize(req)).await? {
            Reply::Saved(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn detokenize(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
    ) -> Result<CardSecret, VaultError> {
        match self
            .call(Op::Detokenize {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
            })
            .await?
        {
            Reply::Secret(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn list(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
    ) -> Result<CustomerCards, VaultError> {
        match self
            .call(Op::List {
                merchant: merchant.clone(),
                customer: customer.clone(),
            })
            .await?
        {
            Reply::Cards(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn remove(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
    ) -> Result<(), VaultError> {
        self.done(Op::Remove {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
        })
        .await
    }

    pub async fn set_customer_status(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        status: CustomerStatus,
    ) -> Result<(), VaultError> {
        self.done(Op::SetStatus {
            merchant: merchant.clone(),
            customer: customer.clone(),
            status,
        })
        .await
    }

    pub async fn record_payment(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        at: Timestamp,
    ) -> Result<(), VaultError> {
        self.done(Op::RecordPayment {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            at,
        })
        .await
    }

    /// Erases cards past retention; returns how many.
    pub async fn purge(&self) -> Result<u64, VaultError> {
        match self.call(Op::Purge).await? {
            Reply::Purged(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Starts a new key version; returns it. Re-sealing goes on in the vault's background.
    pub async fn rotate_keys(&self) -> Result<u32, VaultError> {
        match self.call(Op::RotateKeys).await? {
            Reply::Rotated(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    async fn done(&self, op: Op) -> Result<(), VaultError> {
        match self.call(op).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn call(&self, mut op: Op) -> Result<Reply, VaultError> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.slots.len();
        // A request that never left (its connection was already gone) is safe to send again on
        // a new connection; one that may have left is not retried (it may not be idempotent).
        for _ in 0..2 {
            let conn = self.connection(i).await?;
            match conn.send(op, self.inner.options.timeout).await? {
                Sent::Answered(response) => return response.result,
                Sent::NotSent(back) => op = back,
            }
        }
        Err(VaultError::Transport("connection closed".into()))
    }

    async fn connection(&self, i: usize) -> Result<Conn, VaultError> {
        let mut slot = self.inner.slots[i].lock().await;
        match slot.as_ref() {
            Some(c) if !c.outgoing.is_closed() => Ok(c.clone()),
            _ => {
                let (c, _) = open(&self.inner.endpoint, &self.inner.credentials).await?;
                *slot = Some(c.clone());
                Ok(c)
            }
        }
    }
}

enum Sent {
    Answered(Response),
    NotSent(Op),
}

fn unexpected(reply: &Reply) -> VaultError {
    VaultError::Internal(format!("unexpected reply {}", reply_name(reply)))
}

fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Welcome(_) => "welcome",
        Reply::Saved(_) => "saved",
        Reply::Secret(_) => "secret",
        Reply::Cards(_) => "cards",
        Reply::Done => "done",
        Reply::Purged(_) => "purged",
        Reply::Rotated(_) => "rotated",
    }
}

impl Conn {
    async fn send(&self, op: Op, timeout: Duration) -> Result<Sent, VaultError> {
        let (tx, rx) = oneshot::channel();
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError((req, _))) =
            self.outgoing.send((Request { id, op }, tx)).await
        {
            return Ok(Sent::NotSent(req.op));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(Sent::Answered(r)),
            Ok(Err(_)) => Err(VaultError::Transport(
                "connection lost before the answer".into(),
            )),
            Err(_) => Err(VaultError::Timeout),
        }
    }
}

async fn open(
    endpoint: &VaultEndpoint,
    credentials: &Credentials,
) -> Result<(Conn, Role), VaultError> {
    let transport = |e: String| VaultError::Transport(e);
    let io: Box<dyn Io> = match endpoint {
        VaultEndpoint::Unix(path) => Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| transport(format!("{}: {e}", path.display())))?,
        ),
        VaultEndpoint::Tls {
            addr,
            server_name,
            files,
        } => {
            let cfg = client_config(files).map_err(|e| transport(e.to_string()))?;
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| transport(format!("{addr}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from(server_name.clone())
                .map_err(|e| transport(e.to_string()))?;
            Box::new(
                tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| transport(e.to_string()))?,
            )
        }
    };
    let (read, write) = tokio::io::split(io);
    let mut read = FramedRead::new(read, protocol::codec());
    let mut write = FramedWrite::new(write, protocol::codec());
    let hello = match credentials {
        Credentials::Secret { client, secret } => Op::Hello {
            client: client.clone(),
            secret: secret.clone(),
        },
        // Over TLS the certificate already named the client; Hello only asks for the role.
        Credentials::Certificate => Op::Hello {
            client: String::new(),
            secret: ClientSecret::new(Vec::new()),
        },
    };
    write
        .send(Request { id: 0, op: hello }.encode())
        .await
        .map_err(|e| transport(e.to_string()))?;
    let frame = read
        .next()
        .await
        .ok_or_else(|| transport("vault closed the connection".into()))?
        .map_err(|e| transport(e.to_string()))?;
    let role = match Response::decode(&frame)
        .map_err(|e| transport(e.to_string()))?
        .result?
    {
        Reply::Welcome(role) => role,
        other => return Err(unexpected(&other)),
    };
    let waiters: Waiters = Arc::default();
    let (outgoing, mut queue) = mpsc::channel::<(Request, oneshot::Sender<Response>)>(1024);
    let w = Arc::clone(&waiters);
    // The reader's end of the connection stops the writer, which drops the queue, which is how
    // `call` sees that this connection must be replaced.
    let (reader_gone, mut dead) = oneshot::channel::<()>();
    tokio::spawn(async move {
        // Writes everything queued, flushing only when the queue is momentarily empty, so a
        // burst of requests shares a syscall.
        loop {
            let (req, tx) = tokio::select! {
                next = queue.recv() => match next { Some(n) => n, None => return },
                _ = &mut dead => return,
            };
            let mut batch = vec![(req, tx)];
            while batch.len() < 256 {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            for (req, tx) in batch {
                if let Ok(mut map) = w.lock() {
                    map.insert(req.id, tx);
                }
                if write.feed(req.encode()).await.is_err() {
                    return;
                }
            }
            if SinkExt::<bytes::Bytes>::flush(&mut write).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(Ok(mut frame)) = read.next().await {
            let decoded = Response::decode(&frame);
            // A detokenize answer holds a PAN in clear: wipe it once it is in a `Pan`.
            zeroize::Zeroize::zeroize(&mut frame[..]);
            let Ok(resp) = decoded else {
                break;
            };
            let waiter = waiters.lock().ok().and_then(|mut m| m.remove(&resp.id));
            if let Some(tx) = waiter {
                let _ = tx.send(resp);
            }
        }
        // Dropping the waiters tells every caller still waiting that the connection is gone.
        if let Ok(mut m) = waiters.lock() {
            m.clear();
        }
        drop(reader_gone);
    });
    Ok((
        Conn {
            outgoing,
            ids: Arc::new(AtomicU64::new(1)),
        },
        role,
    ))
}
