//! The secret shared by the ACS and the issuer side: card fingerprints and the 3-D Secure
//! authentication value (CAVV).
//!
//! Owns the key and the two MACs made with it. A CAVV is HMAC-SHA-256 over the card's
//! fingerprint, the directory-server transaction ID and the ECI, cut to 20 bytes and base64'd
//! (28 characters, DE 48.21), so the issuer can check that the ACS issued it for this card and
//! this authentication. It must never expose the key (no `Debug` of it) and never compare MACs in
//! variable time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Length of a CAVV on the wire (DE 48.21).
pub const CAVV_LEN: usize = 28;
const CAVV_MAC_LEN: usize = 20;

/// A keyed hash of a PAN: how the simulator recognises a card without keeping its number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardFingerprint([u8; 32]);

impl fmt::Debug for CardFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardFingerprint({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// A 3-D Secure authentication value as carried in DE 48.21.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cavv([u8; CAVV_LEN]);

impl Cavv {
    /// Exactly 28 bytes as they came in DE 48.21, or `None`; whether the ACS issued it is checked
    /// separately.
    pub fn parse(raw: &[u8]) -> Option<Cavv> {
        <[u8; CAVV_LEN]>::try_from(raw).ok().map(Cavv)
    }

    /// The value as text, for DE 48.21 and the ACS's answer.
    pub fn as_str(&self) -> &str {
        // Built from base64 or checked to be 28 bytes; non-UTF-8 input shows as empty.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Cavv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cavv(..)")
    }
}

/// The simulator's MAC key, random per run unless configured.
#[derive(Clone)]
pub struct IssuerKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuerKey(..)")
    }
}

impl IssuerKey {
    /// A fresh key for this run: CAVVs from an earlier run no longer verify.
    pub fn random() -> IssuerKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(key.as_mut());
        IssuerKey(key)
    }

    /// A configured key, so that CAVVs and fingerprints stay valid across restarts.
    pub fn from_bytes(bytes: [u8; 32]) -> IssuerKey {
        IssuerKey(Zeroizing::new(bytes))
    }

    fn mac(&self, label: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(self.0.as_ref()).expect("HMAC accepts any key length");
        mac.update(label);
        mac
    }

    /// The card's fingerprint under this key: the PAN itself is never kept.
    pub fn fingerprint(&self, pan: &[u8]) -> CardFingerprint {
        let mut mac = self.mac(b"card-fingerprint\0");
        mac.update(pan);
        CardFingerprint(mac.finalize().into_bytes().into())
    }

    fn cavv_mac(&self, card: CardFingerprint, ds_trans_id: &[u8], eci: &[u8]) -> HmacSha256 {
        let mut mac = self.mac(b"cavv\0");
        mac.update(&card.0);
        // Length-prefixed so that (ds id, eci) pairs cannot be shifted into each other.
        mac.update(&(ds_trans_id.len() as u64).to_be_bytes());
        mac.update(ds_trans_id);
        mac.update(eci);
        mac
    }

    /// The CAVV the ACS hands out for one authentication.
    pub fn cavv(&self, card: CardFingerprint, ds_trans_id: &[u8], eci: &[u8]) -> Cavv {
        let tag = self
            .cavv_mac(card, ds_trans_id, eci)
            .finalize()
            .into_bytes();
        let mut out = [0u8; CAVV_LEN];
        let written = STANDARD
            .encode_slice(&tag[..CAVV_MAC_LEN], &mut out)
            .expect("20 bytes encode to exactly 28 base64 characters");
        debug_assert_eq!(written, CAVV_LEN);
        Cavv(out)
    }

    /// Whether `cavv` is the one the ACS issued for this card, DS transaction and ECI.
    pub fn verify(
        &self,
        card: CardFingerprint,
        ds_trans_id: &[u8],
        eci: &[u8],
        cavv: Cavv,
    ) -> bool {
        let mut tag = [0u8; 32];
        match STANDARD.decode_slice(cavv.0, &mut tag) {
            Ok(CAVV_MAC_LEN) => self
                .cavv_mac(card, ds_trans_id, eci)
                .verify_truncated_left(&tag[..CAVV_MAC_LEN])
                .is_ok(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cavv_verifies_only_for_its_card_transaction_and_eci_under_its_key() {
        let key = IssuerKey::random();
        let card = key.fingerprint(b"4111111111111111");
        let other = key.fingerprint(b"5555555555554444");
        let cavv = key.cavv(card, b"ds-1", b"05");
        assert_eq!(cavv.as_str().len(), CAVV_LEN);
        assert!(key.verify(card, b"ds-1", b"05", cavv));
        assert!(!key.verify(other, b"ds-1", b"05", cavv));
        assert!(!key.verify(card, b"ds-2", b"05", cavv));
        assert!(!key.verify(card, b"ds-1", b"06", cavv));
        assert!(!IssuerKey::random().verify(card, b"ds-1", b"05", cavv));
        let forged = Cavv::parse(b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert!(!key.verify(card, b"ds-1", b"05", forged));
        assert!(!key.verify(card, b"ds-1", b"05", Cavv::parse(&[b'!'; 28]).unwrap()));
    }
}
