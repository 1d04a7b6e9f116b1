//! Waiting for a condition that another task or process makes true. Owns the one polling loop
//! and the guard time-out of every wait in the tests; the guard is there to turn a hang into a
//! failure, never to pace a test.

use std::time::Duration;

/// The longest any wait of the testkit lasts before it fails: a child's readiness line, a
/// response, a condition polled by [`eventually`]. Generous, because a loaded 2-core machine
/// runs many test binaries at once.
pub const GUARD: Duration = Duration::from_secs(30);

/// How often [`eventually`] asks again: cheap in-memory reads and a local HTTP scrape alike.
const POLL: Duration = Duration::from_millis(10);

/// Polls `check` until it holds; panics naming `what` if it does not within [`GUARD`].
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    assert!(
        within(GUARD, check).await,
        "timed out after {GUARD:?} waiting for {what}"
    );
}

/// Polls `check` until it holds or `limit` has passed; whether it held. For a caller that
/// reports a wait that ran out instead of panicking (the tour).
pub async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
