//! The audit entries of connections rather than calls: a successful login, a connection that
//! ended before it authenticated, and the summary of failures that were counted instead of
//! recorded one by one (the server decides which, see `crate::admission::Trace`).
//!
//! Must never record what a peer sent beyond a sanitised claimed id: reasons are fixed words.

use store::Batch;

use super::{Caller, CardVault};
use crate::audit::{AuditError, Event, OP_CONNECTION};
use crate::protocol::{OpKind, Status, op_code, status_code};

impl CardVault {
    /// Records a successful login; the client is welcomed only once this is durable.
    pub async fn logged_in(&self, caller: &Caller) -> Result<(), AuditError> {
        let event = Event {
            client: caller.client.clone(),
            role: Some(caller.role),
            op: op_code(OpKind::Hello),
            outcome: status_code(Status::Ok),
            peer: caller.peer.clone(),
            ..connection_event()
        };
        self.inner.audit.append(event, Batch::default()).await
    }

    /// Records a connection that ended before it authenticated, and why (`reason` is one of the
    /// server's fixed phrases).
    pub async fn connection_failed(&self, peer: &str, reason: &str) -> Result<(), AuditError> {
        let event = Event {
            peer: peer.to_string(),
            detail: reason.to_string(),
            ..connection_event()
        };
        self.inner.audit.append(event, Batch::default()).await
    }

    /// Records that `count` refused logins or failed connections from `source` were counted,
    /// not recorded one by one.
    pub async fn failures_counted(&self, source: &str, count: u64) -> Result<(), AuditError> {
        let event = Event {
            peer: source.to_string(),
            detail: format!(
                "{count} more refused logins or failed connections not recorded singly"
            ),
            ..connection_event()
        };
        self.inner.audit.append(event, Batch::default()).await
    }
}

/// An entry about a connection, not a call: no client yet, refused unless said otherwise.
fn connection_event() -> Event {
    Event {
        at_ms: super::dispatch::now_ms(),
        client: String::new(),
        role: None,
        op: OP_CONNECTION,
        token: None,
        scope: String::new(),
        customer: String::new(),
        outcome: status_code(Status::Unauthenticated),
        peer: String::new(),
        detail: String::new(),
    }
}
