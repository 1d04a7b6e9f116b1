//! The real `simulator` binary: `certs` writes a PKI, `serve` announces its ports, answers over
//! mutual TLS, stops on SIGTERM and leaves the run's ledger file behind.

mod common;

use std::process::Stdio;

use common::*;
use iso8583::Mti;
use simulator::{Action, DevPki, LedgerEntry};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_simulator");

#[tokio::test]
async fn serve_answers_over_mutual_tls_and_writes_the_ledger_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let status = Command::new(BIN)
        .arg("certs")
        .arg("--out")
        .arg(&certs)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let pki = DevPki::load_from(&certs).unwrap();
    let ledger_file = dir.path().join("ledger.jsonl");

    let mut child = Command::new(BIN)
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
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let iso_addr = simulator::Ready::parse(&ready).expect("a READY line").iso;

    let mut client = IsoClient::connect(iso_addr, &pki).await.unwrap();
    let response = client
        .call(&payment(Mti::FINANCIAL_REQUEST, MIR, 4_200, &[]))
        .await;
    assert_eq!(code(&response), "00");
    drop(client);

    let pid = child.id().unwrap().to_string();
    // The shell's built-in `kill`: no dependency on procps in a minimal CI image.
    let term = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {pid}"))
        .status()
        .await;
    assert!(term.unwrap().success());
    let exit = tokio::time::timeout(GUARD, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "graceful exit on SIGTERM: {exit}");

    let text = std::fs::read_to_string(&ledger_file).unwrap();
    let entries: Vec<LedgerEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, Action::Approved);
    assert_eq!(entries[0].balance_delta, -4_200);
    assert!(!text.contains(MIR), "the ledger file holds no PAN");
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
