//! Starts the real `vault` binary in a temp directory of its own: a SoftHSM2 token created by
//! `vault init --dev`, a config with three clients and three merchants (two in a union), and
//! waits for its readiness line. Shared by the end-to-end tests of this crate.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use vault::model::*;
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
[[clients]]
id = "authorizer"
role = "authorizer"
secret_file = "{dir}/authorizer.secret"
tls_name = "authorizer.vault.test"
[[clients]]
id = "admin"
role = "admin"
secret_file = "{dir}/admin.secret"
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
        c.arg("--config")
            .arg(self.dir.path().join("vault.toml"))
            .env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"));
        c
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
        let mut child = self
            .base()
            .arg("serve")
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
