//! The ISO 8583 side of the network: a mutual-TLS listener, one task per connection that reads
//! frames, has the issuer decide each request and writes the responses, delayed, reordered,
//! withheld or broken as fault injection says.
//!
//! Owns connection life cycles, framing errors (clear error in the ledger and the log, then the
//! connection is closed) and delivery. It must never decide an outcome itself, never panic or
//! unwrap on what a peer sent, and never log a message body (it may hold a PAN).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use iso8583::{FrameCodec, Message, MessageBuilder, ResponseCode, tag};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{BytesCodec, FramedRead, FramedWrite};

use crate::faults::{Fault, FaultSubject, Faults};
use crate::issuer::{Arrival, Decision, Issuer};
use crate::ledger::Delivery;

/// Responses waiting out a delay on one connection; past this, the connection stops reading
/// until some are written (back-pressure instead of an unbounded pile of timers).
const MAX_DELAYED_PER_CONNECTION: usize = 4096;

/// What all connections share.
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) faults: RwLock<Arc<Faults>>,
    connections: AtomicU64,
    /// Bumped to make every open connection close (shutdown, or a test's `disconnect_all`).
    pub(crate) close_all: watch::Sender<u64>,
}

impl Network {
    pub(crate) fn new(issuer: Arc<Issuer>, faults: Faults) -> Network {
        Network {
            issuer,
            faults: RwLock::new(Arc::new(faults)),
            connections: AtomicU64::new(0),
            close_all: watch::Sender::new(0),
        }
    }

    pub(crate) fn faults(&self) -> Arc<Faults> {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the fault settings; applies to the next message and the next connection.
    pub(crate) fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(faults);
    }

    /// Closes every open connection now (the listener keeps accepting).
    pub(crate) fn disconnect_all(&self) {
        self.close_all.send_modify(|g| *g += 1);
    }
}

/// Accepts connections until `stop` changes, then waits for the connection tasks to end.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    network: Arc<Network>,
    max_connections: usize,
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                continue;
            }
        };
        let id = network.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let network = network.clone();
        let acceptor = acceptor.clone();
        // Subscribed here, before the task and its handshake run: a stop (or `disconnect_all`)
        // while either is under way closes this connection too, instead of being missed by a
        // later subscription and leaving the stop waiting on a connection its peer keeps open.
        let mut close = network.close_all.subscribe();
        tasks.spawn(async move {
            let _permit = permit;
            let shaken = tokio::select! {
                _ = close.changed() => return,
                shaken = handshake(tcp, &acceptor, &network, handshake_timeout) => shaken,
            };
            match shaken {
                Ok(tls) => {
                    tracing::debug!(connection = id, %peer, "connection open");
                    if let Err(reason) = Connection::new(id, network).run(tls, close).await {
                        tracing::warn!(connection = id, %peer, %reason, "connection closed");
                    }
                }
                Err(reason) => tracing::info!(connection = id, %peer, %reason, "handshake refused"),
            }
        });
    }
    network.disconnect_all();
    while tasks.join_next().await.is_some() {}
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

async fn handshake(
    tcp: TcpStream,
    acceptor: &TlsAcceptor,
    network: &Network,
    timeout: Duration,
) -> Result<TlsStream, String> {
    if network.faults().refuse_handshake {
        return Err("refuse_handshake fault is on".into());
    }
    // Small request/response frames: waiting to coalesce would only add latency.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(err)) => Err(format!("TLS handshake failed: {err}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum ConnectionEnd {
    #[error("malformed frame: {0}")]
    Frame(iso8583::FrameError),
    #[error("undecodable message: {0}")]
    Message(iso8583::DecodeError),
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("write failed: {0}")]
    Write(std::io::Error),
}

/// One response's way out.
enum Outbound {
    Now(Bytes),
    After(Duration, Bytes),
    /// Write these bytes (half a frame), then close.
    Cut(Bytes),
    Nothing,
}

type Delayed = Pin<Box<dyn Future<Output = Bytes> + Send>>;

struct Connection {
    id: u64,
    network: Arc<Network>,
}

impl Connection {
    fn new(id: u64, network: Arc<Network>) -> Connection {
        Connection { id, network }
    }

    async fn run(
        self,
        tls: TlsStream,
        mut close: watch::Receiver<u64>,
    ) -> Result<(), ConnectionEnd> {
        let (read, write) = tokio::io::split(tls);
        let mut frames = FramedRead::new(read, FrameCodec);
        let mut sink = FramedWrite::new(write, BytesCodec::new());
        let mut delayed: FuturesUnordered<Delayed> = FuturesUnordered::new();
        let mut unflushed = false;
        loop {
            tokio::select! {
                biased;
                _ = close.changed() => break,
                Some(bytes) = delayed.next(), if !delayed.is_empty() => {
                    sink.feed(bytes).await.map_err(ConnectionEnd::Write)?;
                    unflushed = true;
                }
                frame = frames.next(), if delayed.len() < MAX_DELAYED_PER_CONNECTION => {
                    let wire = match frame {
                        None => break,
                        Some(Ok(wire)) => wire,
                        // A reset or a close without close_notify is the peer leaving, not
                        // a malformed frame: nothing for the ledger.
                        Some(Err(iso8583::FrameError::Io(err))) => {
                            return Err(ConnectionEnd::Read(err));
                        }
                        Some(Err(err)) => {
                            let end = ConnectionEnd::Frame(err);
                            self.network.issuer.record_malformed(self.id, end.to_string());
                            return Err(end);
                        }
                    };
                    let msg = match Message::decode(wire) {
                        Ok(msg) => msg,
                        Err(err) => {
                            let end = ConnectionEnd::Message(err);
                            self.network.issuer.record_malformed(self.id, end.to_string());
                            return Err(end);
                        }
                    };
                    match self.answer(&msg) {
                        Outbound::Now(bytes) => {
                            sink.feed(bytes).await.map_err(ConnectionEnd::Write)?;
                            unflushed = true;
                        }
                        Outbound::After(delay, bytes) => delayed.push(Box::pin(async move {
                            tokio::time::sleep(delay).await;
                            bytes
                        })),
                        Outbound::Cut(bytes) => {
                            SinkExt::<Bytes>::flush(&mut sink).await.map_err(ConnectionEnd::Write)?;
                            let mut write = sink.into_inner();
                            write.write_all(&bytes).await.map_err(ConnectionEnd::Write)?;
                            write.flush().await.map_err(ConnectionEnd::Write)?;
                            // Dropping both halves closes the TCP connection without close_notify,
                            // as a crashed peer would.
                            return Ok(());
                        }
                        Outbound::Nothing => {}
                    }
                }
                flushed = SinkExt::<Bytes>::flush(&mut sink), if unflushed => {
                    flushed.map_err(ConnectionEnd::Write)?;
                    unflushed = false;
                }
            }
        }
        let _ = SinkExt::<Bytes>::flush(&mut sink).await;
        let _ = sink.into_inner().shutdown().await;
        Ok(())
    }

    /// Decides and books one request and says how its response leaves.
    fn answer(&self, msg: &Message) -> Outbound {
        let faults = self.network.faults();
        let subject = FaultSubject {
            mti: msg.mti().value(),
            stan: msg.stan().map(|s| s.value()),
            amount: msg.amount().map(|a| a.0),
            pan: msg.field(2),
        };
        let mut dice = faults.dice(subject);
        let fault = faults.choose(subject, &mut dice);
        let (delivery, delay) = match fault {
            None => match faults.latency.sample(&mut dice) {
                d if d.is_zero() => (Delivery::Sent, d),
                d => (Delivery::Delayed { ms: millis(d) }, d),
            },
            Some(Fault::Delay { latency }) => {
                let d = latency.sample(&mut dice);
                (Delivery::Delayed { ms: millis(d) }, d)
            }
            Some(Fault::NoResponse) => (Delivery::NoResponse, Duration::ZERO),
            Some(Fault::Late) => (
                Delivery::Late {
                    ms: millis(faults.late_delay),
                },
                faults.late_delay,
            ),
            Some(Fault::DropConnection) => (Delivery::DropConnection, Duration::ZERO),
            Some(Fault::Malformed) => (Delivery::Malformed, Duration::ZERO),
        };
        let arrival = Arrival {
            connection: self.id,
            delivery,
        };
        let bytes = match respond(&self.network.issuer, msg, arrival) {
            None => return Outbound::Nothing,
            Some(Ok(bytes)) => bytes,
            Some(Err(err)) => {
                tracing::error!(connection = self.id, mti = %msg.mti(), %err, "response not encodable");
                return Outbound::Nothing;
            }
        };
        match delivery {
            Delivery::Sent | Delivery::None => Outbound::Now(bytes),
            Delivery::Delayed { .. } | Delivery::Late { .. } => Outbound::After(delay, bytes),
            Delivery::NoResponse => Outbound::Nothing,
            Delivery::DropConnection => Outbound::Cut(bytes.slice(..bytes.len() / 2)),
            Delivery::Malformed => Outbound::Now(malformed_frame(msg)),
        }
    }
}

/// Decides and books one request and frames its answer (2-byte length header included): 30 for a
/// request the issuer rejected; `None` for a message that has no response MTI and was rejected.
pub(crate) fn respond(
    issuer: &Issuer,
    msg: &Message,
    arrival: Arrival,
) -> Option<Result<Bytes, iso8583::EncodeError>> {
    Some(match issuer.process(msg, arrival) {
        Ok(decision) => encode_response(msg, &decision),
        Err(reject) => {
            tracing::info!(connection = arrival.connection, mti = %msg.mti(), %reject, "request rejected");
            msg.mti().response()?;
            encode_response(msg, &Decision::code(ResponseCode::FORMAT_ERROR))
        }
    })
}

/// The framed response (2-byte length header included).
fn encode_response(request: &Message, decision: &Decision) -> Result<Bytes, iso8583::EncodeError> {
    let mut builder = MessageBuilder::response_to(request);
    builder.response_code(decision.code);
    if let Some(code) = &decision.approval_code {
        builder.field(38, code);
    }
    let cvc_result = decision.cvc_result.map(|r| [r]);
    let cavv_result = decision.cavv_result.map(|r| [r]);
    let mut de48: Vec<(u8, &[u8])> = Vec::with_capacity(3);
    if let Some(id) = &decision.network_id {
        de48.push((tag::NETWORK_TRANSACTION_ID, id));
    }
    if let Some(r) = &cvc_result {
        de48.push((tag::CVC2_RESULT, r));
    }
    if let Some(r) = &cavv_result {
        de48.push((tag::CAVV_RESULT, r));
    }
    if !de48.is_empty() {
        builder.de48(&de48);
    }
    let mut out = BytesMut::with_capacity(256);
    builder.encode_frame_into(&mut out)?;
    Ok(out.freeze())
}

/// A frame whose body claims the response MTI and a bitmap full of fields, then ends: any
/// decoder reports it truncated.
fn malformed_frame(request: &Message) -> Bytes {
    let mti = request.mti().response().unwrap_or(request.mti()).to_ascii();
    let mut out = BytesMut::with_capacity(14);
    out.put_u16(12);
    out.put_slice(&mti);
    out.put_slice(&[0x72, 0x3C, 0x44, 0x81, 0x28, 0xE0, 0x80, 0x00]);
    out.freeze()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
