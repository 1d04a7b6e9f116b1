//! Starts the real `vault` binary in a temp directory of its own: a SoftHSM2 token created by
//! `vault init --dev`, a config with three clients and three merchants (two in a union), and
//! waits for its readiness line. Shared by the end-to-end tests of this crate.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use vault::model::*;
use vault::tls::TlsFiles;
use vault::{ClientError, ClientOptions, Credentials, VaultClient, VaultEndpoint};

pub const SOLO: &str = "452739";
pub const UNION_A: &str = "600001";
pub const UNION_B: &str = "600002";

/// Each configured client's secret, kept in `<client>.secret` (0600) in the vault's directory.
pub const SECRETS: [(&str, &str); 3] = [
    ("facade", "facade-secret-0123"),
    ("authorizer", "authorizer-secret-0123"),
    ("admin", "admin-secret-0123"),
];

pub struct Vault {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub tls_addr: Option<std::net::SocketAddr>,
    extra: String,
}

pub fn merchant(id: &str) -> MerchantId {
    MerchantId::parse(id).unwrap()
}

pub fn customer(c: &str) -> CustomerNumber {
    CustomerNumber::parse(c).unwrap()
}

impl Vault {
    /// A fresh data directory with keys created; not yet serving.
    pub fn init(extra_config: &str) -> Vault {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault {
            dir,
            child: None,
            tls_addr: None,
            extra: extra_config.to_string(),
        };
        v.write_config();
        let out = v.command(&["init", "--dev"]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        v
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.data().join("vault.sock")
    }

    fn write_config(&self) {
        let cfg = format!(
            r#"data_dir = "{data}"
{extra}
[hsm]
token_label = "vault-test"
pin_file = "{dir}/hsm-user.pin"
[retention]
years = 6
sweep_interval_secs = 3600
[[merchants]]
id = "{SOLO}"
listing_threshold = 1
[[merchants]]
id = "{UNION_A}"
union = "group-1"
listing_threshold = 2
[[merchants]]
id = "{UNION_B}"
union = "group-1"
[[clients]]
id = "facade"
role = "facade"
secret_file = "{dir}/facade.secret"
tls_uri = "urn:vault:client:facade"
[[clients]]
id = "authorizer"
role = "authorizer"
secret_file = "{dir}/authorizer.secret"
tls_uri = "urn:vault:client:authorizer"
[[clients]]
id = "admin"
role = "admin"
secret_file = "{dir}/admin.secret"
tls_uri = "urn:vault:client:admin"
"#,
            data = self.data().display(),
            dir = self.dir.path().display(),
            extra = self.extra,
        );
        std::fs::write(self.dir.path().join("vault.toml"), cfg).unwrap();
        // Secrets reach the vault only through owner-only files, never its environment; the
        // HSM user PIN file is written by `vault init --dev`, beside the SoftHSM2 config.
        for (client, secret) in SECRETS {
            self.write_secret(&format!("{client}.secret"), secret);
        }
    }

    /// Writes `value` to the owner-only file `name` in the vault's directory.
    pub fn write_secret(&self, name: &str, value: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// The HSM user PIN `vault init --dev` made.
    pub fn hsm_pin(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hsm-user.pin"))
            .unwrap()
            .trim_end()
            .to_string()
    }

    fn base(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
        c.arg("--config").arg(self.dir.path().join("vault.toml"));
        self.env(&mut c);
        c
    }

    /// The environment every vault command runs with: where the dev SoftHSM2 config is, and
    /// nothing secret (secrets reach the vault only through owner-only files).
    fn env(&self, c: &mut Command) {
        c.env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"));
    }

    /// Runs a one-shot command (`keys`, `audit verify`, `rotate-keys`...).
    pub fn command(&self, args: &[&str]) -> Output {
        self.base().args(args).output().unwrap()
    }

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
        let mut serve = Command::new("sh");
        serve
            .arg("-c")
            .arg(format!("{shell}; exec \"$@\""))
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_vault"))
            .arg("--config")
            .arg(self.dir.path().join("vault.toml"))
            .arg("serve")
            .current_dir(cwd);
        self.env(&mut serve);
        self.launch(serve);
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
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("vault did not become ready");
        assert!(line.starts_with("vault listening"), "{line}");
        self.tls_addr = line.split("tls=").nth(1).and_then(|a| a.parse().ok());
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
        if first.starts_with("vault listening") {
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

    pub fn open_store(&self) -> store::Store {
        store::Store::open(store::EngineKind::Redb, &self.data().join("vault.redb")).unwrap()
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        self.crash();
    }
}

pub fn tokenize_req(merchant_id: &str, cust: &str, pan: &str, expiry: &str) -> TokenizeRequest {
    TokenizeRequest {
        merchant: merchant(merchant_id),
        customer: customer(cust),
        pan: card::Pan::parse(pan).unwrap(),
        expiry: card::Expiry::parse(expiry).unwrap(),
        holder: Some(CardholderName::parse("IVAN PETROV").unwrap()),
    }
}

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
    let grant = facade.grant_detokenize(m, c, token, &p).await?;
    authorizer.detokenize(m, c, token, &p, grant).await
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
    pub dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
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
