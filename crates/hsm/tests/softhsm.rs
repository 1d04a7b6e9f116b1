//! The key hierarchy against a real SoftHSM2 token (each test in its own child process and token).

use hsm::softhsm::isolated_test;
use hsm::{Hsm, HsmError, KeyKind, KeyVersion, Pin, WrappedDek};

#[test]
fn kek_is_sensitive_and_cannot_be_wrapped_out() {
    let Some(cfg) = isolated_test("kek_is_sensitive_and_cannot_be_wrapped_out") else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    assert!(hsm.ensure_fingerprint_key().unwrap());
    assert!(
        !hsm.ensure_fingerprint_key().unwrap(),
        "second call finds the existing key"
    );
    assert!(matches!(
        hsm.generate_kek(KeyVersion(1)),
        Err(HsmError::KeyExists(_))
    ));
    let keys = hsm.keys().unwrap();
    assert_eq!(keys.len(), 2);
    for k in &keys {
        assert!(k.sensitive && !k.extractable && k.token, "{k:?}");
    }
    assert_eq!(keys.iter().filter(|k| k.kind == KeyKind::Kek).count(), 1);
    assert!(matches!(
        hsm.try_export_kek(KeyVersion(1)),
        Err(HsmError::KeyUnextractable)
    ));
}

#[test]
fn dek_wraps_unwraps_and_rewraps() {
    let Some(cfg) = isolated_test("dek_wraps_unwraps_and_rewraps") else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    hsm.generate_kek(KeyVersion(2)).unwrap();
    assert_eq!(
        hsm.kek_versions().unwrap(),
        vec![KeyVersion(1), KeyVersion(2)]
    );
    let (wrapped, dek) = hsm.new_dek(KeyVersion(1)).unwrap();
    assert_ne!(&wrapped.bytes[..], &dek.expose()[..]);
    assert_eq!(hsm.unwrap_dek(&wrapped).unwrap().expose(), dek.expose());
    let rewrapped = hsm.rewrap_dek(&wrapped, KeyVersion(2)).unwrap();
    assert_eq!(rewrapped.kek, KeyVersion(2));
    assert_eq!(hsm.unwrap_dek(&rewrapped).unwrap().expose(), dek.expose());
    // Wrapped under v1, presented as v2: refused, never a wrong key.
    let lie = WrappedDek {
        kek: KeyVersion(2),
        bytes: wrapped.bytes.clone(),
    };
    assert!(hsm.unwrap_dek(&lie).is_err());
    assert!(matches!(
        hsm.unwrap_dek(&WrappedDek {
            kek: KeyVersion(9),
            ..wrapped
        }),
        Err(HsmError::KeyMissing(_))
    ));
}

#[test]
fn fingerprint_is_keyed_and_stable() {
    let Some(cfg) = isolated_test("fingerprint_is_keyed_and_stable") else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    assert!(matches!(
        hsm.fingerprint(b"4111111111111111"),
        Err(HsmError::KeyMissing(_))
    ));
    hsm.ensure_fingerprint_key().unwrap();
    let a = hsm.fingerprint(b"4111111111111111").unwrap();
    let before = hsm::calls();
    assert_eq!(a, hsm.fingerprint(b"4111111111111111").unwrap());
    assert_eq!(hsm::calls() - before, 1, "one HSM call per fingerprint");
    // The in-memory copy is as locked down as the token key, and not listed as a vault key.
    assert_eq!(hsm.keys().unwrap().len(), 1);
    assert_eq!(a, hsm.fingerprint(b"4111111111111111").unwrap());
    assert_ne!(a, hsm.fingerprint(b"4111111111111112").unwrap());
    // Not the unkeyed SHA-256 of the number.
    assert_ne!(&a[..4], &[0x9b, 0xbe, 0xf1, 0x9c]);
}

#[test]
fn clear_errors_for_wrong_pin_missing_token_and_module() {
    let Some(cfg) = isolated_test("clear_errors_for_wrong_pin_missing_token_and_module") else {
        return;
    };
    let wrong = hsm::HsmConfig {
        user_pin: Pin::new("nope".into()),
        ..cfg.clone()
    };
    assert!(matches!(Hsm::open(&wrong), Err(HsmError::WrongPin)));
    let missing = hsm::HsmConfig {
        token_label: "absent".into(),
        ..cfg.clone()
    };
    assert!(matches!(
        Hsm::open(&missing),
        Err(HsmError::TokenMissing(_))
    ));
    let no_module = hsm::HsmConfig {
        module: "/nonexistent/libpkcs11.so".into(),
        ..cfg.clone()
    };
    let err = Hsm::open(&no_module).unwrap_err();
    assert!(matches!(err, HsmError::ModuleMissing { .. }));
    // Repeated wrong PINs lock the user PIN (SoftHSM counts them); the error says so.
    let mut last = None;
    for _ in 0..20 {
        match Hsm::open(&wrong) {
            Err(HsmError::TokenLocked) => {
                last = Some(());
                break;
            }
            Err(HsmError::WrongPin) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    if last.is_some() {
        assert!(matches!(Hsm::open(&cfg), Err(HsmError::TokenLocked)));
    }
    assert!(!format!("{cfg:?}").contains(cfg.user_pin.expose()));
}
