//! The authorizer process's configuration: a TOML file parsed into raw settings, then validated
//! into a typed [`Config`] before anything starts, so that a bad file is one clear message.
//!
//! Owns file and flag shapes and their defaults (ARCHITECTURE.md "Dev defaults"). It must never
//! echo the client key's content in an error; it names the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use store::EngineKind;
use vault::tls::TlsFiles;
use vault::{ClientOptions, ClientSecret, Credentials, SecretError, SecretSource, VaultEndpoint};

use facade::pages::{BadAcsUrl, HttpAcs};
use facade::{CabinetOptions, Merchants, MerchantsError};
use link::{
    AcquirerId, Backoff, ConfigError, Endpoint, LinkConfig, TerminalId, TlsError, TlsMaterial,
    client_config, defaults,
};
use outbox::{HttpConfig, HttpDeliver, OutboxConfig, RetrySchedule};

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the authorizer's store (`authorizer.db`: orders, the link's store-and-forward queue)
    /// lives; default `var/authorizer`.
    pub data_dir: PathBuf,
    /// The store's engine, `redb` (the default) or `sled`.
    pub store_engine: EngineKind,
    /// The store's page cache, MiB, 16 to 1,048,576; default [`store::CacheMib::DEFAULT`]. The
    /// process's memory grows to about this much more than it starts with, then stays there.
    pub store_cache_mib: store::CacheMib,
    /// The operators' admin endpoint (`/metrics`, `/health`, `/ready`,
    /// `POST /cutoff/<merchant_id>`), not the merchants'; default `127.0.0.1:9090`.
    pub admin_addr: SocketAddr,
    /// The merchant API (the facade); default `127.0.0.1:8080`.
    pub http_addr: SocketAddr,
    /// The merchant directory (`facade::Merchants`'s TOML file); default
    /// `config/merchants.dev.toml`.
    pub merchants: PathBuf,
    /// `[link]`: the ISO 8583 connection to the processing centre.
    pub link: LinkSettings,
    /// `[vault]`: the two vault clients, `authorizer` and `facade`.
    pub vault: VaultSettings,
    /// The 3-D Secure ACS the payment pages authenticate a first payment that saves a card with
    /// (its JSON API server to server, and the browser's challenge page); plain
    /// `http://host:port`; default the dev simulator's, `http://127.0.0.1:8584`.
    pub acs_url: String,
    /// `[cabinet]`: the merchant's cabinet under `/cabinet/` on the merchant API's address.
    pub cabinet: CabinetSettings,
    /// `[notifications]`: how result notifications reach the merchants' servers.
    pub notifications: NotificationSettings,
}

/// `[cabinet]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CabinetSettings {
    /// Mark the cabinet's cookies `Secure`: set it when merchants reach the cabinet over HTTPS
    /// (a TLS-terminating proxy in front); default false, the dev default being plain HTTP on
    /// 127.0.0.1. A request a proxy marks `X-Forwarded-Proto: https` gets `Secure` either way.
    pub secure_cookies: bool,
    /// Minutes a session may go unused before it is closed; default 15, must be above 0.
    pub idle_minutes: u64,
    /// Hours a session lives after its login however busy; default 8, must be above 0.
    pub absolute_hours: u64,
    /// Most sessions at once (the least recently used one is closed past it); default 10000.
    pub max_sessions: usize,
}

impl Default for CabinetSettings {
    fn default() -> CabinetSettings {
        let d = facade::SessionPolicy::default();
        CabinetSettings {
            secure_cookies: false,
            idle_minutes: d.idle.as_secs() / 60,
            absolute_hours: d.absolute.as_secs() / 3600,
            max_sessions: d.max,
        }
    }
}

/// `[notifications]` as written, in milliseconds; every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// The waits after each failed try; default 1, 5, 10, 20 and 40 minutes then four hourly
    /// ones (ten tries over about 5 h 15 min; the spec asks for at least 8 over at least 4 h).
    pub retry_ms: Vec<u64>,
    /// TCP connect plus TLS handshake; default 5000.
    pub connect_timeout_ms: u64,
    /// A whole try, connect to the last byte of the answer; default 30000.
    pub timeout_ms: u64,
    /// The ports a notification URL may use; default 80, 443, 8080 and 8443 (the spec's).
    /// Tests add the port their merchant server was given.
    pub allowed_ports: Vec<u16>,
    /// A CA certificate (PEM) trusted besides the public roots, for a dev merchant's HTTPS; none
    /// by default.
    pub ca_file: Option<PathBuf>,
    /// Tries in flight for one merchant at most; default 4.
    pub per_merchant: usize,
    /// Tries in flight at most; default 64.
    pub total: usize,
}

impl Default for NotificationSettings {
    fn default() -> NotificationSettings {
        let o = OutboxConfig::default();
        let h = HttpConfig::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        NotificationSettings {
            retry_ms: (1..o.schedule.tries())
                .filter_map(|t| o.schedule.after_try(u32::try_from(t).ok()?))
                .map(ms)
                .collect(),
            connect_timeout_ms: ms(h.connect_timeout),
            timeout_ms: ms(h.total_timeout),
            allowed_ports: h.allowed_ports,
            ca_file: None,
            per_merchant: o.per_merchant,
            total: o.total,
        }
    }
}

impl CabinetSettings {
    fn validate(self) -> Result<CabinetOptions, SettingsError> {
        if self.idle_minutes == 0 || self.absolute_hours == 0 || self.max_sessions == 0 {
            return Err(SettingsError::Cabinet(
                "idle_minutes, absolute_hours and max_sessions must be above 0",
            ));
        }
        Ok(CabinetOptions {
            sessions: facade::SessionPolicy {
                idle: Duration::from_secs(self.idle_minutes.saturating_mul(60)),
                absolute: Duration::from_secs(self.absolute_hours.saturating_mul(3600)),
                max: self.max_sessions,
            },
            secure_cookies: self.secure_cookies,
        })
    }
}

/// The validated `[notifications]`.
#[derive(Debug)]
pub struct Notifications {
    /// The delivery loop's schedule and bounds.
    pub outbox: OutboxConfig,
    /// The HTTP(S) client, with its roots loaded.
    pub deliver: HttpDeliver,
}

impl NotificationSettings {
    fn validate(self) -> Result<Notifications, SettingsError> {
        let bad = SettingsError::Notifications;
        if self.connect_timeout_ms == 0 || self.timeout_ms == 0 {
            return Err(bad(
                "connect_timeout_ms and timeout_ms must be above 0".into()
            ));
        }
        if self.per_merchant == 0 || self.total < self.per_merchant {
            return Err(bad(
                "per_merchant must be above 0 and total at least per_merchant".into(),
            ));
        }
        if self.allowed_ports.is_empty() {
            return Err(bad("allowed_ports must name at least one port".into()));
        }
        let schedule = RetrySchedule::new(
            self.retry_ms
                .iter()
                .copied()
                .map(Duration::from_millis)
                .collect(),
        )
        .map_err(|e| bad(format!("retry_ms: {e}")))?;
        let deliver = HttpDeliver::new(HttpConfig {
            allowed_ports: self.allowed_ports,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            total_timeout: Duration::from_millis(self.timeout_ms),
            extra_ca: self.ca_file,
        })
        .map_err(|e| bad(e.to_string()))?;
        Ok(Notifications {
            outbox: OutboxConfig {
                schedule,
                per_merchant: self.per_merchant,
                total: self.total,
            },
            deliver,
        })
    }
}

/// How to reach the vault, as two clients: `authorizer` (the link's reversals, the only role
/// that may detokenize) and `facade` (One Click's list and remove), each with its own secret or
/// certificate, so that the merchant API never holds the right to see a PAN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultSettings {
    /// The vault's Unix socket (ignored when `tls` is set); default `var/vault/vault.sock`.
    pub socket: PathBuf,
    /// This process's client id in the vault's config; over the socket it proves itself with
    /// the secret, over TLS with its certificate; default `authorizer`.
    pub client: String,
    /// The environment variable holding the `authorizer` client's secret (default
    /// `VAULT_SECRET_AUTHORIZER`); exactly one of this and `secret_file` on the Unix socket.
    pub secret_env: Option<String>,
    /// A file holding the `authorizer` client's secret, readable by its owner only (mode 600);
    /// none by default.
    pub secret_file: Option<PathBuf>,
    /// The facade's client id (role `facade` in the vault's config); default `facade`.
    pub facade_client: String,
    /// The environment variable holding the `facade` client's secret (default
    /// `VAULT_SECRET_FACADE`); exactly one of this and `facade_secret_file` on the Unix socket.
    pub facade_secret_env: Option<String>,
    /// A file holding the `facade` client's secret, readable by its owner only (mode 600); none
    /// by default.
    pub facade_secret_file: Option<PathBuf>,
    /// `[vault.tls]`: a remote vault over mutual TLS instead of the Unix socket, the certificates
    /// being the logins; none by default.
    pub tls: Option<VaultTlsSettings>,
    /// Connections each client opens to the vault (on demand, used in turn); default 2, must be
    /// above 0.
    pub connections: usize,
    /// Longest wait in milliseconds for the vault's answer to one request, after which the payment
    /// or reversal counts the vault as unavailable; default 2000, must be above 0.
    pub timeout_ms: u64,
}

/// `[vault.tls]`: a remote vault reached over mutual TLS, where each client's certificate is its
/// login (no secrets); every key but the facade's pair is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultTlsSettings {
    /// The vault's TCP address (`host:port`).
    pub addr: SocketAddr,
    /// The name the vault's certificate must carry.
    pub server_name: String,
    /// The CA certificate (PEM) the vault's certificate must chain to.
    pub ca: PathBuf,
    /// The `authorizer` client's certificate (PEM); its name is the login.
    pub cert: PathBuf,
    /// The `authorizer` client's private key (PEM); errors name the file, never its content.
    pub key: PathBuf,
    /// The facade client's certificate (its name is its login over TLS); required with `tls`.
    pub facade_cert: Option<PathBuf>,
    /// The facade client's private key; required with `tls`.
    pub facade_key: Option<PathBuf>,
}

/// One processing-centre address in `[link] endpoints`, tried in the order written (fail-over).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// `host:port` of the processing centre's ISO 8583 listener.
    pub addr: String,
    /// The name the processing centre's certificate must carry.
    pub server_name: String,
}

/// `[link]` as written: the ISO 8583 link to the processing centre, in milliseconds where
/// [`LinkConfig`] takes durations; every key defaults to [`defaults`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSettings {
    /// The processing centre's addresses in fail-over order; default the dev simulator,
    /// `127.0.0.1:8583` named `localhost`.
    pub endpoints: Vec<EndpointSettings>,
    /// Directory with `ca.pem`, `client.pem` and `client-key.pem` (what `simulator certs` writes);
    /// default `var/certs`.
    pub certs_dir: PathBuf,
    /// Persistent connections to the processing centre; default 2, must be above 0.
    pub connections: usize,
    /// Requests in flight on one connection before callers wait (back-pressure); default 256.
    pub max_in_flight: usize,
    /// DE 32, the acquirer's institution ID (1 to 11 digits, not a merchant's); default `400001`.
    pub acquirer_id: String,
    /// DE 41, the terminal ID (1 to 8 printable ASCII characters); default `ASSIST01`.
    pub terminal_id: String,
    /// How long an authorization or completion waits for its answer before it is reversed;
    /// default 5000.
    pub request_timeout_ms: u64,
    /// How long a reversal waits for its answer before it goes to store-and-forward; default 5000.
    pub reversal_timeout_ms: u64,
    /// How long a TCP connect and TLS handshake may take before the next endpoint is tried;
    /// default 3000.
    pub connect_timeout_ms: u64,
    /// How long a connection may be quiet before an echo test (0800) goes out; default 30000.
    pub echo_interval_ms: u64,
    /// The first delay before reconnecting a lost connection; default 100.
    pub backoff_initial_ms: u64,
    /// The longest reconnect delay, at least `backoff_initial_ms`; default 10000.
    pub backoff_max_ms: u64,
    /// How often pending reversals in the store-and-forward queue are sent again; default 10000.
    pub saf_retry_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            data_dir: PathBuf::from("var/authorizer"),
            store_engine: EngineKind::Redb,
            store_cache_mib: store::CacheMib::DEFAULT,
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            merchants: PathBuf::from("config/merchants.dev.toml"),
            link: LinkSettings::default(),
            vault: VaultSettings::default(),
            acs_url: "http://127.0.0.1:8584".into(),
            cabinet: CabinetSettings::default(),
            notifications: NotificationSettings::default(),
        }
    }
}

impl Default for VaultSettings {
    fn default() -> VaultSettings {
        VaultSettings {
            socket: PathBuf::from("var/vault/vault.sock"),
            client: "authorizer".into(),
            secret_env: None,
            secret_file: None,
            facade_client: "facade".into(),
            facade_secret_env: None,
            facade_secret_file: None,
            tls: None,
            connections: 2,
            timeout_ms: 2_000,
        }
    }
}

/// The link's own [`defaults`], in the file's units.
impl Default for LinkSettings {
    fn default() -> LinkSettings {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        LinkSettings {
            endpoints: vec![EndpointSettings {
                addr: defaults::ENDPOINT.into(),
                server_name: defaults::SERVER_NAME.into(),
            }],
            certs_dir: PathBuf::from("var/certs"),
            connections: defaults::CONNECTIONS,
            max_in_flight: defaults::MAX_IN_FLIGHT,
            acquirer_id: defaults::ACQUIRER_ID.into(),
            terminal_id: defaults::TERMINAL_ID.into(),
            request_timeout_ms: ms(defaults::REQUEST_TIMEOUT),
            reversal_timeout_ms: ms(defaults::REVERSAL_TIMEOUT),
            connect_timeout_ms: ms(defaults::CONNECT_TIMEOUT),
            echo_interval_ms: ms(defaults::ECHO_INTERVAL),
            backoff_initial_ms: ms(defaults::BACKOFF_INITIAL),
            backoff_max_ms: ms(defaults::BACKOFF_MAX),
            saf_retry_interval_ms: ms(defaults::SAF_RETRY_INTERVAL),
        }
    }
}

/// The validated configuration the process runs with.
#[derive(Debug)]
pub struct Config {
    /// Where the authorizer's store lives.
    pub data_dir: PathBuf,
    /// The store's engine.
    pub store_engine: EngineKind,
    /// The store's page cache.
    pub store_cache_mib: store::CacheMib,
    /// The admin endpoint's address (metrics, health, cut-off).
    pub admin_addr: SocketAddr,
    /// The merchant API's address.
    pub http_addr: SocketAddr,
    /// The merchant directory, loaded and checked.
    pub merchants: Merchants,
    /// The ISO 8583 link's validated configuration, TLS client config included.
    pub link: LinkConfig,
    /// The vault as the `authorizer` client (the only role that may detokenize).
    pub vault: VaultAccess,
    /// The vault as the `facade` client (tokenize, list, remove, grants).
    pub facade_vault: VaultAccess,
    /// The payment pages' 3DS server side of the ACS.
    pub acs: HttpAcs,
    /// The merchant's cabinet: cookies and sessions.
    pub cabinet: CabinetOptions,
    /// Result notifications.
    pub notifications: Notifications,
}

/// The validated [`VaultSettings`]: everything `VaultClient::connect_with` takes.
#[derive(Debug, Clone)]
pub struct VaultAccess {
    /// Where the vault is: its Unix socket, or its TLS address and this client's certificate files.
    pub endpoint: VaultEndpoint,
    /// How this client logs in: its secret over the socket, its certificate over TLS.
    pub credentials: Credentials,
    /// Connections and time-outs, shared by both clients.
    pub options: ClientOptions,
}

/// Why the configuration was refused at start: always the fault of whoever wrote the file or set
/// up the files and environment it names, never of a merchant or the network.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file (the configuration, or a certificate or key in `certs_dir`) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The configuration file is not TOML of the expected shape (unknown keys are refused).
    #[error("{path}: {source}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// Where and why.
        source: toml::de::Error,
    },
    /// `[link]` breaks a rule of the link's (an endpoint, a bound, an ID or a duration).
    #[error("{0}")]
    Link(#[from] ConfigError),
    /// The link's certificates or key in `certs_dir` are not usable PEM (the key's content is
    /// never shown).
    #[error("TLS material in {dir}: {source}")]
    Tls {
        /// The `certs_dir` holding them.
        dir: PathBuf,
        /// What is wrong.
        source: TlsError,
    },
    /// A vault client's secret is missing (variable unset), unsafe (a file others can read) or
    /// given twice.
    #[error("[vault]: {0}")]
    VaultSecret(#[from] SecretError),
    /// `[vault]` is inconsistent: zero connections or time-out, a socket without a secret, TLS
    /// without the facade's certificate.
    #[error("[vault]: {0}")]
    Vault(&'static str),
    /// `[cabinet]` breaks a bound.
    #[error("[cabinet]: {0}")]
    Cabinet(&'static str),
    /// The merchants file cannot be read or a merchant's entry breaks a rule.
    #[error("{0}")]
    Merchants(#[from] MerchantsError),
    /// `acs_url` is not `http://host[:port]`.
    #[error("acs_url: {0}")]
    Acs(#[from] BadAcsUrl),
    /// `[notifications]` breaks a rule (a bound, the retry schedule, the CA file).
    #[error("[notifications]: {0}")]
    Notifications(String),
}

impl Settings {
    /// The file at `path` as written, unknown keys refused and missing ones at their defaults.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| SettingsError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The `facade` client's access alone (the operators' customer commands need nothing else).
    pub fn facade_vault(self) -> Result<VaultAccess, SettingsError> {
        Ok(self.vault.validate()?.1)
    }

    /// The typed [`Config`]: reads the link's certificates, the vault secrets and the merchants
    /// file, and checks every bound, so that a bad setting stops the start instead of a payment.
    pub fn validate(self) -> Result<Config, SettingsError> {
        let l = self.link;
        let dir = l.certs_dir.clone();
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| SettingsError::Read { path, source })
        };
        let material = TlsMaterial {
            ca_cert_pem: read("ca.pem")?,
            client_cert_pem: read("client.pem")?,
            client_key_pem: zeroize::Zeroizing::new(read("client-key.pem")?),
        };
        let tls = client_config(&material).map_err(|source| SettingsError::Tls {
            dir: dir.clone(),
            source,
        })?;
        let endpoints = l
            .endpoints
            .iter()
            .map(|e| Endpoint::new(e.addr.clone(), &e.server_name))
            .collect::<Result<_, _>>()?;
        let ms = Duration::from_millis;
        let mut link = LinkConfig::new(endpoints, tls);
        link.connections = l.connections;
        link.max_in_flight = l.max_in_flight;
        link.acquirer_id = AcquirerId::parse(&l.acquirer_id)?;
        link.terminal_id = TerminalId::parse(&l.terminal_id)?;
        link.request_timeout = ms(l.request_timeout_ms);
        link.reversal_timeout = ms(l.reversal_timeout_ms);
        link.connect_timeout = ms(l.connect_timeout_ms);
        link.echo_interval = ms(l.echo_interval_ms);
        link.backoff = Backoff {
            initial: ms(l.backoff_initial_ms),
            max: ms(l.backoff_max_ms),
        };
        link.saf_retry_interval = ms(l.saf_retry_interval_ms);
        let (vault, facade_vault) = self.vault.validate()?;
        let acs = HttpAcs::new(&self.acs_url)?;
        let notifications = self.notifications.validate()?;
        Ok(Config {
            data_dir: self.data_dir,
            store_engine: self.store_engine,
            store_cache_mib: self.store_cache_mib,
            admin_addr: self.admin_addr,
            http_addr: self.http_addr,
            merchants: Merchants::load(&self.merchants)?,
            link: link.validate()?,
            vault,
            facade_vault,
            acs,
            cabinet: self.cabinet.validate()?,
            notifications,
        })
    }
}

impl VaultSettings {
    /// The `authorizer` client's access, then the `facade` client's.
    fn validate(self) -> Result<(VaultAccess, VaultAccess), SettingsError> {
        if self.connections == 0 || self.timeout_ms == 0 {
            return Err(SettingsError::Vault(
                "connections and timeout_ms must be above 0",
            ));
        }
        let options = ClientOptions {
            connections: self.connections,
            timeout: Duration::from_millis(self.timeout_ms),
            ..ClientOptions::default()
        };
        let facade_tls = match &self.tls {
            Some(t) => match (&t.facade_cert, &t.facade_key) {
                (Some(cert), Some(key)) => Some(VaultTlsSettings {
                    cert: cert.clone(),
                    key: key.clone(),
                    ..t.clone()
                }),
                _ => {
                    return Err(SettingsError::Vault(
                        "[vault.tls] needs facade_cert and facade_key for the facade client",
                    ));
                }
            },
            None => None,
        };
        // The default variable applies only where the file names neither source: a default
        // beside a written `*_secret_file` would make every file-only config ambiguous.
        let or_default = |env: Option<String>, file: &Option<PathBuf>, default: &str| {
            env.or_else(|| file.is_none().then(|| default.to_owned()))
        };
        let env = or_default(
            self.secret_env,
            &self.secret_file,
            "VAULT_SECRET_AUTHORIZER",
        );
        let facade_env = or_default(
            self.facade_secret_env,
            &self.facade_secret_file,
            "VAULT_SECRET_FACADE",
        );
        let authorizer = access(
            &self.socket,
            self.client,
            SecretSource::from_keys(env, self.secret_file)?,
            self.tls,
            options,
        )?;
        let facade = access(
            &self.socket,
            self.facade_client,
            SecretSource::from_keys(facade_env, self.facade_secret_file)?,
            facade_tls,
            options,
        )?;
        Ok((authorizer, facade))
    }
}

/// One client's endpoint and credentials: its certificate over TLS, else its secret.
fn access(
    socket: &Path,
    client: String,
    secret: Option<SecretSource>,
    tls: Option<VaultTlsSettings>,
    options: ClientOptions,
) -> Result<VaultAccess, SettingsError> {
    let (endpoint, credentials) = match (tls, secret) {
        (Some(t), _) => (
            VaultEndpoint::Tls {
                addr: t.addr,
                server_name: t.server_name,
                files: TlsFiles {
                    ca: t.ca,
                    cert: t.cert,
                    key: t.key,
                },
            },
            Credentials::Certificate,
        ),
        (None, Some(source)) => (
            VaultEndpoint::Unix(socket.to_owned()),
            Credentials::Secret {
                client,
                secret: ClientSecret::new(source.read()?.into_bytes()),
            },
        ),
        (None, None) => {
            return Err(SettingsError::Vault(
                "the Unix socket needs secret_env or secret_file (and facade_secret_env or facade_secret_file)",
            ));
        }
    };
    Ok(VaultAccess {
        endpoint,
        credentials,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_takes_dev_defaults_and_unknown_keys_are_refused() {
        let s: Settings = toml::from_str("[link]\nconnections = 4\n").unwrap();
        assert_eq!(s.link.connections, 4);
        assert_eq!(s.link.endpoints[0].addr, "127.0.0.1:8583");
        assert_eq!(s.admin_addr.port(), 9090);
        assert_eq!(s.acs_url, "http://127.0.0.1:8584");
        assert!(toml::from_str::<Settings>("[link]\nconections = 4\n").is_err());
    }

    #[test]
    fn a_page_cache_too_small_to_hold_the_branch_pages_is_refused_by_name() {
        let s: Settings = toml::from_str("store_cache_mib = 128\n").unwrap();
        assert_eq!(s.store_cache_mib.mib(), 128);
        let err = toml::from_str::<Settings>("store_cache_mib = 0\n").unwrap_err();
        assert!(err.to_string().contains("expected 16 to"), "{err}");
    }

    /// `dir/secret`, holding `s3cret`, readable by its owner only.
    fn private_secret(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn the_vault_secret_comes_from_the_environment_or_a_private_file() {
        let s: Settings =
            toml::from_str("[vault]\nsecret_env = \"AUTHORIZER_TEST_SURELY_UNSET\"\n").unwrap();
        let err = s.vault.validate().unwrap_err().to_string();
        assert!(err.contains("AUTHORIZER_TEST_SURELY_UNSET"), "{err}");
        let s: Settings =
            toml::from_str("[vault]\nsecret_env = \"A\"\nsecret_file = \"f\"\n").unwrap();
        assert!(s.vault.validate().is_err(), "two sources");
        let dir = tempfile::tempdir().unwrap();
        let path = private_secret(dir.path());
        let mut v = VaultSettings {
            secret_env: None,
            secret_file: Some(path.clone()),
            facade_secret_env: None,
            facade_secret_file: Some(path.clone()),
            ..VaultSettings::default()
        };
        v.socket = dir.path().join("vault.sock");
        let (access, facade) = v.validate().unwrap();
        assert!(matches!(access.endpoint, VaultEndpoint::Unix(p) if p.ends_with("vault.sock")));
        assert!(
            matches!(access.credentials, Credentials::Secret { client, secret } if client == "authorizer" && secret.expose() == b"s3cret")
        );
        assert!(
            matches!(facade.credentials, Credentials::Secret { client, .. } if client == "facade")
        );
    }

    #[test]
    fn secret_files_alone_leave_the_default_variables_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = private_secret(dir.path());
        let s: Settings = toml::from_str(&format!(
            "[vault]\nsecret_file = {p:?}\nfacade_secret_file = {p:?}\n",
            p = path.display().to_string()
        ))
        .unwrap();
        let (access, _) = s.vault.validate().unwrap();
        assert!(
            matches!(access.credentials, Credentials::Secret { secret, .. } if secret.expose() == b"s3cret")
        );
    }

    #[test]
    fn notifications_default_to_the_spec_and_refuse_bad_bounds() {
        let n = NotificationSettings::default();
        assert_eq!(n.allowed_ports, vec![80, 443, 8080, 8443]);
        assert!(n.retry_ms.len() + 1 >= 8);
        assert!(n.retry_ms.iter().sum::<u64>() >= 4 * 3_600_000);
        let n = n.validate().unwrap();
        assert_eq!(n.outbox.schedule, RetrySchedule::default());
        for bad in [
            "retry_ms = []\n",
            "retry_ms = [0]\n",
            "timeout_ms = 0\n",
            "per_merchant = 8\ntotal = 4\n",
            "allowed_ports = []\n",
            "ca_file = \"/nonexistent-ca.pem\"\n",
        ] {
            let s: NotificationSettings = toml::from_str(bad).unwrap();
            let err = s.validate().unwrap_err().to_string();
            assert!(err.starts_with("[notifications]"), "{bad}: {err}");
        }
    }

    #[test]
    fn missing_certificates_name_the_file() {
        let mut s = Settings::default();
        s.link.certs_dir = PathBuf::from("/nonexistent-certs");
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("/nonexistent-certs/ca.pem"), "{err}");
    }
}
