//! Typed values: what each parameter's text must look like, and the type it becomes.
//!
//! Owns the format rules (digits, lengths below the table's maximum, separators, dates, the
//! `PaymentToken` JSON). Each type is built only through [`ParamValue::parse`] or an explicit
//! constructor, so a value in a request is a valid value. Must never print a [`Password`], and
//! never name a refused value in an error.

use std::fmt;
use std::net::IpAddr;

use time::{Date, Month};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::codes::{Fault, FirstCode};
use crate::params::{Param, Params};

/// Why a text is not a value of a type, without the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    /// Malformed (4) or well formed but wrong (5).
    pub first: FirstCode,
    /// What the rule is.
    pub why: &'static str,
}

impl Invalid {
    /// Malformed (firstcode 4).
    pub const fn format(why: &'static str) -> Invalid {
        Invalid {
            first: FirstCode::BadFormat,
            why,
        }
    }

    /// Well formed but not acceptable (firstcode 5).
    pub const fn value(why: &'static str) -> Invalid {
        Invalid {
            first: FirstCode::WrongValue,
            why,
        }
    }
}

/// A type a parameter's text can be parsed into.
pub trait ParamValue: Sized {
    /// Parses the text (never empty: empty means absent).
    fn parse(s: &str) -> Result<Self, Invalid>;
}

impl Params {
    /// The parameter, parsed; absent or empty is a fault (3).
    pub fn required<T: ParamValue>(&self, p: Param) -> Result<T, Fault> {
        self.optional(p)?.ok_or_else(|| p.missing())
    }

    /// The parameter, parsed, when sent and not empty.
    pub fn optional<T: ParamValue>(&self, p: Param) -> Result<Option<T>, Fault> {
        self.get(p)
            .map(|s| T::parse(s).map_err(|e| p.fault(e.first, e.why)))
            .transpose()
    }

    /// A `0`/`1` flag, `false` when absent.
    pub fn flag(&self, p: Param) -> Result<bool, Fault> {
        Ok(self.optional::<Flag>(p)?.is_some_and(|f| f.0))
    }
}

fn all(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    s.bytes().all(ok)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && all(s, |b| b.is_ascii_digit())
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn parse_digits<T: std::str::FromStr>(s: &str, why: &'static str) -> Result<T, Invalid> {
    if !digits(s) {
        return Err(Invalid::format(why));
    }
    s.parse().map_err(|_| Invalid::format(why))
}

/// Declares a string newtype with a validity rule and an `as_str`.
macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $why:literal, |$s:ident| $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ParamValue for $name {
            fn parse($s: &str) -> Result<$name, Invalid> {
                if $rule {
                    Ok($name($s.to_owned()))
                } else {
                    Err(Invalid::format($why))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn no_controls(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

text_value!(
    /// One line of text without control characters (names, phones, codes, receipt line).
    Line, "must not contain control characters", |s| no_controls(s)
);
text_value!(
    /// Free text where line breaks and tabs are allowed (`OrderComment`).
    Text, "must not contain control characters other than line breaks and tabs",
    |s| !s.chars().any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
);
text_value!(
    /// The merchant's order number, up to 128 characters.
    OrderNumber, "must not contain control characters", |s| no_controls(s)
);
text_value!(
    /// The merchant's number for a customer: up to 32 ASCII letters, digits and `. _ - @ +`, the
    /// vault's rule, so that it can never carry a storage-key separator, a quote or markup.
    CustomerNumber, "must be up to 32 of A-Z a-z 0-9 . _ - @ +",
    |s| s.len() <= 32 && all(s, |b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b))
);
text_value!(
    /// The merchant's id of a refund: 10 to 100 of `[A-Za-z0-9_-]`.
    ExternalRefundId, "must be 10 to 100 of A-Z a-z 0-9 _ -",
    |s| (10..=100).contains(&s.len()) && all(s, |b| word(b) || b == b'-')
);
text_value!(
    /// An e-mail address: one `@` between non-empty parts, no spaces or controls. Deliverability
    /// is not ours to judge.
    Email, "must be an e-mail address",
    |s| matches!(s.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
);
text_value!(
    /// An absolute `http` or `https` URL of up to 255 characters without spaces.
    Url, "must be an http:// or https:// URL without spaces",
    |s| {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        (lower.starts_with("http://") || lower.starts_with("https://"))
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    }
);
text_value!(
    /// A tax rate identifier such as `vat20` or `novat`.
    TaxRate, "must be letters and digits", |s| all(s, |b| b.is_ascii_alphanumeric())
);
text_value!(
    /// The order's checkvalue as sent (compared in [`crate::integrity`]).
    CheckvalueText, "must be hexadecimal", |s| all(s, |b| b.is_ascii_hexdigit())
);
text_value!(
    /// The merchant's signature as sent, base64 (decoded in [`crate::integrity`]).
    SignatureText, "must be base64",
    |s| all(s, |b| b.is_ascii_alphanumeric() || b"+/=\r\n".contains(&b))
);

/// Merchant_ID: digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantId(pub u64);

impl ParamValue for MerchantId {
    fn parse(s: &str) -> Result<MerchantId, Invalid> {
        parse_digits(s, "must be digits").map(MerchantId)
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The login of a merchant's API user: `[A-Za-z0-9_]`, 8 to 20 on the form services; the One
/// Click services document only "up to 20" and seed 001's example logs in as `LOGIN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Login(String);

impl Login {
    /// With the One Click bounds (1 to 20).
    pub fn parse_web_service(s: &str) -> Result<Login, Invalid> {
        Login::bounded(s, 1)
    }

    fn bounded(s: &str, min: usize) -> Result<Login, Invalid> {
        if (min..=20).contains(&s.len()) && all(s, word) {
            Ok(Login(s.to_owned()))
        } else if min == 1 {
            Err(Invalid::format("must be up to 20 of A-Z a-z 0-9 _"))
        } else {
            Err(Invalid::format("must be 8 to 20 of A-Z a-z 0-9 _"))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ParamValue for Login {
    fn parse(s: &str) -> Result<Login, Invalid> {
        Login::bounded(s, 8)
    }
}

/// A password: 8 to 20 characters (up to 30 on the One Click services). Wiped on drop, never
/// printed; compared only by whoever verifies it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// With the One Click bounds (1 to 30).
    pub fn parse_web_service(s: &str) -> Result<Password, Invalid> {
        Password::bounded(s, 1, 30, "must be up to 30 characters")
    }

    fn bounded(s: &str, min: usize, max: usize, why: &'static str) -> Result<Password, Invalid> {
        let n = s.chars().count();
        if (min..=max).contains(&n) && no_controls(s) {
            Ok(Password(Zeroizing::new(s.to_owned())))
        } else {
            Err(Invalid::format(why))
        }
    }

    /// The clear text, for the one place that verifies it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl ParamValue for Password {
    fn parse(s: &str) -> Result<Password, Invalid> {
        Password::bounded(s, 8, 20, "must be 8 to 20 characters")
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Our order number: 16 digits (15 accepted on input, read as the same number with a leading
/// zero), always printed as 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BillNumber(u64);

impl BillNumber {
    /// From the engine's number; `None` past 16 digits.
    pub fn new(n: u64) -> Option<BillNumber> {
        (n <= 9_999_999_999_999_999).then_some(BillNumber(n))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl ParamValue for BillNumber {
    fn parse(s: &str) -> Result<BillNumber, Invalid> {
        if !matches!(s.len(), 15 | 16) {
            return Err(Invalid::format("must be 16 digits"));
        }
        parse_digits(s, "must be 16 digits").map(BillNumber)
    }
}

impl fmt::Display for BillNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}", self.0)
    }
}

/// A billnumber as services accept it: plain, or extended `<billnumber>.<n>` naming the n-th
/// operation of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BillRef {
    /// The order.
    pub bill: BillNumber,
    /// The operation, when extended (1 is the payment).
    pub operation: Option<u32>,
}

impl BillRef {
    /// The extended form of an operation, as answers print it.
    pub fn extended(bill: BillNumber, operation: u32) -> BillRef {
        BillRef {
            bill,
            operation: Some(operation),
        }
    }
}

impl ParamValue for BillRef {
    fn parse(s: &str) -> Result<BillRef, Invalid> {
        let (bill, op) = match s.split_once('.') {
            Some((b, n)) => (b, Some(n)),
            None => (s, None),
        };
        let operation = op
            .map(
                |n| match parse_digits::<u32>(n, "operation must be a number") {
                    Ok(0) => Err(Invalid::format("operations are numbered from 1")),
                    other => other,
                },
            )
            .transpose()?;
        Ok(BillRef {
            bill: BillNumber::parse(bill)?,
            operation,
        })
    }
}

impl fmt::Display for BillRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Some(n) => write!(f, "{}.{n}", self.bill),
            None => write!(f, "{}", self.bill),
        }
    }
}

/// An amount in minor units (two decimals for every currency we take). Input: up to 15 digits
/// with at most 2 after a `.` or `,`; the text as sent is kept because checkvalue is computed over
/// it. Printed with two decimals and `.`.
#[derive(Debug, Clone)]
pub struct Amount {
    minor: u64,
    sent: Option<String>,
}

impl Amount {
    /// From minor units (an amount the engine computed).
    pub fn from_minor(minor: u64) -> Amount {
        Amount { minor, sent: None }
    }

    /// Minor units.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The text the merchant sent, or the printed form for an amount we computed.
    pub fn as_sent(&self) -> String {
        self.sent.clone().unwrap_or_else(|| self.to_string())
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Amount) -> bool {
        self.minor == other.minor
    }
}

impl Eq for Amount {}

impl ParamValue for Amount {
    fn parse(s: &str) -> Result<Amount, Invalid> {
        const WHY: &str = "must be up to 15 digits with at most 2 decimals";
        let (int, frac) = match s.find(['.', ',']) {
            Some(at) => (&s[..at], &s[at + 1..]),
            None => (s, ""),
        };
        if !digits(int) || frac.len() > 2 || !all(frac, |b| b.is_ascii_digit()) {
            return Err(Invalid::format(WHY));
        }
        if int.len() + frac.len() > 15 {
            return Err(Invalid::format(WHY));
        }
        let units: u64 = int.parse().map_err(|_| Invalid::format(WHY))?;
        let cents: u64 = format!("{frac:0<2}")
            .parse()
            .map_err(|_| Invalid::format(WHY))?;
        Ok(Amount {
            minor: units * 100 + cents,
            sent: Some(s.to_owned()),
        })
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.minor / 100, self.minor % 100)
    }
}

/// Declares an enum with one wire text per variant, parsed case-insensitively.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $why:literal { $( $(#[$vdoc:meta])* $v:ident = $text:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vdoc])* $v, )* }

        impl $name {
            /// The text on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$v => $text, )* }
            }
        }

        impl ParamValue for $name {
            fn parse(s: &str) -> Result<$name, Invalid> {
                [$( $name::$v, )*]
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or(Invalid::format($why))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// Language of pages and receipts.
    Language, "must be RU or EN" {
        /// Russian.
        Ru = "RU",
        /// English.
        En = "EN",
    }
);

word_enum!(
    /// Why an order is cancelled (`CancelReason`, default 2).
    CancelReason, "must be 1, 2 or 3" {
        /// The shop cancels.
        Shop = "1",
        /// The customer asked.
        Customer = "2",
        /// Suspected fraud.
        Fraud = "3",
    }
);

word_enum!(
    /// Currency conversion choice (`isConvert`, default 1).
    IsConvert, "must be 0, 1 or 2" {
        /// Never convert.
        Never = "0",
        /// Do not convert where possible.
        AvoidIfPossible = "1",
        /// Always convert.
        Always = "2",
    }
);

word_enum!(
    /// Which payment pages to show (`MobileDevice`).
    MobileDevice, "must be 0, 1 or 2" {
        /// The merchant's setting.
        MerchantSetting = "0",
        /// Pages for mobile devices.
        Mobile = "1",
        /// Standard pages.
        Standard = "2",
    }
);

/// ISO 4217 currencies we take: each has two decimals, which [`Amount`] assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    /// Russian rouble.
    Rub,
    /// US dollar.
    Usd,
    /// Euro.
    Eur,
    /// Belarusian rouble.
    Byn,
    /// Kazakh tenge.
    Kzt,
    /// Ukrainian hryvnia.
    Uah,
    /// Pound sterling.
    Gbp,
    /// Chinese yuan.
    Cny,
}

/// Letters ↔ numeric, one table.
const CURRENCIES: [(Currency, &str, u16); 8] = [
    (Currency::Rub, "RUB", 643),
    (Currency::Usd, "USD", 840),
    (Currency::Eur, "EUR", 978),
    (Currency::Byn, "BYN", 933),
    (Currency::Kzt, "KZT", 398),
    (Currency::Uah, "UAH", 980),
    (Currency::Gbp, "GBP", 826),
    (Currency::Cny, "CNY", 156),
];

impl Currency {
    fn row(self) -> (Currency, &'static str, u16) {
        CURRENCIES
            .into_iter()
            .find(|r| r.0 == self)
            .unwrap_or(CURRENCIES[0])
    }

    /// ISO 4217 letters.
    pub fn alpha(self) -> &'static str {
        self.row().1
    }

    /// ISO 4217 number (ISO 8583 DE 49).
    pub fn numeric(self) -> u16 {
        self.row().2
    }

    /// The currency of an ISO 4217 number.
    pub fn from_numeric(n: u16) -> Option<Currency> {
        CURRENCIES.into_iter().find(|r| r.2 == n).map(|r| r.0)
    }
}

impl ParamValue for Currency {
    fn parse(s: &str) -> Result<Currency, Invalid> {
        if s.len() != 3 || !all(s, |b| b.is_ascii_alphabetic()) {
            return Err(Invalid::format("must be three ISO 4217 letters"));
        }
        CURRENCIES
            .into_iter()
            .find(|r| r.1.eq_ignore_ascii_case(s))
            .map(|r| r.0)
            .ok_or(Invalid::value("currency not supported"))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha())
    }
}

/// Answer format. `2` (WDDX) is retired and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `1`: `name:value;` lines.
    Csv,
    /// `3`: XML.
    Xml,
    /// `4`: SOAP.
    Soap,
    /// `5`: JSON.
    Json,
}

impl ParamValue for Format {
    fn parse(s: &str) -> Result<Format, Invalid> {
        match s {
            "1" => Ok(Format::Csv),
            "3" => Ok(Format::Xml),
            "4" => Ok(Format::Soap),
            "5" => Ok(Format::Json),
            "2" => Err(Invalid::format("WDDX (2) is no longer answered")),
            _ => Err(Invalid::format("must be 1, 3, 4 or 5")),
        }
    }
}

/// A `0`/`1` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl ParamValue for Flag {
    fn parse(s: &str) -> Result<Flag, Invalid> {
        match s {
            "0" => Ok(Flag(false)),
            "1" => Ok(Flag(true)),
            _ => Err(Invalid::format("must be 0 or 1")),
        }
    }
}

/// A non-negative number of at most the table's digits (periods, points, fiscal codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number(pub u64);

impl ParamValue for Number {
    fn parse(s: &str) -> Result<Number, Invalid> {
        parse_digits(s, "must be digits").map(Number)
    }
}

/// A day, `DD.MM.YYYY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub Date);

impl ParamValue for Day {
    fn parse(s: &str) -> Result<Day, Invalid> {
        const WHY: &str = "must be a date DD.MM.YYYY";
        let b = s.as_bytes();
        if b.len() != 10 || b[2] != b'.' || b[5] != b'.' {
            return Err(Invalid::format(WHY));
        }
        let day: u8 = parse_digits(&s[..2], WHY)?;
        let month: u8 = parse_digits(&s[3..5], WHY)?;
        let year: i32 = parse_digits(&s[6..], WHY)?;
        let month = Month::try_from(month).map_err(|_| Invalid::format(WHY))?;
        Date::from_calendar_date(year, month, day)
            .map(Day)
            .map_err(|_| Invalid::format(WHY))
    }
}

/// The shopper's IP address. IPv6 is accepted beside the documented dotted IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ParamValue for ClientIp {
    fn parse(s: &str) -> Result<ClientIp, Invalid> {
        s.parse()
            .map(ClientIp)
            .map_err(|_| Invalid::format("must be an IP address"))
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A saved card's token: a UUID in its 36-character form, printed in capitals as Assist does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardToken(pub Uuid);

impl ParamValue for CardToken {
    fn parse(s: &str) -> Result<CardToken, Invalid> {
        let hyphens = s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-');
        match Uuid::try_parse(s) {
            Ok(u) if hyphens => Ok(CardToken(u)),
            _ => Err(Invalid::format("must be a 36-character UUID")),
        }
    }
}

impl fmt::Display for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Uuid::encode_buffer();
        f.write_str(self.0.hyphenated().encode_upper(&mut buf))
    }
}

/// Token Pay's `PaymentToken`: `{"Token":"<UUID>","CustomerNumber":"…"}` (keys in any case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentToken {
    /// The saved card.
    pub token: CardToken,
    /// Whose card it must be.
    pub customer_number: CustomerNumber,
}

impl ParamValue for PaymentToken {
    fn parse(s: &str) -> Result<PaymentToken, Invalid> {
        const WHY: &str = r#"must be {"Token":"<UUID>","CustomerNumber":"…"}"#;
        let serde_json::Value::Object(map) =
            serde_json::from_str(s).map_err(|_| Invalid::format(WHY))?
        else {
            return Err(Invalid::format(WHY));
        };
        let field = |name: &str| {
            let mut found = map.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
            match (found.next(), found.next()) {
                (Some((_, serde_json::Value::String(v))), None) => Ok(v.as_str()),
                _ => Err(Invalid::format(WHY)),
            }
        };
        Ok(PaymentToken {
            token: CardToken::parse(field("Token")?)?,
            customer_number: CustomerNumber::parse(field("CustomerNumber")?)?,
        })
    }
}

/// Fiscal receipt lines (`ChequeItems`): kept as the merchant's JSON text, checked to be JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChequeItems(String);

impl ChequeItems {
    /// The JSON text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ParamValue for ChequeItems {
    fn parse(s: &str) -> Result<ChequeItems, Invalid> {
        match serde_json::from_str::<serde::de::IgnoredAny>(s) {
            Ok(_) => Ok(ChequeItems(s.to_owned())),
            Err(_) => Err(Invalid::format("must be JSON")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_minor_units_and_keep_their_text() {
        let a = Amount::parse("100,5").unwrap();
        assert_eq!(a.minor(), 10050);
        assert_eq!(a.to_string(), "100.50");
        assert_eq!(a.as_sent(), "100,5");
        assert_eq!(Amount::parse("4").unwrap(), Amount::from_minor(400));
        assert_eq!(
            Amount::parse("999999999999999").unwrap().minor(),
            99_999_999_999_999_900
        );
        for bad in [
            "",
            ".5",
            "1.234",
            "-1",
            "1e3",
            "1.2.3",
            "1 000",
            "9999999999999999",
            "1,",
        ] {
            assert!(Amount::parse(bad).is_err() || bad == "1,", "{bad}");
        }
        assert_eq!(Amount::parse("1,").unwrap().minor(), 100);
    }

    #[test]
    fn bill_numbers_plain_short_and_extended() {
        let b = BillRef::parse("5360051305345061.2").unwrap();
        assert_eq!(b.operation, Some(2));
        assert_eq!(b.to_string(), "5360051305345061.2");
        let short = BillRef::parse("123456789012345").unwrap();
        assert_eq!(short.bill.to_string(), "0123456789012345");
        for bad in [
            "123",
            "5360051305345061.",
            "5360051305345061.0",
            "536005130534506a",
            "1.2.3",
        ] {
            assert!(BillRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_rules() {
        assert!(Login::parse("demo_login").is_ok());
        assert!(Login::parse("LOGIN").is_err());
        assert!(Login::parse_web_service("LOGIN").is_ok());
        assert!(Login::parse("bad login!").is_err());
        let p = Password::parse("Demopass2026").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert!(Password::parse("short").is_err());
        assert!(Password::parse_web_service("PASSWORD").is_ok());
    }

    #[test]
    fn enums_currency_format_and_dates() {
        assert_eq!(Currency::parse("rub").unwrap().numeric(), 643);
        assert_eq!(Currency::from_numeric(933), Some(Currency::Byn));
        assert_eq!(
            Currency::parse("XXX").unwrap_err().first,
            FirstCode::WrongValue
        );
        assert_eq!(Format::parse("2").unwrap_err().first, FirstCode::BadFormat);
        assert_eq!(Language::parse("en").unwrap(), Language::En);
        let d = Day::parse("29.02.2028").unwrap();
        assert_eq!(d.0.day(), 29);
        assert!(Day::parse("30.02.2028").is_err());
        assert!(Day::parse("2028-02-01").is_err());
    }

    #[test]
    fn payment_token_and_card_tokens() {
        let t = PaymentToken::parse(
            r#"{"Token":"b092e5a1-57bd-46e6-f380-7d5ec7730578", "customernumber":"1234"}"#,
        )
        .unwrap();
        assert_eq!(t.token.to_string(), "B092E5A1-57BD-46E6-F380-7D5EC7730578");
        assert_eq!(t.customer_number.as_str(), "1234");
        assert!(PaymentToken::parse(r#"{"Token":"x","CustomerNumber":"1"}"#).is_err());
        assert!(
            PaymentToken::parse(r#"{"Token":"b092e5a1-57bd-46e6-f380-7d5ec7730578"}"#).is_err()
        );
        assert!(CardToken::parse("b092e5a157bd46e6f3807d5ec7730578").is_err());
    }

    #[test]
    fn text_rules() {
        assert!(Email::parse("test@test.ru").is_ok());
        assert!(Email::parse("a b@c").is_err());
        assert!(Url::parse("https://shop.example/ok?x=1").is_ok());
        assert!(Url::parse("javascript:alert(1)").is_err());
        assert!(Line::parse("a\nb").is_err());
        assert!(Text::parse("a\r\nb").is_ok());
        assert!(ExternalRefundId::parse("refund-0001").is_ok());
        assert!(ExternalRefundId::parse("short").is_err());
        assert!(CustomerNumber::parse("a@b.c").is_ok());
        assert!(CustomerNumber::parse("a b").is_err());
        assert!(ChequeItems::parse(r#"[{"name":"x"}]"#).is_ok());
        assert!(ChequeItems::parse("[").is_err());
    }
}
