//! A pool of logged-in PKCS#11 sessions. A `Session` may move between threads but not be shared
//! (`!Sync`), so each caller borrows one for the length of a call. Never hands the same session to
//! two callers at once, and never holds the pool lock during an HSM call.

use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use crate::HsmError;

#[derive(Debug)]
pub(crate) struct SessionPool {
    ctx: Pkcs11,
    slot: Slot,
    /// Idle sessions; grows on demand up to `max`, beyond which callers open a short-lived one.
    idle: Mutex<Vec<Session>>,
    max: usize,
}

/// A borrowed session that goes back to the pool when dropped.
pub(crate) struct Lease<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
}

impl SessionPool {
    pub(crate) fn new(ctx: Pkcs11, slot: Slot, first: Session, max: usize) -> SessionPool {
        SessionPool {
            ctx,
            slot,
            idle: Mutex::new(vec![first]),
            max: max.max(1),
        }
    }

    pub(crate) fn get(&self) -> Result<Lease<'_>, HsmError> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let session = match idle {
            Some(s) => s,
            // PKCS#11 login state is per application and token, so a new session is already
            // logged in because the first one was.
            None => self.ctx.open_rw_session(self.slot)?,
        };
        Ok(Lease {
            pool: self,
            session: Some(session),
        })
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        // Present from construction until drop.
        self.session
            .as_ref()
            .unwrap_or_else(|| unreachable!("lease without a session"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(s), Ok(mut idle)) = (self.session.take(), self.pool.idle.lock())
            && idle.len() < self.pool.max
        {
            idle.push(s);
        }
    }
}
