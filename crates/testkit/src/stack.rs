//! The whole system for an end-to-end test: the real `simulator`, `vault` and `authorizer`
//! processes on one temp directory, with the merchants the test names. Each e2e test file adds
//! what it does with the system (the merchant API, the pages, the cabinet, notifications) on top.
//!
//! Owns the start order (simulator, vault set up and served, authorizer on both) and restarting
//! the authorizer on the same data, as after a crash. Panics on a set-up failure, as a test wants.

use crate::processes::{
    AuthorizerExtra, AuthorizerPeers, AuthorizerProcess, Binaries, SimulatorOptions,
    SimulatorProcess, VaultProcess, VaultSetup,
};
use std::path::{Path, PathBuf};

/// The dev merchants of ARCHITECTURE.md in the vault: 452739 and 452740 sharing a customer list.
pub const DEV_MERCHANTS: &[(&str, Option<&str>)] = &[
    ("452739", Some("demo-entity")),
    ("452740", Some("demo-entity")),
];

/// How the system is set up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The vault's merchants: (Merchant_ID, customer list shared with others, if any).
    pub vault_merchants: Vec<(&'static str, Option<&'static str>)>,
    /// The authorizer's merchants file; `None`: `config/merchants.dev.toml` as it is.
    pub merchants_file: Option<String>,
    /// TOML tables appended to the authorizer's config (`[notifications]`, `[cabinet]`).
    pub sections: String,
    /// Top-level keys of the authorizer's config (`store_cache_mib = 256`).
    pub authorizer_head: String,
    /// Top-level keys of the vault's config (`cache_mib = 64`).
    pub vault_head: String,
    /// The simulator's config file (`[faults]`: a slow network); empty for none.
    pub simulator_config: String,
}

impl Default for StackOptions {
    fn default() -> StackOptions {
        StackOptions {
            vault_merchants: DEV_MERCHANTS.to_vec(),
            merchants_file: None,
            sections: String::new(),
            authorizer_head: String::new(),
            vault_head: String::new(),
            simulator_config: String::new(),
        }
    }
}

/// The three processes; the vault and the authorizer may be stopped and started again by a test.
#[allow(missing_debug_implementations)] // its processes have no `Debug`; nothing prints a stack
pub struct Stack {
    /// Every process's data directory is under it.
    pub dir: tempfile::TempDir,
    /// The binaries the processes run.
    pub bins: Binaries,
    /// The processing centre.
    pub sim: SimulatorProcess,
    /// The vault's setup (its config, clients and data directory).
    pub setup: VaultSetup,
    /// The vault, while it runs.
    pub vault: Option<VaultProcess>,
    authorizer: Option<AuthorizerProcess>,
    merchants: PathBuf,
    extra: AuthorizerExtra,
}

impl Stack {
    /// Starts the simulator, sets up and serves the vault, then starts the authorizer.
    pub async fn start(options: StackOptions) -> Stack {
        let bins = Binaries::locate().expect("binaries");
        let dir = tempfile::tempdir().expect("a temp dir");
        let sim = SimulatorProcess::start_with(
            &bins.simulator,
            &dir.path().join("simulator"),
            &SimulatorOptions {
                config: options.simulator_config,
                ..SimulatorOptions::default()
            },
        )
        .await
        .expect("the simulator starts");
        let setup = VaultSetup::init_merchants(
            &bins.vault,
            &dir.path().join("vault"),
            &options.vault_merchants,
            &options.vault_head,
        )
        .await
        .expect("the vault is set up");
        let vault = setup.serve().await.expect("the vault serves");
        let merchants = match &options.merchants_file {
            Some(text) => {
                let path = dir.path().join("merchants.toml");
                std::fs::write(&path, text).expect("the merchants file is written");
                path
            }
            None => dev_merchants_file(),
        };
        let mut stack = Stack {
            dir,
            bins,
            sim,
            setup,
            vault: Some(vault),
            authorizer: None,
            merchants,
            extra: AuthorizerExtra {
                head: options.authorizer_head,
                sections: options.sections,
            },
        };
        stack.start_authorizer().await;
        stack
    }

    /// Starts the authorizer on the stack's data directory (again, after a stop or a crash).
    pub async fn start_authorizer(&mut self) {
        self.authorizer = Some(
            AuthorizerProcess::start_configured(
                &self.bins.authorizer,
                &self.authorizer_dir(),
                &AuthorizerPeers::new(&self.sim, &self.setup),
                &self.merchants,
                &self.extra,
            )
            .await
            .expect("the authorizer starts"),
        );
    }

    /// The running authorizer.
    pub fn authorizer(&self) -> &AuthorizerProcess {
        self.authorizer.as_ref().expect("the authorizer is running")
    }

    /// Takes the running authorizer out, to stop or kill it.
    pub fn take_authorizer(&mut self) -> AuthorizerProcess {
        self.authorizer.take().expect("the authorizer is running")
    }

    /// The authorizer's data directory.
    pub fn authorizer_dir(&self) -> PathBuf {
        self.dir.path().join("authorizer")
    }

    /// A saved card of `customer` of `merchant`, listed (one paid payment recorded through the
    /// vault, as [`crate::vault::save_paid_card`] does): its token.
    pub async fn saved_card(&self, merchant: &str, customer: &str, pan: &str) -> String {
        let facade = self.setup.client(&self.setup.facade).await;
        let authorizer = self.setup.client(&self.setup.authorizer).await;
        crate::vault::save_paid_card(
            &facade.expect("the facade's vault client"),
            &authorizer.expect("the authorizer's vault client"),
            &vault::MerchantId::parse(merchant).expect("a merchant id"),
            &vault::CustomerNumber::parse(customer).expect("a customer number"),
            pan,
        )
        .await
        .expect("the card is saved and paid once")
        .to_string()
    }

    /// Graceful stops, the authorizer first (it signs off from the simulator), then the vault,
    /// then the simulator (which flushes its ledger file). Returns the data directory, so that
    /// the caller reads what the processes left (logs, the ledger file) before it goes.
    pub async fn stop(mut self) -> Result<tempfile::TempDir, crate::processes::ProcessError> {
        if let Some(authorizer) = self.authorizer.take() {
            authorizer.stop().await?;
        }
        if let Some(vault) = self.vault.take() {
            vault.stop().await?;
        }
        self.sim.stop().await?;
        Ok(self.dir)
    }
}

/// `config/merchants.dev.toml`, the dev merchants as the demo runs them.
pub fn dev_merchants_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/merchants.dev.toml")
}

/// The dev merchants file with a notification URL per merchant (452739 to `first`, 452740 to
/// `second`), every result asked for.
pub fn dev_merchants_notifying(first: &str, second: &str) -> std::io::Result<String> {
    let dev = std::fs::read_to_string(dev_merchants_file())?;
    let notify = |url: &str| {
        format!("notification_url = \"{url}\"\nnotify = [\"payments\", \"charges\", \"cancels\"]\n")
    };
    Ok(dev
        .replace(
            "checkvalue_salt = \"demosalt\"\n",
            &format!("checkvalue_salt = \"demosalt\"\n{}", notify(first)),
        )
        .replace(
            "checkvalue_salt = \"demosalt2\"\n",
            &format!("checkvalue_salt = \"demosalt2\"\n{}", notify(second)),
        ))
}

/// The authorizer's `[notifications]` table: `ports` allowed besides the spec's (a merchant
/// server of a test is on an ephemeral port), `retry_ms` the schedule (TOML array, e.g.
/// `"[50]"`), `timeout_ms` the time-out of one try.
pub fn notification_sections(ports: &[u16], retry_ms: &str, timeout_ms: u64) -> String {
    let ports: Vec<String> = [80, 443, 8080, 8443]
        .iter()
        .chain(ports)
        .map(u16::to_string)
        .collect();
    format!(
        "[notifications]\nretry_ms = {retry_ms}\ntimeout_ms = {timeout_ms}\n\
         allowed_ports = [{}]\n",
        ports.join(", ")
    )
}

/// Makes a test's own stack type (a struct with the [`Stack`] in its `system` field, beside what
/// the test adds) usable as that [`Stack`]: its processes, setup and directory.
#[macro_export]
macro_rules! wraps_stack {
    ($ty:ty) => {
        impl std::ops::Deref for $ty {
            type Target = $crate::stack::Stack;
            fn deref(&self) -> &Self::Target {
                &self.system
            }
        }

        impl std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.system
            }
        }
    };
}
