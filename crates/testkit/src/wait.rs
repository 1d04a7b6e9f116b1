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
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {GUARD:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
