//! Typed values of the fields that the link reasons about: MTI, STAN, RRN, transmission time,
//! processing code, amount, response code, and the credential-on-file and 3-D Secure
//! subelements of DE 48. Each type accepts only what its field allows.

use std::fmt;

/// Message type indicator: version, class, function and origin digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti(u16);

impl Mti {
    /// 0100: authorization only, the first stage of a two-stage payment.
    pub const AUTH_REQUEST: Mti = Mti(100);
    /// 0110: the network's answer to a 0100.
    pub const AUTH_RESPONSE: Mti = Mti(110);
    /// 0200: financial request, a one-stage purchase or a refund.
    pub const FINANCIAL_REQUEST: Mti = Mti(200);
    /// 0210: the network's answer to a 0200.
    pub const FINANCIAL_RESPONSE: Mti = Mti(210);
    /// 0220: completion advice confirming a Delayed authorization for its final amount.
    pub const COMPLETION_ADVICE: Mti = Mti(220);
    /// 0230: the network's answer to a 0220.
    pub const COMPLETION_ADVICE_RESPONSE: Mti = Mti(230);
    /// 0400: reversal, a cancel before settlement or the undoing of a timed-out 0100/0200.
    pub const REVERSAL_REQUEST: Mti = Mti(400);
    /// 0410: the network's answer to a 0400.
    pub const REVERSAL_RESPONSE: Mti = Mti(410);
    /// 0420: a reversal sent again from store-and-forward.
    pub const REVERSAL_ADVICE: Mti = Mti(420);
    /// 0421: a repeat of a 0420 that went unanswered.
    pub const REVERSAL_ADVICE_REPEAT: Mti = Mti(421);
    /// 0430: the network's answer to a 0420 or 0421.
    pub const REVERSAL_ADVICE_RESPONSE: Mti = Mti(430);
    /// 0800: network management (sign-on, sign-off, echo; DE 70 says which).
    pub const NETWORK_REQUEST: Mti = Mti(800);
    /// 0810: the network's answer to a 0800.
    pub const NETWORK_RESPONSE: Mti = Mti(810);

    /// Any four-digit MTI, `0..=9999`.
    pub fn new(value: u16) -> Option<Mti> {
        (value <= 9999).then_some(Mti(value))
    }

    /// Parses four ASCII digits.
    pub fn from_ascii(digits: &[u8]) -> Option<Mti> {
        let d: &[u8; 4] = digits.try_into().ok()?;
        d.iter()
            .try_fold(0u16, |n, &b| {
                b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0'))
            })
            .map(Mti)
    }

    /// The MTI as a number, e.g. 100 for 0100.
    pub fn value(self) -> u16 {
        self.0
    }

    /// The four ASCII digits that open a message on the wire.
    pub fn to_ascii(self) -> [u8; 4] {
        digits_4(self.0)
    }

    fn function(self) -> u16 {
        (self.0 / 10) % 10
    }

    /// A request or an advice (function digit 0 or 2), which the other side answers.
    pub fn is_request(self) -> bool {
        self.function().is_multiple_of(2)
    }

    /// The MTI of the answer: function + 1, origin 0, so a repeated advice (0421) is answered
    /// by 0430 like the first (0420).
    pub fn response(self) -> Option<Mti> {
        self.is_request().then(|| Mti(self.0 - self.0 % 10 + 10))
    }
}

fn digits_4(v: u16) -> [u8; 4] {
    [
        b'0' + (v / 1000 % 10) as u8,
        b'0' + (v / 100 % 10) as u8,
        b'0' + (v / 10 % 10) as u8,
        b'0' + (v % 10) as u8,
    ]
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

/// Writes `value` as exactly `N` zero-padded ASCII digits. The caller guarantees it fits.
pub(crate) fn ascii_digits<const N: usize>(mut value: u64) -> [u8; N] {
    let mut out = [b'0'; N];
    for b in out.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out
}

/// Parses ASCII digits that the decoder has already validated.
pub(crate) fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// System trace audit number (DE 11): six digits, unique per terminal per day.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stan(u32);

impl Stan {
    /// The largest STAN six digits hold.
    pub const MAX: u32 = 999_999;

    /// A STAN of at most six digits; `None` above [`Stan::MAX`].
    pub fn new(value: u32) -> Option<Stan> {
        (value <= Stan::MAX).then_some(Stan(value))
    }

    /// The STAN as a number.
    pub fn value(self) -> u32 {
        self.0
    }

    /// The six zero-padded ASCII digits of DE 11.
    pub fn to_ascii(self) -> [u8; 6] {
        ascii_digits(u64::from(self.0))
    }
}

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stan({:06})", self.0)
    }
}

/// Retrieval reference number (DE 37): twelve letters or digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rrn([u8; 12]);

impl Rrn {
    /// Twelve ASCII letters or digits, as DE 37 carries them.
    pub fn from_ascii(value: &[u8]) -> Option<Rrn> {
        let v: [u8; 12] = value.try_into().ok()?;
        v.iter().all(u8::is_ascii_alphanumeric).then_some(Rrn(v))
    }

    /// A numeric RRN, as acquirers commonly build them from a sequence.
    pub fn from_number(n: u64) -> Option<Rrn> {
        (n <= 999_999_999_999).then(|| Rrn(ascii_digits(n)))
    }

    /// The twelve bytes of DE 37.
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// The RRN as text, for logs and stored references.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Rrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Rrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rrn({})", self.as_str())
    }
}

/// Transmission date and time (DE 7): `MMDDhhmmss` in UTC. With the STAN it is how the network
/// matches an answer to its request and how DE 90 names an original.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransmissionTime([u8; 10]);

impl TransmissionTime {
    /// Ten digits forming a calendar month, day, hour, minute and second.
    pub fn from_ascii(value: &[u8]) -> Option<TransmissionTime> {
        let v: [u8; 10] = value.try_into().ok()?;
        if !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let two = |i: usize| (v[i] - b'0') * 10 + (v[i + 1] - b'0');
        let (month, day, hour, minute, second) = (two(0), two(2), two(4), two(6), two(8));
        ((1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60)
            .then_some(TransmissionTime(v))
    }

    /// The ten digits of DE 7.
    pub fn as_bytes(&self) -> &[u8; 10] {
        &self.0
    }

    /// DE 7 as text, for logs and stored references.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for TransmissionTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TransmissionTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransmissionTime({})", self.as_str())
    }
}

/// An amount in minor units (DE 4: twelve digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Amount(pub u64);

impl Amount {
    /// The largest amount DE 4's twelve digits hold.
    pub const MAX: u64 = 999_999_999_999;

    /// The twelve zero-padded digits of DE 4; `None` above [`Amount::MAX`], never cut.
    pub fn to_ascii(self) -> Option<[u8; 12]> {
        (self.0 <= Amount::MAX).then(|| ascii_digits(self.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Response code (DE 39): two letters or digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode([u8; 2]);

impl ResponseCode {
    /// `00`: approved.
    pub const APPROVED: ResponseCode = ResponseCode(*b"00");
    /// `05`: do not honour, the issuer's general decline.
    pub const DO_NOT_HONOUR: ResponseCode = ResponseCode(*b"05");
    /// `12`: invalid transaction, e.g. an MIT quoting an unknown network transaction ID.
    pub const INVALID_TRANSACTION: ResponseCode = ResponseCode(*b"12");
    /// `13`: invalid amount.
    pub const INVALID_AMOUNT: ResponseCode = ResponseCode(*b"13");
    /// `14`: invalid card number.
    pub const INVALID_CARD: ResponseCode = ResponseCode(*b"14");
    /// `30`: format error: the network could not parse our message.
    pub const FORMAT_ERROR: ResponseCode = ResponseCode(*b"30");
    /// `51`: insufficient funds.
    pub const INSUFFICIENT_FUNDS: ResponseCode = ResponseCode(*b"51");
    /// `54`: expired card.
    pub const EXPIRED_CARD: ResponseCode = ResponseCode(*b"54");
    /// `57`: transaction not permitted to the cardholder.
    pub const NOT_PERMITTED: ResponseCode = ResponseCode(*b"57");
    /// `61`: exceeds the amount limit.
    pub const EXCEEDS_AMOUNT_LIMIT: ResponseCode = ResponseCode(*b"61");
    /// `65`: exceeds the frequency limit.
    pub const EXCEEDS_FREQUENCY: ResponseCode = ResponseCode(*b"65");
    /// `1A`: additional authentication required: the payment needs 3-D Secure.
    pub const AUTHENTICATION_REQUIRED: ResponseCode = ResponseCode(*b"1A");
    /// `N7`: the CVC2 did not match.
    pub const CVC_MISMATCH: ResponseCode = ResponseCode(*b"N7");
    /// `91`: the issuer or the switch is unavailable.
    pub const ISSUER_UNAVAILABLE: ResponseCode = ResponseCode(*b"91");
    /// `94`: duplicate transmission.
    pub const DUPLICATE: ResponseCode = ResponseCode(*b"94");
    /// `96`: system malfunction at the network.
    pub const SYSTEM_MALFUNCTION: ResponseCode = ResponseCode(*b"96");

    /// Two ASCII letters or digits, as DE 39 carries them; unknown codes are kept, not refused.
    pub fn from_ascii(value: &[u8]) -> Option<ResponseCode> {
        let v: [u8; 2] = value.try_into().ok()?;
        v.iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(ResponseCode(v))
    }

    /// The two bytes of DE 39.
    pub fn as_bytes(&self) -> &[u8; 2] {
        &self.0
    }

    /// The code as text, for logs, metrics labels and mapping to the merchant's response code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether this is `00`, the only code that approves.
    pub fn is_approved(self) -> bool {
        self == ResponseCode::APPROVED
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseCode({})", self.as_str())
    }
}

/// DE 48.01: how a stored credential is being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CofIndicator {
    /// `I`: first use; the card is being stored with the cardholder's consent.
    FirstUse,
    /// `C`: a later use started by the cardholder (One Click, Token Pay).
    CardholderInitiated,
    /// `M`: a later use started by the merchant (recurring, unscheduled, instalment).
    MerchantInitiated,
}

impl CofIndicator {
    /// The one-letter value of DE 48.01.
    pub fn code(self) -> &'static [u8] {
        match self {
            CofIndicator::FirstUse => b"I",
            CofIndicator::CardholderInitiated => b"C",
            CofIndicator::MerchantInitiated => b"M",
        }
    }

    /// Reads DE 48.01; `None` for a letter the spec does not define.
    pub fn from_code(code: &[u8]) -> Option<CofIndicator> {
        match code {
            b"I" => Some(CofIndicator::FirstUse),
            b"C" => Some(CofIndicator::CardholderInitiated),
            b"M" => Some(CofIndicator::MerchantInitiated),
            _ => None,
        }
    }
}

/// DE 48.02: why a merchant started a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MitReason {
    /// `R`: recurring, on a fixed schedule.
    Recurring,
    /// `U`: unscheduled card-on-file.
    Unscheduled,
    /// `I`: an instalment.
    Instalment,
}

impl MitReason {
    /// The one-letter value of DE 48.02.
    pub fn code(self) -> &'static [u8] {
        match self {
            MitReason::Recurring => b"R",
            MitReason::Unscheduled => b"U",
            MitReason::Instalment => b"I",
        }
    }

    /// Reads DE 48.02; `None` for a letter the spec does not define.
    pub fn from_code(code: &[u8]) -> Option<MitReason> {
        match code {
            b"R" => Some(MitReason::Recurring),
            b"U" => Some(MitReason::Unscheduled),
            b"I" => Some(MitReason::Instalment),
            _ => None,
        }
    }
}

/// DE 48.20: electronic commerce indicator of 3-D Secure, two digits (`05` authenticated, `06`
/// attempted, `07` not authenticated).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eci([u8; 2]);

impl Eci {
    /// `05`: the cardholder was fully authenticated.
    pub const AUTHENTICATED: Eci = Eci(*b"05");
    /// `06`: authentication was attempted; the issuer or the card does not take part.
    pub const ATTEMPTED: Eci = Eci(*b"06");
    /// `07`: not authenticated.
    pub const NOT_AUTHENTICATED: Eci = Eci(*b"07");

    /// Two digits, as the 3-D Secure server reports them.
    pub fn parse(value: &str) -> Option<Eci> {
        let v: [u8; 2] = value.as_bytes().try_into().ok()?;
        v.iter().all(u8::is_ascii_digit).then_some(Eci(v))
    }

    /// The two digits of DE 48.20.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Eci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Eci({})", self.as_str())
    }
}

/// DE 48.21: the cardholder authentication value the ACS issued, 28 characters of base64.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cavv([u8; 28]);

impl Cavv {
    /// Exactly 28 characters of the base64 alphabet, as the ACS issued them.
    pub fn parse(value: &str) -> Option<Cavv> {
        let v: [u8; 28] = value.as_bytes().try_into().ok()?;
        v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
            .then_some(Cavv(v))
    }

    /// The 28 characters of DE 48.21.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Cavv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cavv({})", self.as_str())
    }
}

/// DE 48.23: the 3-D Secure directory server's transaction ID, a UUID in its 36-character form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DsTransactionId([u8; 36]);

impl DsTransactionId {
    /// A UUID in its hyphenated 36-character form (8-4-4-4-12 hex digits).
    pub fn parse(value: &str) -> Option<DsTransactionId> {
        let v: [u8; 36] = value.as_bytes().try_into().ok()?;
        let shaped = v.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        shaped.then_some(DsTransactionId(v))
    }

    /// The 36 characters of DE 48.23.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for DsTransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DsTransactionId({})", self.as_str())
    }
}

/// DE 3: the processing codes of `spec/iso8583.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessingCode {
    /// `000000`: goods and services.
    Purchase,
    /// `200000`: refund (return) to the card.
    Refund,
}

impl ProcessingCode {
    /// The six digits of DE 3.
    pub fn code(self) -> &'static [u8; 6] {
        match self {
            ProcessingCode::Purchase => b"000000",
            ProcessingCode::Refund => b"200000",
        }
    }

    /// Reads DE 3; `None` for a code this dialect does not use.
    pub fn from_code(code: &[u8]) -> Option<ProcessingCode> {
        match code {
            b"000000" => Some(ProcessingCode::Purchase),
            b"200000" => Some(ProcessingCode::Refund),
            _ => None,
        }
    }
}

/// Tags of DE 48, named as `spec/iso8583.md` names them.
pub mod tag {
    /// 01, request: the credential-on-file indicator ([`super::CofIndicator`]).
    pub const COF_INDICATOR: u8 = 1;
    /// 02, request: why the merchant started it ([`super::MitReason`]); only with 01 = `M`.
    pub const MIT_REASON: u8 = 2;
    /// 03, request and response: the network transaction ID of a first use, quoted by later MITs.
    pub const NETWORK_TRANSACTION_ID: u8 = 3;
    /// 10, request: the card's CVC2, three or four digits; must never be logged or stored.
    pub const CVC2: u8 = 10;
    /// 20, request: the 3-D Secure electronic commerce indicator ([`super::Eci`]).
    pub const ECI: u8 = 20;
    /// 21, request: the cardholder authentication value from the ACS ([`super::Cavv`]).
    pub const CAVV: u8 = 21;
    /// 22, request: the 3-D Secure protocol version, e.g. `2.2.0`.
    pub const THREE_DS_VERSION: u8 = 22;
    /// 23, request: the directory server's transaction ID ([`super::DsTransactionId`]).
    pub const DS_TRANSACTION_ID: u8 = 23;
    /// 30, response: the CVC2 check, `M` match, `N` no match, `P` not processed.
    pub const CVC2_RESULT: u8 = 30;
    /// 31, response: the authentication value check, `2` valid, `1` invalid, `0` not checked.
    pub const CAVV_RESULT: u8 = 31;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mti_responses() {
        assert_eq!(Mti::AUTH_REQUEST.response(), Some(Mti::AUTH_RESPONSE));
        assert_eq!(
            Mti::REVERSAL_ADVICE_REPEAT.response(),
            Some(Mti::REVERSAL_ADVICE_RESPONSE)
        );
        assert_eq!(
            Mti::COMPLETION_ADVICE.response(),
            Some(Mti::COMPLETION_ADVICE_RESPONSE)
        );
        assert_eq!(Mti::NETWORK_RESPONSE.response(), None);
        assert_eq!(Mti::from_ascii(b"0421"), Some(Mti::REVERSAL_ADVICE_REPEAT));
        assert_eq!(Mti::from_ascii(b"04a1"), None);
        assert_eq!(Mti::AUTH_REQUEST.to_string(), "0100");
    }

    #[test]
    fn bounded_values() {
        assert!(Stan::new(1_000_000).is_none());
        assert_eq!(&Stan::new(42).unwrap().to_ascii(), b"000042");
        assert_eq!(Amount(Amount::MAX + 1).to_ascii(), None);
        assert_eq!(Rrn::from_number(7).unwrap().as_str(), "000000000007");
        assert_eq!(
            ResponseCode::from_ascii(b"1A"),
            Some(ResponseCode::AUTHENTICATION_REQUIRED)
        );
        assert_eq!(ResponseCode::from_ascii(b"1"), None);
        assert!(TransmissionTime::from_ascii(b"1123040506").is_some());
        assert!(
            TransmissionTime::from_ascii(b"1323040506").is_none(),
            "month 13"
        );
        assert!(TransmissionTime::from_ascii(b"112304050").is_none());
        assert_eq!(Eci::parse("05"), Some(Eci::AUTHENTICATED));
        assert!(Eci::parse("5").is_none());
        assert!(Cavv::parse("AAABBZEAAAAAAAAAAAAAAAAAAAA=").is_some());
        assert!(Cavv::parse("short").is_none());
        assert!(DsTransactionId::parse("f2b1c6a4-1d2e-4f00-9a7b-0123456789ab").is_some());
        assert!(DsTransactionId::parse("f2b1c6a4x1d2e-4f00-9a7b-0123456789ab").is_none());
        assert_eq!(
            ProcessingCode::from_code(b"200000"),
            Some(ProcessingCode::Refund)
        );
    }
}
