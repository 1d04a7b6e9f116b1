//! The key hierarchy against a real SoftHSM2 token (each test in its own child process and token).

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::path::Path;

use hsm::softhsm::{self, isolated_test};
use hsm::{Hsm, HsmError, KeyKind, KeyVersion, Pin, Usage, WrappedDek};

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
    // Signing leaves nothing behind: no copy of the key, only the one key listed.
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

/// What a key may do, as the module reports it.
fn usages(s: &Session, key: ObjectHandle) -> Vec<Attribute> {
    s.get_attributes(
        key,
        &[
            AttributeType::Encrypt,
            AttributeType::Decrypt,
            AttributeType::Sign,
            AttributeType::Verify,
            AttributeType::Wrap,
            AttributeType::Unwrap,
            AttributeType::Derive,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::Modifiable,
            AttributeType::Copyable,
        ],
    )
    .unwrap()
}

fn prohibited<T>(r: &Result<T, cryptoki::error::Error>) -> bool {
    matches!(
        r,
        Err(cryptoki::error::Error::Pkcs11(RvError::ActionProhibited, _))
    )
}

fn not_permitted<T>(r: &Result<T, cryptoki::error::Error>) -> bool {
    matches!(
        r,
        Err(cryptoki::error::Error::Pkcs11(
            RvError::KeyFunctionNotPermitted,
            _
        ))
    )
}

/// The changes an insider would make to a key to turn it to another use: refused outright.
fn assert_frozen(s: &Session, key: ObjectHandle) {
    for change in [
        Attribute::Sign(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(b"renamed".to_vec()),
    ] {
        let r = s.update_attributes(key, std::slice::from_ref(&change));
        assert!(prohibited(&r), "set_attributes {change:?}: {r:?}");
    }
    for template in [
        vec![Attribute::Decrypt(true)],
        vec![Attribute::Token(false)],
        vec![],
    ] {
        let r = s.copy_object(key, &template);
        assert!(prohibited(&r), "copy_object {template:?}: {r:?}");
    }
}

#[test]
fn kek_only_wraps_and_unwraps_and_cannot_be_changed_or_copied() {
    let Some(cfg) = isolated_test("kek_only_wraps_and_unwraps_and_cannot_be_changed_or_copied")
    else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    hsm.with_key("vault-kek-v1", |s, kek| {
        assert_eq!(
            usages(s, kek),
            vec![
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Derive(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Modifiable(false),
                Attribute::Copyable(false),
            ]
        );
        // The review's attacks: a MAC oracle and a data cipher under the KEK.
        let r = s.sign(&Mechanism::AesCMac, kek, b"chosen data");
        assert!(not_permitted(&r), "the KEK signed: {r:?}");
        let r = s.encrypt(&Mechanism::AesEcb, kek, &[0; 16]);
        assert!(not_permitted(&r), "the KEK encrypted: {r:?}");
        let r = s.decrypt(&Mechanism::AesEcb, kek, &[0; 16]);
        assert!(not_permitted(&r), "the KEK decrypted: {r:?}");
        assert_frozen(s, kek);
        // Before the templates were explicit, `set Encrypt(true)` was accepted and this worked.
        let r = s.encrypt(&Mechanism::AesEcb, kek, &[0; 16]);
        assert!(
            not_permitted(&r),
            "the KEK encrypted after the attack: {r:?}"
        );
    })
    .unwrap();
    assert!(matches!(
        hsm.try_export_kek(KeyVersion(1)),
        Err(HsmError::KeyUnextractable)
    ));
}

#[test]
fn fingerprint_key_only_signs_and_cannot_be_changed_or_copied() {
    let Some(cfg) = isolated_test("fingerprint_key_only_signs_and_cannot_be_changed_or_copied")
    else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    hsm.ensure_fingerprint_key().unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    let (wrapped, _) = hsm.new_dek(KeyVersion(1)).unwrap();
    hsm.with_key("vault-fingerprint-v1", |s, fp| {
        assert_eq!(
            usages(s, fp),
            vec![
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Sign(true),
                Attribute::Verify(false),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Modifiable(false),
                Attribute::Copyable(false),
            ]
        );
        assert!(s.encrypt(&Mechanism::AesEcb, fp, &[0; 16]).is_err());
        // Unwrapping a stored DEK with the fingerprint key instead of its KEK.
        assert!(
            s.unwrap_key(
                &Mechanism::AesKeyWrap,
                fp,
                &wrapped.bytes,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                ],
            )
            .is_err()
        );
        assert_frozen(s, fp);
    })
    .unwrap();
}

#[test]
fn retired_kek_is_destroyed_and_the_current_one_never() {
    let Some(cfg) = isolated_test("retired_kek_is_destroyed_and_the_current_one_never") else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    hsm.generate_kek(KeyVersion(2)).unwrap();
    let (old, dek) = hsm.new_dek(KeyVersion(1)).unwrap();
    let rewrapped = hsm.rewrap_dek(&old, KeyVersion(2)).unwrap();
    for (retired, current) in [(2, 2), (3, 2)] {
        assert!(matches!(
            hsm.destroy_retired_kek(KeyVersion(retired), KeyVersion(current)),
            Err(HsmError::KeyNotRetired { .. })
        ));
    }
    // A current version that is not on the token: nothing is destroyed.
    assert!(matches!(
        hsm.destroy_retired_kek(KeyVersion(1), KeyVersion(3)),
        Err(HsmError::KeyMissing(_))
    ));
    assert_eq!(
        hsm.kek_versions().unwrap(),
        vec![KeyVersion(1), KeyVersion(2)]
    );
    hsm.destroy_retired_kek(KeyVersion(1), KeyVersion(2))
        .unwrap();
    assert_eq!(hsm.kek_versions().unwrap(), vec![KeyVersion(2)]);
    assert!(matches!(hsm.unwrap_dek(&old), Err(HsmError::KeyMissing(_))));
    assert_eq!(hsm.unwrap_dek(&rewrapped).unwrap().expose(), dek.expose());
    assert!(matches!(
        hsm.destroy_retired_kek(KeyVersion(1), KeyVersion(2)),
        Err(HsmError::KeyMissing(_))
    ));
}

#[test]
fn fingerprint_key_rotates_by_version_and_retires() {
    let Some(cfg) = isolated_test("fingerprint_key_rotates_by_version_and_retires") else {
        return;
    };
    let pan = b"4111111111111111";
    let hsm = Hsm::open(&cfg).unwrap();
    assert!(hsm.ensure_fingerprint_key().unwrap());
    let v1 = hsm.fingerprint(pan).unwrap();
    assert_eq!(v1, hsm.fingerprint_with(KeyVersion(1), pan).unwrap());
    assert_eq!(hsm.rotate_fingerprint_key().unwrap(), KeyVersion(2));
    let v2 = hsm.fingerprint(pan).unwrap();
    assert_ne!(v1, v2, "the newest version signs");
    assert_eq!(v2, hsm.fingerprint_with(KeyVersion(2), pan).unwrap());
    assert_eq!(v1, hsm.fingerprint_with(KeyVersion(1), pan).unwrap());
    assert_eq!(
        hsm.fingerprint_versions().unwrap(),
        vec![KeyVersion(1), KeyVersion(2)]
    );
    let keys = hsm.keys().unwrap();
    assert_eq!(
        keys.iter().map(|k| k.label.as_str()).collect::<Vec<_>>(),
        ["vault-fingerprint-v1", "vault-fingerprint-v2"]
    );
    for k in &keys {
        assert_eq!(k.kind, KeyKind::Fingerprint);
        assert_eq!(k.usages, [Usage::Sign], "{k:?}");
        assert!(k.sensitive && !k.extractable && !k.modifiable && !k.copyable && k.token);
    }
    assert!(!hsm.ensure_fingerprint_key().unwrap());
    assert!(matches!(
        hsm.destroy_retired_fingerprint_key(KeyVersion(2), KeyVersion(2)),
        Err(HsmError::KeyNotRetired { .. })
    ));
    hsm.destroy_retired_fingerprint_key(KeyVersion(1), KeyVersion(2))
        .unwrap();
    assert!(matches!(
        hsm.fingerprint_with(KeyVersion(1), pan),
        Err(HsmError::KeyMissing(_))
    ));
    assert_eq!(hsm.fingerprint(pan).unwrap(), v2);
    // A retired v1 is not brought back.
    assert!(!hsm.ensure_fingerprint_key().unwrap());
    assert_eq!(hsm.fingerprint_versions().unwrap(), vec![KeyVersion(2)]);
    assert_eq!(hsm.rotate_fingerprint_key().unwrap(), KeyVersion(3));
    // Another handle on the token (a restarted vault) signs with the newest version too.
    assert_eq!(
        Hsm::open(&cfg).unwrap().fingerprint(pan).unwrap(),
        hsm.fingerprint_with(KeyVersion(3), pan).unwrap()
    );
}

/// `isolated_test` initialised this child's token in process; a second one here shows that the
/// SO PIN and the user PIN set through PKCS#11 work, and what is refused.
#[test]
fn dev_token_is_initialised_in_process_through_pkcs11() {
    let Some(cfg) = isolated_test("dev_token_is_initialised_in_process_through_pkcs11") else {
        return;
    };
    let conf = std::path::PathBuf::from(std::env::var_os("SOFTHSM2_CONF").unwrap());
    let (so, user) = (Pin::new("so-second".into()), Pin::new("user-second".into()));
    let again = softhsm::init_token_in(&cfg.module, &conf, &cfg.token_label, &so, &user);
    assert!(
        matches!(&again, Err(HsmError::SoftHsmSetup(m)) if m.contains("already exists")),
        "{again:?}"
    );
    let elsewhere =
        softhsm::init_token_in(&cfg.module, Path::new("/elsewhere.conf"), "x", &so, &user);
    assert!(
        matches!(&elsewhere, Err(HsmError::SoftHsmSetup(m)) if m.contains("SOFTHSM2_CONF")),
        "{elsewhere:?}"
    );
    softhsm::init_token_in(&cfg.module, &conf, "second", &so, &user).unwrap();
    let second = hsm::HsmConfig {
        token_label: "second".into(),
        user_pin: user.clone(),
        ..cfg.clone()
    };
    // The SO PIN is not the user PIN. (Checked before the first login: PKCS#11 login state is
    // per process and token, so once logged in any PIN "opens" it.)
    let as_so = hsm::HsmConfig {
        user_pin: so.clone(),
        ..second.clone()
    };
    assert!(matches!(Hsm::open(&as_so), Err(HsmError::WrongPin)));
    let hsm = Hsm::open(&second).unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    let (wrapped, dek) = hsm.new_dek(KeyVersion(1)).unwrap();
    assert_eq!(hsm.unwrap_dek(&wrapped).unwrap().expose(), dek.expose());
}

/// A buffer the log subscriber writes into, for reading back what was logged.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn key_events_are_logged_without_pins() {
    let Some(cfg) = isolated_test("key_events_are_logged_without_pins") else {
        return;
    };
    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let conf = std::path::PathBuf::from(std::env::var_os("SOFTHSM2_CONF").unwrap());
    let (so, user) = (
        Pin::new("so-pin-secret".into()),
        Pin::new("user-pin-secret".into()),
    );
    softhsm::init_token_in(&cfg.module, &conf, "logged", &so, &user).unwrap();
    let wrong = hsm::HsmConfig {
        token_label: "logged".into(),
        user_pin: Pin::new("wrong-pin-secret".into()),
        ..cfg.clone()
    };
    assert!(Hsm::open(&wrong).is_err());
    let hsm = Hsm::open(&hsm::HsmConfig {
        user_pin: user,
        ..wrong
    })
    .unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    hsm.generate_kek(KeyVersion(2)).unwrap();
    hsm.destroy_retired_kek(KeyVersion(1), KeyVersion(2))
        .unwrap();
    hsm.ensure_fingerprint_key().unwrap();
    hsm.rotate_fingerprint_key().unwrap();
    let _ = hsm.destroy_retired_kek(KeyVersion(2), KeyVersion(2));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for event in [
        "initialised the SoftHSM2 token",
        "HSM login failed",
        "generated HSM key key=vault-kek-v1",
        "destroyed retired HSM key key=vault-kek-v1",
        "rotated the fingerprint key",
        "refused to destroy a key that is not retired",
    ] {
        assert!(text.contains(event), "no {event:?} in:\n{text}");
    }
    for secret in ["so-pin-secret", "user-pin-secret", "wrong-pin-secret"] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
}

#[test]
fn keys_carry_their_creation_date_and_cryptoperiod() {
    let Some(cfg) = isolated_test("keys_carry_their_creation_date_and_cryptoperiod") else {
        return;
    };
    let hsm = Hsm::open(&cfg).unwrap();
    hsm.generate_kek(KeyVersion(1)).unwrap();
    hsm.ensure_fingerprint_key().unwrap();
    let today = hsm::today();
    for k in hsm.keys().unwrap() {
        assert_eq!(k.created, Some(today), "{k:?}");
        assert_eq!(k.age(today), Some(time::Duration::ZERO));
        assert_eq!(k.past_cryptoperiod(today), Some(false));
        // A year and a day later the KEK is past its cryptoperiod, the fingerprint key is not.
        let later = today + time::Duration::days(366);
        assert_eq!(
            k.past_cryptoperiod(later),
            Some(k.kind == KeyKind::Kek),
            "{k:?}"
        );
    }
    assert_eq!(KeyKind::Kek.cryptoperiod(), time::Duration::days(365));
    assert_eq!(
        KeyKind::Fingerprint.cryptoperiod(),
        time::Duration::days(730)
    );
}
