//! `authorizer`: parse flags, validate the configuration, serve until Ctrl-C or SIGTERM; or
//! `authorizer hash-password`, which reads a password on stdin and prints its argon2id hash for
//! the merchants file; or `authorizer customer …`, the cabinet's One Click customer actions for
//! operators.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use authorizer::Ready;
use authorizer::operator::CustomerAction;
use authorizer::run::{Listeners, run};
use clap::{Args, Parser, Subcommand};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// jemalloc, not glibc's malloc: the store's page cache turns over page-sized buffers allocated
/// and freed on different threads, and glibc's per-thread arenas kept growing under that churn
/// long after the cache was full (README, Soak); jemalloc's size classes and decay keep the
/// resident set near the live heap.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    about = "Assist-compatible payment authorizer",
    long_about = "Assist-compatible payment authorizer: the merchant API, the payment pages and the \
                  cabinet (http_addr), the ISO 8583 link, the order engine, result notifications, \
                  and the admin endpoint (admin_addr). Prints `READY api=<addr> admin=<addr>` on \
                  stdout once the merchant API answers.",
    after_long_help = "Configuration: every key of the TOML file is documented in \
                       crates/authorizer/README.md (\"The binary\"); deploy/authorizer.toml is a \
                       commented example for a real deployment, config/authorizer.dev.toml the dev \
                       one. The vault clients' secrets come from the files or variables the file \
                       names, never from the command line.\n\n\
                       Admin endpoint: GET /health (liveness: 200 while the process serves), GET \
                       /ready (readiness: 200 once recovery has run, a link connection is up and \
                       the vault answers; 503 and the reason otherwise), GET /metrics (Prometheus).\n\n\
                       SIGTERM or SIGINT: both listeners stop taking connections, payments in \
                       flight finish and get their answers, a notification try in flight is \
                       recorded (pending ones stay due in the store for the next start), the link \
                       signs off; exit status 0."
)]
struct Flags {
    /// TOML configuration file (keys: crates/authorizer/README.md; example:
    /// deploy/authorizer.toml); without one, the dev defaults of ARCHITECTURE.md.
    #[arg(long, env = "AUTHORIZER_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `admin_addr`: the admin endpoint (/health, /ready, /metrics, the operator's
    /// commands); port 0 picks a free port, which the READY line tells.
    #[arg(long)]
    admin_addr: Option<SocketAddr>,
    /// Overrides `http_addr`: the merchant API, payment pages and cabinet; port 0 as above.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Overrides `merchants`: the merchant directory file (format: crates/facade/README.md).
    #[arg(long)]
    merchants: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Read a password from stdin (one line; never from the command line, where `ps` and the
    /// shell's history would keep it) and print its argon2id PHC hash.
    HashPassword,
    /// A merchant's One Click customer, as the merchant's cabinet shows and changes it, through
    /// the vault's `facade` role with this configuration's `[vault]` settings (its secret from
    /// the same variable or file as the running authorizer's). Each change is audited.
    #[command(subcommand)]
    Customer(CustomerCommand),
}

#[derive(Subcommand)]
enum CustomerCommand {
    /// Print the customer's One Click status (none, Member or Deny) and its saved cards: masked
    /// number, brand, expiry, active or expired, successful payments, token.
    Show(Who),
    /// Set the customer to Deny: One Click refused, no card saved or offered any more (the saved
    /// cards stay until removed).
    Deny(Who),
    /// Lift Deny: the customer may save and use cards again.
    Allow(Who),
    /// Erase one saved card of the customer from the vault, for good.
    RemoveCard {
        #[command(flatten)]
        who: Who,
        /// The card's token (as `show` prints it).
        #[arg(long)]
        token: String,
    },
}

/// Whose customer.
#[derive(Args)]
struct Who {
    /// The merchant's Merchant_ID (its customer list decides whose customers these are: the
    /// merchants of a union share theirs).
    #[arg(long)]
    merchant: String,
    /// The merchant's CustomerNumber.
    #[arg(long)]
    customer: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let flags = Flags::parse();
    let mut settings = match &flags.config {
        Some(path) => authorizer::config::Settings::from_file(path)?,
        None => authorizer::config::Settings::default(),
    };
    match flags.command {
        Some(Command::HashPassword) => return hash_password(),
        Some(Command::Customer(c)) => return customer(settings, c).await,
        None => {}
    }
    settings.admin_addr = flags.admin_addr.unwrap_or(settings.admin_addr);
    settings.http_addr = flags.http.unwrap_or(settings.http_addr);
    settings.merchants = flags.merchants.unwrap_or(settings.merchants);
    let config = settings.validate()?;
    let api = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding the merchant API address {}", config.http_addr))?;
    let admin = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding the admin address {}", config.admin_addr))?;
    let ready = Ready {
        api: api.local_addr()?,
        admin: admin.local_addr()?,
    };
    let mut running = tokio::spawn(run(config, Listeners { api, admin }, shutdown_signal()?));
    tokio::select! {
        ended = &mut running => return Ok(ended??),
        () = answers(ready.api) => announce(ready),
    }
    Ok(running.await??)
}

fn hash_password() -> anyhow::Result<()> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let phc = facade::hash_password(password)?;
    print_line(&phc);
    Ok(())
}

async fn customer(
    settings: authorizer::config::Settings,
    command: CustomerCommand,
) -> anyhow::Result<()> {
    let (who, action) = match command {
        CustomerCommand::Show(who) => (who, CustomerAction::Show),
        CustomerCommand::Deny(who) => (who, CustomerAction::Deny),
        CustomerCommand::Allow(who) => (who, CustomerAction::Allow),
        CustomerCommand::RemoveCard { who, token } => {
            let token = vault::Token::parse(&token).context("--token")?;
            (who, CustomerAction::RemoveCard(token))
        }
    };
    let access = settings.facade_vault()?;
    let text = authorizer::operator::customer(access, &who.merchant, &who.customer, action).await?;
    print_line(&text);
    Ok(())
}

/// Waits until the merchant API answers HTTP on `api` (a GET to a POST-only service: 405).
async fn answers(api: SocketAddr) {
    let mut target = api;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    loop {
        if probe(target).await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn probe(api: SocketAddr) -> std::io::Result<bool> {
    let mut s = tokio::net::TcpStream::connect(api).await?;
    s.write_all(
        b"GET /pay/oneclick/v1/token.cfm HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n",
    )
    .await?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await?;
    Ok(head.starts_with(b"HTTP/1.1 405"))
}

/// The readiness line on stdout, so a supervisor (or a test) that asked for port 0 learns the
/// addresses, and knows the merchant API answers.
fn announce(ready: Ready) {
    print_line(&ready.to_string());
}

#[allow(clippy::print_stdout)]
fn print_line(line: &str) {
    println!("{line}");
}

/// Installed before anything serves, so that a SIGTERM right after the readiness line is a
/// clean stop.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
