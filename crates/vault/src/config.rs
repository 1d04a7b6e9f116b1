//! The vault's configuration: a TOML file parsed into raw structs, then validated into a typed
//! [`Config`] before anything starts, with every secret (HSM PIN, client secrets) read from the
//! environment or from a file only its owner can read. Never keeps a secret in the TOML itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hsm::{HsmConfig, Pin};
use serde::Deserialize;
use store::EngineKind;

use crate::model::{ClientSecret, MerchantId, Role, Scope};
use crate::secret::{SecretError, SecretSource};
use crate::tls::TlsFiles;

/// Why the configuration cannot be used; the vault does not start. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read (missing, permissions).
    #[error("cannot read config {path}: {reason}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The file is not TOML or does not match the config's shape (unknown key, wrong type).
    #[error("config {path} is not valid: {reason}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the TOML parser said.
        reason: String,
    },
    /// The file parses but breaks a rule (a merchant listed twice, no HSM PIN, no retention): the
    /// operator's to fix.
    #[error("config: {0}")]
    Invalid(String),
    /// A secret (HSM PIN or client secret) named by the config cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: PathBuf,
    #[serde(default)]
    engine: EngineKind,
    cache_mib: Option<store::CacheMib>,
    socket: Option<PathBuf>,
    tls: Option<RawTls>,
    hsm: RawHsm,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    merchants: Vec<RawMerchant>,
    #[serde(default)]
    clients: Vec<RawClient>,
    #[serde(default)]
    payments: PaymentPolicy,
    #[serde(default)]
    detokenize: DetokenizeLimit,
    #[serde(default)]
    audit: AuditPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    listen: SocketAddr,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
struct RawHsm {
    module: Option<PathBuf>,
    token_label: String,
    #[serde(flatten)]
    pin: RawSecret,
    #[serde(default = "default_sessions")]
    sessions: usize,
}

fn default_sessions() -> usize {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(default = "default_years")]
    years: u16,
    #[serde(default = "default_sweep")]
    sweep_interval_secs: u64,
}

fn default_years() -> u16 {
    6
}
fn default_sweep() -> u64 {
    3600
}

impl Default for RawRetention {
    fn default() -> Self {
        RawRetention {
            years: default_years(),
            sweep_interval_secs: default_sweep(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMerchant {
    id: String,
    /// Union of merchants sharing customer numbers and cards; the merchant alone when absent.
    union: Option<String>,
    #[serde(default = "default_threshold")]
    listing_threshold: u32,
}

fn default_threshold() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
struct RawClient {
    id: String,
    role: String,
    #[serde(flatten)]
    secret: Option<RawSecret>,
    /// Refused with a pointer to `tls_uri`: a DNS name matched wildcard certificates and
    /// certificates naming several clients (kept only to say so clearly).
    tls_name: Option<String>,
    /// The exact URI subject alternative name that identifies the client on the TLS listener.
    tls_uri: Option<String>,
    /// The SHA-256 (hex) of the client's certificate (DER), pinned instead of a URI.
    tls_cert_sha256: Option<String>,
}

/// Where a secret comes from: `<name>_env = "VAR"` or `<name>_file = "path"`.
#[derive(Debug, Deserialize)]
struct RawSecret {
    #[serde(alias = "pin_env")]
    secret_env: Option<String>,
    #[serde(alias = "pin_file")]
    secret_file: Option<PathBuf>,
}

impl RawSecret {
    fn source(self) -> Result<Option<SecretSource>, SecretError> {
        SecretSource::from_keys(self.secret_env, self.secret_file)
    }
}

/// A merchant's One Click settings.
#[derive(Debug, Clone)]
pub struct MerchantPolicy {
    /// The merchant's own scope, or its union's: where its customers and cards live.
    pub scope: Scope,
    /// Successful payments before a card is offered for One Click.
    pub listing_threshold: u32,
}

/// A configured client: who it is, what it may do, and how it proves it.
#[derive(Debug, Clone)]
pub struct ClientEntry {
    /// The name it gives in `hello` and the name the audit log records.
    pub id: String,
    /// What it may do (the role table of `service::dispatch`).
    pub role: Role,
    /// Its secret on the Unix socket; at least [`MIN_SECRET_LEN`] bytes.
    pub secret: Option<ClientSecret>,
    /// What identifies it on the TLS listener; unique among the configured clients.
    pub tls_identity: Option<TlsIdentity>,
}

/// The one thing in a client certificate that names exactly one configured client. No DNS name:
/// a wildcard or a certificate listing several names would match several clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TlsIdentity {
    /// A URI subject alternative name (`spiffe://…/authorizer`, `urn:vault:client:authorizer`),
    /// compared byte for byte: no wildcard, no prefix, no case folding.
    Uri(String),
    /// The SHA-256 of the certificate's DER encoding: this certificate and no other.
    CertSha256([u8; 32]),
}

/// Shortest client secret accepted: 16 random bytes are 128 bits, which online guessing at the
/// rate the vault's login throttle allows cannot exhaust; the throttle slows a guesser, it does
/// not stop one, so the secret's length is what makes guessing hopeless.
pub const MIN_SECRET_LEN: usize = 16;

/// The TCP listener with mutual TLS (`[tls]`); absent, the vault listens on its Unix socket only.
#[derive(Debug, Clone)]
pub struct TlsListen {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The vault's certificate and key, and the CA that signs the clients' certificates.
    pub files: TlsFiles,
}

/// How a detokenize is bound to a payment, and how a payment is recorded (`[payments]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentPolicy {
    /// How long a detokenize grant stays usable (seconds; default 300): long enough for one
    /// authorization, short enough that a leaked grant is soon worthless.
    pub grant_ttl_secs: u64,
    /// How long after its detokenize a payment may be reversed with its card again (seconds;
    /// default 7 days): store-and-forward retries a reversal until the network acknowledges it.
    pub reversal_window_secs: u64,
    /// How far a recorded payment's client time may be from the vault's clock (seconds; default
    /// 300). The vault's own time is what is stored.
    pub clock_skew_secs: u64,
    /// Most grants outstanding at once (default 1,000,000, about 150 MB at worst): the facade
    /// cannot make the vault's memory grow without bound.
    pub max_grants: usize,
}

impl Default for PaymentPolicy {
    fn default() -> PaymentPolicy {
        PaymentPolicy {
            grant_ttl_secs: 300,
            reversal_window_secs: 7 * 24 * 3600,
            clock_skew_secs: 300,
            max_grants: 1_000_000,
        }
    }
}

/// Per-client detokenize volume (`[detokenize]`): a token bucket per client, and a rate above
/// which the vault logs an alert and counts it in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetokenizeLimit {
    /// Sustained detokenizes per second per client (default 20,000: twice the 10,000 payments
    /// per second the soak asks for).
    pub rate_per_sec: u32,
    /// Detokenizes a client may make at once above the rate (default 40,000).
    pub burst: u32,
    /// Detokenizes in one second by one client above which an alert is logged and counted
    /// (default 15,000).
    pub alert_per_sec: u32,
}

impl Default for DetokenizeLimit {
    fn default() -> DetokenizeLimit {
        DetokenizeLimit {
            rate_per_sec: 20_000,
            burst: 40_000,
            alert_per_sec: 15_000,
        }
    }
}

/// When the audit chain's head is sealed by the HSM and exported (`[audit]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditPolicy {
    /// A checkpoint after this many new entries (default 10,000).
    pub checkpoint_every: u64,
    /// A checkpoint at least this often while entries are added (seconds; default 10).
    pub checkpoint_secs: u64,
    /// The append-only checkpoint file; default `<data_dir>/audit-head.log`.
    pub head_file: Option<PathBuf>,
}

impl Default for AuditPolicy {
    fn default() -> AuditPolicy {
        AuditPolicy {
            checkpoint_every: 10_000,
            checkpoint_secs: 10,
            head_file: None,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database, its lock and the audit checkpoint file live (owner-only).
    pub data_dir: PathBuf,
    /// The storage engine of the `store` crate.
    pub engine: EngineKind,
    /// The database's page cache (`cache_mib`, 16 to 1,048,576 MiB, default
    /// [`store::CacheMib::DEFAULT`]).
    pub cache_mib: store::CacheMib,
    /// The Unix socket (created mode 0600) the local clients connect to.
    pub socket: PathBuf,
    /// The mutual-TLS listener, if configured.
    pub tls: Option<TlsListen>,
    /// The PKCS#11 module, token and user PIN of the HSM holding the vault's keys.
    pub hsm: HsmConfig,
    /// Years a card is kept after its last successful payment (or its saving) before it is erased.
    pub retention_years: u16,
    /// How often the retention sweep runs.
    pub sweep_interval: Duration,
    /// Every merchant the vault serves; a call naming another is refused as unknown merchant.
    pub merchants: HashMap<MerchantId, MerchantPolicy>,
    /// Every client that may connect, with its role and how it proves who it is.
    pub clients: Vec<ClientEntry>,
    /// The environment variables secrets were read from (`*_env`). `vault serve` refuses them
    /// unless told otherwise: a variable stays in `/proc/<pid>/environ` for the process's life.
    pub env_secrets: Vec<String>,
    /// The `[payments]` section: grant lifetime, reversal window, allowed clock skew.
    pub payments: PaymentPolicy,
    /// The `[detokenize]` section: each client's detokenize budget and alert threshold.
    pub detokenize: DetokenizeLimit,
    /// The `[audit]` section: how often the audit chain is checkpointed and where.
    pub audit: AuditPolicy,
}

/// What `vault init --dev` needs before the config's secrets exist: it creates the dev token and
/// its user PIN file, which a full [`Config::load`] would then read.
#[derive(Debug, Clone)]
pub struct DevToken {
    /// The data directory, where the dev token's files go.
    pub data_dir: PathBuf,
    /// The label of the dev token to create.
    pub token_label: String,
    /// `[hsm] pin_file`, where the dev user PIN is written (0600) when it does not exist.
    pub pin_file: Option<PathBuf>,
}

impl DevToken {
    /// The dev token settings of the config at `path`, without reading any secret.
    pub fn load(path: &Path) -> Result<DevToken, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(DevToken {
            data_dir: raw.data_dir,
            token_label: raw.hsm.token_label,
            pin_file: raw.hsm.pin.secret_file,
        })
    }
}

impl Config {
    /// Reads, parses and validates the config at `path`, reading every secret it names; anything
    /// wrong fails here, before the vault opens a file or the HSM.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Config::validate(raw)
    }

    /// Parses and validates config text (for tests and tools that build it in memory).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<memory>".into(),
            reason: e.to_string(),
        })?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        // Before any secret is read: a refused config never touches the PIN.
        refuse_unsafe_engine(raw.engine)?;
        let mut env_secrets = Vec::new();
        let mut noted = |source: Option<SecretSource>| {
            if let Some(SecretSource::Env(var)) = &source {
                env_secrets.push(var.clone());
            }
            source
        };
        let mut merchants = HashMap::new();
        for m in raw.merchants {
            let id = MerchantId::parse(&m.id)
                .map_err(|e| invalid(format!("merchant {:?}: {e}", m.id)))?;
            let scope = match m.union {
                Some(u) => Scope::union(&u).map_err(|e| invalid(format!("union {u:?}: {e}")))?,
                None => Scope::Merchant(id.clone()),
            };
            if merchants
                .insert(
                    id,
                    MerchantPolicy {
                        scope,
                        listing_threshold: m.listing_threshold,
                    },
                )
                .is_some()
            {
                return Err(invalid(format!("merchant {} listed twice", m.id)));
            }
        }
        let mut clients = Vec::new();
        for c in raw.clients {
            let role = Role::parse(&c.role).ok_or_else(|| {
                invalid(format!(
                    "client {}: role must be facade, authorizer or admin",
                    c.id
                ))
            })?;
            let secret = match c.secret {
                Some(s) => noted(s.source()?)
                    .map(|source| source.read().map(|s| ClientSecret::new(s.into_bytes())))
                    .transpose()?,
                None => None,
            };
            if c.tls_name.is_some() {
                return Err(invalid(format!(
                    "client {}: tls_name is no longer accepted (a wildcard certificate or one \
                     naming several clients matched it); use tls_uri (a URI SAN) or \
                     tls_cert_sha256 (the certificate's SHA-256)",
                    c.id
                )));
            }
            if let Some(s) = &secret
                && s.expose().len() < MIN_SECRET_LEN
            {
                return Err(invalid(format!(
                    "client {}: secret is {} bytes, at least {MIN_SECRET_LEN} are needed \
                         (the login throttle slows guessing, only length makes it hopeless)",
                    c.id,
                    s.expose().len()
                )));
            }
            let tls_identity = tls_identity(&c.id, c.tls_uri, c.tls_cert_sha256)?;
            if secret.is_none() && tls_identity.is_none() {
                return Err(invalid(format!(
                    "client {}: needs secret_env, secret_file, tls_uri or tls_cert_sha256",
                    c.id
                )));
            }
            if clients.iter().any(|e: &ClientEntry| e.id == c.id) || c.id.is_empty() {
                return Err(invalid(format!(
                    "client id {:?} empty or listed twice",
                    c.id
                )));
            }
            if let Some(other) = clients
                .iter()
                .find(|e: &&ClientEntry| tls_identity.is_some() && e.tls_identity == tls_identity)
            {
                return Err(invalid(format!(
                    "clients {} and {} have the same TLS identity: a certificate must name \
                     exactly one client",
                    other.id, c.id
                )));
            }
            clients.push(ClientEntry {
                id: c.id,
                role,
                secret,
                tls_identity,
            });
        }
        let hsm = HsmConfig {
            module: raw
                .hsm
                .module
                .unwrap_or_else(|| hsm::softhsm::DEFAULT_MODULE.into()),
            token_label: raw.hsm.token_label,
            user_pin: Pin::new(
                noted(raw.hsm.pin.source()?)
                    .ok_or_else(|| invalid("[hsm] needs pin_env or pin_file".into()))?
                    .read()?,
            ),
            sessions: raw.hsm.sessions.max(1),
        };
        if raw.retention.years == 0 {
            return Err(invalid("retention.years must be at least 1".into()));
        }
        let p = raw.payments;
        if p.grant_ttl_secs == 0 || p.reversal_window_secs == 0 || p.max_grants == 0 {
            return Err(invalid(
                "payments.grant_ttl_secs, reversal_window_secs and max_grants must be at least 1"
                    .into(),
            ));
        }
        let d = raw.detokenize;
        if d.rate_per_sec == 0 || d.burst == 0 || d.alert_per_sec == 0 {
            return Err(invalid(
                "detokenize.rate_per_sec, burst and alert_per_sec must be at least 1".into(),
            ));
        }
        if raw.audit.checkpoint_every == 0 || raw.audit.checkpoint_secs == 0 {
            return Err(invalid(
                "audit.checkpoint_every and checkpoint_secs must be at least 1".into(),
            ));
        }
        Ok(Config {
            socket: raw
                .socket
                .unwrap_or_else(|| raw.data_dir.join("vault.sock")),
            data_dir: raw.data_dir,
            engine: raw.engine,
            cache_mib: raw.cache_mib.unwrap_or_default(),
            tls: raw.tls.map(|t| TlsListen {
                listen: t.listen,
                files: TlsFiles {
                    ca: t.ca,
                    cert: t.cert,
                    key: t.key,
                },
            }),
            hsm,
            retention_years: raw.retention.years,
            sweep_interval: Duration::from_secs(raw.retention.sweep_interval_secs.max(1)),
            merchants,
            clients,
            env_secrets,
            payments: raw.payments,
            detokenize: raw.detokenize,
            audit: raw.audit,
        })
    }

    /// Where audit checkpoints are appended: outside the database, for an operator to ship
    /// off-host.
    pub fn audit_head_file(&self) -> PathBuf {
        self.audit
            .head_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-head.log"))
    }

    /// The vault's database file. Only redb is ever opened here: [`refuse_unsafe_engine`] keeps
    /// sled out of a validated config.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(match self.engine {
            EngineKind::Redb => "vault.redb",
            EngineKind::Sled => "vault.sled",
        })
    }

    /// Opens the vault's database ([`Config::database_path`]) with its page cache.
    pub fn open_store(&self) -> Result<store::Store, store::StoreError> {
        store::Store::open_with_cache(self.engine, &self.database_path(), self.cache_mib)
    }
}

/// A client's TLS identity from its config keys: at most one of them, well formed.
fn tls_identity(
    client: &str,
    uri: Option<String>,
    cert_sha256: Option<String>,
) -> Result<Option<TlsIdentity>, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(format!("client {client}: {m}"));
    match (uri, cert_sha256) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(invalid("give tls_uri or tls_cert_sha256, not both".into())),
        (Some(uri), None) => {
            // A URI SAN has a scheme and no whitespace; anything looser is a typo that would
            // never match, or a pattern, which this comparison does not do.
            let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && !rest.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            });
            if !scheme_ok || uri.len() > 512 || !uri.chars().all(|c| c.is_ascii_graphic()) {
                return Err(invalid(format!(
                    "tls_uri {uri:?} is not a URI (scheme:rest, printable ASCII)"
                )));
            }
            if uri.contains('*') {
                return Err(invalid(format!(
                    "tls_uri {uri:?} holds a '*': identities are exact, not patterns"
                )));
            }
            Ok(Some(TlsIdentity::Uri(uri)))
        }
        (None, Some(hex)) => {
            let digits: String = hex.chars().filter(|c| *c != ':').collect();
            let bytes: Option<Vec<u8>> = (0..digits.len())
                .step_by(2)
                .map(|i| {
                    digits
                        .get(i..i + 2)
                        .and_then(|d| u8::from_str_radix(d, 16).ok())
                })
                .collect();
            match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                Some(hash) => Ok(Some(TlsIdentity::CertSha256(hash))),
                None => Err(invalid(
                    "tls_cert_sha256 must be 64 hex digits (colons allowed)".into(),
                )),
            }
        }
    }
}

/// The vault acknowledges a card, a key change or an audit entry only once it is on disk, so it
/// runs only on an engine whose commit promises that across power loss: redb (fdatasync). sled
/// 0.34 flushes with `sync_file_range`, which does not, so a config naming it is refused rather
/// than quietly weakening that promise (see README.md, "Storage engine").
fn refuse_unsafe_engine(engine: EngineKind) -> Result<(), ConfigError> {
    match engine {
        EngineKind::Redb => Ok(()),
        EngineKind::Sled => Err(ConfigError::Invalid(
            "engine \"sled\" is not offered for the vault: its flush (sync_file_range) does not \
             promise that an acknowledged card or audit entry survives a power loss; use \"redb\" \
             (the default)"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(clients: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!(
            "data_dir = \"/nonexistent\"\n[hsm]\ntoken_label = \"t\"\n\
             pin_env = \"PATH\"\n{clients}"
        ))
    }

    fn client(id: &str, identity: &str) -> String {
        format!("[[clients]]\nid = \"{id}\"\nrole = \"facade\"\n{identity}\n")
    }

    #[test]
    fn two_clients_with_one_tls_identity_are_refused() {
        let uri = "tls_uri = \"urn:vault:client:x\"";
        let err = config(&(client("a", uri) + &client("b", uri))).unwrap_err();
        assert!(err.to_string().contains("same TLS identity"), "{err}");
        let pin = format!("tls_cert_sha256 = \"{}\"", "ab".repeat(32));
        let err = config(&(client("a", &pin) + &client("b", &pin))).unwrap_err();
        assert!(err.to_string().contains("same TLS identity"), "{err}");
        assert!(config(&(client("a", uri) + &client("b", &pin))).is_ok());
    }

    #[test]
    fn a_dns_name_a_pattern_or_a_malformed_pin_is_refused() {
        for bad in [
            "tls_name = \"authorizer.vault.local\"",
            "tls_uri = \"spiffe://vault/*\"",
            "tls_uri = \"authorizer\"",
            "tls_cert_sha256 = \"abcd\"",
        ] {
            assert!(config(&client("a", bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_or_short_secret_is_refused_at_load() {
        // PATH is set in any test environment and is far longer than 16 bytes.
        assert!(config(&client("a", "secret_env = \"PATH\"")).is_ok());
        let dir = tempfile::tempdir().unwrap();
        for short in ["", "fifteen-bytes!!"] {
            let path = dir.path().join("s");
            std::fs::write(&path, short).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let err = config(&client(
                "a",
                &format!("secret_file = \"{}\"", path.display()),
            ))
            .unwrap_err();
            assert!(err.to_string().contains("at least 16"), "{err}");
        }
    }

    /// A config whose HSM PIN sits in an owner-only file under `dir`, with `extra` before `[hsm]`.
    fn config_text(dir: &Path, extra: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let pin = dir.join("hsm-user.pin");
        std::fs::write(&pin, "user-pin\n").unwrap();
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "data_dir = \"{}\"\n{extra}\n[hsm]\ntoken_label = \"t\"\npin_file = \"{}\"\n",
            dir.display(),
            pin.display()
        )
    }

    #[test]
    fn a_pin_file_others_can_read_is_refused_and_env_secrets_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(dir.path(), "");
        let config = Config::from_toml(&text).unwrap();
        assert!(config.env_secrets.is_empty());
        let pin = dir.path().join("hsm-user.pin");
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && !err.contains("user-pin"),
            "{err}"
        );
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        let with_env =
            format!("{text}[[clients]]\nid = \"f\"\nrole = \"facade\"\nsecret_env = \"PATH\"\n");
        assert_eq!(Config::from_toml(&with_env).unwrap().env_secrets, ["PATH"]);
    }

    #[test]
    fn a_config_naming_sled_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::from_toml(&config_text(dir.path(), "engine = \"redb\"")).is_ok());
        let err = Config::from_toml(&config_text(dir.path(), "engine = \"sled\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sled") && err.contains("power loss") && err.contains("redb"),
            "{err}"
        );
    }

    #[test]
    fn a_page_cache_out_of_bounds_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml(&config_text(dir.path(), "cache_mib = 64")).unwrap();
        assert_eq!(config.cache_mib.mib(), 64);
        let err = Config::from_toml(&config_text(dir.path(), "cache_mib = 0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 16 to"), "{err}");
    }
}
