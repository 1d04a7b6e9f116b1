//! Integrity of what a merchant sends (checkvalue or RSA signature of an order) and of what we
//! answer (checkvalue or our RSA signature over an order's state).
//!
//! Owns the formulas of the spec's "Integrity" sections and their vectors. Must never compare a
//! checkvalue in variable time, never log or return a salt or key, and never decide which rule a
//! merchant requires: that is the merchant's config, passed in as [`OrderIntegrity`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use subtle::ConstantTimeEq as _;

use crate::codes::Fault;

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// `UPPER(MD5hex(UPPER(MD5hex(SALT) + MD5hex(X))))`, MD5hex in lowercase: the concatenation of
/// the two lowercase digests is upper-cased before the outer MD5 (the spec's vectors only come out
/// this way).
pub fn checkvalue(salt: &str, x: &str) -> String {
    let inner =
        format!("{}{}", md5_hex(salt.as_bytes()), md5_hex(x.as_bytes())).to_ascii_uppercase();
    md5_hex(inner.as_bytes()).to_ascii_uppercase()
}

/// Whether a checkvalue the merchant sent matches, in constant time and in any letter case.
pub fn checkvalue_matches(salt: &str, x: &str, sent: &str) -> bool {
    let expected = checkvalue(salt, x);
    let sent = sent.to_ascii_uppercase();
    expected.as_bytes().ct_eq(sent.as_bytes()).into()
}

/// The order's X: `Merchant_ID;OrderNumber;OrderAmount;OrderCurrency`, then `;OrderMaxPoints`,
/// `;CustomerNumber`, `;Disable3DS`, `;Prepayment`; every part after the first three only when
/// sent non-empty and not `0`, every part exactly as sent.
pub fn order_x(
    merchant_id: &str,
    order_number: &str,
    amount: &str,
    optional: &[Option<&str>],
) -> String {
    let mut x = format!("{merchant_id};{order_number};{amount}");
    for part in optional
        .iter()
        .flatten()
        .filter(|p| !p.is_empty() && **p != "0")
    {
        x.push(';');
        x.push_str(part);
    }
    x
}

/// The answer's X: `merchant_id + ordernumber + amount + currency + orderstate`, no separators.
pub fn answer_x(
    merchant_id: &str,
    order_number: &str,
    amount: &str,
    currency: &str,
    state: &str,
) -> String {
    [merchant_id, order_number, amount, currency, state].concat()
}

/// A merchant's public key for order signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantKey(RsaPublicKey);

/// Why a key could not be loaded (the key itself is not repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM RSA public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
    #[error("not an RSA public key in PEM")]
    Public,
    /// Not a PKCS#8 DER RSA private key, or shorter than 2048 bits.
    #[error("not a PKCS#8 RSA private key of 2048 bits or more")]
    Private,
}

impl MerchantKey {
    /// Reads a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<MerchantKey, KeyError> {
        RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map(MerchantKey)
            .map_err(|_| KeyError::Public)
    }

    /// Whether `signature` (raw bytes) is this key's PKCS#1 v1.5 MD5 signature over X, or over the
    /// lowercase hex MD5 of X: merchant plugins do both.
    fn verifies(&self, x: &str, signature: &[u8]) -> bool {
        let over_x = Md5::digest(x.as_bytes());
        let over_hex = Md5::digest(md5_hex(x.as_bytes()).as_bytes());
        [over_x, over_hex].iter().any(|digest| {
            self.0
                .verify(Pkcs1v15Sign::new::<Md5>(), digest, signature)
                .is_ok()
        })
    }
}

/// What a merchant's config requires of an order (checkvalue with its salt, or a signature with up
/// to two keys during a rotation).
#[derive(Debug, Clone)]
pub enum OrderIntegrity {
    /// `checkvalue` with this salt.
    Checkvalue {
        /// The merchant's secret word.
        salt: String,
    },
    /// `signature` by one of these keys.
    Signature {
        /// Every key valid now.
        keys: Vec<MerchantKey>,
    },
}

impl OrderIntegrity {
    /// Checks what the order carries against what the merchant requires; a missing or wrong one is
    /// 5/158.
    pub fn verify(
        &self,
        x: &str,
        checkvalue: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(), Fault> {
        let ok = match self {
            OrderIntegrity::Checkvalue { salt } => {
                checkvalue.is_some_and(|sent| checkvalue_matches(salt, x, sent))
            }
            OrderIntegrity::Signature { keys } => signature
                .and_then(|s| BASE64.decode(s.replace(['\r', '\n'], "")).ok())
                .is_some_and(|raw| keys.iter().any(|k| k.verifies(x, &raw))),
        };
        if ok { Ok(()) } else { Err(Fault::integrity()) }
    }
}

/// The gateway's key for signing answers (RSA PKCS#1 v1.5 SHA-256, base64). Signing goes through
/// `ring`, whose RSA private-key operations are constant-time (the `rsa` crate's are not, see
/// RUSTSEC-2023-0071), and a merchant can ask for as many signatures as it likes.
#[derive(Debug)]
pub struct AnswerKey(RsaKeyPair);

impl AnswerKey {
    /// Reads a PKCS#8 DER RSA private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<AnswerKey, KeyError> {
        RsaKeyPair::from_pkcs8(der)
            .map(AnswerKey)
            .map_err(|_| KeyError::Private)
    }

    /// Signs X; base64.
    pub fn sign(&self, x: &str) -> Result<String, Fault> {
        let mut sig = vec![0; self.0.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        self.0
            .sign(&RSA_PKCS1_SHA256, &rng, x.as_bytes(), &mut sig)
            .map_err(|_| Fault::internal())?;
        Ok(BASE64.encode(sig))
    }
}

/// How a merchant wants our answers made verifiable.
#[derive(Debug)]
pub enum AnswerIntegrity<'a> {
    /// `checkvalue` with the merchant's salt; `signature` empty.
    Checkvalue(&'a str),
    /// `signature` by our key; `checkvalue` empty.
    Signature(&'a AnswerKey),
}

impl AnswerIntegrity<'_> {
    /// `(signature, checkvalue)` over the answer's X, one of them empty.
    pub fn seal(&self, x: &str) -> Result<(String, String), Fault> {
        match self {
            AnswerIntegrity::Checkvalue(salt) => Ok((String::new(), checkvalue(salt, x))),
            AnswerIntegrity::Signature(key) => Ok((key.sign(x)?, String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test keys made once with `openssl genrsa 1024` (the merchant's, as Assist requires) and
    // `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` (ours).
    const MERCHANT_PUB: &str = include_str!("../tests/keys/merchant_pub.pem");
    const MERCHANT_SIG_X: &str = include_str!("../tests/keys/sig_over_x.b64");
    const MERCHANT_SIG_HEX: &str = include_str!("../tests/keys/sig_over_hex.b64");
    const OTHER_PUB: &str = include_str!("../tests/keys/other_pub.pem");
    const ANSWER_KEY: &[u8] = include_bytes!("../tests/keys/answer_key.pk8");
    const ANSWER_PUB: &str = include_str!("../tests/keys/answer_pub.pem");

    #[test]
    fn spec_vectors() {
        assert_eq!(
            checkvalue("secret", "111111;100;100.0"),
            "DBE8D1AB4F19A27D161999DC53293881"
        );
        assert_eq!(
            checkvalue("secret", "111111;100;4.00;RUB"),
            "E827577C0AF1FC84FC82F127D1616026"
        );
        assert_eq!(
            checkvalue(
                "secret",
                &answer_x("111111", "ok", "4.00", "RUB", "Canceled")
            ),
            "74DEB154081757F1E8097DDFAC35FC5C"
        );
        assert!(checkvalue_matches(
            "secret",
            "111111;100;100.0",
            "dbe8d1ab4f19a27d161999dc53293881"
        ));
        assert!(!checkvalue_matches("secret", "111111;100;100.0", "DBE8"));
    }

    #[test]
    fn order_x_appends_only_non_empty_non_zero_parts() {
        assert_eq!(
            order_x("111111", "100", "100.0", &[None, Some("")]),
            "111111;100;100.0"
        );
        assert_eq!(
            order_x("111111", "100", "4.00", &[Some("RUB")]),
            "111111;100;4.00;RUB"
        );
        assert_eq!(
            order_x(
                "1",
                "2",
                "3",
                &[Some("RUB"), Some("0"), Some("c1"), Some("1"), None]
            ),
            "1;2;3;RUB;c1;1"
        );
    }

    #[test]
    fn merchant_signatures_over_x_and_over_its_md5_hex() {
        let x = "452739;A1;100.00;RUB";
        let key = MerchantKey::from_pem(MERCHANT_PUB).unwrap();
        let other = MerchantKey::from_pem(OTHER_PUB).unwrap();
        let rule = OrderIntegrity::Signature {
            keys: vec![other.clone(), key],
        };
        assert!(rule.verify(x, None, Some(MERCHANT_SIG_X.trim())).is_ok());
        assert!(rule.verify(x, None, Some(MERCHANT_SIG_HEX.trim())).is_ok());
        assert_eq!(
            rule.verify("452739;A1;100.01;RUB", None, Some(MERCHANT_SIG_X.trim())),
            Err(Fault::integrity())
        );
        assert!(rule.verify(x, None, None).is_err());
        let only_other = OrderIntegrity::Signature { keys: vec![other] };
        assert!(
            only_other
                .verify(x, None, Some(MERCHANT_SIG_X.trim()))
                .is_err()
        );
        let salted = OrderIntegrity::Checkvalue {
            salt: "secret".into(),
        };
        assert!(
            salted
                .verify(
                    "111111;100;100.0",
                    Some("DBE8D1AB4F19A27D161999DC53293881"),
                    None
                )
                .is_ok()
        );
        assert!(
            salted
                .verify("111111;100;100.0", None, Some(MERCHANT_SIG_X))
                .is_err()
        );
    }

    #[test]
    fn answers_are_signed_with_sha256_and_verify_with_the_public_key() {
        let key = AnswerKey::from_pkcs8_der(ANSWER_KEY).unwrap();
        let x = answer_x("111111", "ok", "4.00", "RUB", "Canceled");
        let (sig, cv) = AnswerIntegrity::Signature(&key).seal(&x).unwrap();
        assert!(cv.is_empty());
        let public = RsaPublicKey::from_public_key_pem(ANSWER_PUB).unwrap();
        let digest = sha2::Sha256::digest(x.as_bytes());
        let raw = BASE64.decode(sig).unwrap();
        assert!(
            public
                .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &raw)
                .is_ok()
        );
        let (sig, cv) = AnswerIntegrity::Checkvalue("secret").seal(&x).unwrap();
        assert_eq!(
            (sig.as_str(), cv.as_str()),
            ("", "74DEB154081757F1E8097DDFAC35FC5C")
        );
        assert_eq!(
            AnswerKey::from_pkcs8_der(b"nope").unwrap_err(),
            KeyError::Private
        );
    }
}
