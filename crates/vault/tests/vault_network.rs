//! Attacks on the vault's doors, run against the real binary: certificates that name no single
//! client, idle sockets and guessed secrets from an unauthenticated neighbour, a hostile client
//! id, a second vault on the same data directory, a crash dump, and files others can read.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use testkit::vault::*;
use vault::audit::{Event, OP_CONNECTION};
use vault::model::*;
use vault::protocol::{Op, Request};
use vault::{ClientError, ClientOptions, Credentials, VaultClient, VaultEndpoint};

/// A `hello` frame as any peer can send it.
fn hello_frame(client: &str, secret: &[u8]) -> Vec<u8> {
    let body = Request {
        id: 0,
        op: Op::Hello {
            client: client.into(),
            secret: ClientSecret::new(secret.to_vec()),
        },
    }
    .encode();
    [&u32::try_from(body.len()).unwrap().to_be_bytes()[..], &body].concat()
}

/// Sends `frame` on a new connection and reads until the vault closes it.
fn send_and_wait_for_close(v: &Vault, frame: &[u8]) {
    let mut s = UnixStream::connect(v.socket()).unwrap();
    s.write_all(frame).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

fn refused_logins(entries: &[Event]) -> Vec<&Event> {
    entries
        .iter()
        .filter(|e| e.op == 1 && e.outcome != 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_certificate_or_one_naming_two_clients_gets_no_role() {
    let pki = Pki::new();
    let (mut vault, addr) = tls_vault(&pki);
    let wildcard = pki.issue(
        "wildcard",
        vec![rcgen::SanType::DnsName("*.vault.test".try_into().unwrap())],
    );
    assert!(tls_client(addr, wildcard).await.is_err());
    let both = pki.client(
        "both",
        &["urn:vault:client:authorizer", "urn:vault:client:admin"],
    );
    assert!(tls_client(addr, both).await.is_err());
    // The exact identity still works, and its login names the certificate.
    let authorizer = pki.client("authorizer", &["urn:vault:client:authorizer"]);
    let der = CertificateDer::pem_slice_iter(&std::fs::read(&authorizer.cert).unwrap())
        .next()
        .unwrap()
        .unwrap();
    let fingerprint: String = vault::peer::fingerprint(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let client = tls_client(addr, authorizer).await.unwrap();
    assert_eq!(client.role(), Role::Authorizer);
    drop(client);
    vault.stop();
    let entries = audit_entries(&vault);
    let refusals: Vec<_> = entries.iter().filter(|e| e.op == OP_CONNECTION).collect();
    assert!(
        refusals
            .iter()
            .any(|e| e.detail.contains("names no configured client")),
        "{refusals:?}"
    );
    assert!(
        refusals.iter().any(|e| e.detail.contains("names 2")),
        "{refusals:?}"
    );
    let login = entries
        .iter()
        .find(|e| e.op == 1 && e.outcome == 0)
        .expect("the login is audited");
    assert_eq!(login.client, "authorizer");
    assert!(
        login.peer.starts_with("tcp 127.0.0.1:")
            && login.peer.ends_with(&format!("cert-sha256={fingerprint}")),
        "{}",
        login.peer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_do_not_lock_out_an_authenticated_client() {
    let mut v = Vault::init("");
    v.start();
    // More idle connections than the vault had slots in all, held open and silent.
    let idle: Vec<UnixStream> = (0..1100)
        .map(|_| UnixStream::connect(v.socket()).unwrap())
        .collect();
    let started = Instant::now();
    let facade = tokio::time::timeout(Duration::from_secs(3), v.client("facade"))
        .await
        .expect("the facade got in while idle sockets were held")
        .unwrap();
    facade
        .list(&merchant(SOLO), &customer("nobody"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(idle);
    drop(facade);
    v.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gives_up_on_a_vault_that_accepts_and_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let opts = ClientOptions {
        connect_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let creds = Credentials::Secret {
        client: "facade".into(),
        secret: ClientSecret::new(b"facade-secret-0123".to_vec()),
    };
    let connect = VaultClient::connect_with(VaultEndpoint::Unix(path), creds, opts);
    let result = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .expect("the client's own connect time-out ends the wait");
    assert!(
        matches!(result, Err(ClientError::Connect { .. })),
        "{result:?}"
    );
    held.abort();
}

#[test]
fn wrong_secrets_are_slowed_and_recorded_without_a_write_each() {
    let mut v = Vault::init("");
    v.start();
    let started = Instant::now();
    let guesses = 8;
    for i in 0..guesses {
        send_and_wait_for_close(
            &v,
            &hello_frame("facade", format!("guess-{i:012}").as_bytes()),
        );
    }
    // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 2 + 2 + 2 s of throttle: far from 3,000 guesses a second.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The right secret is not slowed down.
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(v.client("facade")).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    v.stop();
    let entries = audit_entries(&v);
    let singly = refused_logins(&entries);
    assert_eq!(singly.len(), 5, "{singly:?}");
    let me = format!("pid={}", std::process::id());
    assert!(singly.iter().all(|e| e.peer.contains(&me)), "{singly:?}");
    let summary: Vec<_> = entries
        .iter()
        .filter(|e| e.op == OP_CONNECTION && e.detail.starts_with("3 more"))
        .collect();
    assert_eq!(summary.len(), 1, "{entries:?}");
    assert!(summary[0].peer.starts_with("unix uid="));
    assert!(
        entries
            .iter()
            .any(|e| e.op == 1 && e.outcome == 0 && e.client == "facade" && e.peer.contains(&me)),
        "the successful login is audited with its peer"
    );
}

#[test]
fn a_hostile_client_id_is_stored_sanitised() {
    let mut v = Vault::init("");
    v.start();
    let hostile = format!("admin\n\u{1b}[2J\u{1b}[31mFORGED\r{}", "A".repeat(10_000));
    send_and_wait_for_close(&v, &hello_frame(&hostile, b"not-the-secret-0123"));
    v.stop();
    let entries = audit_entries(&v);
    let refused = refused_logins(&entries);
    assert_eq!(refused.len(), 1);
    let id = &refused[0].client;
    assert!(id.len() <= 67, "{}", id.len());
    assert!(id.chars().all(|c| c.is_ascii_graphic()), "{id:?}");
    assert!(id.starts_with("admin?"), "{id:?}");
}

#[test]
fn connections_that_never_authenticate_leave_a_trace() {
    let mut v = Vault::init("");
    v.start();
    // A frame header announcing 1 GiB, then nothing; then a connection that stays silent
    // until the vault's deadline closes it.
    send_and_wait_for_close(&v, &(1u32 << 30).to_be_bytes());
    send_and_wait_for_close(&v, &[]);
    v.stop();
    let entries = audit_entries(&v);
    let details: Vec<&str> = entries
        .iter()
        .filter(|e| e.op == OP_CONNECTION && e.peer.starts_with("unix uid="))
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        details.contains(&"first frame over the size limit"),
        "{details:?}"
    );
    assert!(
        details.contains(&"no hello within the deadline"),
        "{details:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_vault_on_the_same_data_directory_fails_and_the_first_keeps_serving() {
    let mut v = Vault::init("");
    v.start();
    let err = v.serve_refused();
    assert!(err.contains("another vault is running"), "{err}");
    let facade = v
        .client("facade")
        .await
        .expect("the first vault's socket is intact");
    facade
        .list(&merchant(SOLO), &customer("nobody"))
        .await
        .unwrap();
    drop(facade);
    v.stop();
    assert!(
        !v.socket().exists(),
        "the vault removes its own socket at shutdown"
    );
}

#[test]
fn a_crashed_vault_leaves_no_core_dump() {
    let mut v = Vault::init("");
    let cwd = v.dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    // As an operator's shell with core dumps on would start it.
    v.start_via_shell("ulimit -c unlimited", &cwd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", v.pid())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
    let status = std::process::Command::new("kill")
        .args(["-ABRT", &v.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    v.wait_exit();
    let cores: Vec<_> = files(&cwd)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("core"))
        })
        .collect();
    assert!(cores.is_empty(), "{cores:?}");
}

#[test]
fn the_data_directory_and_database_are_owner_only_and_wider_ones_refused() {
    let mut v = Vault::init("");
    v.start();
    v.stop();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let db = v.data().join("vault.redb");
    assert_eq!(mode(&v.data()), 0o700);
    assert_eq!(mode(&db), 0o600);
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    chmod(&v.data(), 0o755);
    let err = v.serve_refused();
    assert!(
        err.contains(&format!("{} is mode 0755", v.data().display())),
        "{err}"
    );
    chmod(&v.data(), 0o700);
    chmod(&db, 0o644);
    let err = v.serve_refused();
    assert!(
        err.contains(&format!("{} is mode 0644", db.display())),
        "{err}"
    );
}

#[test]
fn a_tls_key_others_can_read_is_refused() {
    let pki = Pki::new();
    let (mut v, _) = tls_vault(&pki);
    v.stop();
    let key = pki.dir.path().join("vault.test.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = v.serve_refused();
    assert!(
        err.contains(&format!("{} is mode 0644", key.display())),
        "{err}"
    );
}
