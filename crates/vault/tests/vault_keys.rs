//! Keys end to end: rotation under load with no failed call, `vault keys`, clear start-up errors,
//! and the mutual-TLS listener identifying a client by its certificate.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use testkit::vault::*;
use vault::model::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_call() {
    let mut v = Vault::init("");
    v.start();
    let facade = v.client("facade").await.unwrap();
    let authorizer = v.client("authorizer").await.unwrap();
    let m = merchant(SOLO);
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(
            facade
                .tokenize(tokenize_req(
                    SOLO,
                    &format!("r{i}"),
                    "5555555555554444",
                    "12.2030",
                ))
                .await
                .unwrap()
                .token,
        );
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut load = Vec::new();
    for w in 0..8usize {
        let (facade, authorizer, m, tokens, stop) = (
            facade.clone(),
            authorizer.clone(),
            m.clone(),
            tokens.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut calls = 0u64;
            while !*stop.borrow() {
                let i = (calls as usize * 8 + w) % tokens.len();
                let c = customer(&format!("r{i}"));
                let p = format!("w{w}-{calls}");
                let secret = granted_detokenize(&facade, &authorizer, &m, &c, tokens[i], &p)
                    .await
                    .unwrap();
                assert_eq!(secret.pan.expose(), b"5555555555554444");
                facade
                    .tokenize(tokenize_req(
                        SOLO,
                        &format!("n{w}-{calls}"),
                        "4111111111111111",
                        "12.2030",
                    ))
                    .await
                    .unwrap();
                calls += 1;
            }
            calls
        }));
    }
    let out = tokio::task::block_in_place(|| v.command(&["rotate-keys"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("v2"));
    // Keep the load going across the switch, then stop it.
    for (i, token) in tokens.iter().enumerate().take(20) {
        let c = customer(&format!("r{i}"));
        granted_detokenize(&facade, &authorizer, &m, &c, *token, &format!("after-{i}"))
            .await
            .unwrap();
    }
    stop_tx.send(true).unwrap();
    let mut total = 0;
    for l in load {
        total += l.await.unwrap();
    }
    assert!(total > 0);
    drop((facade, authorizer));
    v.stop();
    // A restart finishes any re-sealing, and the retirement after it, before a graceful stop
    // completes.
    v.start();
    v.stop();
    let keys = String::from_utf8_lossy(&v.command(&["keys"]).stdout).to_string();
    for label in ["vault-kek-v2", "vault-fingerprint-v1"] {
        let line = keys
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} missing in {keys}"));
        assert!(
            line.contains("sensitive=true")
                && line.contains("extractable=false")
                && line.contains("age=0d")
                && line.contains("in-cryptoperiod"),
            "{line}"
        );
    }
    assert!(
        !keys.contains("vault-kek-v1"),
        "the retired KEK is destroyed once nothing is sealed under it: {keys}"
    );
    let store = v.open_store();
    assert!(store.get(&vault::record::dek_key(1)).unwrap().is_none());
    assert!(store.get(&vault::record::dek_key(2)).unwrap().is_some());
    drop(store);
    let store = v.open_store();
    let records = store.scan_prefix(vault::record::CARD).unwrap();
    assert!(records.len() >= 50);
    for (_, value) in records {
        assert_eq!(
            vault::record::CardRecord::decode(&value)
                .unwrap()
                .key_version,
            2
        );
    }
}

#[test]
fn clear_errors_at_start() {
    let v = Vault::init("");
    // A second init finds the keys instead of making new ones.
    let again = v.command(&["init"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("found existing keys: current version v1")
    );
    let pin = v.hsm_pin();
    v.write_secret("hsm-user.pin", "wrong-pin");
    let out = v.command(&["keys"]);
    v.write_secret("hsm-user.pin", &pin);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong PIN") && !err.contains("wrong-pin"),
        "{err}"
    );
    let out = v.command_with_env(&["serve"], "SOFTHSM2_CONF", "/nonexistent/softhsm2.conf");
    assert!(!out.status.success());
    // An empty or short client secret is refused at load, saying why.
    for short in ["", "short-secret"] {
        v.write_secret("facade.secret", short);
        let out = v.command(&["keys"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("client facade") && err.contains("at least 16"),
            "{err}"
        );
    }
    v.write_secret("facade.secret", SECRETS[0].1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "data_dir = \"x\"\n[hsm]\ntoken_label = \"t\"\npin_env = \"NOT_SET_ANYWHERE\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vault"))
        .arg("--config")
        .arg(&cfg)
        .arg("keys")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT_SET_ANYWHERE"));
    // A secret file others can read is refused.
    let secret = dir.path().join("pin");
    std::fs::write(&secret, "1234").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"x\"\n[hsm]\ntoken_label = \"t\"\npin_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vault"))
        .arg("--config")
        .arg(&cfg)
        .arg("keys")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_identifies_clients_by_certificate() {
    let pki = Pki::new();
    let (mut vault, addr) = tls_vault(&pki);
    let facade = vault.client("facade").await.unwrap();
    let saved = facade
        .tokenize(tokenize_req(SOLO, "t1", "4111111111111111", "12.2030"))
        .await
        .unwrap();
    let authorizer = pki.client("authorizer", &["urn:vault:client:authorizer"]);
    let remote = tls_client(addr, authorizer).await.unwrap();
    assert_eq!(remote.role(), Role::Authorizer);
    let (m, c) = (merchant(SOLO), customer("t1"));
    let secret = granted_detokenize(&facade, &remote, &m, &c, saved.token, "tls-1")
        .await
        .unwrap();
    assert_eq!(secret.pan.expose(), b"4111111111111111");
    // A certificate from the right CA that names no configured client gets nowhere.
    let stranger = pki.client("stranger", &["urn:vault:client:stranger"]);
    assert!(tls_client(addr, stranger).await.is_err());
    drop((facade, remote));
    vault.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls12_only_client_is_refused() {
    let pki = Pki::new();
    let (mut vault, addr) = tls_vault(&pki);
    let authorizer = pki.client("authorizer", &["urn:vault:client:authorizer"]);
    let pem = |path: &std::path::Path| std::fs::read(path).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&pem(&authorizer.ca)) {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(&pem(&authorizer.cert))
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&pem(&authorizer.key)).unwrap();
    // The configured authorizer's own certificate, offered over TLS 1.2 only.
    let tls12 = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls12))
        .connect("vault.test".try_into().unwrap(), tcp)
        .await;
    let err = handshake
        .expect_err("the vault must refuse TLS 1.2")
        .to_string();
    assert!(err.contains("version") || err.contains("Version"), "{err}");
    vault.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_rotation_finds_cards_again_and_retires_the_old_key() {
    let mut v = Vault::init("");
    v.start();
    let facade = v.client("facade").await.unwrap();
    let card = || tokenize_req(SOLO, "f1", "4111111111111111", "12.2030");
    let first = facade.tokenize(card()).await.unwrap();
    let out = tokio::task::block_in_place(|| v.command(&["rotate-keys", "--fingerprint"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("fingerprint key v2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Found again whether or not the background pass has reached it yet.
    let again = facade.tokenize(card()).await.unwrap();
    assert_eq!((again.token, again.created), (first.token, false));
    drop(facade);
    v.stop();
    v.start();
    v.stop();
    let keys = String::from_utf8_lossy(&v.command(&["keys"]).stdout).to_string();
    assert!(
        keys.contains("vault-fingerprint-v2") && !keys.contains("vault-fingerprint-v1"),
        "{keys}"
    );
    let store = v.open_store();
    for (_, value) in store.scan_prefix(vault::record::CARD).unwrap() {
        let rec = vault::record::CardRecord::decode(&value).unwrap();
        assert_eq!(
            rec.fingerprint_scheme,
            vault::fingerprint::Scheme::Scoped(2)
        );
    }
    assert_eq!(store.scan_prefix(b"fp/").unwrap().len(), 1);
}

#[test]
fn the_vault_keeps_no_pin_or_secret_in_its_environment() {
    let mut v = Vault::init("");
    v.start();
    let pid = v.child.as_ref().unwrap().id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let pin = v.hsm_pin();
    let secrets = SECRETS.iter().map(|(_, s)| *s);
    for secret in secrets.chain([pin.as_str()]) {
        assert!(
            !environ
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "a secret is in the vault's /proc/<pid>/environ"
        );
    }
    assert!(!String::from_utf8_lossy(&environ).contains("VAULT_HSM_SO_PIN"));
    v.stop();
    // The dev PIN file is owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(v.dir.path().join("hsm-user.pin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn serve_refuses_the_so_pin_and_unannounced_environment_secrets() {
    let v = Vault::init("");
    let out = v.command_with_env(&["serve"], "VAULT_HSM_SO_PIN", "so-pin");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("SO PIN must never reach"),
        "{err}"
    );
    let config = v.dir.path().join("vault.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("secret_file = \"{}/facade.secret\"", v.dir.path().display()),
        "secret_env = \"TEST_SECRET_FACADE\"",
    );
    std::fs::write(&config, text).unwrap();
    let out = v.command_with_env(&["serve"], "TEST_SECRET_FACADE", "facade-secret-0123");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("TEST_SECRET_FACADE")
            && err.contains("--allow-env-secrets"),
        "{err}"
    );
}
