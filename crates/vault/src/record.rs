//! A saved card as stored, and where each kind of record lives in the store.
//!
//! Keys: `card/<scope>\0<customer>\0<token>` → [`CardRecord`]; `fp/<scope>\0<customer>\0<hmac>` →
//! token (finds the same card again); `deny/<scope>\0<customer>` → customer refused One Click;
//! `dek/<version>` → a DEK wrapped under a KEK; `meta/current-key` → sealing version. Scope and
//! customer numbers cannot contain `\0` (validated), so keys never collide. A record holds the PAN
//! and holder only sealed, and never a CVC.

use card::{Expiry, Pan};
use zeroize::Zeroizing;

use crate::fingerprint::Scheme;
use crate::model::{CardholderName, MaskedCard, Timestamp, Token};
use crate::wire::{DecodeError, Reader, Writer};

/// Prefix of every card record (`card/<scope>\0<customer>\0<token>`).
pub const CARD: &[u8] = b"card/";
/// Prefix of the marks of customers set to `Deny` (`deny/<scope>\0<customer>`).
pub const DENY: &[u8] = b"deny/";
/// Prefix of the wrapped DEKs (`dek/<version>`, version big-endian); never an unwrapped key.
pub const DEK: &[u8] = b"dek/";
/// The key of the DEK version that seals new records.
pub const CURRENT_KEY: &[u8] = b"meta/current-key";
const FINGERPRINT: &[u8] = b"fp/";

fn owner_key(prefix: &[u8], scope: &str, customer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + scope.len() + customer.len() + 50);
    k.extend_from_slice(prefix);
    k.extend_from_slice(scope.as_bytes());
    k.push(0);
    k.extend_from_slice(customer.as_bytes());
    k
}

/// Prefix of every card of one customer.
pub fn cards_of(scope: &str, customer: &str) -> Vec<u8> {
    let mut k = owner_key(CARD, scope, customer);
    k.push(0);
    k
}

/// The key of one card record.
pub fn card_key(scope: &str, customer: &str, token: &Token) -> Vec<u8> {
    let mut k = cards_of(scope, customer);
    k.extend_from_slice(token.as_bytes());
    k
}

/// (scope, customer, token) back from a card key.
pub fn parse_card_key(key: &[u8]) -> Option<(String, String, Token)> {
    let rest = key.strip_prefix(CARD)?;
    let (owner, token) = rest.split_at_checked(rest.len().checked_sub(17)?)?;
    let token: [u8; 16] = token.strip_prefix(&[0])?.try_into().ok()?;
    let mut parts = owner.splitn(2, |b| *b == 0);
    let scope = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let customer = std::str::from_utf8(parts.next()?).ok()?.to_string();
    Some((scope, customer, Token::from_bytes(token)))
}

/// The key of the fingerprint index entry that finds a customer's card again within a scope.
pub fn fingerprint_key(scope: &str, customer: &str, fingerprint: &[u8; 32]) -> Vec<u8> {
    let mut k = owner_key(FINGERPRINT, scope, customer);
    k.push(0);
    k.extend_from_slice(fingerprint);
    k
}

/// The key of the mark that a customer is set to `Deny`.
pub fn deny_key(scope: &str, customer: &str) -> Vec<u8> {
    owner_key(DENY, scope, customer)
}

/// The key of the wrapped DEK of `version`; big-endian, so versions sort in order.
pub fn dek_key(version: u32) -> Vec<u8> {
    let mut k = DEK.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// One saved card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRecord {
    /// The card's token, also the last part of its key and bound into the seal.
    pub token: Token,
    /// Which DEK sealed `sealed`.
    pub key_version: u32,
    /// nonce || AES-256-GCM(PAN and holder), bound to token, scope, customer and key version.
    pub sealed: Vec<u8>,
    /// HMAC-SHA-256 of scope and PAN under the HSM's fingerprint key, to remove the index entry
    /// with the card.
    pub fingerprint: [u8; 32],
    /// How `fingerprint` was made; the background pass moves older ones to the current scheme.
    pub fingerprint_scheme: Scheme,
    /// What may be shown of the card (BIN, last 4, brand, bank, expiry); never the full PAN.
    pub card: MaskedCard,
    /// When the card was first saved, by the vault's clock.
    pub created: Timestamp,
    /// When a payment with the card last succeeded; starts the retention clock.
    pub last_payment: Option<Timestamp>,
    /// Successful payments recorded, each once; from the merchant's threshold on, the card is
    /// offered for One Click.
    pub successes: u32,
}

impl CardRecord {
    /// When the retention clock started: the last successful payment, or saving if none.
    pub fn retention_start(&self) -> Timestamp {
        self.last_payment.unwrap_or(self.created)
    }

    /// The stored form (format 2); [`CardRecord::decode`] reads it back.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(160 + self.sealed.len());
        w.put_u8(2);
        w.put_slice(self.token.as_bytes());
        w.put_u32(self.key_version);
        w.put_bytes(&self.sealed);
        w.put_slice(&self.fingerprint);
        // Version 2 adds the fingerprint's scheme: 0 = PAN only (v1 key), 1 = scoped + key version.
        match self.fingerprint_scheme {
            Scheme::PanOnly => w.put_u8(0),
            Scheme::Scoped(v) => {
                w.put_u8(1);
                w.put_u32(v);
            }
        }
        w.put_str(self.card.bin.as_str());
        w.put_str(self.card.last4.as_str());
        w.put_str(self.card.brand.assist_name());
        w.put_str(&self.card.bank);
        w.put_u8(self.card.expiry.month());
        w.put_u16(self.card.expiry.year());
        w.put_u64(self.created.0);
        w.put_u64(self.last_payment.map_or(0, |t| t.0));
        w.put_u32(self.successes);
        w
    }

    /// Reads a stored record (format 1 or 2); an error names a field and an offset, never a value.
    pub fn decode(buf: &[u8]) -> Result<CardRecord, DecodeError> {
        let mut r = Reader::new(buf);
        // Version 1 records predate scoped fingerprints: theirs is of the PAN alone.
        let format = r.u8()?;
        if !(1..=2).contains(&format) {
            return Err(r.invalid("record version"));
        }
        let token = Token::from_bytes(r.array()?);
        let key_version = r.u32()?;
        let sealed = r.bytes()?.to_vec();
        let fingerprint = r.array()?;
        let fingerprint_scheme = if format == 1 {
            Scheme::PanOnly
        } else {
            match r.u8()? {
                0 => Scheme::PanOnly,
                1 => Scheme::Scoped(r.u32()?),
                _ => return Err(r.invalid("fingerprint scheme")),
            }
        };
        let bin = card::Bin::parse(r.str("bin")?).ok_or_else(|| r.invalid("bin"))?;
        let last4 = card::Last4::parse(r.str("last4")?).ok_or_else(|| r.invalid("last4"))?;
        let brand = r.str("brand")?;
        let brand = [card::Brand::Visa, card::Brand::Mastercard, card::Brand::Mir]
            .into_iter()
            .find(|b| b.assist_name() == brand)
            .unwrap_or(card::Brand::Unknown);
        let bank = r.str("bank")?.to_string();
        let month = r.u8()?;
        let year = r.u16()?;
        let expiry = Expiry::new(month, year).map_err(|_| r.invalid("expiry"))?;
        let created = Timestamp(r.u64()?);
        let last = r.u64()?;
        let successes = r.u32()?;
        r.finish()?;
        Ok(CardRecord {
            token,
            key_version,
            sealed,
            fingerprint,
            fingerprint_scheme,
            card: MaskedCard {
                bin,
                last4,
                brand,
                bank,
                expiry,
            },
            created,
            last_payment: (last != 0).then_some(Timestamp(last)),
            successes,
        })
    }
}

/// The sealed part of a card: PAN and holder, serialized into a zeroizing buffer.
pub fn secret_plaintext(pan: &Pan, holder: Option<&CardholderName>) -> Zeroizing<Vec<u8>> {
    let mut w = Zeroizing::new(Vec::with_capacity(96));
    w.put_bytes(pan.expose());
    w.put_bool(holder.is_some());
    if let Some(h) = holder {
        w.put_str(h.expose());
    }
    w
}

/// The PAN and holder back from an opened seal (the inverse of [`secret_plaintext`]).
pub fn parse_secret(plain: &[u8]) -> Result<(Pan, Option<CardholderName>), DecodeError> {
    let mut r = Reader::new(plain);
    let pan = Pan::from_ascii(r.bytes()?).map_err(|_| r.invalid("pan"))?;
    let holder = if r.present("holder")? {
        Some(CardholderName::parse(r.str("holder")?).map_err(|_| r.invalid("holder"))?)
    } else {
        None
    };
    r.finish()?;
    Ok((pan, holder))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(scheme: Scheme) -> CardRecord {
        let pan = Pan::parse("4111111111111111").unwrap();
        CardRecord {
            token: Token::random(),
            key_version: 3,
            sealed: vec![7; 40],
            fingerprint: [9; 32],
            fingerprint_scheme: scheme,
            card: MaskedCard::of(&pan, Expiry::parse("12.2030").unwrap(), String::new()),
            created: Timestamp(5),
            last_payment: None,
            successes: 0,
        }
    }

    #[test]
    fn records_keep_their_fingerprint_scheme_and_old_ones_read_as_pan_only() {
        for scheme in [Scheme::PanOnly, Scheme::Scoped(4)] {
            let rec = record(scheme);
            assert_eq!(CardRecord::decode(&rec.encode()).unwrap(), rec);
        }
        // A version 1 record (written before scoped fingerprints) has no scheme byte.
        let rec = record(Scheme::PanOnly);
        let mut v1 = rec.encode();
        v1[0] = 1;
        v1.remove(1 + 16 + 4 + 2 + rec.sealed.len() + 32);
        assert_eq!(CardRecord::decode(&v1).unwrap(), rec);
    }
}
