//! The real `authorizer` binary against the in-process simulator: it reads its config file,
//! signs on over mutual TLS (with its vault not up yet: it starts anyway), shows the connection
//! up on the admin port's `/metrics`, and signs off and exits cleanly on SIGTERM; and it refuses
//! to start, with one clear line, when its vault secret or its merchants file is bad. Its merchant
//! API answers from the READY line on, a One Click call with the vault away being firstcode 2,
//! never a 500. With a real vault: `tests`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use simulator::{DevPki, SimConfig, Simulator};

fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn post(addr: &str, path: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

fn dev_merchants() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/merchants.dev.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_signs_on_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate();
    pki.write_to(&dir.path().join("certs")).unwrap();
    let iso = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(SimConfig::with_pki(&pki), iso, acs)
        .await
        .unwrap();
    let config = dir.path().join("authorizer.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\nadmin_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             merchants = \"{merchants}\"\n[link]\ncerts_dir = \"{certs}\"\n\
             endpoints = [{{ addr = \"{iso}\", server_name = \"localhost\" }}]\n\
             [vault]\nsocket = \"{data}/no-vault.sock\"\nsecret_env = \"AUTHORIZER_TEST_VAULT_SECRET\"\n\
             facade_secret_env = \"AUTHORIZER_TEST_VAULT_SECRET\"\n",
            data = dir.path().join("data").display(),
            merchants = dev_merchants().display(),
            certs = dir.path().join("certs").display(),
            iso = sim.iso_addr,
        ),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_authorizer"))
        .arg("--config")
        .arg(&config)
        .env(
            "AUTHORIZER_TEST_VAULT_SECRET",
            "not-checked-until-the-vault-is-up",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready = authorizer::Ready::parse(&line).expect("announces its addresses");
    let admin = ready.admin.to_string();
    let one_click = tokio::task::spawn_blocking(move || {
        post(
            &ready.api.to_string(),
            "/pay/oneclick/v1/token.cfm",
            r#"{"merchant":{"merchant_id":"452739","login":"demo_login","password":"Demopass2026"},"customernumber":"1234"}"#,
        )
    })
    .await
    .unwrap();
    assert!(one_click.starts_with("HTTP/1.1 200"), "{one_click}");
    assert!(
        one_click
            .ends_with(r#"{"fault":{"detail":"internal error","faultcode":2,"faultstring":0}}"#),
        "the vault is away: {one_click}"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let m = tokio::task::spawn_blocking({
            let admin = admin.clone();
            move || get(&admin, "/metrics")
        })
        .await
        .unwrap();
        if m.lines()
            .filter(|l| l.starts_with("link_connection_state{") && l.ends_with(" 3"))
            .count()
            == 2
        {
            break m;
        }
        assert!(Instant::now() < deadline, "pool never came up:\n{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        metrics.contains("link_requests_sent_total{mti=\"0800\"} 2"),
        "{metrics}"
    );
    let signons = sim
        .ledger()
        .entries
        .iter()
        .filter(|e| e.mti == "0800")
        .count();
    assert_eq!(signons, 2, "one sign-on per pooled connection");

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    let network = sim
        .ledger()
        .entries
        .iter()
        .filter(|e| e.mti == "0800")
        .count();
    assert_eq!(
        network, 4,
        "each connection signed off (0800/002) before the process exited"
    );
    sim.shutdown().await;
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
