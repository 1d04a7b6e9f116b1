//! `vault`: parse the command line and hand over to the command.

mod cli;

/// jemalloc, as in the authorizer: the store's page cache churns page-sized buffers across
/// threads, which glibc's arenas hold on to; jemalloc keeps the resident set near the live heap.
/// Sensitive buffers are zeroized before they are freed, whichever allocator takes them back.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = <cli::Cli as clap::Parser>::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(cli::run(args))
}
