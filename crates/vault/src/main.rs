//! `vault`: parse the command line and hand over to the command.

mod cli;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = <cli::Cli as clap::Parser>::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(cli::run(args))
}
