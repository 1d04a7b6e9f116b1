//! The real `simulator`, `vault` and `authorizer` binaries as child processes: where the binaries
//! are (built once when missing), how each is configured in a data directory of its own, and
//! readiness read from the line each prints on stdout.
//!
//! Owns the children's lives: a child is killed when its handle drops, so a failed walkthrough
//! leaves nothing running. Must never sleep to wait for a child, nor pass it a PAN.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to print its readiness line or to stop: a guard, not a pace.
const GUARD: Duration = Duration::from_secs(30);

/// Errors of starting, stopping or asking the child processes.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot find the directory of the running executable: {0}")]
    CurrentExe(std::io::Error),
    #[error("`cargo build --workspace --bins` failed ({0})")]
    Build(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{name} did not print its readiness line within {GUARD:?}")]
    NotReady { name: &'static str },
    #[error("{name} printed an unexpected readiness line: {line:?}")]
    BadReadyLine { name: &'static str, line: String },
    #[error("{name} failed: {status}")]
    Failed { name: &'static str, status: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcessError {
    let what = what.into();
    move |source| ProcessError::Io { what, source }
}

/// Paths of the `vault`, `simulator` and `authorizer` executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub vault: PathBuf,
    pub simulator: PathBuf,
    pub authorizer: PathBuf,
}

impl Binaries {
    /// The binaries of the profile the running executable was built with: a test runs from
    /// `target/<profile>/deps/`, a binary from `target/<profile>/`; both look in
    /// `target/<profile>/`. They are brought up to date first with the cargo that built us (a
    /// package's tests cannot ask cargo for another package's `CARGO_BIN_EXE_`), so a test never
    /// runs a stale binary; after a workspace build (as in CI and the demo) that is a no-op.
    pub fn locate() -> Result<Binaries, ProcessError> {
        let exe = std::env::current_exe().map_err(ProcessError::CurrentExe)?;
        let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.ends_with("deps") {
            dir.pop();
        }
        // The whole workspace's binaries, so that features unify as in `cargo test --workspace`
        // and nothing is rebuilt twice over.
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--workspace", "--bins"]);
        if dir.ends_with("release") {
            cargo.arg("--release");
        }
        // The variables cargo sets for a running test (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...) would
        // make the nested build see another environment and rebuild crates that watch them.
        for (key, _) in std::env::vars() {
            if key.starts_with("CARGO_")
                && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
            {
                cargo.env_remove(key);
            }
        }
        let status = cargo.status().map_err(io("run cargo build"))?;
        let bins = Binaries {
            vault: dir.join("vault"),
            simulator: dir.join("simulator"),
            authorizer: dir.join("authorizer"),
        };
        let built = [&bins.vault, &bins.simulator, &bins.authorizer]
            .iter()
            .all(|b| b.is_file());
        if !status.success() || !built {
            return Err(ProcessError::Build(status.to_string()));
        }
        Ok(bins)
    }
}

/// A running child that is killed when dropped, unless it was stopped first.
#[derive(Debug)]
struct Running {
    name: &'static str,
    child: Child,
}

impl Running {
    /// Starts `command` and returns it with the first line it printed on stdout; the rest of its
    /// stdout is drained so that it can never block on a full pipe.
    async fn start(
        name: &'static str,
        mut command: Command,
    ) -> Result<(Running, String), ProcessError> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("start {name}")))?;
        let stdout = child.stdout.take().ok_or(ProcessError::NotReady { name })?;
        let mut lines = BufReader::new(stdout).lines();
        let running = Running { name, child };
        let line = match tokio::time::timeout(GUARD, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            _ => return Err(ProcessError::NotReady { name }),
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((running, line))
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    async fn stop(mut self) -> Result<(), ProcessError> {
        let name = self.name;
        if let Some(pid) = self.child.id() {
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .map_err(io("run kill"))?;
            if !status.success() {
                return Err(ProcessError::Failed {
                    name,
                    status: format!("kill -TERM: {status}"),
                });
            }
        }
        match tokio::time::timeout(GUARD, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(ProcessError::Failed {
                name,
                status: status.to_string(),
            }),
            Ok(Err(e)) => Err(io(format!("wait for {name}"))(e)),
            Err(_) => Err(ProcessError::Failed {
                name,
                status: "did not stop after SIGTERM".into(),
            }),
        }
    }
}

/// The children log to our stderr: at `warn` unless `RUST_LOG` says otherwise.
fn log_filter() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())
}

/// The value of `key` in a readiness line such as `vault listening unix=… tls=…`.
fn addr_in(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .map(str::to_owned)
}

/// The processing-centre simulator: its dev PKI in `certs/`, its ledger file, both listeners on
/// 127.0.0.1:0.
#[derive(Debug)]
pub struct SimulatorProcess {
    running: Running,
    pub iso_addr: SocketAddr,
    pub acs_addr: SocketAddr,
    pub certs: PathBuf,
    pub ledger_file: PathBuf,
}

impl SimulatorProcess {
    pub async fn start(bin: &Path, dir: &Path) -> Result<SimulatorProcess, ProcessError> {
        let certs = dir.join("certs");
        let ledger_file = dir.join("ledger.jsonl");
        let status = Command::new(bin)
            .arg("certs")
            .arg("--out")
            .arg(&certs)
            .status()
            .await
            .map_err(io("run simulator certs"))?;
        if !status.success() {
            return Err(ProcessError::Failed {
                name: "simulator certs",
                status: status.to_string(),
            });
        }
        let mut command = Command::new(bin);
        command
            .args([
                "serve",
                "--iso-addr",
                "127.0.0.1:0",
                "--acs-addr",
                "127.0.0.1:0",
            ])
            .arg("--certs")
            .arg(&certs)
            .arg("--ledger")
            .arg(&ledger_file)
            .env("RUST_LOG", log_filter());
        let (running, line) = Running::start("simulator", command).await?;
        let Some(simulator::Ready {
            iso: iso_addr,
            acs: acs_addr,
        }) = simulator::Ready::parse(&line)
        else {
            return Err(ProcessError::BadReadyLine {
                name: "simulator",
                line,
            });
        };
        Ok(SimulatorProcess {
            running,
            iso_addr,
            acs_addr,
            certs,
            ledger_file,
        })
    }

    /// Graceful stop: the simulator flushes its ledger file.
    pub async fn stop(self) -> Result<(), ProcessError> {
        self.running.stop().await
    }
}

/// A vault client's name and secret, as the vault's config knows them.
#[derive(Clone)]
pub struct ClientLogin {
    pub id: &'static str,
    secret: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientLogin({}, ***)", self.id)
    }
}

impl ClientLogin {
    fn new(id: &'static str) -> ClientLogin {
        ClientLogin {
            id,
            secret: zeroize::Zeroizing::new(uuid::Uuid::new_v4().simple().to_string()),
        }
    }

    pub fn secret(&self) -> vault::ClientSecret {
        vault::ClientSecret::new(self.secret.as_bytes().to_vec())
    }

    fn env(&self) -> String {
        format!("WALKTHROUGH_SECRET_{}", self.id.to_uppercase())
    }
}

/// The vault, configured in `dir`: a SoftHSM2 token made by `vault init --dev`, the dev merchant
/// (listing threshold 1) and the `facade` and `authorizer` clients. PINs and client secrets are
/// made for this run and reach the child only through its environment.
#[derive(Debug)]
pub struct VaultSetup {
    bin: PathBuf,
    dir: PathBuf,
    hsm_pin: zeroize::Zeroizing<String>,
    so_pin: zeroize::Zeroizing<String>,
    pub facade: ClientLogin,
    pub authorizer: ClientLogin,
}

impl VaultSetup {
    /// Writes the config with one merchant of its own and runs `vault init --dev`.
    pub async fn init(bin: &Path, dir: &Path, merchant: &str) -> Result<VaultSetup, ProcessError> {
        VaultSetup::init_merchants(bin, dir, &[(merchant, None)]).await
    }

    /// Writes the config with these merchants (id, and the shared customer list it belongs to),
    /// each with listing threshold 1, and runs `vault init --dev`.
    pub async fn init_merchants(
        bin: &Path,
        dir: &Path,
        merchants: &[(&str, Option<&str>)],
    ) -> Result<VaultSetup, ProcessError> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let setup = VaultSetup {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            hsm_pin: zeroize::Zeroizing::new(uuid::Uuid::new_v4().simple().to_string()),
            so_pin: zeroize::Zeroizing::new(uuid::Uuid::new_v4().simple().to_string()),
            facade: ClientLogin::new("facade"),
            authorizer: ClientLogin::new("authorizer"),
        };
        let config = format!(
            r#"data_dir = "{data}"
engine = "redb"
[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "walkthrough"
pin_env = "WALKTHROUGH_HSM_PIN"
sessions = 2
[retention]
years = 6
sweep_interval_secs = 3600
{merchants}[[clients]]
id = "facade"
role = "facade"
secret_env = "{facade}"
[[clients]]
id = "authorizer"
role = "authorizer"
secret_env = "{authorizer}"
"#,
            data = setup.data_dir().display(),
            merchants = merchants
                .iter()
                .map(|(id, union)| {
                    let union = union
                        .map(|u| format!("union = \"{u}\"\n"))
                        .unwrap_or_default();
                    format!("[[merchants]]\nid = \"{id}\"\n{union}listing_threshold = 1\n")
                })
                .collect::<String>(),
            facade = setup.facade.env(),
            authorizer = setup.authorizer.env(),
        );
        let path = dir.join("vault.toml");
        std::fs::write(&path, config).map_err(io(format!("write {}", path.display())))?;
        setup.one_shot("vault init", &["init", "--dev"]).await?;
        Ok(setup)
    }

    /// Where the vault keeps its database, its socket and the SoftHSM2 token.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.data_dir().join("vault.sock")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config")
            .arg(self.dir.join("vault.toml"))
            .env("SOFTHSM2_CONF", self.dir.join("softhsm2.conf"))
            .env("WALKTHROUGH_HSM_PIN", self.hsm_pin.as_str())
            .env("VAULT_HSM_SO_PIN", self.so_pin.as_str())
            .env(self.facade.env(), self.facade.secret.as_str())
            .env(self.authorizer.env(), self.authorizer.secret.as_str())
            .env("RUST_LOG", log_filter());
        c
    }

    /// Runs a command that ends by itself; returns its stdout.
    async fn one_shot(&self, name: &'static str, args: &[&str]) -> Result<String, ProcessError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io(format!("run {name}")))?;
        if !out.status.success() {
            return Err(ProcessError::Failed {
                name,
                status: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `vault serve`, ready once it printed `vault listening unix=…`.
    pub async fn serve(&self) -> Result<VaultProcess, ProcessError> {
        let mut command = self.command();
        command.arg("serve");
        let (running, line) = Running::start("vault", command).await?;
        if !line.starts_with("vault listening") || addr_in(&line, "unix=").is_none() {
            return Err(ProcessError::BadReadyLine {
                name: "vault",
                line,
            });
        }
        Ok(VaultProcess { running })
    }

    /// `vault audit verify` (the vault must be stopped): its one-line verdict.
    pub async fn audit_verify(&self) -> Result<String, ProcessError> {
        self.one_shot("vault audit verify", &["audit", "verify"])
            .await
    }
}

/// A serving vault; killed on drop, stopped gracefully with [`VaultProcess::stop`].
#[derive(Debug)]
pub struct VaultProcess {
    running: Running,
}

impl VaultProcess {
    pub async fn stop(self) -> Result<(), ProcessError> {
        self.running.stop().await
    }
}

/// The `authorizer` binary: its link to the simulator (trusting the simulator's CA, presenting
/// the client certificate it wrote), the vault's socket and the `authorizer` and `facade`
/// clients' secrets (through the environment), its merchants file, its database in `dir`, its
/// merchant API and admin endpoint on 127.0.0.1:0 (readiness: `READY api=… admin=…`).
#[derive(Debug)]
pub struct AuthorizerProcess {
    running: Running,
    pub api_addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

impl AuthorizerProcess {
    /// How often the store-and-forward queue is retried: short, so a test sees a retry soon.
    pub const SAF_RETRY: Duration = Duration::from_millis(200);

    /// With the repository's dev merchants (`config/merchants.dev.toml`).
    pub async fn start(
        bin: &Path,
        dir: &Path,
        sim: &SimulatorProcess,
        vault: &VaultSetup,
    ) -> Result<AuthorizerProcess, ProcessError> {
        let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/merchants.dev.toml");
        AuthorizerProcess::start_with(bin, dir, sim, vault, &dev).await
    }

    /// With a merchants file of the caller's.
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        sim: &SimulatorProcess,
        vault: &VaultSetup,
        merchants: &Path,
    ) -> Result<AuthorizerProcess, ProcessError> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let config = format!(
            r#"data_dir = "{data}"
admin_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
merchants = "{merchants}"
[link]
certs_dir = "{certs}"
endpoints = [{{ addr = "{iso}", server_name = "localhost" }}]
saf_retry_interval_ms = {retry}
[vault]
socket = "{socket}"
client = "{client}"
secret_env = "{env}"
facade_client = "{facade}"
facade_secret_env = "{facade_env}"
"#,
            merchants = merchants.display(),
            facade = vault.facade.id,
            facade_env = vault.facade.env(),
            data = AuthorizerProcess::data_dir(dir).display(),
            certs = sim.certs.display(),
            iso = sim.iso_addr,
            retry = AuthorizerProcess::SAF_RETRY.as_millis(),
            socket = vault.socket().display(),
            client = vault.authorizer.id,
            env = vault.authorizer.env(),
        );
        let path = dir.join("authorizer.toml");
        std::fs::write(&path, config).map_err(io(format!("write {}", path.display())))?;
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(&path)
            .env(vault.authorizer.env(), vault.authorizer.secret.as_str())
            .env(vault.facade.env(), vault.facade.secret.as_str())
            .env("RUST_LOG", log_filter());
        let (running, line) = Running::start("authorizer", command).await?;
        let Some(authorizer::Ready { api, admin }) = authorizer::Ready::parse(&line) else {
            return Err(ProcessError::BadReadyLine {
                name: "authorizer",
                line,
            });
        };
        Ok(AuthorizerProcess {
            running,
            api_addr: api,
            admin_addr: admin,
        })
    }

    /// Where the process keeps its database (`authorizer.db`, with the store-and-forward queue).
    pub fn data_dir(dir: &Path) -> PathBuf {
        dir.join("data")
    }

    /// The admin endpoint's Prometheus text.
    pub async fn metrics(&self) -> Result<String, ProcessError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let what = "GET /metrics from the authorizer";
        let mut s = tokio::net::TcpStream::connect(self.admin_addr)
            .await
            .map_err(io(what))?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.admin_addr
        );
        s.write_all(request.as_bytes()).await.map_err(io(what))?;
        let mut body = String::new();
        tokio::time::timeout(GUARD, s.read_to_string(&mut body))
            .await
            .map_err(|_| ProcessError::NotReady { name: "authorizer" })?
            .map_err(io(what))?;
        Ok(body)
    }

    /// SIGTERM: the process signs off and exits 0.
    pub async fn stop(self) -> Result<(), ProcessError> {
        self.running.stop().await
    }
}
