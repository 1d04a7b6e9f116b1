//! The real `simulator` binary: `certs` writes a PKI, `serve` announces its ports, answers over
//! mutual TLS, stops on SIGTERM and leaves the run's ledger file behind.

use iso8583::Mti;
use simulator::{Action, DevPki, LedgerEntry};
use testkit::cards::MIR_CHALLENGE;
use testkit::iso::{IsoClient, code, payment};
use testkit::processes::SimulatorProcess;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_simulator");

#[tokio::test]
async fn serve_answers_over_mutual_tls_and_writes_the_ledger_file() {
    let dir = tempfile::tempdir().unwrap();
    // `simulator certs`, then `simulator serve` on port 0, ready once its READY line is read.
    let sim = SimulatorProcess::start(BIN.as_ref(), dir.path())
        .await
        .unwrap();
    let pki = DevPki::load_from(&sim.certs).unwrap();
    let ledger_file = sim.ledger_file.clone();

    let mut client = IsoClient::connect(sim.iso_addr, &pki).await.unwrap();
    let response = client
        .call(&payment(Mti::FINANCIAL_REQUEST, MIR_CHALLENGE, 4_200, &[]))
        .await;
    assert_eq!(code(&response), "00");
    drop(client);

    // SIGTERM; an error unless the exit is a graceful 0.
    sim.stop().await.expect("graceful exit on SIGTERM");

    let text = std::fs::read_to_string(&ledger_file).unwrap();
    let entries: Vec<LedgerEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, Action::Approved);
    assert_eq!(entries[0].balance_delta, -4_200);
    assert!(
        !text.contains(MIR_CHALLENGE),
        "the ledger file holds no PAN"
    );
}

#[tokio::test]
async fn a_bad_config_file_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.toml");
    std::fs::write(&file, "[faults]\nlatency = { kind = \"sometimes\" }\n").unwrap();
    let output = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--certs")
        .arg(dir.path().join("certs"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sim.toml"), "{stderr}");
}
