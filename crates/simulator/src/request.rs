//! From a decoded ISO 8583 message to the issuer's view of a request: mandatory fields present,
//! every value the rules use parsed into a domain type.
//!
//! Owns the per-MTI mandatory-field lists of `spec/iso8583.md` and the parsing of DE 3, 7, 14,
//! 32, 48, 90 and 95. It must never decide an outcome (that is the issuer's) and never put a
//! field's value into a [`Reject`] (a value may be a PAN or a CVC).

use card::{Cvc, Expiry, Pan};
use iso8583::{CofIndicator, Message, Mti, tag};

use crate::auth_value::Cavv;

/// Why a well-framed message is not a valid request; answered with 30 (format error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("MTI {0} is not a request the network accepts")]
    NotARequest(Mti),
    #[error("mandatory DE {0} is missing")]
    Missing(u8),
    #[error("DE {field} is invalid: {why}")]
    Invalid { field: u8, why: &'static str },
    #[error("DE 48.{tag:02} is invalid: {why}")]
    InvalidSubelement { tag: u8, why: &'static str },
}

/// How the original of a reversal or completion is identified: DE 90's original MTI, STAN and
/// DE 7 with the acquirer ID (DE 32), the same facts an approval is booked under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxnKey {
    pub mti: u16,
    pub stan: u32,
    pub time: [u8; 10],
    pub acquirer: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    /// 0100: funds held, settled by a later 0220.
    Authorization,
    /// 0200 with DE 3 = 00....
    Purchase,
    /// 0200 with DE 3 = 20....
    Refund,
}

/// The 3-D Secure result carried in DE 48.20 to 48.23.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDs {
    pub eci: [u8; 2],
    pub cavv: Option<Cavv>,
    pub ds_trans_id: Option<Vec<u8>>,
}

/// A 0100 or 0200.
#[derive(Debug)]
pub struct Payment {
    pub kind: PaymentKind,
    pub key: TxnKey,
    pub terminal: [u8; 8],
    pub pan: Pan,
    pub expiry: Expiry,
    pub amount: u64,
    pub cof: Option<CofIndicator>,
    pub network_id: Option<Vec<u8>>,
    pub cvc: Option<Cvc>,
    pub three_ds: Option<ThreeDs>,
}

/// A 0220 (completion) or 0400/0420/0421 (reversal): a change to an earlier approval.
#[derive(Debug)]
pub struct Adjustment {
    pub original: TxnKey,
    /// Always present on a completion; possibly absent on a reversal.
    pub pan: Option<Pan>,
    pub amount: u64,
    /// DE 95's first twelve digits: the amount that remains after a partial reversal.
    pub replacement: Option<u64>,
}

#[derive(Debug)]
pub enum Request {
    Payment(Payment),
    Completion(Adjustment),
    Reversal(Adjustment),
    /// 0800 with its DE 70 code.
    Network(u16),
}

const PAYMENT_FIELDS: &[u8] = &[2, 3, 4, 7, 11, 12, 13, 14, 22, 25, 32, 37, 41, 42, 49];
const COMPLETION_FIELDS: &[u8] = &[2, 3, 4, 7, 11, 14, 32, 37, 41, 42, 49, 90];
/// DE 2 is tolerated missing on a reversal: an acquirer that can no longer resolve the card
/// (e.g. removed from the vault) still owes the network the reversal, which DE 90 identifies.
const REVERSAL_FIELDS: &[u8] = &[3, 4, 7, 11, 32, 37, 41, 42, 49, 90];
const NETWORK_FIELDS: &[u8] = &[7, 11, 70];

impl Request {
    pub fn parse(msg: &Message) -> Result<Request, Reject> {
        let mti = msg.mti();
        let mandatory = match mti {
            Mti::AUTH_REQUEST | Mti::FINANCIAL_REQUEST => PAYMENT_FIELDS,
            Mti::COMPLETION_ADVICE => COMPLETION_FIELDS,
            Mti::REVERSAL_REQUEST | Mti::REVERSAL_ADVICE | Mti::REVERSAL_ADVICE_REPEAT => {
                REVERSAL_FIELDS
            }
            Mti::NETWORK_REQUEST => NETWORK_FIELDS,
            other => return Err(Reject::NotARequest(other)),
        };
        if let Some(&n) = mandatory.iter().find(|&&n| !msg.has(n)) {
            return Err(Reject::Missing(n));
        }
        Ok(match mti {
            Mti::AUTH_REQUEST | Mti::FINANCIAL_REQUEST => Request::Payment(payment(msg)?),
            Mti::COMPLETION_ADVICE => Request::Completion(adjustment(msg)?),
            Mti::NETWORK_REQUEST => {
                Request::Network(msg.network_code().ok_or(Reject::Invalid {
                    field: 70,
                    why: "not a number",
                })?)
            }
            _ => Request::Reversal(adjustment(msg)?),
        })
    }
}

fn invalid(field: u8, why: &'static str) -> Reject {
    Reject::Invalid { field, why }
}

fn payment(msg: &Message) -> Result<Payment, Reject> {
    let mti = msg.mti();
    let processing = msg.processing_code().unwrap_or_default();
    let kind = match (mti, processing.get(..2)) {
        (Mti::AUTH_REQUEST, Some(b"00")) => PaymentKind::Authorization,
        (Mti::FINANCIAL_REQUEST, Some(b"00")) => PaymentKind::Purchase,
        (Mti::FINANCIAL_REQUEST, Some(b"20")) => PaymentKind::Refund,
        _ => return Err(invalid(3, "processing code not supported for this MTI")),
    };
    let expiry = msg
        .field(14)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| Expiry::parse(v).ok())
        .ok_or(invalid(14, "not a YYMM date"))?;
    let terminal = <[u8; 8]>::try_from(msg.terminal_id().unwrap_or_default())
        .map_err(|_| invalid(41, "not 8 characters"))?;
    let (cof, network_id, cvc, three_ds) = match msg.de48() {
        Some(de48) => {
            let cof = match de48.get(tag::COF_INDICATOR) {
                None => None,
                Some(code) => Some(CofIndicator::from_code(code).ok_or(
                    Reject::InvalidSubelement {
                        tag: tag::COF_INDICATOR,
                        why: "not I, C or M",
                    },
                )?),
            };
            let cvc = match de48.get(tag::CVC2) {
                None => None,
                Some(raw) => Some(Cvc::from_ascii(raw).map_err(|_| Reject::InvalidSubelement {
                    tag: tag::CVC2,
                    why: "not 3 or 4 digits",
                })?),
            };
            let three_ds = three_ds(
                de48.get(tag::ECI),
                de48.get(tag::CAVV),
                de48.get(tag::DS_TRANSACTION_ID),
            )?;
            (
                cof,
                de48.network_transaction_id().map(<[u8]>::to_vec),
                cvc,
                three_ds,
            )
        }
        None => (None, None, None, None),
    };
    Ok(Payment {
        kind,
        key: key_of(msg)?,
        terminal,
        pan: pan_of(msg)?,
        expiry,
        amount: amount_of(msg)?,
        cof,
        network_id,
        cvc,
        three_ds,
    })
}

fn three_ds(
    eci: Option<&[u8]>,
    cavv: Option<&[u8]>,
    ds_trans_id: Option<&[u8]>,
) -> Result<Option<ThreeDs>, Reject> {
    let Some(eci) = eci else {
        if cavv.is_some() || ds_trans_id.is_some() {
            return Err(Reject::InvalidSubelement {
                tag: tag::ECI,
                why: "missing with a CAVV",
            });
        }
        return Ok(None);
    };
    let eci = <[u8; 2]>::try_from(eci)
        .ok()
        .filter(|e| e.iter().all(u8::is_ascii_digit))
        .ok_or(Reject::InvalidSubelement {
            tag: tag::ECI,
            why: "not 2 digits",
        })?;
    let cavv = match cavv {
        None => None,
        Some(raw) => Some(Cavv::parse(raw).ok_or(Reject::InvalidSubelement {
            tag: tag::CAVV,
            why: "not 28 characters",
        })?),
    };
    Ok(Some(ThreeDs {
        eci,
        cavv,
        ds_trans_id: ds_trans_id.map(<[u8]>::to_vec),
    }))
}

fn adjustment(msg: &Message) -> Result<Adjustment, Reject> {
    Ok(Adjustment {
        original: original_of(msg)?,
        pan: if msg.has(2) { Some(pan_of(msg)?) } else { None },
        amount: amount_of(msg)?,
        replacement: match msg.field(95) {
            None => None,
            Some(raw) => Some(
                raw.get(..12)
                    .and_then(digits)
                    .ok_or(invalid(95, "does not start with a 12-digit amount"))?,
            ),
        },
    })
}

fn pan_of(msg: &Message) -> Result<Pan, Reject> {
    msg.pan().ok_or(invalid(2, "not 12 to 19 digits"))
}

fn amount_of(msg: &Message) -> Result<u64, Reject> {
    msg.amount().map(|a| a.0).ok_or(invalid(4, "not a number"))
}

fn acquirer_of(msg: &Message) -> Result<u64, Reject> {
    msg.field(32)
        .and_then(digits)
        .ok_or(invalid(32, "not a number"))
}

fn time_of(msg: &Message) -> Result<[u8; 10], Reject> {
    msg.transmission_time()
        .and_then(|t| <[u8; 10]>::try_from(t).ok())
        .ok_or(invalid(7, "not MMDDhhmmss"))
}

fn key_of(msg: &Message) -> Result<TxnKey, Reject> {
    Ok(TxnKey {
        mti: msg.mti().value(),
        stan: msg.stan().ok_or(invalid(11, "not 1 to 999999"))?.value(),
        time: time_of(msg)?,
        acquirer: acquirer_of(msg)?,
    })
}

/// DE 90: original MTI (4), STAN (6), DE 7 (10), acquirer ID (11), eleven zeros.
fn original_of(msg: &Message) -> Result<TxnKey, Reject> {
    let raw = msg.field(90).unwrap_or_default();
    let bad = || invalid(90, "not original MTI, STAN, DE 7 and acquirer ID");
    if raw.len() != 42 || !raw.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let number = |r: std::ops::Range<usize>| raw.get(r).and_then(digits).ok_or_else(bad);
    Ok(TxnKey {
        mti: u16::try_from(number(0..4)?).map_err(|_| bad())?,
        stan: u32::try_from(number(4..10)?).map_err(|_| bad())?,
        time: <[u8; 10]>::try_from(&raw[10..20]).map_err(|_| bad())?,
        acquirer: number(20..31)?,
    })
}

fn digits(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(raw.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}
