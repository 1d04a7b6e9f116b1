//! One TLS connection to the processing centre: connect, then a single task that writes queued
//! frames and reads responses until either side fails.
//!
//! Owns the socket and its buffers. Frames go out in batches: everything queued is copied into one
//! zeroizing scratch buffer, written as one TLS record, and the scratch is wiped, so a PAN-bearing
//! frame exists in clear only from `encode_frame_into` until the write returns. Responses are
//! decoded and handed to the in-flight table. It must never block the hot path on anything but the
//! socket, and never log a frame's content (only MTI, STAN, RRN, response code).

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use iso8583::{FrameCodec, Message, MessageBuilder, Mti, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use zeroize::{Zeroize, Zeroizing};

use crate::config::{Endpoint, LinkConfig};
use crate::inflight::Unmatched;
use crate::pool::Shared;

/// One encoded frame (length header included) on its way to the socket.
#[derive(Debug)]
pub struct Outbound {
    pub stan: iso8583::Stan,
    pub frame: Zeroizing<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {addr}: timed out")]
    Timeout { addr: String },
    #[error("connect to {addr}: {source}")]
    Io { addr: String, source: io::Error },
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum Closed {
    #[error("shutting down")]
    Shutdown,
    #[error("the processing centre closed the connection")]
    ByPeer,
    #[error("framing error: {0}")]
    Framing(#[from] iso8583::FrameError),
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

pub async fn connect(
    endpoint: &Endpoint,
    config: &LinkConfig,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let addr = endpoint.addr.clone();
    let attempt = async {
        let tcp = TcpStream::connect(&endpoint.addr).await?;
        tcp.set_nodelay(true)?;
        TlsConnector::from(Arc::clone(&config.tls))
            .connect(endpoint.server_name.clone(), tcp)
            .await
    };
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Err(_) => Err(ConnectError::Timeout { addr }),
        Ok(Err(source)) => Err(ConnectError::Io { addr, source }),
        Ok(Ok(s)) => Ok(s),
    }
}

/// How long an orderly TLS close may take before the connection is just dropped.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Frames batched into one write at most; bounds the scratch buffer.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Runs the connection until it fails or `stop` fires. Frames left in `rx` when it returns were
/// never written.
pub async fn run(
    mut stream: TlsStream<TcpStream>,
    rx: &mut mpsc::Receiver<Outbound>,
    shared: &Shared,
    slot: usize,
    stop: &CancellationToken,
) -> Result<(), Closed> {
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut scratch: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(MAX_BATCH_BYTES));
    let mut codec = FrameCodec;
    loop {
        // Unbiased: under sustained load a read is always ready, and a fixed order would starve
        // the writer (and so every request's latency).
        tokio::select! {
            () = stop.cancelled() => {
                // close_notify, so the network sees an orderly close rather than a truncation.
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, stream.shutdown()).await;
                return Err(Closed::Shutdown);
            }
            read = stream.read_buf(&mut rbuf) => {
                if read? == 0 {
                    return Err(Closed::ByPeer);
                }
                shared.touch(slot);
                while let Some(frame) = codec.decode(&mut rbuf)? {
                    if let Some(answer) = dispatch(frame, shared) {
                        scratch.extend_from_slice(&answer);
                    }
                }
                if !scratch.is_empty() {
                    let written = stream.write_all(&scratch).await;
                    scratch.zeroize();
                    written?;
                }
            }
            Some(first) = rx.recv() => {
                // A request whose waiter already gave up (timed out, cancelled) is not written:
                // its reversal may be on its way, and the network must not see them crossed.
                append_if_awaited(&mut scratch, first, shared);
                while scratch.len() < MAX_BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(next) => append_if_awaited(&mut scratch, next, shared),
                        Err(_) => break,
                    }
                }
                if scratch.is_empty() {
                    continue;
                }
                let written = async {
                    stream.write_all(&scratch).await?;
                    stream.flush().await
                }
                .await;
                scratch.zeroize();
                written?;
            }
        }
    }
}

fn append_if_awaited(scratch: &mut Vec<u8>, out: Outbound, shared: &Shared) {
    if shared.inflight.contains(out.stan) {
        scratch.extend_from_slice(&out.frame);
    }
}

/// Hands one inbound frame to its waiter. Returns an answer to send when the network asked us
/// something (an echo test of its own).
fn dispatch(frame: bytes::Bytes, shared: &Shared) -> Option<Vec<u8>> {
    let msg = match Message::decode(frame) {
        Ok(m) => m,
        Err(e) => {
            shared
                .metrics
                .malformed_responses
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(error = %e, "undecodable message from the processing centre; ignored");
            return None;
        }
    };
    if msg.mti() == Mti::NETWORK_REQUEST {
        let mut answer = Vec::new();
        let built = MessageBuilder::response_to(&msg)
            .response_code(ResponseCode::APPROVED)
            .field(70, msg.field(70).unwrap_or(b"301"))
            .encode_frame_into(&mut answer);
        return built.ok().map(|_| answer);
    }
    let (mti, stan, rrn, code) = (msg.mti(), msg.stan(), msg.rrn(), msg.response_code());
    match shared.inflight.complete(msg) {
        Ok(()) => {}
        Err(why) => {
            let late = why == Unmatched::NoWaiter;
            if late {
                shared
                    .metrics
                    .late_responses
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tracing::warn!(
                %mti, ?stan, ?rrn, ?code, reason = ?why,
                "response with no waiting request (late after a time-out, or stray); ignored, never applied"
            );
        }
    }
    None
}
