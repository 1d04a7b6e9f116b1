//! The binary's configuration: command-line flags and an optional TOML file, checked and turned
//! into a [`ServeConfig`] before anything starts.
//!
//! Owns flag names, the file format, dev defaults (`127.0.0.1:8583`, `127.0.0.1:8584`,
//! `var/certs`, a ledger file per run under `var/simulator/`) and their validation. It must
//! never start a server: a bad configuration is one clear error, not a failure at first use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::SimConfig;
use crate::faults::Faults;
use crate::pki::{self, DevPki};

/// Where the ISO 8583 listener binds unless configured: the authorizer's dev link points here.
pub const DEFAULT_ISO_ADDR: &str = "127.0.0.1:8583";
/// Where the ACS pages and the ledger endpoint bind unless configured.
pub const DEFAULT_ACS_ADDR: &str = "127.0.0.1:8584";
/// The dev PKI's directory unless configured; generated on first start.
pub const DEFAULT_CERTS_DIR: &str = "var/certs";
/// Where each run's ledger file goes unless a path is configured.
pub const DEFAULT_LEDGER_DIR: &str = "var/simulator";
/// A long-running dev server keeps this many ledger entries in memory (about 300 MB at most).
pub const DEFAULT_LEDGER_IN_MEMORY: usize = 1_000_000;
/// How long the issuer remembers a payment unless configured (`remember_secs`): an hour.
pub const DEFAULT_REMEMBER: Duration = Duration::from_secs(3_600);
/// The shortest memory `remember_secs` may ask for: an acquirer's reversal of a timed-out
/// payment, and a repeated STAN, come within a minute, and must find the payment.
pub const MIN_REMEMBER: Duration = Duration::from_secs(60);

/// The command line of the `simulator` binary.
#[derive(Debug, clap::Parser)]
#[command(
    name = "simulator",
    about = "Processing-centre simulator: ISO 8583 issuer, 3-DS ACS, faults, ledger",
    after_long_help = "Configuration of `serve`: every key of the TOML file (--config) is \
                       documented in crates/simulator/README.md; deploy/simulator.toml is a \
                       commented example for a shared test environment. `serve` prints \
                       `READY iso=<addr> acs=<addr>` on stdout once both listeners are bound, \
                       answers GET /health on the ACS address, and on SIGTERM or SIGINT ends its \
                       connections, flushes its ledger file and exits 0."
)]
pub struct Cli {
    /// What to do: serve, or write certificates.
    #[command(subcommand)]
    pub command: Command,
}

/// The `simulator` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve ISO 8583 over mutual TLS and the ACS pages.
    Serve(ServeArgs),
    /// Write a fresh dev CA, server and client certificates into a directory.
    Certs {
        /// Directory to write the CA, server and client certificates and keys into.
        #[arg(long, default_value = DEFAULT_CERTS_DIR)]
        out: PathBuf,
    },
}

/// Flags of `simulator serve`; each overrides the same key of the config file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of: iso_addr, acs_addr, certs, ledger, ledger_in_memory, remember_secs,
    /// max_connections, [faults] (crates/simulator/README.md; example: deploy/simulator.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// ISO 8583 listener (port 0 picks a free port; the READY line says which).
    #[arg(long)]
    pub iso_addr: Option<SocketAddr>,
    /// ACS pages and ledger endpoint listener.
    #[arg(long)]
    pub acs_addr: Option<SocketAddr>,
    /// Directory of the dev PKI (generated there when it holds none).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// Ledger file of this run (JSON lines).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    iso_addr: Option<SocketAddr>,
    acs_addr: Option<SocketAddr>,
    certs: Option<PathBuf>,
    ledger: Option<PathBuf>,
    max_connections: Option<usize>,
    /// Ledger entries kept in memory for `GET /ledger` (the file keeps all).
    ledger_in_memory: Option<usize>,
    /// Seconds the issuer remembers a payment for its follow-ups and duplicate checks.
    remember_secs: Option<u64>,
    faults: Option<Faults>,
}

/// Why `simulator serve` refused to start; nothing has been bound when it is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("config file {path}: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// Where and what the TOML error is.
        source: toml::de::Error,
    },
    /// The dev PKI could not be loaded from, or generated into, its directory.
    #[error("certificates in {dir}: {source}")]
    Certs {
        /// The certificates directory.
        dir: PathBuf,
        /// Which file failed, and how.
        source: pki::PkiError,
    },
    /// A value out of range or two values in conflict; the text says which.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A checked configuration for `simulator serve`.
#[derive(Debug)]
pub struct ServeConfig {
    /// Where the ISO 8583 listener binds (mutual TLS).
    pub iso_addr: SocketAddr,
    /// Where the ACS pages and the ledger endpoint bind (plain HTTP).
    pub acs_addr: SocketAddr,
    /// Everything else the simulator needs: PKI, faults, ledger, limits.
    pub sim: SimConfig,
}

impl ServeConfig {
    /// Merges flags over the config file over the defaults, checks the result and loads the dev PKI
    /// (generating it on first use): everything that can fail before a listener is bound.
    pub fn from_args(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => FileConfig::default(),
        };
        let default_addr = |s: &str| {
            s.parse::<SocketAddr>()
                .map_err(|_| ConfigError::Invalid("bad built-in address"))
        };
        let iso_addr = args
            .iso_addr
            .or(file.iso_addr)
            .map_or_else(|| default_addr(DEFAULT_ISO_ADDR), Ok)?;
        let acs_addr = args
            .acs_addr
            .or(file.acs_addr)
            .map_or_else(|| default_addr(DEFAULT_ACS_ADDR), Ok)?;
        if iso_addr == acs_addr && iso_addr.port() != 0 {
            return Err(ConfigError::Invalid("iso_addr and acs_addr must differ"));
        }
        let max_connections = file.max_connections.unwrap_or(1024);
        if max_connections == 0 {
            return Err(ConfigError::Invalid("max_connections must be at least 1"));
        }
        let faults = file.faults.unwrap_or_default();
        if faults
            .rules
            .iter()
            .any(|r| !(0.0..=1.0).contains(&r.probability))
        {
            return Err(ConfigError::Invalid(
                "fault probabilities must be within 0.0..=1.0",
            ));
        }
        let certs = args
            .certs
            .or(file.certs)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_DIR));
        let pki = load_or_create(&certs).map_err(|source| ConfigError::Certs {
            dir: certs.clone(),
            source,
        })?;
        let ledger = args
            .ledger
            .or(file.ledger)
            .unwrap_or_else(default_ledger_path);
        let mut sim = SimConfig::with_pki(&pki);
        sim.faults = faults;
        sim.ledger_path = Some(ledger);
        sim.ledger_in_memory = file.ledger_in_memory.unwrap_or(DEFAULT_LEDGER_IN_MEMORY);
        sim.remember = file
            .remember_secs
            .map_or(DEFAULT_REMEMBER, Duration::from_secs);
        if sim.remember < MIN_REMEMBER {
            return Err(ConfigError::Invalid("remember_secs must be at least 60"));
        }
        sim.max_connections = max_connections;
        Ok(ServeConfig {
            iso_addr,
            acs_addr,
            sim,
        })
    }
}

fn load_or_create(dir: &Path) -> Result<DevPki, pki::PkiError> {
    if dir.join(pki::CA_CERT_FILE).exists() {
        return DevPki::load_from(dir);
    }
    tracing::info!(dir = %dir.display(), "no certificates found; generating a dev PKI");
    let pki = DevPki::try_generate()?;
    pki.write_to(dir)?;
    Ok(pki)
}

/// `var/simulator/ledger-<unix seconds>.jsonl`: a file per run.
fn default_ledger_path() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Path::new(DEFAULT_LEDGER_DIR).join(format!("ledger-{secs}.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sim.toml");
        std::fs::write(
            &file,
            "iso_addr = \"127.0.0.1:9583\"\nacs_addr = \"127.0.0.1:9584\"\n[faults]\nrefuse_handshake = true\n",
        )
        .unwrap();
        let config = ServeConfig::from_args(ServeArgs {
            config: Some(file),
            acs_addr: Some("127.0.0.1:0".parse().unwrap()),
            certs: Some(dir.path().join("certs")),
            ledger: Some(dir.path().join("ledger.jsonl")),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(config.iso_addr.port(), 9583);
        assert_eq!(config.acs_addr.port(), 0);
        assert!(config.sim.faults.refuse_handshake);
        assert!(dir.path().join("certs").join(pki::CLIENT_KEY_FILE).exists());
    }

    #[test]
    fn unknown_keys_and_bad_probabilities_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sim.toml");
        std::fs::write(&file, "iso_adr = \"127.0.0.1:1\"\n").unwrap();
        let args = |file| ServeArgs {
            config: Some(file),
            certs: Some(dir.path().join("c")),
            ..ServeArgs::default()
        };
        assert!(matches!(
            ServeConfig::from_args(args(file.clone())),
            Err(ConfigError::Parse { .. })
        ));
        std::fs::write(
            &file,
            "[[faults.rules]]\nfault = { kind = \"late\" }\nprobability = 2.0\n",
        )
        .unwrap();
        assert!(matches!(
            ServeConfig::from_args(args(file)),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn a_memory_shorter_than_a_minute_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sim.toml");
        let serve = |remember: u64| {
            std::fs::write(&file, format!("remember_secs = {remember}\n")).unwrap();
            ServeConfig::from_args(ServeArgs {
                config: Some(file.clone()),
                certs: Some(dir.path().join("c")),
                ledger: Some(dir.path().join("ledger.jsonl")),
                ..ServeArgs::default()
            })
        };
        assert!(matches!(
            serve(0),
            Err(ConfigError::Invalid("remember_secs must be at least 60"))
        ));
        assert_eq!(serve(60).unwrap().sim.remember, MIN_REMEMBER);
    }
}
