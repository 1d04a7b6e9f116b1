//! The `vault` commands: init, serve, rotate-keys, purge, audit verify, keys. Each loads and
//! validates the config first; a bad config, a missing module, a wrong PIN or a missing key ends
//! with one clear message. Never prints a secret or key material.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use vault::config::Config;
use vault::model::Role;
use vault::server::{self, Listeners};
use vault::service::{self, Initialized};
use vault::startup;
use vault::{Credentials, VaultClient, VaultEndpoint};

#[derive(Debug, Parser)]
#[command(
    name = "vault",
    about = "Card vault: PKCS#11 keys, encrypted card storage, tokens per customer",
    after_long_help = "Configuration: every key of the TOML file is documented in \
                       crates/vault/README.md (\"Config\"); deploy/vault.toml is a commented \
                       example for a real deployment, config/vault.dev.toml the dev one. The HSM \
                       PIN and the client secrets come from owner-only files the config names.\n\n\
                       Readiness: `vault serve` prints `vault listening unix=<path> tls=<addr|->` \
                       on stdout once its keys are loaded and its sockets bound. The vault has no \
                       HTTP endpoint; the authorizer's GET /ready covers its reachability.\n\n\
                       SIGTERM or SIGINT: `serve` stops accepting, answers every request already \
                       read, seals the audit log's final checkpoint and exits 0."
)]
pub struct Cli {
    /// Config file (TOML; keys: crates/vault/README.md, example: deploy/vault.toml).
    #[arg(long, env = "VAULT_CONFIG", default_value = "var/vault/vault.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the keys (and, with --dev, the SoftHSM token) or check the existing ones.
    Init {
        /// Development: create a SoftHSM2 token at $SOFTHSM2_CONF if there is none, with a
        /// random user PIN written to `[hsm] pin_file` (0600) and a random SO PIN kept nowhere.
        #[arg(long)]
        dev: bool,
    },
    /// Serve the vault protocol until SIGINT or SIGTERM.
    Serve {
        /// Accept secrets (`*_env`) from environment variables, which stay readable in
        /// /proc/<pid>/environ for the vault's whole life; without it such a config is refused.
        #[arg(long)]
        allow_env_secrets: bool,
    },
    /// Start a new key version on the running vault; records are re-sealed in the background
    /// and the retired keys destroyed once none is left under them.
    RotateKeys {
        /// Rotate the fingerprint key instead: records are re-fingerprinted in the background.
        #[arg(long)]
        fingerprint: bool,
    },
    /// Erase cards past retention on the running vault.
    Purge,
    /// Audit log commands.
    Audit {
        /// What to do with the audit log.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// List the vault's HSM keys: labels, versions, attributes, age against the cryptoperiod;
    /// never values.
    Keys,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and its HSM-sealed checkpoints: exit status 1 on any altered, removed
    /// or reordered entry, a recomputed chain, or a tail cut below the last checkpoint. Asks the
    /// running vault when one serves on the socket; otherwise opens the database and the HSM.
    Verify {
        /// Verify against this copy of the checkpoint file (the one shipped off-host) instead of
        /// the data directory's; the vault must then be stopped.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
}

fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// The variable an SO PIN was once passed in; `serve` refuses to run with it set.
const SO_PIN_ENV: &str = "VAULT_HSM_SO_PIN";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Before the config is read: it loads the HSM PIN and the client secrets.
    startup::harden_process()?;
    if let Command::Init { dev: true } = cli.command {
        let path = cli.config.clone();
        tokio::task::spawn_blocking(move || dev_token(&path)).await??;
    }
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Init { .. } => tokio::task::spawn_blocking(move || init(&config)).await?,
        Command::Serve { allow_env_secrets } => {
            refuse_environment_secrets(&config, allow_env_secrets)?;
            // Lock first: a second vault on this data directory stops here, before it could
            // replace the first one's socket; then everything that can fail (store, HSM, keys,
            // TLS files), then bind and announce.
            let _lock = startup::DataDirLock::acquire(&config.data_dir)?;
            let vault = server::open(&config)?;
            if let Some(t) = &config.tls {
                vault::tls::server_config(&t.files)?;
            }
            let unix = server::bind_unix(&config.socket)?;
            let socket = startup::SocketFile::claim(&config.socket)
                .with_context(|| format!("stat {}", config.socket.display()))?;
            let tls = match &config.tls {
                Some(t) => Some(
                    tokio::net::TcpListener::bind(t.listen)
                        .await
                        .with_context(|| format!("listen on {}", t.listen))?,
                ),
                None => None,
            };
            // Installed before the readiness line, so a SIGTERM right after it is a clean stop.
            let shutdown = shutdown_signal()?;
            // Tests and supervisors wait for this line: the keys are loaded and both sockets
            // are bound from here on.
            let ready = vault::Ready {
                unix: config.socket.clone(),
                tls: tls.as_ref().map(|l| l.local_addr()).transpose()?,
            };
            say(&ready.to_string());
            let served = server::serve(config, vault, Listeners { unix, tls }, shutdown).await;
            socket.remove_if_ours();
            Ok(served?)
        }
        Command::RotateKeys { fingerprint: false } => {
            let v = admin(&config).await?.rotate_keys().await?;
            say(&format!(
                "key version v{v} is now sealing; re-sealing older records in the background"
            ));
            Ok(())
        }
        Command::RotateKeys { fingerprint: true } => {
            let v = admin(&config).await?.rotate_fingerprint_key().await?;
            say(&format!(
                "fingerprint key v{v} is now current; re-fingerprinting older records in the background"
            ));
            Ok(())
        }
        Command::Purge => {
            let n = admin(&config).await?.purge().await?;
            say(&format!("erased {n} cards past retention"));
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { checkpoints },
        } => {
            let verified = match (checkpoints, serving_admin(&config).await?) {
                (None, Some(client)) => client
                    .verify_audit()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", service::Chain(&e))),
                (Some(_), Some(_)) => {
                    bail!("a vault is serving: verify a copy of the checkpoints with it stopped")
                }
                (file, None) => {
                    let store = config.open_store()?;
                    let hsm = hsm::Hsm::open(&config.hsm)?;
                    let file = file.unwrap_or_else(|| config.audit_head_file());
                    let sealer = vault::checkpoint::Sealer::new(hsm, file);
                    vault::checkpoint::verify_sealed(&store, &sealer)
                        .map_err(|e| anyhow::anyhow!("{}", service::Chain(&e)))
                }
            };
            match verified {
                Ok(v) => {
                    let head: String = v.head.iter().map(|b| format!("{b:02x}")).collect();
                    say(&format!(
                        "audit log intact: {} entries, {} checkpoints sealed through entry {}, head {head}",
                        v.entries, v.checkpoints, v.sealed_through
                    ));
                    Ok(())
                }
                Err(e) => bail!("audit log BROKEN: {e}"),
            }
        }
        Command::Keys => {
            let hsm = hsm::Hsm::open(&config.hsm)?;
            let today = hsm::today();
            for k in hsm.keys()? {
                // Age against the cryptoperiod; a key made before creation days were recorded
                // has none, and is flagged so an operator rotates it.
                let age = match (k.age(today), k.past_cryptoperiod(today)) {
                    (Some(age), Some(past)) => format!(
                        "age={}d\tcryptoperiod={}d\t{}",
                        age.whole_days(),
                        k.kind.cryptoperiod().whole_days(),
                        if past {
                            "PAST-CRYPTOPERIOD"
                        } else {
                            "in-cryptoperiod"
                        }
                    ),
                    _ => format!(
                        "age=unknown\tcryptoperiod={}d\tUNDATED (rotate to date it)",
                        k.kind.cryptoperiod().whole_days()
                    ),
                };
                say(&format!(
                    "{}\t{:?}\t{}\tsensitive={}\textractable={}\ttoken={}\t{age}",
                    k.label, k.kind, k.version, k.sensitive, k.extractable, k.token
                ));
            }
            Ok(())
        }
    }
}

/// Secrets in environment variables cannot be cleared here: `std::env::remove_var` is `unsafe`
/// in edition 2024 (another thread may read the environment at the same moment) and this crate
/// forbids unsafe code, and even a cleared variable stays in the kernel's copy that
/// `/proc/<pid>/environ` shows. So `serve` takes secrets from owner-only files, and accepts
/// variables only when the operator says so knowingly; the SO PIN it never accepts.
fn refuse_environment_secrets(config: &Config, allowed: bool) -> anyhow::Result<()> {
    if std::env::var_os(SO_PIN_ENV).is_some() {
        bail!(
            "{SO_PIN_ENV} is set: the SO PIN must never reach `vault serve` (it needs only the \
             user PIN); unset it"
        );
    }
    if !allowed && !config.env_secrets.is_empty() {
        bail!(
            "secrets from environment variables ({}) would stay readable in /proc/<pid>/environ \
             for the vault's whole life: use *_file (owner-only, chmod 600) instead, or pass \
             --allow-env-secrets to accept that",
            config.env_secrets.join(", ")
        );
    }
    Ok(())
}

/// `init --dev`: the SoftHSM2 config at `$SOFTHSM2_CONF` and a token in it, when there is none.
/// The user PIN is random and written owner-only to `[hsm] pin_file` (beside the SoftHSM2
/// config in the dev layout) unless that file exists; the SO PIN is random and kept nowhere (a
/// dev token is re-created, never administered). No PIN is in an argument list or variable.
fn dev_token(config_path: &std::path::Path) -> anyhow::Result<()> {
    let dev = vault::config::DevToken::load(config_path)?;
    let conf = std::env::var_os("SOFTHSM2_CONF")
        .map(PathBuf::from)
        .context("--dev needs SOFTHSM2_CONF set to where the dev token's config should live")?;
    let pin_file = dev.pin_file.context(
        "--dev keeps the user PIN in an owner-only file: set [hsm] pin_file (beside the SoftHSM2 \
         config)",
    )?;
    if conf.exists() {
        return Ok(());
    }
    startup::private_dir(&dev.data_dir)?;
    let user_pin = if pin_file.exists() {
        hsm::Pin::new(vault::SecretSource::File(pin_file.clone()).read()?)
    } else {
        let pin = hsm::Pin::new(random_pin());
        write_owner_only(&pin_file, pin.expose())?;
        pin
    };
    hsm::softhsm::write_conf(&conf, &dev.data_dir.join("softhsm-tokens"))?;
    hsm::softhsm::init_token(
        &conf,
        &dev.token_label,
        &hsm::Pin::new(random_pin()),
        &user_pin,
    )?;
    say(&format!(
        "created SoftHSM2 token {:?}; user PIN in {}",
        dev.token_label,
        pin_file.display()
    ));
    Ok(())
}

/// 128 random bits, hex: a PIN nobody types.
fn random_pin() -> String {
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
    rand::thread_rng().fill_bytes(&mut bytes[..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` readable and writable by its owner only, from the first byte on.
fn write_owner_only(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    writeln!(file, "{secret}").with_context(|| format!("write {}", path.display()))
}

fn init(config: &Config) -> anyhow::Result<()> {
    startup::private_dir(&config.data_dir)?;
    let hsm = hsm::Hsm::open(&config.hsm)?;
    let store = config.open_store()?;
    match service::init(&store, &hsm)? {
        Initialized::Created { version } => say(&format!(
            "created keys: KEK and DEK v{version}, fingerprint key"
        )),
        Initialized::Found { version } => {
            say(&format!("found existing keys: current version v{version}"))
        }
    }
    Ok(())
}

/// The admin client when a vault serves on the socket; `None` when none does (nothing listens),
/// or when the config names no admin client to ask it with (a serving vault then holds the
/// database's lock, and opening it says so).
async fn serving_admin(config: &Config) -> anyhow::Result<Option<VaultClient>> {
    if !config
        .clients
        .iter()
        .any(|c| c.role == Role::Admin && c.secret.is_some())
    {
        return Ok(None);
    }
    match admin(config).await {
        Ok(client) => Ok(Some(client)),
        Err(e)
            if e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<vault::ClientError>(),
                    Some(vault::ClientError::Connect { .. })
                )
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A client for operator commands: the first configured `admin` client, over the Unix socket.
async fn admin(config: &Config) -> anyhow::Result<VaultClient> {
    let Some(c) = config
        .clients
        .iter()
        .find(|c| c.role == Role::Admin && c.secret.is_some())
    else {
        bail!("no client with role admin and a secret in the config");
    };
    let secret = c.secret.clone().context("admin secret")?;
    VaultClient::connect(
        VaultEndpoint::Unix(config.socket.clone()),
        Credentials::Secret {
            client: c.id.clone(),
            secret,
        },
    )
    .await
    .with_context(|| format!("cannot reach the vault at {}", config.socket.display()))
}

fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
