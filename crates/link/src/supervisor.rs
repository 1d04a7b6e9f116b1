//! The reconnect supervisor: one task per pool slot that keeps its connection alive (connect,
//! sign-on, echo on idle, reconnect with backoff and jitter, fail over to the next endpoint).
//!
//! Owns a slot's connection state and what happens to its queue when the connection goes: frames
//! never written move to another connection or fail as not sent; requests written fail as
//! "connection lost" (their fate unknown, so they are reversed). It must never let a frame queued
//! for a dead connection be written late on the next one.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use iso8583::NetworkCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connection::{self, Outbound};
use crate::error::EchoError;
use crate::inflight::Reply;
use crate::metrics::ConnectionState;
use crate::pool::Shared;

/// Why a signed-on connection was given up by its keep-alive.
#[derive(Debug, thiserror::Error)]
enum KeepAlive {
    #[error("sign-on failed")]
    SignOn(#[source] EchoError),
    #[error("echo test failed")]
    Echo(#[source] EchoError),
}

/// Keeps `slot` connected for the life of the link.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    slot: usize,
    mut rx: mpsc::Receiver<Outbound>,
    stop: CancellationToken,
) {
    let endpoints = shared.config.endpoints.len();
    let mut endpoint = 0;
    let mut attempt = 0u32;
    while !stop.is_cancelled() {
        let ep = &shared.config.endpoints[endpoint];
        shared.metrics.set_state(slot, ConnectionState::Connecting);
        shared.metrics.slots[slot]
            .endpoint
            .store(endpoint as u64, Relaxed);
        match connection::connect(ep, &shared.config).await {
            Ok(stream) => {
                shared.metrics.slots[slot].connects.fetch_add(1, Relaxed);
                shared.metrics.set_state(slot, ConnectionState::SigningOn);
                shared.touch(slot);
                withdraw_queued(&shared, slot, &mut rx);
                let conn_stop = stop.child_token();
                let ended = {
                    let io = connection::run(stream, &mut rx, &shared, slot, &conn_stop);
                    tokio::select! {
                        r = io => r.err().map(|e| e.to_string()),
                        e = keep_alive(&shared, slot) => Some(error_chain(&e)),
                    }
                };
                let was_up = shared.slots[slot].up.load(Relaxed);
                shared.set_up(slot, false);
                shared.metrics.slots[slot].disconnects.fetch_add(1, Relaxed);
                withdraw_queued(&shared, slot, &mut rx);
                let lost = shared.inflight.fail_slot(slot, &Reply::ConnectionLost);
                tracing::warn!(slot, endpoint = %ep.addr, reason = ?ended, lost, "link connection closed");
                if was_up {
                    attempt = 0;
                } else {
                    endpoint = (endpoint + 1) % endpoints;
                    attempt += 1;
                }
            }
            Err(e) => {
                shared.metrics.set_state(slot, ConnectionState::Down);
                tracing::warn!(slot, error = %e, "link connect failed; trying the next endpoint");
                endpoint = (endpoint + 1) % endpoints;
                attempt += 1;
            }
        }
        let delay = shared.config.backoff.delay(attempt, rand::random());
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    shared.set_up(slot, false);
}

/// Frames left queued on a slot whose connection is gone were never written: they move to another
/// up connection if one has room, else their waiters learn they were not sent. Either way the
/// next connection of this slot does not write them late.
fn withdraw_queued(shared: &Shared, slot: usize, rx: &mut mpsc::Receiver<Outbound>) {
    while let Ok(o) = rx.try_recv() {
        let Some(pending) = shared.inflight.get(o.stan) else {
            continue;
        };
        let stan = o.stan;
        match shared.reroute(slot, &pending, o) {
            Ok(()) => {}
            Err(_) => {
                if let Some(p) = shared.inflight.take(stan) {
                    p.completion.complete(Reply::NotSent);
                }
            }
        }
    }
}

/// Signs on, opens the slot to traffic, then sends an echo test whenever the connection has been
/// quiet for the echo interval. Returns (ending the connection) when any of them fails.
async fn keep_alive(shared: &Arc<Shared>, slot: usize) -> KeepAlive {
    if let Err(e) = shared.network(NetworkCode::SignOn, Some(slot)).await {
        return KeepAlive::SignOn(e);
    }
    shared.set_up(slot, true);
    shared.saf_wake.notify_one();
    tracing::info!(slot, "link signed on");
    let interval = shared.config.echo_interval;
    loop {
        let idle = shared.idle_for(slot);
        if idle < interval {
            tokio::time::sleep(interval - idle).await;
            continue;
        }
        if let Err(e) = shared.network(NetworkCode::Echo, Some(slot)).await {
            return KeepAlive::Echo(e);
        }
    }
}

/// An error and its causes on one line, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
