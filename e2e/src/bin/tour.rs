//! The tour for the demo: the real simulator, vault and authorizer started from the release
//! binaries on a temp directory (removed when the tour ends), driven through the merchant API
//! and the payment pages; the table printed. Exits non-zero unless every row is OK.

use std::io::Write;

use anyhow::Context;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let tour = e2e::tour::run().await.context("the tour could not go on")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{tour}")?;
    anyhow::ensure!(tour.ok(), "the tour did not go as expected");
    Ok(())
}
