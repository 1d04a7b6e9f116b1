//! `authorizer`: parse flags, validate the configuration, run until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Assist-compatible payment authorizer")]
struct Flags {
    /// TOML configuration file; without one, the dev defaults of ARCHITECTURE.md.
    #[arg(long, env = "AUTHORIZER_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `admin_addr` (metrics).
    #[arg(long)]
    admin_addr: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let flags = Flags::parse();
    let mut settings = match &flags.config {
        Some(path) => authorizer::config::Settings::from_file(path)?,
        None => authorizer::config::Settings::default(),
    };
    settings.admin_addr = flags.admin_addr.unwrap_or(settings.admin_addr);
    let config = settings.validate()?;
    let admin = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .context("binding the admin address")?;
    announce(authorizer::Ready {
        admin: admin.local_addr()?,
    });
    authorizer::run::run(config, admin, shutdown_signal()).await?;
    Ok(())
}

/// The readiness line on stdout, so a supervisor (or a test) that asked for port 0 learns the
/// admin port.
#[allow(clippy::print_stdout)]
fn announce(ready: authorizer::Ready) {
    println!("{ready}");
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
