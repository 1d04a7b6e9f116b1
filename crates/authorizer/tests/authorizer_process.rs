//! The real `authorizer` binary against the in-process simulator: it reads its config file,
//! signs on over mutual TLS (with its vault not up yet: it starts anyway), shows the connection
//! up on the admin port's `/metrics`, and signs off and exits cleanly on SIGTERM; and it refuses
//! to start, with one clear line, when its vault secret or its merchants file is bad. Its merchant
//! API answers from the READY line on, a One Click call with the vault away being firstcode 2,
//! never a 500. `hash-password` reads stdin. With a real vault: `e2e`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use simulator::DevPki;
use testkit::metrics::{samples, value};
use testkit::network::Sim;
use testkit::processes::{AuthorizerPeers, AuthorizerProcess, ClientLogin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_signs_on_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(simulator::Faults::default()).await;
    let certs = dir.path().join("certs");
    sim.pki.write_to(&certs).unwrap();
    // The vault is not up: the secret is not checked until it is, and the process starts anyway.
    let peers = AuthorizerPeers {
        certs,
        iso_addr: sim.handle.iso_addr,
        vault_socket: dir.path().join("no-vault.sock"),
        login: ClientLogin::new("authorizer"),
        facade: ClientLogin::new("facade"),
        acs_url: format!("http://{}", sim.handle.acs_addr),
    };
    let process = AuthorizerProcess::start(
        env!("CARGO_BIN_EXE_authorizer").as_ref(),
        &dir.path().join("authorizer"),
        &peers,
    )
    .await
    .expect("announces its addresses");

    let one_click = testkit::http::post(
        process.api_addr,
        "/pay/oneclick/v1/token.cfm",
        r#"{"merchant":{"merchant_id":"452739","login":"demo_login","password":"Demopass2026"},"customernumber":"1234"}"#,
    )
    .await;
    assert_eq!(one_click.status, 200, "{one_click:?}");
    assert_eq!(
        one_click.body, r#"{"fault":{"detail":"internal error","faultcode":2,"faultstring":0}}"#,
        "the vault is away"
    );

    let mut metrics = String::new();
    testkit::eventually("the pool to come up", async || {
        metrics = process.metrics().await.unwrap();
        samples(&metrics, "link_connection_state{")
            .filter(|(_, state)| *state == 3.0)
            .count()
            == 2
    })
    .await;
    assert_eq!(
        value(&metrics, "link_requests_sent_total{mti=\"0800\"}"),
        Some(2.0),
        "{metrics}"
    );
    let signons = sim
        .handle
        .ledger()
        .entries
        .iter()
        .filter(|e| e.mti == "0800")
        .count();
    assert_eq!(signons, 2, "one sign-on per pooled connection");

    // SIGTERM; an error unless the exit is a graceful 0.
    process.stop().await.expect("a clean exit on SIGTERM");
    let network = sim
        .handle
        .ledger()
        .entries
        .iter()
        .filter(|e| e.mti == "0800")
        .count();
    assert_eq!(
        network, 4,
        "each connection signed off (0800/002) before the process exited"
    );
    sim.handle.shutdown().await;
}

#[test]
fn binary_without_its_vault_secret_says_which_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    DevPki::generate()
        .write_to(&dir.path().join("certs"))
        .unwrap();
    let config = dir.path().join("authorizer.toml");
    std::fs::write(
        &config,
        format!(
            "admin_addr = \"127.0.0.1:0\"\n[link]\ncerts_dir = \"{}\"\n\
             [vault]\nsecret_env = \"AUTHORIZER_TEST_UNSET_SECRET\"\n",
            dir.path().join("certs").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authorizer"))
        .arg("--config")
        .arg(&config)
        .env_remove("AUTHORIZER_TEST_UNSET_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUTHORIZER_TEST_UNSET_SECRET") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing listened");
}

#[test]
fn binary_with_a_bad_merchants_file_names_it_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    DevPki::generate()
        .write_to(&dir.path().join("certs"))
        .unwrap();
    let merchants = dir.path().join("merchants.toml");
    std::fs::write(
        &merchants,
        "[[merchants]]\nid = \"1\"\nname = \"n\"\nlogin = \"login_one\"\n\
         password_hash = \"not-a-hash\"\ncheckvalue_salt = \"s\"\n",
    )
    .unwrap();
    let config = dir.path().join("authorizer.toml");
    std::fs::write(
        &config,
        format!(
            "admin_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\nmerchants = \"{}\"\n\
             [link]\ncerts_dir = \"{}\"\n[vault]\nsecret_env = \"AUTHORIZER_TEST_SECRET\"\n\
             facade_secret_env = \"AUTHORIZER_TEST_SECRET\"\n",
            merchants.display(),
            dir.path().join("certs").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authorizer"))
        .arg("--config")
        .arg(&config)
        .env("AUTHORIZER_TEST_SECRET", "s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("merchant 1: password_hash: not a PHC string")
            && !stderr.contains("not-a-hash")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing listened");
}

#[test]
fn hash_password_reads_stdin_and_prints_a_phc_hash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authorizer"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Newpass2027\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!phc.contains("Newpass2027"));
}
