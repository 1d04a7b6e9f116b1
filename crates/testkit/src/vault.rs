//! The real `vault` binary in a temp directory of its own, for the vault crate's integration
//! tests ([`Vault`]: a SoftHSM2 token created by `vault init --dev`, a config with three clients
//! and three merchants, two in a union), with their clients, certificates and assertions; and
//! what every vault this kit starts is made of, shared with [`crate::processes::VaultSetup`]: the
//! config file with its owner-only secret files ([`VaultConfig`]) and the command line each vault
//! command runs with ([`command`]). Readiness is read by [`vault::Ready`] only.
//!
//! Each [`Vault`] is killed when dropped, so a failed test leaves nothing running. Must never put
//! a secret on a command line or in the vault's environment (secrets are 0600 files), nor sleep to
//! wait for the vault.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use vault::model::*;
use vault::tls::TlsFiles;
use vault::{ClientError, ClientOptions, Credentials, VaultClient, VaultEndpoint};

use crate::GUARD;
use crate::processes::Binaries;

/// One `[[merchants]]` entry of a [`VaultConfig`].
#[derive(Debug, Clone, Copy)]
pub struct MerchantEntry<'a> {
    /// The merchant id.
    pub id: &'a str,
    /// The union whose members share saved cards, if any.
    pub union: Option<&'a str>,
    /// How many successful payments list a card for One Click; the vault's default when `None`.
    pub listing_threshold: Option<u32>,
}

/// One `[[clients]]` entry of a [`VaultConfig`]; its secret goes to `<dir>/<id>.secret` (0600),
/// which the config names.
#[derive(Clone, Copy)]
pub struct ClientEntry<'a> {
    /// The client id, also its secret file's name.
    pub id: &'a str,
    /// Its role (`facade`, `authorizer`, `admin`).
    pub role: &'a str,
    /// Its secret, written to its owner-only file only.
    pub secret: &'a str,
}

impl std::fmt::Debug for ClientEntry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientEntry({}, {}, ***)", self.id, self.role)
    }
}

/// A vault's config in a directory of its own (`dir`): `dir/vault.toml`, data in `dir/data`, the
/// HSM user PIN in `dir/hsm-user.pin` (which `vault init --dev` writes, 0600, beside the SoftHSM2
/// config) and each client's secret in an owner-only file. What differs between the vaults this
/// kit starts is said here; the rest (retention, file layout) is the same for all.
#[derive(Debug, Clone, Copy)]
pub struct VaultConfig<'a> {
    /// Lines before the `[hsm]` table: top-level keys (`engine = ...`) or whole tables (`[tls]`).
    pub head: &'a str,
    /// The SoftHSM2 token's label.
    pub token_label: &'a str,
    /// `[hsm]` lines besides the token label and the PIN file (`module`, `sessions`).
    pub hsm: &'a str,
    /// The merchants, in order.
    pub merchants: &'a [MerchantEntry<'a>],
    /// The clients, in order.
    pub clients: &'a [ClientEntry<'a>],
    /// Whether each client may also log in over mutual TLS as `urn:vault:client:<id>`.
    pub tls_identities: bool,
}

impl VaultConfig<'_> {
    /// Writes `dir/vault.toml` and the clients' secret files.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        use std::fmt::Write;
        let mut cfg = format!(
            "data_dir = \"{data}\"\n{head}\n[hsm]\ntoken_label = \"{label}\"\npin_file = \"{pin}\"\n{hsm}\n\
             [retention]\nyears = 6\nsweep_interval_secs = 3600\n",
            data = dir.join("data").display(),
            head = self.head,
            label = self.token_label,
            pin = dir.join("hsm-user.pin").display(),
            hsm = self.hsm,
        );
        // Writing to a String cannot fail.
        for m in self.merchants {
            let _ = writeln!(cfg, "[[merchants]]\nid = \"{}\"", m.id);
            if let Some(union) = m.union {
                let _ = writeln!(cfg, "union = \"{union}\"");
            }
            if let Some(threshold) = m.listing_threshold {
                let _ = writeln!(cfg, "listing_threshold = {threshold}");
            }
        }
        for c in self.clients {
            let secret_file = dir.join(format!("{}.secret", c.id));
            let _ = writeln!(
                cfg,
                "[[clients]]\nid = \"{}\"\nrole = \"{}\"\nsecret_file = \"{}\"",
                c.id,
                c.role,
                secret_file.display()
            );
            if self.tls_identities {
                let _ = writeln!(cfg, "tls_uri = \"urn:vault:client:{}\"", c.id);
            }
            write_owner_only(&secret_file, c.secret)?;
        }
        std::fs::write(dir.join("vault.toml"), cfg)
    }
}

/// `bin --config <dir>/vault.toml` with the dev SoftHSM2 config `vault init --dev` writes in
/// `dir`: what every vault command runs with, and nothing secret (secrets reach the vault only
/// through owner-only files).
pub fn command(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--config")
        .arg(dir.join("vault.toml"))
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"));
    c
}

/// Creates or overwrites `path` with `value` and a newline, readable and writable by its owner
/// only (from the first byte on when it creates the file).
pub(crate) fn write_owner_only(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a file it creates; one that was there keeps its bits otherwise.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{value}")
}

/// The merchant alone in its set (listing threshold 1).
pub const SOLO: &str = "452739";
/// The first merchant of the union `group-1` (listing threshold 2).
pub const UNION_A: &str = "600001";
/// The second merchant of the union `group-1` (the vault's default threshold).
pub const UNION_B: &str = "600002";

/// The merchants of every [`Vault`].
const MERCHANTS: [MerchantEntry<'static>; 3] = [
    MerchantEntry {
        id: SOLO,
        union: None,
        listing_threshold: Some(1),
    },
    MerchantEntry {
        id: UNION_A,
        union: Some("group-1"),
        listing_threshold: Some(2),
    },
    MerchantEntry {
        id: UNION_B,
        union: Some("group-1"),
        listing_threshold: None,
    },
];

/// Each configured client's secret (its role is its id), kept in `<client>.secret` (0600) in the
/// vault's directory.
pub const SECRETS: [(&str, &str); 3] = [
    ("facade", "facade-secret-0123"),
    ("authorizer", "authorizer-secret-0123"),
    ("admin", "admin-secret-0123"),
];

/// A vault in a temp directory of its own, serving or not; killed when dropped.
#[derive(Debug)]
pub struct Vault {
    /// Its directory: config, secret files, SoftHSM2 config and `data/`.
    pub dir: tempfile::TempDir,
    /// The `vault serve` process, while it runs.
    pub child: Option<Child>,
    /// The mutual-TLS listener its readiness line announced, if its config has one.
    pub tls_addr: Option<std::net::SocketAddr>,
    bin: PathBuf,
}

/// A merchant id the test knows to be valid.
pub fn merchant(id: &str) -> MerchantId {
    MerchantId::parse(id).unwrap()
}

/// A customer number the test knows to be valid.
pub fn customer(c: &str) -> CustomerNumber {
    CustomerNumber::parse(c).unwrap()
}

impl Vault {
    /// A fresh data directory with keys created; not yet serving. `extra_config` goes before the
    /// `[hsm]` table (top-level keys or whole tables such as `[tls]`).
    pub fn init(extra_config: &str) -> Vault {
        let v = Vault {
            dir: tempfile::tempdir().unwrap(),
            child: None,
            tls_addr: None,
            bin: binary(),
        };
        let clients = SECRETS.map(|(id, secret)| ClientEntry {
            id,
            role: id,
            secret,
        });
        VaultConfig {
            head: extra_config,
            token_label: "vault-test",
            hsm: "",
            merchants: &MERCHANTS,
            clients: &clients,
            tls_identities: true,
        }
        .write(v.dir.path())
        .unwrap();
        let out = v.command(&["init", "--dev"]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        v
    }

    /// Its data directory (database, socket, lock).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Its Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.data().join("vault.sock")
    }

    /// Writes `value` to the owner-only file `name` in the vault's directory.
    pub fn write_secret(&self, name: &str, value: &str) {
        write_owner_only(&self.dir.path().join(name), value).unwrap();
    }

    /// The HSM user PIN `vault init --dev` made.
    pub fn hsm_pin(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hsm-user.pin"))
            .unwrap()
            .trim_end()
            .to_string()
    }

    fn base(&self) -> Command {
        command(&self.bin, self.dir.path())
    }

    /// Runs a one-shot command (`keys`, `audit verify`, `rotate-keys`...).
    pub fn command(&self, args: &[&str]) -> Output {
        self.base().args(args).output().unwrap()
    }

    /// Runs a one-shot command with one more environment variable (`key=value`).
    pub fn command_with_env(&self, args: &[&str], key: &str, value: &str) -> Output {
        self.base().args(args).env(key, value).output().unwrap()
    }

    /// Starts `vault serve` and waits (bounded) for its readiness line.
    pub fn start(&mut self) {
        let mut serve = self.base();
        serve.arg("serve");
        self.launch(serve);
    }

    /// Starts `vault serve` through `sh -c "<shell>; exec vault serve"` in `cwd` (as an
    /// operator's shell with its own limits would), and waits for its readiness line.
    pub fn start_via_shell(&mut self, shell: &str, cwd: &Path) {
        // The same command line and environment as `vault serve`, run by the shell's `exec`.
        let mut serve = self.base();
        serve.arg("serve");
        let mut shell_serve = Command::new("sh");
        shell_serve
            .arg("-c")
            .arg(format!("{shell}; exec \"$@\""))
            .arg("sh")
            .arg(serve.get_program())
            .args(serve.get_args())
            .envs(
                serve
                    .get_envs()
                    .filter_map(|(key, value)| Some((key, value?))),
            )
            .current_dir(cwd);
        self.launch(shell_serve);
    }

    /// Waits for the vault to end on its own (after a signal the test sent).
    pub fn wait_exit(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    fn launch(&mut self, mut serve: Command) {
        let mut child = serve
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(GUARD).expect("vault did not become ready");
        let ready = vault::Ready::parse(&line).unwrap_or_else(|| panic!("not ready: {line}"));
        self.tls_addr = ready.tls;
        self.child = Some(child);
    }

    /// Runs `vault serve` that must refuse to start: returns its error output (panics if it
    /// announces readiness instead).
    pub fn serve_refused(&self) -> String {
        let mut child = self
            .base()
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
        if vault::Ready::parse(&first).is_some() {
            let _ = child.kill();
            panic!("vault serve started: {first}");
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The process id of the running vault.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("vault running").id()
    }

    /// Graceful stop (SIGTERM) and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let status = child.wait().unwrap();
            assert!(status.success(), "vault exited with {status}");
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }

    /// Logs in over the Unix socket as configured client `id` with its secret from [`SECRETS`]
    /// (an unknown client presents its id as its secret).
    pub async fn client(&self, id: &str) -> Result<VaultClient, ClientError> {
        let secret = SECRETS
            .iter()
            .find(|(client, _)| *client == id)
            .map_or(id, |(_, secret)| secret);
        VaultClient::connect_with(
            VaultEndpoint::Unix(self.socket()),
            Credentials::Secret {
                client: id.to_string(),
                secret: ClientSecret::new(secret.as_bytes().to_vec()),
            },
            ClientOptions {
                connections: 2,
                timeout: Duration::from_secs(10),
                ..ClientOptions::default()
            },
        )
        .await
    }

    /// Opens its database directly (the vault must be stopped).
    pub fn open_store(&self) -> store::Store {
        store::Store::open(store::EngineKind::Redb, &self.data().join("vault.redb")).unwrap()
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A tokenize of `pan` (expiring `expiry`, `MM.YYYY`) for `cust` at `merchant_id`.
pub fn tokenize_req(merchant_id: &str, cust: &str, pan: &str, expiry: &str) -> TokenizeRequest {
    TokenizeRequest {
        merchant: merchant(merchant_id),
        customer: customer(cust),
        pan: card::Pan::parse(pan).unwrap(),
        expiry: card::Expiry::parse(expiry).unwrap(),
        holder: Some(CardholderName::parse("IVAN PETROV").unwrap()),
    }
}

/// A payment reference the test knows to be valid.
pub fn payment(p: &str) -> PaymentRef {
    PaymentRef::parse(p).unwrap()
}

/// A detokenize as the order engine makes it: the facade's grant for `payment_ref`, then the
/// authorizer's detokenize presenting it.
pub async fn granted_detokenize(
    facade: &VaultClient,
    authorizer: &VaultClient,
    m: &MerchantId,
    c: &CustomerNumber,
    token: Token,
    payment_ref: &str,
) -> Result<CardSecret, ClientError> {
    let p = payment(payment_ref);
    let grant = facade
        .grant_detokenize(m, c, token, &p, CardUse::OnFile)
        .await?;
    authorizer.detokenize(m, c, token, &p, grant).await
}

/// Saves `pan` (expiring 12/2099) for `c` of `m` through the facade role and records one
/// successful payment with it (the facade's grant, the authorizer's detokenize and record, as a
/// payment makes them), so that it reaches a listing threshold of 1; its token.
pub async fn save_paid_card(
    facade: &VaultClient,
    authorizer: &VaultClient,
    m: &MerchantId,
    c: &CustomerNumber,
    pan: &str,
) -> Result<Token, ClientError> {
    let saved = facade
        .tokenize(TokenizeRequest {
            merchant: m.clone(),
            customer: c.clone(),
            pan: card::Pan::parse(pan).unwrap(),
            expiry: card::Expiry::new(12, 2099).unwrap(),
            holder: None,
        })
        .await?;
    let first_use = "saved-card-first-use";
    drop(granted_detokenize(facade, authorizer, m, c, saved.token, first_use).await?);
    authorizer
        .record_payment(m, c, saved.token, &payment(first_use), Timestamp::now())
        .await?;
    Ok(saved.token)
}

/// What the vault answered to a call that must have been refused (panics on success or on a
/// failure the vault did not answer, such as a time-out).
pub fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> VaultError {
    match result {
        Err(ClientError::Refused(answer)) => answer,
        other => panic!("expected the vault to refuse, got {other:?}"),
    }
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p))
        } else {
            out.push(p)
        }
    }
    out
}

/// A CA and the certificates it issues, written as PEM files (keys owner-only, as the vault
/// and its client require).
pub struct Pki {
    /// Where the PEM files are.
    pub dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pki({})", self.dir.path().display())
    }
}

impl Pki {
    /// A new CA, in a temp directory of its own.
    #[expect(clippy::new_without_default, reason = "each call makes a new CA")]
    pub fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
            ca_key,
        }
    }

    /// A certificate for the vault itself, valid for the DNS name `name`.
    pub fn server(&self, name: &str) -> TlsFiles {
        self.issue(
            name,
            vec![rcgen::SanType::DnsName(name.try_into().unwrap())],
        )
    }

    /// A client certificate whose identities are the URI SANs `uris`.
    pub fn client(&self, file: &str, uris: &[&str]) -> TlsFiles {
        let sans = uris
            .iter()
            .map(|u| rcgen::SanType::URI((*u).try_into().unwrap()))
            .collect();
        self.issue(file, sans)
    }

    /// A certificate with exactly these subject alternative names, files named after `file`.
    pub fn issue(&self, file: &str, sans: Vec<rcgen::SanType>) -> TlsFiles {
        use std::os::unix::fs::PermissionsExt;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.subject_alt_names = sans;
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let dir = self.dir.path();
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::write(&files.ca, self.ca.pem()).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        files
    }
}

/// A vault with its TLS listener on (certificate for `vault.test`), keys created, serving.
pub fn tls_vault(pki: &Pki) -> (Vault, std::net::SocketAddr) {
    let server = pki.server("vault.test");
    let extra = format!(
        "[tls]\nlisten = \"127.0.0.1:0\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        server.ca.display(),
        server.cert.display(),
        server.key.display()
    );
    let mut vault = Vault::init(&extra);
    vault.start();
    let addr = vault.tls_addr.expect("tls address in the readiness line");
    (vault, addr)
}

/// Connects over mutual TLS with the certificate in `files`.
pub async fn tls_client(
    addr: std::net::SocketAddr,
    files: TlsFiles,
) -> Result<VaultClient, ClientError> {
    let endpoint = VaultEndpoint::Tls {
        addr,
        server_name: "vault.test".into(),
        files,
    };
    let opts = ClientOptions {
        connections: 1,
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    VaultClient::connect_with(endpoint, Credentials::Certificate, opts).await
}

/// Every audit entry, read with the vault stopped.
pub fn audit_entries(vault: &Vault) -> Vec<vault::audit::Event> {
    vault::audit::entries(&vault.open_store())
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// The `vault` binary of the running test's profile, which cargo builds before the vault crate's
/// integration tests run (other packages' tests use [`Binaries::locate`], which builds it).
fn binary() -> PathBuf {
    Binaries::profile_dir()
        .expect("the running test's directory")
        .join("vault")
}
