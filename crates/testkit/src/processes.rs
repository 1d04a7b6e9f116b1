//! The real `simulator`, `vault` and `authorizer` binaries as child processes: where the binaries
//! are (built once when missing), how each is configured in a data directory of its own, and
//! readiness read from the line each prints on stdout, by the binary's own `Ready` type
//! ([`simulator::Ready`], [`vault::Ready`], [`authorizer::Ready`]).
//!
//! Owns the children's lives: a child is killed when its handle drops, so a failed test leaves
//! nothing running. Must never sleep to wait for a child, nor pass it a PAN (on a command line,
//! in its environment or in a file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::GUARD;
use crate::vault::{ClientEntry, MerchantEntry, VaultConfig};

/// Errors of starting, stopping or asking the child processes.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The running executable's path is unknown, so the binaries beside it cannot be found.
    #[error("cannot find the directory of the running executable: {0}")]
    CurrentExe(std::io::Error),
    /// Bringing the binaries up to date failed, or did not leave all three behind.
    #[error("`cargo build --workspace --bins` failed ({0})")]
    Build(String),
    /// A file, a pipe or a command failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The child printed nothing (or closed stdout) within [`GUARD`].
    #[error("{name} did not print its readiness line within {GUARD:?}")]
    NotReady {
        /// Which child.
        name: &'static str,
    },
    /// The child's first line is not its readiness line.
    #[error("{name} printed an unexpected readiness line: {line:?}")]
    BadReadyLine {
        /// Which child.
        name: &'static str,
        /// What it printed instead.
        line: String,
    },
    /// The PKI the simulator wrote could not be read back.
    #[error("the simulator's PKI: {0}")]
    Pki(#[from] simulator::pki::PkiError),
    /// The child (or a one-shot command) exited unsuccessfully, or did not stop.
    #[error("{name} failed: {status}")]
    Failed {
        /// Which child or command.
        name: &'static str,
        /// Its exit status and what it said.
        status: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcessError {
    let what = what.into();
    move |source| ProcessError::Io { what, source }
}

/// Paths of the `vault`, `simulator` and `authorizer` executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `vault` binary (built with its `server` feature).
    pub vault: PathBuf,
    /// The `simulator` binary.
    pub simulator: PathBuf,
    /// The `authorizer` binary.
    pub authorizer: PathBuf,
}

impl Binaries {
    /// The binaries of the profile the running executable was built with: a test runs from
    /// `target/<profile>/deps/`, a binary from `target/<profile>/`; both look in
    /// `target/<profile>/`. They are brought up to date first with the cargo that built us (a
    /// package's tests cannot ask cargo for another package's `CARGO_BIN_EXE_`), so a test never
    /// runs a stale binary; after a workspace build (as in CI and the demo) that is a no-op.
    pub fn locate() -> Result<Binaries, ProcessError> {
        let dir = Binaries::profile_dir()?;
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

    /// `target/<profile>/`, where cargo puts the binaries: the running executable's directory, or
    /// its parent for a test (which runs from `target/<profile>/deps/`).
    pub fn profile_dir() -> Result<PathBuf, ProcessError> {
        let exe = std::env::current_exe().map_err(ProcessError::CurrentExe)?;
        let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.ends_with("deps") {
            dir.pop();
        }
        Ok(dir)
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
    /// stdout is drained so that it can never block on a full pipe. Its log (stderr) goes to ours
    /// and is also appended to `log`, so that a test can read what a process logged (the card
    /// data leak test greps it).
    async fn start(
        name: &'static str,
        mut command: Command,
        log: &Path,
    ) -> Result<(Running, String), ProcessError> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .await
            .map_err(io(format!("open {}", log.display())))?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("start {name}")))?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                let mut lines = BufReader::new(stderr).lines();
                let mut ours = tokio::io::stderr();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = format!("{line}\n");
                    let _ = file.write_all(line.as_bytes()).await;
                    let _ = ours.write_all(line.as_bytes()).await;
                }
                let _ = file.flush().await;
            });
        }
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

    /// Its process id, while it runs.
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL (a crash: nothing of the child's own shutdown runs), then waits until it is gone.
    async fn kill(mut self) -> Result<(), ProcessError> {
        self.child
            .kill()
            .await
            .map_err(io(format!("kill {}", self.name)))
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    async fn stop(mut self) -> Result<(), ProcessError> {
        self.terminate().await
    }

    /// [`Running::stop`], leaving the handle with the caller (for a process started again).
    async fn terminate(&mut self) -> Result<(), ProcessError> {
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

/// The processing-centre simulator: its dev PKI in `certs/`, its ledger file, both listeners on
/// 127.0.0.1:0.
#[derive(Debug)]
pub struct SimulatorProcess {
    running: Running,
    /// Its directory and how it was started, to start it again in place.
    dir: PathBuf,
    options: SimulatorOptions,
    /// Where its ISO 8583 listener is bound (from its READY line).
    pub iso_addr: SocketAddr,
    /// Where its ACS pages and ledger endpoint are bound (from its READY line).
    pub acs_addr: SocketAddr,
    /// The dev PKI `simulator certs` wrote: the CA, the server's and the acquirer's certificates.
    pub certs: PathBuf,
    /// The run's ledger, written as JSON lines, complete once the simulator stopped.
    pub ledger_file: PathBuf,
}

/// How a [`SimulatorProcess`] runs: where it listens and what its config file says.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The ISO 8583 listener: port 0 for a fresh one, or the address of a simulator stopped
    /// before, to come back where the authorizer's link dials.
    pub iso_addr: SocketAddr,
    /// The ACS pages' and ledger's listener.
    pub acs_addr: SocketAddr,
    /// The text of its config file (`[faults]`, limits); empty for none.
    pub config: String,
}

impl Default for SimulatorOptions {
    fn default() -> SimulatorOptions {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        SimulatorOptions {
            iso_addr: any,
            acs_addr: any,
            config: String::new(),
        }
    }
}

impl SimulatorProcess {
    /// Its process id, while it runs (for [`crate::procstat`]).
    pub fn pid(&self) -> Option<u32> {
        self.running.pid()
    }

    /// Runs `simulator certs` into `dir/certs`, then `simulator serve` on 127.0.0.1:0 with its
    /// ledger in `dir/ledger.jsonl`; ready once it printed its READY line.
    pub async fn start(bin: &Path, dir: &Path) -> Result<SimulatorProcess, ProcessError> {
        SimulatorProcess::start_with(bin, dir, &SimulatorOptions::default()).await
    }

    /// [`SimulatorProcess::start`] with its addresses and config file of the caller's. The PKI
    /// already in `dir/certs` (a simulator started there before) is kept, so that an authorizer
    /// that loaded it still trusts the simulator that comes back.
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        options: &SimulatorOptions,
    ) -> Result<SimulatorProcess, ProcessError> {
        let certs = dir.join("certs");
        let ledger_file = dir.join("ledger.jsonl");
        if !certs.join(simulator::pki::CA_CERT_FILE).exists() {
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
        }
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--iso-addr")
            .arg(options.iso_addr.to_string())
            .arg("--acs-addr")
            .arg(options.acs_addr.to_string())
            .arg("--certs")
            .arg(&certs)
            .arg("--ledger")
            .arg(&ledger_file)
            .env("RUST_LOG", log_filter());
        if !options.config.is_empty() {
            let path = dir.join("simulator.toml");
            std::fs::write(&path, &options.config)
                .map_err(io(format!("write {}", path.display())))?;
            command.arg("--config").arg(path);
        }
        let (running, line) =
            Running::start("simulator", command, &dir.join("simulator.log")).await?;
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
            dir: dir.to_path_buf(),
            options: options.clone(),
            iso_addr,
            acs_addr,
            certs,
            ledger_file,
        })
    }

    /// The PKI it wrote, for an acquirer that trusts its CA and presents its client certificate.
    pub fn pki(&self) -> Result<simulator::DevPki, ProcessError> {
        Ok(simulator::DevPki::load_from(&self.certs)?)
    }

    /// Graceful stop: the simulator flushes its ledger file.
    pub async fn stop(self) -> Result<(), ProcessError> {
        self.running.stop().await
    }

    /// The network goes away: a graceful stop that keeps the handle, so that
    /// [`SimulatorProcess::start_again`] brings it back.
    pub async fn stop_for_now(&mut self) -> Result<(), ProcessError> {
        self.running.terminate().await
    }

    /// Starts `bin` again after [`SimulatorProcess::stop_for_now`], on the same addresses (where
    /// the authorizer's link dials), PKI and config. The ledger file starts afresh.
    pub async fn start_again(&mut self, bin: &Path) -> Result<(), ProcessError> {
        let options = SimulatorOptions {
            iso_addr: self.iso_addr,
            acs_addr: self.acs_addr,
            ..self.options.clone()
        };
        *self = SimulatorProcess::start_with(bin, &self.dir, &options).await?;
        Ok(())
    }
}

/// A vault client's name and secret, as the vault's config knows them.
#[derive(Clone)]
pub struct ClientLogin {
    /// The client's id in the vault's config (`facade`, `authorizer`).
    pub id: &'static str,
    secret: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientLogin({}, ***)", self.id)
    }
}

impl ClientLogin {
    /// A login for client `id` with a secret made for this run.
    pub fn new(id: &'static str) -> ClientLogin {
        ClientLogin {
            id,
            secret: zeroize::Zeroizing::new(uuid::Uuid::new_v4().simple().to_string()),
        }
    }

    /// The secret, as a vault client presents it.
    pub fn secret(&self) -> vault::ClientSecret {
        vault::ClientSecret::new(self.secret.as_bytes().to_vec())
    }

    /// The credentials a [`vault::VaultClient`] logs in with over the socket.
    pub fn credentials(&self) -> vault::Credentials {
        vault::Credentials::Secret {
            client: self.id.to_owned(),
            secret: self.secret(),
        }
    }

    /// The environment variable through which a child process gets the secret (never its
    /// command line, which any user of the machine can read).
    pub fn env(&self) -> String {
        format!("TESTKIT_VAULT_SECRET_{}", self.id.to_uppercase())
    }

    /// The value of [`ClientLogin::env`] for a child this test starts itself (an operator's
    /// command against the same vault).
    pub fn env_value(&self) -> &str {
        &self.secret
    }
}

/// The vault, configured in `dir`: a SoftHSM2 token made by `vault init --dev` (which writes the
/// user PIN to `hsm-user.pin`, 0600, beside the SoftHSM2 config), the dev merchant (listing
/// threshold 1) and the `facade` and `authorizer` clients. Client secrets are made for this run
/// and reach the vault only through owner-only files, never its environment.
#[derive(Debug)]
pub struct VaultSetup {
    bin: PathBuf,
    dir: PathBuf,
    /// The `facade` client (tokenize, list, remove).
    pub facade: ClientLogin,
    /// The `authorizer` client (detokenize, record payments).
    pub authorizer: ClientLogin,
}

impl VaultSetup {
    /// Writes the config with one merchant of its own and runs `vault init --dev`.
    pub async fn init(bin: &Path, dir: &Path, merchant: &str) -> Result<VaultSetup, ProcessError> {
        VaultSetup::init_merchants(bin, dir, &[(merchant, None)], "").await
    }

    /// Writes the config with these merchants (id, and the shared customer list it belongs to),
    /// each with listing threshold 1, and `head` (top-level keys such as `cache_mib = 64`, or
    /// nothing), and runs `vault init --dev`.
    pub async fn init_merchants(
        bin: &Path,
        dir: &Path,
        merchants: &[(&str, Option<&str>)],
        head: &str,
    ) -> Result<VaultSetup, ProcessError> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let setup = VaultSetup {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            facade: ClientLogin::new("facade"),
            authorizer: ClientLogin::new("authorizer"),
        };
        let clients = [&setup.facade, &setup.authorizer].map(|login| ClientEntry {
            id: login.id,
            role: login.id,
            secret: &login.secret,
        });
        let merchants: Vec<MerchantEntry<'_>> = merchants
            .iter()
            .map(|&(id, union)| MerchantEntry {
                id,
                union,
                listing_threshold: Some(1),
            })
            .collect();
        let head = format!("engine = \"redb\"\n{head}");
        VaultConfig {
            head: &head,
            token_label: "testkit",
            hsm: "module = \"/usr/lib/softhsm/libsofthsm2.so\"\nsessions = 2",
            merchants: &merchants,
            clients: &clients,
            tls_identities: false,
        }
        .write(dir)
        .map_err(io(format!("write the vault config in {}", dir.display())))?;
        setup.one_shot("vault init", &["init", "--dev"]).await?;
        Ok(setup)
    }

    /// Where the vault keeps its database, its socket and the SoftHSM2 token.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The vault's Unix socket (in its data directory).
    pub fn socket(&self) -> PathBuf {
        self.data_dir().join("vault.sock")
    }

    /// A client of the serving vault over its Unix socket, logged in as `login`.
    pub async fn client(
        &self,
        login: &ClientLogin,
    ) -> Result<vault::VaultClient, vault::ClientError> {
        vault::VaultClient::connect_with(
            vault::VaultEndpoint::Unix(self.socket()),
            login.credentials(),
            vault::ClientOptions::default(),
        )
        .await
    }

    fn command(&self) -> Command {
        let mut c = Command::from(crate::vault::command(&self.bin, &self.dir));
        c.env("RUST_LOG", log_filter());
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

    /// `vault serve`, ready once it printed its readiness line ([`vault::Ready`]).
    pub async fn serve(&self) -> Result<VaultProcess, ProcessError> {
        let mut command = self.command();
        command.arg("serve");
        let (running, line) = Running::start("vault", command, &self.dir.join("vault.log")).await?;
        if vault::Ready::parse(&line).is_none() {
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
    /// Its process id, while it runs (for [`crate::procstat`]).
    pub fn pid(&self) -> Option<u32> {
        self.running.pid()
    }

    /// SIGTERM: the vault finishes what it started and exits 0.
    pub async fn stop(self) -> Result<(), ProcessError> {
        self.running.stop().await
    }
}

/// What the `authorizer` binary is configured with besides its own data directory: the network
/// it signs on to and the vault it resolves saved cards with (as `authorizer`) and serves One
/// Click with (as `facade`).
#[derive(Debug, Clone)]
pub struct AuthorizerPeers {
    /// The directory with `ca.pem`, `client.pem` and `client-key.pem` (what `simulator certs`
    /// and [`simulator::DevPki::write_to`] write).
    pub certs: PathBuf,
    /// The simulator's ISO 8583 address.
    pub iso_addr: SocketAddr,
    /// The vault's Unix socket; the vault need not be serving yet.
    pub vault_socket: PathBuf,
    /// The `authorizer` client's login at the vault; its secret reaches the child through its
    /// environment.
    pub login: ClientLogin,
    /// The `facade` client's login at the vault, passed the same way.
    pub facade: ClientLogin,
    /// The simulator's ACS (`http://host:port`), for the payment pages' 3-D Secure.
    pub acs_url: String,
}

impl AuthorizerPeers {
    /// The simulator process and the vault configured by `vault`.
    pub fn new(sim: &SimulatorProcess, vault: &VaultSetup) -> AuthorizerPeers {
        AuthorizerPeers {
            certs: sim.certs.clone(),
            iso_addr: sim.iso_addr,
            vault_socket: vault.socket(),
            login: vault.authorizer.clone(),
            facade: vault.facade.clone(),
            acs_url: format!("http://{}", sim.acs_addr),
        }
    }
}

/// What a caller adds to the authorizer's config file.
#[derive(Debug, Clone, Default)]
pub struct AuthorizerExtra {
    /// Top-level keys (`store_cache_mib = 256`), written before the first table.
    pub head: String,
    /// Whole tables (`[notifications]`, `[cabinet]`), written after the others.
    pub sections: String,
}

/// The `authorizer` binary: its config file and database in a directory of its own, its merchants
/// file, its merchant API and admin endpoint on 127.0.0.1:0 (learnt from its
/// [`authorizer::Ready`] line).
#[derive(Debug)]
pub struct AuthorizerProcess {
    running: Running,
    /// Where its merchant API is bound.
    pub api_addr: SocketAddr,
    /// Where its admin endpoint (metrics, health) is bound.
    pub admin_addr: SocketAddr,
}

impl AuthorizerProcess {
    /// Its process id, while it runs (for [`crate::procstat`]).
    pub fn pid(&self) -> Option<u32> {
        self.running.pid()
    }

    /// How often the store-and-forward queue is retried: short, so a test sees a retry soon.
    pub const SAF_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

    /// With the repository's dev merchants (`config/merchants.dev.toml`).
    pub async fn start(
        bin: &Path,
        dir: &Path,
        peers: &AuthorizerPeers,
    ) -> Result<AuthorizerProcess, ProcessError> {
        let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/merchants.dev.toml");
        AuthorizerProcess::start_with(bin, dir, peers, &dev).await
    }

    /// Writes `dir/authorizer.toml` with a merchants file of the caller's and starts the binary on
    /// it; ready once it printed its readiness line, which it does once its merchant API answers.
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        peers: &AuthorizerPeers,
        merchants: &Path,
    ) -> Result<AuthorizerProcess, ProcessError> {
        AuthorizerProcess::start_configured(bin, dir, peers, merchants, &AuthorizerExtra::default())
            .await
    }

    /// [`AuthorizerProcess::start_with`], with `extra` keys and tables in the config file.
    pub async fn start_configured(
        bin: &Path,
        dir: &Path,
        peers: &AuthorizerPeers,
        merchants: &Path,
        extra: &AuthorizerExtra,
    ) -> Result<AuthorizerProcess, ProcessError> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let config = format!(
            r#"data_dir = "{data}"
admin_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
merchants = "{merchants}"
acs_url = "{acs}"
{head}
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
{sections}
"#,
            merchants = merchants.display(),
            acs = peers.acs_url,
            head = extra.head,
            sections = extra.sections,
            facade = peers.facade.id,
            facade_env = peers.facade.env(),
            data = AuthorizerProcess::data_dir(dir).display(),
            certs = peers.certs.display(),
            iso = peers.iso_addr,
            retry = AuthorizerProcess::SAF_RETRY.as_millis(),
            socket = peers.vault_socket.display(),
            client = peers.login.id,
            env = peers.login.env(),
        );
        let path = dir.join("authorizer.toml");
        std::fs::write(&path, config).map_err(io(format!("write {}", path.display())))?;
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(&path)
            .env(peers.login.env(), peers.login.secret.as_str())
            .env(peers.facade.env(), peers.facade.secret.as_str())
            .env("RUST_LOG", log_filter());
        let (running, line) =
            Running::start("authorizer", command, &dir.join("authorizer.log")).await?;
        let Some(authorizer::Ready {
            api: api_addr,
            admin: admin_addr,
        }) = authorizer::Ready::parse(&line)
        else {
            return Err(ProcessError::BadReadyLine {
                name: "authorizer",
                line,
            });
        };
        Ok(AuthorizerProcess {
            running,
            api_addr,
            admin_addr,
        })
    }

    /// Where the process keeps its database (`authorizer.db`, with the store-and-forward queue).
    pub fn data_dir(dir: &Path) -> PathBuf {
        dir.join("data")
    }

    /// The admin endpoint's Prometheus text.
    pub async fn metrics(&self) -> Result<String, ProcessError> {
        crate::metrics::scrape(self.admin_addr)
            .await
            .map_err(io("GET /metrics from the authorizer"))
    }

    /// SIGTERM: the process signs off and exits 0.
    pub async fn stop(self) -> Result<(), ProcessError> {
        self.running.stop().await
    }

    /// SIGKILL, as a crash: whatever it had in flight stays as its database has it.
    pub async fn kill(self) -> Result<(), ProcessError> {
        self.running.kill().await
    }
}
