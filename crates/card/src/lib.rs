//! Card data types shared by the vault, the authorizer and the simulator, and the names of a saved
//! card (merchant, customer, token) that the vault and the link share.
//!
//! This crate owns the types that hold cardholder data: [`Pan`], [`Cvc`] and [`Expiry`]. It must
//! never let a full PAN or a CVC reach a `Debug`/`Display` string: a `Pan` prints as its mask, a
//! `Cvc` prints as stars, and both wipe their memory on drop. The clear digits are reachable only
//! through the explicitly named [`Pan::expose`] and [`Cvc::expose`], so every place that touches them
//! is one grep away.
#![forbid(unsafe_code)]

mod names;

use std::fmt;

pub use names::{CardUse, CustomerNumber, MerchantId, NameError, PaymentRef, Token};

use zeroize::Zeroizing;

/// Why a piece of card data was refused. Messages never contain the data itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// Fewer than 12 or more than 19 digits: no scheme issues such a card number.
    #[error("card number must be 12 to 19 digits")]
    PanLength,
    /// A space, dash or letter in the number; the caller strips presentation separators first.
    #[error("card number must contain only digits")]
    PanNotDigits,
    /// The check digit does not match: most often a mistyped number.
    #[error("card number fails the Luhn check")]
    PanLuhn,
    /// Not 3 or 4 digits. The value itself is never echoed back.
    #[error("CVC must be 3 or 4 digits")]
    Cvc,
    /// A month outside 01 to 12.
    #[error("expiry month must be 01 to 12")]
    ExpiryMonth,
    /// Neither `MM.YYYY`, `MM/YY` nor `YYMM`, or a year outside 2000 to 2099.
    #[error("expiry must be MM.YYYY, MM/YY or YYMM")]
    ExpiryFormat,
}

/// A primary account number: 12 to 19 ASCII digits, zeroized on drop, printed only masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(Zeroizing<Vec<u8>>);

impl Pan {
    /// Accepts digits only (no spaces or dashes: the caller strips presentation separators), 12 to
    /// 19 of them. The Luhn check is separate ([`Pan::luhn_valid`]) because the network must be able
    /// to carry, and decline, a number that fails it.
    pub fn parse(digits: &str) -> Result<Pan, CardError> {
        Pan::from_ascii(digits.as_bytes())
    }

    /// As [`Pan::parse`], from raw bytes (e.g. an ISO 8583 field).
    pub fn from_ascii(digits: &[u8]) -> Result<Pan, CardError> {
        if !(12..=19).contains(&digits.len()) {
            return Err(CardError::PanLength);
        }
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(CardError::PanNotDigits);
        }
        Ok(Pan(Zeroizing::new(digits.to_vec())))
    }

    /// As [`Pan::parse`], and also requires a valid Luhn check digit.
    pub fn parse_checked(digits: &str) -> Result<Pan, CardError> {
        let pan = Pan::parse(digits)?;
        if pan.luhn_valid() {
            Ok(pan)
        } else {
            Err(CardError::PanLuhn)
        }
    }

    /// The clear digits. Every caller is a place where a PAN leaves its wrapper: keep them few.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the last digit is the Luhn check digit of the others. Schemes only issue numbers
    /// that pass; a failure is almost always a typing error.
    pub fn luhn_valid(&self) -> bool {
        let sum: u32 = self
            .0
            .iter()
            .rev()
            .enumerate()
            .map(|(i, d)| {
                let d = u32::from(d - b'0');
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    /// The first six digits (the BIN, or IIN), which PCI DSS allows to be shown.
    pub fn bin(&self) -> Bin {
        let mut b = [0u8; 6];
        b.copy_from_slice(&self.0[..6]);
        Bin(b)
    }

    /// The last four digits, which PCI DSS allows to be shown.
    pub fn last4(&self) -> Last4 {
        let mut l = [0u8; 4];
        l.copy_from_slice(&self.0[self.0.len() - 4..]);
        Last4(l)
    }

    /// The scheme that issued the card, from its BIN.
    pub fn brand(&self) -> Brand {
        Brand::of_bin(self.bin())
    }

    /// First six and last four digits with stars between, e.g. `411111******1111`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }

    /// The number of digits (12 to 19). Safe to show: it reveals nothing of the digits.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a parsed `Pan`; present because clippy pairs it with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Masks any digit string the way a [`Pan`] is masked. Used where a PAN arrives as raw bytes that
/// have not been validated (a decoded network message): too short a value is hidden entirely.
pub fn mask_digits(digits: &[u8]) -> String {
    if digits.len() < 12 {
        return "*".repeat(digits.len());
    }
    let mut out = String::with_capacity(digits.len());
    for (i, &d) in digits.iter().enumerate() {
        out.push(if i < 6 || i >= digits.len() - 4 {
            char::from(d)
        } else {
            '*'
        });
    }
    out
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// The six-digit bank identification number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bin([u8; 6]);

impl Bin {
    /// The six digits as text; safe to log and show.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }

    /// The six digits as a number, for comparing against scheme BIN ranges.
    pub fn as_u32(&self) -> u32 {
        self.0.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
    }

    /// Exactly six ASCII digits, or `None`: reads a BIN back from a stored record or the wire.
    pub fn parse(s: &str) -> Option<Bin> {
        let b: [u8; 6] = s.as_bytes().try_into().ok()?;
        b.iter().all(u8::is_ascii_digit).then_some(Bin(b))
    }
}

impl fmt::Debug for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last four digits of a card number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Last4([u8; 4]);

impl Last4 {
    /// The four digits as text; safe to log and show.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("0000")
    }

    /// Exactly four ASCII digits, or `None`: reads them back from a stored record or the wire.
    pub fn parse(s: &str) -> Option<Last4> {
        let b: [u8; 4] = s.as_bytes().try_into().ok()?;
        b.iter().all(u8::is_ascii_digit).then_some(Last4(b))
    }
}

impl fmt::Debug for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Payment scheme, from the BIN ranges each scheme publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Brand {
    /// Visa: BINs starting with 4.
    Visa,
    /// Mastercard: BINs 51 to 55 and 2221 to 2720.
    Mastercard,
    /// Mir, the Russian national scheme: BINs 2200 to 2204.
    Mir,
    /// A BIN outside every range we know; the network may still accept the card.
    Unknown,
}

impl Brand {
    /// The scheme whose published range holds this BIN; [`Brand::Unknown`] when none does.
    pub fn of_bin(bin: Bin) -> Brand {
        let b = bin.as_u32();
        match b / 100_000 {
            4 => Brand::Visa,
            5 if (510_000..560_000).contains(&b) => Brand::Mastercard,
            2 if (220_000..220_500).contains(&b) => Brand::Mir,
            2 if (222_100..272_100).contains(&b) => Brand::Mastercard,
            _ => Brand::Unknown,
        }
    }

    /// The name Assist's web services return in the `brand` field.
    pub fn assist_name(self) -> &'static str {
        match self {
            Brand::Visa => "VISA",
            Brand::Mastercard => "MasterCard",
            Brand::Mir => "MIR",
            Brand::Unknown => "",
        }
    }
}

/// Card verification code (CVC2/CVV2). Never stored anywhere: it lives from the shopper's form to
/// one authorization message and is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(Zeroizing<Vec<u8>>);

impl Cvc {
    /// Accepts 3 or 4 digits, nothing else.
    pub fn parse(digits: &str) -> Result<Cvc, CardError> {
        Cvc::from_ascii(digits.as_bytes())
    }

    /// As [`Cvc::parse`], from raw bytes (e.g. an ISO 8583 field).
    pub fn from_ascii(digits: &[u8]) -> Result<Cvc, CardError> {
        if (3..=4).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
            Ok(Cvc(Zeroizing::new(digits.to_vec())))
        } else {
            Err(CardError::Cvc)
        }
    }

    /// The clear digits, for the one authorization message that carries them; never stored.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// Card expiry: the card is valid through the last day of `month` in `year`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expiry {
    year: u16,
    month: u8,
}

impl Expiry {
    /// A month 1 to 12 and a four-digit year 2000 to 2099.
    pub fn new(month: u8, year: u16) -> Result<Expiry, CardError> {
        if !(1..=12).contains(&month) {
            return Err(CardError::ExpiryMonth);
        }
        if !(2000..=2099).contains(&year) {
            return Err(CardError::ExpiryFormat);
        }
        Ok(Expiry { year, month })
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Parses `MM.YYYY` (Assist's listing), `MM/YY` (a card face) or `YYMM` (ISO 8583 DE 14).
    pub fn parse(s: &str) -> Result<Expiry, CardError> {
        let num = |t: &str| -> Result<u16, CardError> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CardError::ExpiryFormat);
            }
            t.parse().map_err(|_| CardError::ExpiryFormat)
        };
        let month = |m: u16| u8::try_from(m).map_err(|_| CardError::ExpiryMonth);
        if !s.is_ascii() {
            return Err(CardError::ExpiryFormat);
        }
        match (s.len(), s.find(['.', '/'])) {
            (7, Some(2)) => Expiry::new(month(num(&s[..2])?)?, num(&s[3..])?),
            (5, Some(2)) => Expiry::new(month(num(&s[..2])?)?, 2000 + num(&s[3..])?),
            (4, None) => Expiry::new(month(num(&s[2..])?)?, 2000 + num(&s[..2])?),
            _ => Err(CardError::ExpiryFormat),
        }
    }

    /// `YYMM`, as ISO 8583 DE 14 carries it.
    pub fn yymm(self) -> [u8; 4] {
        let y = self.year % 100;
        let digit = |n: u16| b'0' + u8::try_from(n % 10).unwrap_or(0);
        [
            digit(y / 10),
            digit(y),
            digit(u16::from(self.month) / 10),
            digit(u16::from(self.month)),
        ]
    }

    /// `MM.YYYY`, as Assist's token listing shows it.
    pub fn assist_format(self) -> String {
        format!("{:02}.{:04}", self.month, self.year)
    }

    /// Whether the card can no longer be used in the given month: a card expiring 12.2026 still
    /// works through December 2026.
    pub fn is_expired_at(self, year: u16, month: u8) -> bool {
        (self.year, self.month) < (year, month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_middle_digits() {
        let pan = Pan::parse("4111111111111111").unwrap();
        let shown = format!("{pan:?}");
        assert_eq!(shown, "Pan(411111******1111)");
        let cvc = Cvc::parse("123").unwrap();
        assert!(!format!("{cvc:?}").contains("123"));
    }

    #[test]
    fn luhn_and_brands() {
        for (digits, brand) in [
            ("4111111111111111", Brand::Visa),
            ("5555555555554444", Brand::Mastercard),
            ("2200000000000004", Brand::Mir),
            ("2221000000000009", Brand::Mastercard),
        ] {
            let pan = Pan::parse_checked(digits).unwrap();
            assert_eq!(pan.brand(), brand, "{digits}");
        }
        assert_eq!(
            Pan::parse_checked("4111111111111112"),
            Err(CardError::PanLuhn)
        );
        assert_eq!(Pan::parse("41111111111"), Err(CardError::PanLength));
        assert_eq!(Pan::parse("41111111111a1111"), Err(CardError::PanNotDigits));
    }

    #[test]
    fn bin_and_last4() {
        let pan = Pan::parse("5555555555554444").unwrap();
        assert_eq!(pan.bin().as_str(), "555555");
        assert_eq!(pan.last4().as_str(), "4444");
        assert_eq!(mask_digits(b"1234"), "****");
    }

    #[test]
    fn expiry_formats() {
        let e = Expiry::parse("12.2030").unwrap();
        assert_eq!(e, Expiry::parse("12/30").unwrap());
        assert_eq!(e, Expiry::parse("3012").unwrap());
        assert_eq!(&e.yymm(), b"3012");
        assert_eq!(e.assist_format(), "12.2030");
        assert!(!e.is_expired_at(2030, 12));
        assert!(e.is_expired_at(2031, 1));
        assert_eq!(Expiry::parse("13.2030"), Err(CardError::ExpiryMonth));
        assert_eq!(Expiry::parse("1.2030"), Err(CardError::ExpiryFormat));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Pan::parse(&s);
            let _ = Expiry::parse(&s);
            let _ = Cvc::parse(&s);
        }
    }
}
