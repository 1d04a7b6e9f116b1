//! `simulator serve` and `simulator certs`: flags in, validated config, then the library's `run`.

use clap::Parser;
use simulator::config::{Cli, Command, ServeConfig};

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Certs { out } => Ok(simulator::DevPki::try_generate()?.write_to(&out)?),
        Command::Serve(args) => serve(ServeConfig::from_args(args)?),
    }
}

#[tokio::main]
async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let iso = tokio::net::TcpListener::bind(config.iso_addr).await?;
    let acs = tokio::net::TcpListener::bind(config.acs_addr).await?;
    // One machine-readable line on stdout: supervisors and tests wait for it, and learn the
    // ports when they asked for port 0.
    #[allow(clippy::print_stdout)]
    {
        let ready = simulator::Ready {
            iso: iso.local_addr()?,
            acs: acs.local_addr()?,
        };
        println!("{ready}");
    }
    simulator::run(config.sim, iso, acs, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
}
