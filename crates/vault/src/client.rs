//! The client library the facade and the authorizer use: a pool of connections to the vault, each
//! pipelined (many requests in flight, answers matched by id), with a per-request timeout and
//! reconnection after a failure. Must never log or put into an error a PAN it sends or receives.
//!
//! Its errors ([`ClientError`]) keep what the vault answered ([`VaultError`], the wire's codes)
//! apart from what went wrong on the way (connect, transport, time-out).

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
use crate::protocol::{self, AdminOp, Op, ReadOp, Reply, ReplyKind, Request, Response, WriteOp};
use crate::tls::{TlsError, TlsFiles, client_config};
use crate::wire::DecodeError;

/// Why a call through [`VaultClient`] failed, grouped by whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    // What the vault answered.
    /// The vault refused or failed the call and said so.
    #[error("the vault answered: {0}")]
    Refused(VaultError),

    // The vault could not be reached or did not answer: worth trying again later.
    /// No connection could be opened (socket, TCP or TLS handshake).
    #[error("cannot connect to the vault at {endpoint}")]
    Connect {
        /// The socket path or address tried, for the operator; never a credential.
        endpoint: String,
        /// What the operating system, TLS or the time-out said.
        #[source]
        source: std::io::Error,
    },
    /// An open connection failed while sending or receiving.
    #[error("the connection to the vault failed")]
    Transport(#[source] std::io::Error),
    /// The vault closed the connection before it answered.
    #[error("the vault closed the connection before answering")]
    Closed,
    /// No answer within the client's per-request timeout.
    #[error("the vault did not answer within {0:?}")]
    Timeout(Duration),

    // The vault broke the protocol.
    /// An answer that does not decode.
    #[error("the vault's answer does not decode")]
    Malformed(#[source] DecodeError),
    /// A well-formed answer of the wrong kind for the request.
    #[error("the vault answered {0:?} to a request that expects another reply")]
    UnexpectedReply(ReplyKind),

    // This client's own configuration.
    /// The TLS files could not be loaded into a configuration.
    #[error("the vault client's TLS configuration is unusable")]
    Tls(#[source] TlsError),
    /// The configured server name is not a valid DNS name or IP address.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

impl From<VaultError> for ClientError {
    fn from(e: VaultError) -> Self {
        ClientError::Refused(e)
    }
}

/// Where the vault listens.
#[derive(Debug, Clone)]
pub enum VaultEndpoint {
    /// The vault's Unix socket (mode 0600) on this host; the client sends its secret in `hello`.
    Unix(PathBuf),
    /// A remote vault over mutual TLS; `server_name` must be in the vault's certificate.
    Tls {
        /// The vault's TCP listener.
        addr: SocketAddr,
        /// The name the vault's certificate must carry (DNS name or IP address).
        server_name: String,
        /// This client's certificate and key, and the CA that signed the vault's certificate.
        files: TlsFiles,
    },
}

/// How the client proves who it is: a secret over the Unix socket; over TLS the certificate
/// in the endpoint's files does it.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// For the Unix socket: a client id and its secret, sent in `hello`.
    Secret {
        /// The client id configured in the vault.
        client: String,
        /// The client's secret, wiped on drop and never printed.
        secret: ClientSecret,
    },
    /// Over TLS: the client certificate in the endpoint's files names exactly one configured
    /// client.
    Certificate,
}

/// How a [`VaultClient`] uses its connections.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Connections opened (on demand) and used in turn.
    pub connections: usize,
    /// Longest wait for the answer to one request.
    pub timeout: Duration,
    /// Longest wait for a new connection to be usable: connect, TLS handshake and the vault's
    /// welcome together, so a vault that accepts and then says nothing (overloaded, or not the
    /// vault) fails the call instead of hanging it.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connections: 4,
            timeout: Duration::from_secs(5),
            // Above the vault's 2 s pre-authentication deadline, so the vault's refusal (not
            // this time-out) is what a slow login sees.
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// A connection pool to one vault, cheap to clone and share between tasks; every call is
/// answered by the vault or fails with a [`ClientError`] saying whose fault it was.
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
    /// Connects with the default [`ClientOptions`]; see [`VaultClient::connect_with`].
    pub async fn connect(
        endpoint: VaultEndpoint,
        credentials: Credentials,
    ) -> Result<VaultClient, ClientError> {
        VaultClient::connect_with(endpoint, credentials, ClientOptions::default()).await
    }

    /// Opens the first connection (so a bad secret or endpoint fails here), the others on demand.
    pub async fn connect_with(
        endpoint: VaultEndpoint,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<VaultClient, ClientError> {
        let (first, role) = open(&endpoint, &credentials, options.connect_timeout).await?;
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

    /// The role the vault gave this client at the first handshake, which decides what it may call.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// Whether the vault can be talked to now, for a caller's readiness probe: `Ok` at once,
    /// sending nothing, while any connection is open; otherwise one connection is opened again
    /// (a login). The protocol has no unauthenticated ping, and any request would be an audit
    /// entry, so a probe polled every few seconds must not send one: this costs the vault a
    /// login only when every connection had closed (the vault restarted or went away).
    pub async fn reachable(&self) -> Result<(), ClientError> {
        for slot in &self.inner.slots {
            // A slot being (re)connected by a call is skipped, not waited for.
            if let Ok(slot) = slot.try_lock()
                && slot.as_ref().is_some_and(|c| !c.outgoing.is_closed())
            {
                return Ok(());
            }
        }
        self.connection(0).await.map(drop)
    }

    /// (Facade role.) Saves a card for a customer, or finds the same card saved before and updates
    /// it; the answer carries the token and the masked card, never the PAN.
    pub async fn tokenize(&self, req: TokenizeRequest) -> Result<SavedCard, ClientError> {
        match self.call(Op::Write(WriteOp::Tokenize(req))).await? {
            Reply::Saved(s) => Ok(s),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// (Facade role.) A single-use grant for the authorizer to detokenize `token` for `payment`;
    /// it expires after a few minutes (the vault's `payments.grant_ttl_secs`). `card_use`
    /// [`CardUse::Offered`] is refused ([`VaultError::NotFound`]) for a card the merchant could
    /// not have offered (below its listing threshold, or expired).
    pub async fn grant_detokenize(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
        card_use: CardUse,
    ) -> Result<GrantId, ClientError> {
        let op = ReadOp::IssueGrant {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            payment: payment.clone(),
            card_use,
        };
        match self.call(Op::Read(op)).await? {
            Reply::Granted(g) => Ok(g),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// (Authorizer role.) The card for `payment`, on presenting the grant the facade obtained for
    /// exactly this card and payment; the grant is used up.
    pub async fn detokenize(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
        grant: GrantId,
    ) -> Result<CardSecret, ClientError> {
        self.secret(ReadOp::Detokenize {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            payment: payment.clone(),
            grant,
        })
        .await
    }

    /// (Authorizer role.) The card again, to reverse `payment`: only for a payment this vault
    /// detokenized with a grant, within its reversal window (`payments.reversal_window_secs`).
    pub async fn detokenize_for_reversal(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
    ) -> Result<CardSecret, ClientError> {
        self.secret(ReadOp::DetokenizeForReversal {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            payment: payment.clone(),
        })
        .await
    }

    async fn secret(&self, op: ReadOp) -> Result<CardSecret, ClientError> {
        match self.call(Op::Read(op)).await? {
            Reply::Secret(s) => Ok(s),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// (Facade role.) The customer's status and cards, masked; the authorizer may not list.
    pub async fn list(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
    ) -> Result<CustomerCards, ClientError> {
        match self
            .call(Op::Read(ReadOp::List {
                merchant: merchant.clone(),
                customer: customer.clone(),
            }))
            .await?
        {
            Reply::Cards(c) => Ok(c),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// (Facade role.) Removes one of the customer's cards.
    pub async fn remove(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
    ) -> Result<(), ClientError> {
        self.done(WriteOp::Remove {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
        })
        .await
    }

    /// (Facade role.) Sets the customer's status; under `Deny` the vault refuses to tokenize for
    /// them.
    pub async fn set_customer_status(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        status: CustomerStatus,
    ) -> Result<(), ClientError> {
        self.done(WriteOp::SetStatus {
            merchant: merchant.clone(),
            customer: customer.clone(),
            status,
        })
        .await
    }

    /// (Authorizer role.) Records `payment` as successful, once however often it is sent; the
    /// vault times it by its own clock and refuses an `at` further from it than its allowed skew.
    pub async fn record_payment(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
        at: Timestamp,
    ) -> Result<(), ClientError> {
        self.done(WriteOp::RecordPayment {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            payment: payment.clone(),
            at,
        })
        .await
    }

    /// Erases cards past retention; returns how many.
    pub async fn purge(&self) -> Result<u64, ClientError> {
        match self.call(Op::Admin(AdminOp::Purge)).await? {
            Reply::Purged(n) => Ok(n),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// (Admin role.) Verifies the audit log against its sealed checkpoints in the running vault.
    pub async fn verify_audit(&self) -> Result<AuditSummary, ClientError> {
        match self.call(Op::Admin(AdminOp::VerifyAudit)).await? {
            Reply::AuditVerified(a) => Ok(a),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// Starts a new key version; returns it. Re-sealing goes on in the vault's background.
    pub async fn rotate_keys(&self) -> Result<u32, ClientError> {
        match self.call(Op::Admin(AdminOp::RotateKeys)).await? {
            Reply::Rotated(v) => Ok(v),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    /// Starts a new fingerprint key version (admin only); records are re-fingerprinted in the
    /// background and the retired key destroyed once none is left under it. Returns the version.
    pub async fn rotate_fingerprint_key(&self) -> Result<u32, ClientError> {
        match self.call(Op::Admin(AdminOp::RotateFingerprintKey)).await? {
            Reply::Rotated(v) => Ok(v),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    async fn done(&self, op: WriteOp) -> Result<(), ClientError> {
        match self.call(Op::Write(op)).await? {
            Reply::Done => Ok(()),
            other => Err(ClientError::UnexpectedReply(other.kind())),
        }
    }

    async fn call(&self, mut op: Op) -> Result<Reply, ClientError> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.slots.len();
        // A request that never left (its connection was already gone) is safe to send again on
        // a new connection; one that may have left is not retried (it may not be idempotent).
        for _ in 0..2 {
            let conn = self.connection(i).await?;
            match conn.send(op, self.inner.options.timeout).await? {
                Sent::Answered(response) => return Ok(response.result?),
                Sent::NotSent(back) => op = back,
            }
        }
        Err(ClientError::Closed)
    }

    async fn connection(&self, i: usize) -> Result<Conn, ClientError> {
        let mut slot = self.inner.slots[i].lock().await;
        match slot.as_ref() {
            Some(c) if !c.outgoing.is_closed() => Ok(c.clone()),
            _ => {
                let inner = &self.inner;
                let (c, _) = open(
                    &inner.endpoint,
                    &inner.credentials,
                    inner.options.connect_timeout,
                )
                .await?;
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

impl Conn {
    async fn send(&self, op: Op, timeout: Duration) -> Result<Sent, ClientError> {
        let (tx, rx) = oneshot::channel();
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError((req, _))) =
            self.outgoing.send((Request { id, op }, tx)).await
        {
            return Ok(Sent::NotSent(req.op));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(Sent::Answered(r)),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }
}

/// A new connection, usable within `within` (connect, TLS handshake, hello and welcome).
async fn open(
    endpoint: &VaultEndpoint,
    credentials: &Credentials,
    within: Duration,
) -> Result<(Conn, Role), ClientError> {
    match tokio::time::timeout(within, establish(endpoint, credentials)).await {
        Ok(opened) => opened,
        Err(_) => Err(ClientError::Connect {
            endpoint: match endpoint {
                VaultEndpoint::Unix(path) => path.display().to_string(),
                VaultEndpoint::Tls { addr, .. } => addr.to_string(),
            },
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not connected and welcomed within {within:?}"),
            ),
        }),
    }
}

async fn establish(
    endpoint: &VaultEndpoint,
    credentials: &Credentials,
) -> Result<(Conn, Role), ClientError> {
    let io: Box<dyn Io> = match endpoint {
        VaultEndpoint::Unix(path) => {
            let connect = |source| ClientError::Connect {
                endpoint: path.display().to_string(),
                source,
            };
            Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect)?,
            )
        }
        VaultEndpoint::Tls {
            addr,
            server_name,
            files,
        } => {
            let connect = |source| ClientError::Connect {
                endpoint: addr.to_string(),
                source,
            };
            let cfg = client_config(files).map_err(ClientError::Tls)?;
            let name = rustls::pki_types::ServerName::try_from(server_name.clone())
                .map_err(|_| ClientError::ServerName(server_name.clone()))?;
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(connect)?;
            let _ = tcp.set_nodelay(true);
            Box::new(
                tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await
                    .map_err(connect)?,
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
        .map_err(ClientError::Transport)?;
    // The hello carried the client's secret into the codec's buffer.
    protocol::wipe_sent(write.write_buffer_mut());
    let frame = read
        .next()
        .await
        .ok_or(ClientError::Closed)?
        .map_err(ClientError::Transport)?;
    let role = match Response::decode(&frame)
        .map_err(ClientError::Malformed)?
        .result?
    {
        Reply::Welcome(role) => role,
        other => return Err(ClientError::UnexpectedReply(other.kind())),
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
            // Tokenize requests (PANs) were copied into the codec's buffer: wipe it.
            protocol::wipe_sent(write.write_buffer_mut());
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
