//! End to end with the real `simulator` binary as a separate process: the link (in-process, as
//! the authorizer runs it) signs on over mutual TLS with certificates the binary wrote, pays
//! through every path that moves money (3-D Secure first use, MIT, a lost answer that is reversed),
//! and the ledger the simulator serves over HTTP agrees with what the link believes.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use authorizer::link::{
    CredentialOnFile, LinkOutcome, ReversalState, TlsMaterial, TransactionKind, client_config,
};
use iso8583::MitReason;
use simulator::AcsClient;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The simulator binary sits next to ours; `cargo test -p authorizer` does not build another
/// package's binaries, so build it (a no-op when it is up to date, as after a workspace build).
fn simulator_bin() -> PathBuf {
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "-p", "simulator", "--bin", "simulator"]);
    // The variables cargo sets for a running test (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...) would
    // make the nested build see a different environment and rebuild crates that watch them.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR") {
            cargo.env_remove(key);
        }
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "building the simulator binary failed");
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_authorizer"));
    ours.with_file_name("simulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_against_the_simulator_binary_reconciles_with_its_ledger() {
    let bin = simulator_bin();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let status = Command::new(&bin)
        .arg("certs")
        .arg("--out")
        .arg(&certs)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let ledger_file = dir.path().join("ledger.jsonl");
    let mut child = Command::new(&bin)
        .args([
            "serve",
            "--iso-addr",
            "127.0.0.1:0",
            "--acs-addr",
            "127.0.0.1:0",
            "--certs",
        ])
        .arg(&certs)
        .arg("--ledger")
        .arg(&ledger_file)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let simulator::Ready { iso, acs } = simulator::Ready::parse(&ready).expect("a READY line");

    let read = |name: &str| std::fs::read_to_string(certs.join(name)).unwrap();
    let tls = client_config(&TlsMaterial {
        ca_cert_pem: read("ca.pem"),
        client_cert_pem: read("client.pem"),
        client_key_pem: zeroize::Zeroizing::new(read("client-key.pem")),
    })
    .unwrap();
    let endpoints = vec![authorizer::link::Endpoint::new(iso.to_string(), "localhost").unwrap()];
    let mut config = authorizer::link::LinkConfig::new(endpoints, tls);
    config.request_timeout = Duration::from_millis(500);
    config.reversal_timeout = Duration::from_millis(500);
    let vault = Arc::new(TestVault::default());
    let link = start_link(config, &dir, &vault);
    assert!(link.wait_ready(Duration::from_secs(10)).await);
    let net = Harness {
        link: link.clone(),
        vault,
        acs: AcsClient::new(acs),
    };

    // First use with 3-D Secure from the binary's ACS, then an MIT quoting it.
    let three_ds = net.three_ds(MC_FRICTIONLESS).await;
    let first = net
        .pay(
            MC_FRICTIONLESS,
            2_000,
            CredentialOnFile::FirstUse,
            Some(three_ds),
            Some("123"),
        )
        .await;
    let LinkOutcome::Approved {
        network_txn_id: Some(id),
        ..
    } = &first
    else {
        panic!("{first:?}")
    };
    let mit = CredentialOnFile::Merchant {
        reason: MitReason::Unscheduled,
        original: id.clone(),
    };
    let second = net.pay(MC_FRICTIONLESS, 3_000, mit, None, None).await;
    assert!(matches!(second, LinkOutcome::Approved { .. }), "{second:?}");
    // A lost answer (magic amount 9901) is reversed, and the reversal is acknowledged.
    let lost = net
        .pay(
            MC_FRICTIONLESS,
            9901,
            CredentialOnFile::None,
            None,
            Some("123"),
        )
        .await;
    let LinkOutcome::TimedOutReversed {
        reversal: ReversalState::Acknowledged,
        reference,
    } = &lost
    else {
        panic!("{lost:?}")
    };

    let ledger = net.acs.ledger().await.unwrap();
    for outcome in [&first, &second] {
        let r = outcome.reference();
        assert!(
            ledger.approval(r.stan, &r.rrn).is_some(),
            "approval {} in the ledger",
            r.stan
        );
    }
    let reversals = ledger
        .applied_reversals()
        .filter(|e| {
            e.original
                .as_ref()
                .is_some_and(|(_, s)| *s == reference.stan)
        })
        .count();
    assert_eq!(reversals, 1);
    let card = ledger.balance("555555******4444").unwrap();
    assert_eq!(
        card.opening - card.current,
        2_000 + 3_000,
        "the reversed payment moved nothing"
    );
    assert!(ledger.balances_add_up());

    link.shutdown().await;
    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().unwrap().to_string())
        .status();
    assert!(killed.unwrap().success());
    assert!(child.wait().await.unwrap().success());
    let file = std::fs::read_to_string(&ledger_file).unwrap();
    assert!(
        file.lines().count() >= ledger.entries.len(),
        "the run's ledger file was written"
    );
    assert!(!file.contains(MC_FRICTIONLESS), "no PAN in the ledger file");
}

struct Harness {
    link: authorizer::link::Link,
    vault: Arc<TestVault>,
    acs: AcsClient,
}

impl Harness {
    async fn three_ds(&self, digits: &str) -> authorizer::link::ThreeDs {
        let r = self
            .acs
            .authenticate_passing(&card::Pan::parse(digits).unwrap())
            .await
            .unwrap();
        authorizer::link::ThreeDs {
            eci: r.eci.unwrap(),
            cavv: r.cavv,
            version: Some("2.2.0".into()),
            ds_transaction_id: Some(r.ds_trans_id),
        }
    }

    async fn pay(
        &self,
        digits: &str,
        amount: u64,
        cof: CredentialOnFile,
        three_ds: Option<authorizer::link::ThreeDs>,
        cvc: Option<&str>,
    ) -> LinkOutcome {
        let pan = card::Pan::parse(digits).unwrap();
        let cvc = cvc.map(|c| card::Cvc::parse(c).unwrap());
        self.link
            .authorize(authorizer::link::AuthorizationRequest {
                kind: TransactionKind::Purchase,
                pan: &pan,
                expiry: future_expiry(),
                cvc: cvc.as_ref(),
                card: self.vault.token(&pan),
                amount: iso8583::Amount(amount),
                currency: authorizer::link::Currency::RUB,
                cof,
                three_ds,
                merchant: merchant(),
            })
            .await
            .unwrap()
    }
}
