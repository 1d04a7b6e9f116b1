//! How the wire-typed parts of a [`TransactionRef`](crate::TransactionRef) are written when it is
//! persisted (store-and-forward records today, the order engine's transactions next).
//!
//! Owns one promise: the shape is the one records had before these fields were typed (MTI and
//! STAN as numbers, DE 7 and the RRN as strings, DE 3 as its six code bytes, the card as
//! `<merchant> <customer> <token>`), so a queue written by an earlier build still drains and an
//! earlier build can still read what this one writes. It must never loosen a type to read a
//! record: a value its type refuses is a corrupt record.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A field kept as the plain value `$repr`, converted with `$to` and checked back with `$from`.
macro_rules! shape {
    ($name:ident, $ty:ty, $repr:ty, $to:expr, $from:expr, $what:literal) => {
        pub(crate) mod $name {
            use super::*;

            pub fn serialize<S: Serializer>(value: &$ty, s: S) -> Result<S::Ok, S::Error> {
                let to: fn(&$ty) -> $repr = $to;
                to(value).serialize(s)
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let from: fn($repr) -> Option<$ty> = $from;
                from(<$repr>::deserialize(d)?).ok_or_else(|| D::Error::custom($what))
            }
        }
    };
}

shape!(
    mti,
    iso8583::Mti,
    u16,
    |m| m.value(),
    iso8583::Mti::new,
    "not an MTI"
);
shape!(
    stan,
    iso8583::Stan,
    u32,
    |s| s.value(),
    iso8583::Stan::new,
    "not a STAN"
);
shape!(
    transmission,
    iso8583::TransmissionTime,
    String,
    |t| t.as_str().to_owned(),
    |s| iso8583::TransmissionTime::from_ascii(s.as_bytes()),
    "not a DE 7 transmission time"
);
shape!(
    rrn,
    iso8583::Rrn,
    String,
    |r| r.as_str().to_owned(),
    |s| iso8583::Rrn::from_ascii(s.as_bytes()),
    "not an RRN"
);
shape!(
    amount,
    iso8583::Amount,
    u64,
    |a| a.0,
    |n| Some(iso8583::Amount(n)),
    "not an amount"
);
shape!(
    processing_code,
    iso8583::ProcessingCode,
    [u8; 6],
    |p| *p.code(),
    |c| iso8583::ProcessingCode::from_code(&c),
    "not a processing code of the spec"
);
shape!(
    merchant_id,
    card::MerchantId,
    String,
    |m| m.as_str().to_owned(),
    |s| card::MerchantId::parse(&s).ok(),
    "not a merchant id"
);
shape!(
    card_ref,
    crate::CardRef,
    String,
    |c| c.to_string(),
    |s| s.parse().ok(),
    "not a card reference"
);
