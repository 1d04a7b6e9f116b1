//! The One Click walkthrough for the demo: the real simulator and vault, the link in process,
//! data under `var/demo/` at the repository root (wiped first, so each run starts fresh), and the
//! summary printed as a table. Exits non-zero unless every step and the reconciliation are as
//! expected.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use e2e::{WalkthroughConfig, run};
use testkit::processes::Binaries;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .context("the e2e crate sits in the repository root")?;
    let data_dir = root.join("var").join("demo");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("remove the previous run's {}", data_dir.display()))?;
    }
    let config = WalkthroughConfig {
        binaries: Binaries::locate()?,
        data_dir,
    };
    let summary = run(&config).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{summary}")?;
    anyhow::ensure!(summary.ok(), "the walkthrough did not go as expected");
    writeln!(
        out,
        "One Click walkthrough: all steps as expected, ledger reconciled"
    )?;
    Ok(())
}
