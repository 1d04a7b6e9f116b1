//! The audit chain detects an altered, a removed and a reordered entry (`vault audit verify`
//! exits non-zero), and holds no card data.

mod harness;

use harness::*;

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
