//! The audit chain detects an altered, a removed and a reordered entry (`vault audit verify`
//! exits non-zero), and holds no card data.

use testkit::vault::*;

async fn some_calls(v: &Vault) {
    let facade = v.client("facade").await.unwrap();
    for i in 0..5 {
        let saved = facade
            .tokenize(tokenize_req(
                SOLO,
                &format!("c{i}"),
                "4111111111111111",
                "12.2030",
            ))
            .await
            .unwrap();
        facade
            .list(&merchant(SOLO), &customer(&format!("c{i}")))
            .await
            .unwrap();
        assert!(saved.created);
    }
}

fn audit_key(seq: u64) -> Vec<u8> {
    [b"audit/".as_slice(), &seq.to_be_bytes()].concat()
}

fn verify_cli(v: &Vault) -> (bool, String) {
    let out = v.command(&["audit", "verify"]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn tampering_is_detected() {
    let mut v = Vault::init("");
    v.start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(some_calls(&v));
    v.stop();
    let (ok, text) = verify_cli(&v);
    // Two logins (the client opens two connections) and ten calls.
    assert!(ok && text.contains("intact: 12 entries"), "{text}");

    let store = v.open_store();
    let original: Vec<(Vec<u8>, Vec<u8>)> = store.scan_prefix(b"audit/").unwrap();
    for (_, value) in &original {
        assert!(!value.windows(16).any(|w| w == b"4111111111111111"));
    }
    let restore = |store: &store::Store| {
        let mut b = store::Batch::default();
        for (k, val) in &original {
            b.put(k.clone(), val.clone());
        }
        store.commit_blocking(b).unwrap();
        assert!(vault::audit::verify(store).is_ok());
    };

    // Altered: one byte of entry 4 (the last byte of its time) flipped.
    let mut altered = original[3].1.clone();
    let at = 15;
    altered[at] ^= 1;
    let mut b = store::Batch::default();
    b.put(audit_key(4), altered);
    store.commit_blocking(b).unwrap();
    let err = vault::audit::verify(&store).unwrap_err().to_string();
    assert!(
        err.contains("entry 4") && err.contains("hash mismatch"),
        "{err}"
    );
    restore(&store);

    // Removed: entry 6 deleted.
    let mut b = store::Batch::default();
    b.delete(audit_key(6));
    store.commit_blocking(b).unwrap();
    let err = vault::audit::verify(&store).unwrap_err().to_string();
    assert!(err.contains("entry 6") && err.contains("gap"), "{err}");
    restore(&store);

    // Reordered: entries 2 and 3 swapped.
    let mut b = store::Batch::default();
    b.put(audit_key(2), original[2].1.clone());
    b.put(audit_key(3), original[1].1.clone());
    store.commit_blocking(b).unwrap();
    assert!(
        vault::audit::verify(&store)
            .unwrap_err()
            .to_string()
            .contains("entry 2")
    );
    restore(&store);

    // Tail cut: the last entry deleted.
    let mut b = store::Batch::default();
    b.delete(audit_key(12));
    store.commit_blocking(b).unwrap();
    assert!(
        vault::audit::verify(&store)
            .unwrap_err()
            .to_string()
            .contains("tail cut")
    );

    drop(store);
    let (ok, text) = verify_cli(&v);
    assert!(!ok && text.contains("BROKEN"), "{text}");
}

/// The chain's entries without their hashes, in order.
fn entry_bytes(store: &store::Store) -> Vec<Vec<u8>> {
    store
        .scan_prefix(b"audit/")
        .unwrap()
        .into_iter()
        .map(|(_, v)| v[..v.len() - 32].to_vec())
        .collect()
}

/// What someone who can write the database does after changing entries: number them 1..n again,
/// recompute every hash and the stored head, and drop what lies beyond, so that the chain alone
/// is consistent.
fn rechain(store: &store::Store, entries: Vec<Vec<u8>>) {
    use sha2::{Digest, Sha256};
    let old = store.scan_prefix(b"audit/").unwrap().len() as u64;
    let mut b = store::Batch::default();
    let mut prev = [0u8; 32];
    for (i, mut entry) in entries.into_iter().enumerate() {
        let seq = i as u64 + 1;
        entry[..8].copy_from_slice(&seq.to_be_bytes());
        let h: [u8; 32] = Sha256::new()
            .chain_update(prev)
            .chain_update(&entry)
            .finalize()
            .into();
        entry.extend_from_slice(&h);
        b.put(audit_key(seq), entry);
        prev = h;
    }
    let kept = b.len() as u64;
    for seq in kept + 1..=old {
        b.delete(audit_key(seq));
    }
    let mut head = kept.to_be_bytes().to_vec();
    head.extend_from_slice(&prev);
    b.put(b"meta/audit-head".to_vec(), head);
    store.commit_blocking(b).unwrap();
    assert!(
        vault::audit::verify(store).is_ok(),
        "the attack produces a chain that verifies on its own"
    );
}

/// A vault that served some calls and stopped (its final checkpoint sealed the head).
fn stopped_vault() -> Vault {
    let mut v = Vault::init("");
    v.start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(some_calls(&v));
    v.stop();
    let (ok, text) = verify_cli(&v);
    assert!(ok && text.contains("intact: 12 entries"), "{text}");
    v
}

fn assert_broken(v: &Vault, why: &str) {
    let (ok, text) = verify_cli(v);
    assert!(
        !ok && text.contains("BROKEN") && text.contains(why),
        "{text}"
    );
    // And the vault refuses to serve over it.
    let out = v.command(&["serve"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(why), "{err}");
}

#[test]
fn an_altered_entry_with_recomputed_hashes_and_head_is_detected() {
    let v = stopped_vault();
    let store = v.open_store();
    let mut entries = entry_bytes(&store);
    // Entry 4 names another peer (the entry still decodes: only its text changes).
    let at = entries[3]
        .windows(4)
        .position(|w| w == b"uid=")
        .expect("entry 4 records its Unix peer");
    entries[3][at] = b'U';
    rechain(&store, entries);
    drop(store);
    // Found at the first checkpoint after it (the last, made at shutdown).
    assert_broken(&v, "entry 12 differs from its sealed checkpoint");
}

#[test]
fn an_erased_entry_with_renumbered_successors_is_detected() {
    let v = stopped_vault();
    let store = v.open_store();
    let mut entries = entry_bytes(&store);
    entries.remove(5);
    rechain(&store, entries);
    drop(store);
    assert_broken(&v, "the log ends at entry 11, before sealed checkpoint 12");
}

#[test]
fn a_tail_cut_with_a_recomputed_head_is_detected() {
    let v = stopped_vault();
    let store = v.open_store();
    let mut entries = entry_bytes(&store);
    entries.truncate(7);
    rechain(&store, entries);
    drop(store);
    assert_broken(&v, "before sealed checkpoint 12 (tail cut)");
}

#[test]
fn a_forged_checkpoint_is_detected() {
    let v = stopped_vault();
    let file = v.data().join("audit-head.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap().to_string();
    // Someone who can write the file but not use the HSM key claims a longer log.
    let forged = last.replacen("v1 12 ", "v1 13 ", 1);
    std::fs::write(&file, format!("{text}{forged}\n")).unwrap();
    assert_broken(&v, "MAC the HSM's audit key did not make");
}

#[test]
fn a_removed_checkpoint_file_is_detected() {
    let v = stopped_vault();
    std::fs::remove_file(v.data().join("audit-head.log")).unwrap();
    assert_broken(&v, "is missing while the audit log has entries");
}

#[test]
fn the_running_vault_verifies_its_log_and_the_checkpoint_file_is_private() {
    let mut v = Vault::init("[audit]\ncheckpoint_every = 3\n");
    v.start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(some_calls(&v));
    // Served by the running vault (its database is locked to this command).
    let (ok, text) = verify_cli(&v);
    // Ten calls, and the logins of the connections that made them and that verifies.
    assert!(ok && text.contains("intact: 13 entries"), "{text}");
    let file = v.data().join("audit-head.log");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    v.stop();
    let lines = std::fs::read_to_string(&file).unwrap();
    assert!(lines.starts_with("v1 0 "), "genesis first: {lines}");
    // The verification is itself a call, audited as entry 14, and sealed at shutdown.
    assert!(
        lines.lines().last().unwrap().starts_with("v1 14 "),
        "{lines}"
    );
    // The file is sequence numbers and hex digests, in which any four digits turn up by chance
    // (about one run in a hundred for "4111"): look for the card number and a mask of it.
    assert!(!lines.contains("4111111111111111") && !lines.contains("411111*"));
}
