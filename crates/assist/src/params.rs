//! The parameter set of one request: names matched case-insensitively against one table of every
//! parameter the spec and the seeds list, each with its maximum length and the `secondcode` that
//! names it, read from a query string, an `application/x-www-form-urlencoded` body or (for the One
//! Click services) a JSON object.
//!
//! Owns the table and the bounds (body size, number of fields, each value's length). It keeps raw
//! text only: what a value must look like belongs to [`crate::values`]. It must never keep an
//! unknown parameter, accept a known one twice, or put a value into an error.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

use crate::codes::{Fault, FirstCode, SecondCode};

/// Bounds on what one request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole query string or body, in bytes.
    pub max_bytes: usize,
    /// Fields counted before names are looked up, so unknown ones count too.
    pub max_fields: usize,
}

impl Default for Limits {
    /// 256 KiB leaves room for a receipt's `ChequeItems` (64 KiB) beside every other field; 256
    /// fields is more than twice the table.
    fn default() -> Limits {
        Limits {
            max_bytes: 256 * 1024,
            max_fields: 256,
        }
    }
}

/// How one parameter is named and bounded.
#[derive(Debug)]
pub struct Spec {
    /// The parameter.
    pub param: Param,
    /// Its name as Assist's documents spell it (used in fault details).
    pub name: &'static str,
    /// Older or alternative names for the same parameter.
    pub aliases: &'static [&'static str],
    /// Maximum length in characters.
    pub max_chars: usize,
    /// The secondcode that names it in a fault.
    pub second: SecondCode,
}

/// One table from name to parameter, length and secondcode; the enum and the table cannot drift
/// apart because both come from this one list.
macro_rules! params {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal $(| $alias:literal)*, $max:expr, $second:expr; )*) => {
        /// Every parameter the services accept, by its canonical name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Param { $( $(#[$doc])* $variant, )* }

        /// The table, in [`Param`]'s order.
        pub static SPECS: &[Spec] = &[ $( Spec {
            param: Param::$variant,
            name: $name,
            aliases: &[$($alias),*],
            max_chars: $max,
            second: $second,
        }, )* ];
    };
}

use SecondCode as S;

params! {
    /// Merchant_ID (digits).
    MerchantId = "Merchant_ID", 18, S::MerchantId;
    /// Login of the merchant's API user.
    Login = "Login", 20, S::Login;
    /// Password of the merchant's API user (30 for the One Click services, 20 elsewhere).
    Password = "Password", 30, S::Password;
    /// Answer format.
    Format = "Format", 1, S::Format;
    /// The merchant's order number.
    OrderNumber = "OrderNumber", 128, S::OrderNumber;
    /// The order's amount.
    OrderAmount = "OrderAmount", 16, S::Amount;
    /// The order's currency.
    OrderCurrency = "OrderCurrency", 3, S::Currency;
    /// Comment (4000 in seed 004; Token Pay's 256 is checked by its request).
    OrderComment = "OrderComment", 4000, S::Comment;
    /// Two-stage payment.
    Delay = "Delay", 1, S::Delay;
    /// Language of the pages and receipts.
    Language = "Language", 2, S::Order;
    /// Customer's last name.
    Lastname = "Lastname", 70, S::CustomerField(117);
    /// Customer's first name.
    Firstname = "Firstname", 70, S::CustomerField(118);
    /// Customer's middle name.
    Middlename = "Middlename", 70, S::CustomerField(119);
    /// Customer's e-mail.
    Email = "Email", 128, S::CustomerField(120);
    /// Customer's address.
    Address = "Address", 256, S::CustomerField(121);
    /// Customer's home phone.
    HomePhone = "HomePhone", 64, S::CustomerField(122);
    /// Customer's work phone.
    WorkPhone = "WorkPhone", 20, S::CustomerField(123);
    /// Customer's mobile phone.
    MobilePhone = "MobilePhone", 20, S::CustomerField(124);
    /// Customer's fax (seed 001 only; reported with the work phone's code, its neighbour).
    Fax = "Fax", 20, S::CustomerField(123);
    /// Customer's country code.
    Country = "Country", 3, S::CustomerField(125);
    /// Customer's region code.
    State = "State", 3, S::CustomerField(126);
    /// Customer's city.
    City = "City", 70, S::CustomerField(127);
    /// Customer's postal code.
    Zip = "Zip", 25, S::CustomerField(128);
    /// Return URL for every outcome.
    UrlReturn = "URL_RETURN", 255, S::Order;
    /// Return URL after an approval.
    UrlReturnOk = "URL_RETURN_OK", 255, S::Order;
    /// Return URL after anything else.
    UrlReturnNo = "URL_RETURN_NO", 255, S::Order;
    /// Payment means flag: cards.
    CardPayment = "CardPayment", 1, S::Order;
    /// Payment means flag: YandexMoney.
    YmPayment = "YMPayment", 1, S::Order;
    /// Payment means flag: SberPay.
    SberPayPayment = "SberPayPayment", 1, S::Order;
    /// Payment means flag: the Faster Payments System.
    FastPayPayment = "FastPayPayment", 1, S::Order;
    /// Payment means flag: Google Pay.
    GooglePayPayment = "GooglePayPayment", 1, S::Order;
    /// Payment means flag: Apple Pay.
    ApplePayPayment = "ApplePayPayment", 1, S::Order;
    /// Payment means flag: Samsung Pay.
    SamsungPayPayment = "SamsungPayPayment", 1, S::Order;
    /// Payment means flag: Mir Pay.
    MirPayPayment = "MirPayPayment", 1, S::Order;
    /// The merchant's RSA signature of the order, base64.
    Signature = "Signature", 2048, S::Checkvalue;
    /// The order's checkvalue.
    Checkvalue = "Checkvalue", 64, S::Checkvalue;
    /// Which payment pages to show.
    MobileDevice = "MobileDevice", 1, S::Order;
    /// The order starts a recurring agreement.
    RecurringIndicator = "RecurringIndicator", 1, S::Recurring;
    /// The agreement's least amount.
    RecurringMinAmount = "RecurringMinAmount", 16, S::Recurring;
    /// The agreement's greatest amount.
    RecurringMaxAmount = "RecurringMaxAmount", 16, S::Recurring;
    /// Days between two payments; older pages call it RecurringCount.
    RecurringPeriod = "RecurringPeriod" | "RecurringCount", 3, S::Recurring;
    /// The agreement's last day.
    RecurringMaxDate = "RecurringMaxDate", 10, S::Recurring;
    /// The next payment's day.
    RecurringNextDate = "RecurringNextDate", 10, S::Recurring;
    /// Contract or account number of the customer.
    Account = "Account", 30, S::Order;
    /// Pay without 3-D Secure.
    Disable3ds = "Disable3DS", 1, S::Order;
    /// Where the 3-D Secure challenge result goes.
    ChallengeResponseNotificationUrl = "challengeResponseNotificationUrl", 255, S::Order;
    /// The merchant's number for its customer.
    CustomerNumber = "CustomerNumber", 32, S::Customer;
    /// Prepayment flag.
    Prepayment = "Prepayment", 1, S::Order;
    /// Most bonus points the order may be paid with.
    OrderMaxPoints = "OrderMaxPoints", 15, S::Order;
    /// Currency conversion choice.
    IsConvert = "isConvert", 1, S::Order;
    /// The shopper's IP address (IPv6 accepted beside the documented IPv4).
    ClientIp = "ClientIP", 45, S::ClientIp;
    /// Fiscal receipt lines, JSON.
    ChequeItems = "ChequeItems", 65536, S::Order;
    /// Whether a fiscal receipt is made.
    GenerateReceipt = "GenerateReceipt", 1, S::Order;
    /// Tax rate identifier.
    Tax = "Tax", 10, S::Order;
    /// The receipt's single line.
    ReceiptLine = "ReceiptLine", 128, S::Order;
    /// Payment method sign of the receipt.
    FpMode = "FPMode", 3, S::Order;
    /// Taxation system.
    TaxationSystem = "TaxationSystem", 3, S::Order;
    /// Payment token kind (5 = Assist's own).
    TokenType = "TokenType", 1, S::Card;
    /// Payment token, JSON `{"Token":…,"CustomerNumber":…}`.
    PaymentToken = "PaymentToken", 256, S::Card;
    /// A saved card's token (One Click rem_token.cfm).
    Token = "Token", 36, S::Card;
    /// Our order number, plain or extended.
    BillNumber = "BillNumber", 27, S::BillNumber;
    /// An operation's amount.
    Amount = "Amount", 16, S::Amount;
    /// An operation's currency.
    Currency = "Currency", 3, S::Currency;
    /// Why an order is cancelled.
    CancelReason = "CancelReason", 1, S::Cancel;
    /// The merchant's id of a refund, for idempotency.
    ExternalRefundId = "Externalrefundid", 100, S::Cancel;
    /// Period filter: start year.
    StartYear = "StartYear", 4, S::Date;
    /// Period filter: start month.
    StartMonth = "StartMonth", 2, S::Date;
    /// Period filter: start day.
    StartDay = "StartDay", 2, S::Date;
    /// Period filter: start hour.
    StartHour = "StartHour", 2, S::Date;
    /// Period filter: start minute.
    StartMin = "StartMin", 2, S::Date;
    /// Period filter: end year.
    EndYear = "EndYear", 4, S::Date;
    /// Period filter: end month.
    EndMonth = "EndMonth", 2, S::Date;
    /// Period filter: end day.
    EndDay = "EndDay", 2, S::Date;
    /// Period filter: end hour.
    EndHour = "EndHour", 2, S::Date;
    /// Period filter: end minute.
    EndMin = "EndMin", 2, S::Date;
}

impl Param {
    /// Its row of the table.
    pub fn spec(self) -> &'static Spec {
        // SPECS is built in Param's order by the same macro expansion.
        &SPECS[self as usize]
    }

    /// The name used in fault details.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The parameter a name (any case, canonical or alias) refers to.
    pub fn lookup(name: &str) -> Option<Param> {
        SPECS
            .iter()
            .find(|s| {
                s.name.eq_ignore_ascii_case(name)
                    || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            })
            .map(|s| s.param)
    }

    /// A fault about this parameter, with its secondcode.
    pub fn fault(self, first: FirstCode, why: &str) -> Fault {
        Fault::new(first, self.spec().second, format!("{}: {why}", self.name()))
    }

    /// The fault of a required parameter that is absent or empty.
    pub fn missing(self) -> Fault {
        self.fault(FirstCode::Missing, "required")
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The known parameters of one request, as sent. Values are wiped on drop (one of them is a
/// password) and never printed.
#[derive(Clone)]
pub struct Params {
    values: Vec<Option<Zeroizing<String>>>,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present: Vec<&str> = SPECS
            .iter()
            .zip(&self.values)
            .filter(|(_, v)| v.is_some())
            .map(|(s, _)| s.name)
            .collect();
        f.debug_struct("Params").field("present", &present).finish()
    }
}

fn body_fault(why: &'static str) -> Fault {
    Fault::new(FirstCode::BadFormat, SecondCode::None, why)
}

impl Params {
    fn empty() -> Params {
        Params {
            values: vec![None; SPECS.len()],
        }
    }

    /// Reads a query string or an `application/x-www-form-urlencoded` body with default limits.
    pub fn from_form(input: &[u8]) -> Result<Params, Fault> {
        Params::from_form_with(input, Limits::default())
    }

    /// As [`Params::from_form`], with explicit limits.
    pub fn from_form_with(input: &[u8], limits: Limits) -> Result<Params, Fault> {
        if input.len() > limits.max_bytes {
            return Err(body_fault("request is too large"));
        }
        let mut params = Params::empty();
        let pairs = input.split(|&b| b == b'&').filter(|p| !p.is_empty());
        for (n, pair) in pairs.enumerate() {
            if n >= limits.max_fields {
                return Err(body_fault("too many fields"));
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name).ok_or_else(|| body_fault("a field name is not UTF-8"))?;
            let Some(param) = Param::lookup(&name) else {
                continue;
            };
            let value =
                decode(value).ok_or_else(|| param.fault(FirstCode::BadFormat, "not UTF-8"))?;
            params.set(param, value)?;
        }
        Ok(params)
    }

    /// Reads a JSON object (the One Click services): keys case-insensitive, nested objects (seed
    /// 001's `merchant`) flattened into the same set, strings and numbers as text.
    pub fn from_json(input: &[u8], limits: Limits) -> Result<Params, Fault> {
        if input.len() > limits.max_bytes {
            return Err(body_fault("request is too large"));
        }
        let fields: Fields =
            serde_json::from_slice(input).map_err(|_| body_fault("body is not a JSON object"))?;
        let mut params = Params::empty();
        let mut count = 0;
        params.take_fields(fields, &mut count, limits.max_fields)?;
        Ok(params)
    }

    fn take_fields(&mut self, fields: Fields, count: &mut usize, max: usize) -> Result<(), Fault> {
        for (name, value) in fields.0 {
            *count += 1;
            if *count > max {
                return Err(body_fault("too many fields"));
            }
            match value {
                Field::Object(inner) => self.take_fields(inner, count, max)?,
                Field::Text(text) => {
                    if let Some(param) = Param::lookup(&name) {
                        self.set(param, text)?;
                    }
                }
                Field::Other => {
                    if let Some(param) = Param::lookup(&name) {
                        return Err(param.fault(FirstCode::BadFormat, "must be a string"));
                    }
                }
            }
        }
        Ok(())
    }

    fn set(&mut self, param: Param, value: String) -> Result<(), Fault> {
        let value = Zeroizing::new(value);
        let spec = param.spec();
        if value.chars().count() > spec.max_chars {
            return Err(param.fault(
                FirstCode::BadFormat,
                &format!("longer than {} characters", spec.max_chars),
            ));
        }
        let slot = &mut self.values[param as usize];
        if slot.is_some() {
            return Err(param.fault(FirstCode::BadFormat, "sent more than once"));
        }
        *slot = Some(value);
        Ok(())
    }

    /// The value exactly as sent, even when empty (checkvalue's X is built from these).
    pub fn raw(&self, param: Param) -> Option<&str> {
        self.values[param as usize].as_deref().map(String::as_str)
    }

    /// The value when sent and not empty: an empty optional field is treated as absent, because
    /// shop forms send every field they have, filled or not.
    pub fn get(&self, param: Param) -> Option<&str> {
        self.raw(param).filter(|v| !v.is_empty())
    }
}

/// Percent-decodes one form component (`+` is a space), refusing what is not UTF-8.
fn decode(component: &[u8]) -> Option<String> {
    let plus_as_space: Vec<u8> = component
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).ok()
}

/// A JSON object's entries in order, duplicates kept so that they can be refused (serde_json's
/// own map would keep the last silently).
struct Fields(Vec<(String, Field)>);

enum Field {
    Text(String),
    Object(Fields),
    Other,
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        match Field::deserialize(d)? {
            Field::Object(fields) => Ok(fields),
            _ => Err(de::Error::custom("not an object")),
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Field::Text(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Text(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
        // A float is never a valid Assist value (amounts travel as text).
        Ok(Field::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Field>()? {
            entries.push((k, v));
        }
        Ok(Field::Object(Fields(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_names_are_unique() {
        for (i, s) in SPECS.iter().enumerate() {
            assert_eq!(s.param as usize, i, "{}", s.name);
            assert_eq!(Param::lookup(s.name), Some(s.param));
            for other in &SPECS[i + 1..] {
                assert!(!other.name.eq_ignore_ascii_case(s.name), "{}", s.name);
            }
        }
    }

    #[test]
    fn names_are_case_insensitive_and_unknown_ones_ignored() {
        let p = Params::from_form(b"MERCHANT_ID=1&ordernumber=A+1%2B2&foo=bar&recurringcount=30")
            .unwrap();
        assert_eq!(p.get(Param::MerchantId), Some("1"));
        assert_eq!(p.get(Param::OrderNumber), Some("A 1+2"));
        assert_eq!(p.get(Param::RecurringPeriod), Some("30"));
        assert_eq!(p.get(Param::Login), None);
    }

    #[test]
    fn repeats_lengths_and_bounds_are_refused() {
        let e = Params::from_form(b"Login=a&LOGIN=b").unwrap_err();
        assert_eq!(
            (e.first, e.second),
            (FirstCode::BadFormat, SecondCode::Login)
        );
        let e = Params::from_form(b"RecurringPeriod=1&RecurringCount=2").unwrap_err();
        assert_eq!(e.second, SecondCode::Recurring);
        let e = Params::from_form(b"Delay=10").unwrap_err();
        assert_eq!(
            (e.first, e.second),
            (FirstCode::BadFormat, SecondCode::Delay)
        );
        let e = Params::from_form(b"OrderComment=%FF").unwrap_err();
        assert_eq!(e.second, SecondCode::Comment);
        let limits = Limits {
            max_bytes: 10,
            max_fields: 2,
        };
        assert!(Params::from_form_with(b"a=1&b=2&c=3", limits).is_err());
        assert!(Params::from_form_with(b"a=1&b=2&c=3&d", limits).is_err());
        // Length counts characters, not bytes.
        let name = "Я".repeat(70);
        let body = format!("Lastname={name}");
        assert!(Params::from_form(body.as_bytes()).is_ok());
    }

    #[test]
    fn empty_means_absent_but_raw_keeps_it() {
        let p = Params::from_form(b"OrderCurrency=&Password=secret123").unwrap();
        assert_eq!(p.get(Param::OrderCurrency), None);
        assert_eq!(p.raw(Param::OrderCurrency), Some(""));
        assert!(!format!("{p:?}").contains("secret123"));
    }

    #[test]
    fn json_objects_flatten_and_refuse_repeats() {
        let p = Params::from_json(
            br#"{"merchant":{"merchant_id":452739,"login":"LOGIN"},"customernumber":"1234","x":[1,{"a":2}]}"#,
            Limits::default(),
        )
        .unwrap();
        assert_eq!(p.get(Param::MerchantId), Some("452739"));
        assert_eq!(p.get(Param::CustomerNumber), Some("1234"));
        let e = Params::from_json(br#"{"login":"a","Login":"b"}"#, Limits::default()).unwrap_err();
        assert_eq!(e.second, SecondCode::Login);
        let e = Params::from_json(br#"{"token":true}"#, Limits::default()).unwrap_err();
        assert_eq!(e.second, SecondCode::Card);
        assert!(Params::from_json(b"[1]", Limits::default()).is_err());
        assert!(Params::from_json(b"{", Limits::default()).is_err());
    }
}
