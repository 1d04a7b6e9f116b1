//! Whose a saved card is and what it is called: [`MerchantId`], [`CustomerNumber`] and
//! [`Token`], and which payment a card is used for ([`PaymentRef`]). The vault keys its records
//! by them, the link names the card of a reversal by them
//! ([`MerchantId`] is also DE 42 on the wire: the dev merchant 452739 is the same number in the
//! Assist API and in ISO 8583), so they live in this leaf crate that both depend on.
//!
//! Owns what characters each may hold. None of them is card data; each must never admit a
//! separator of a storage key, whitespace, a quote or markup.

use std::fmt;

/// Why a name was refused. Messages never contain the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A customer number with a character outside the allowed set, empty or over 32: the caller's.
    #[error("CustomerNumber must be 1 to 32 characters from A-Z a-z 0-9 . _ - @ +")]
    CustomerNumber,
    /// A merchant ID with a character outside the allowed set, empty or over 32: the caller's.
    #[error("merchant id must be 1 to 32 characters from A-Z a-z 0-9 . _ -")]
    MerchantId,
    /// A token that is not a UUID: the caller's, or a mistyped token.
    #[error("token must be a UUID")]
    Token,
    /// A payment reference with a character outside the allowed set, empty or over 64.
    #[error("payment reference must be 1 to 64 characters from A-Z a-z 0-9 . _ - :")]
    PaymentRef,
}

/// A name of at most `N` ASCII bytes, kept inline rather than in a `String`, so that parsing or
/// cloning one never allocates: the link's card and transaction references carry three of them
/// and are built, cloned into a prepared request and compared on every payment's send path (an
/// allocation per name and per copy before). The names stay `Clone` only, not `Copy`, so callers
/// keep saying where a copy is made. Unused bytes stay zero, so the derived equality and hash are
/// those of the text; order is the text's, as it was for the `String`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `s` when it is 1 to `N` ASCII letters, digits or bytes of `extra`.
    fn parse(s: &str, extra: &[u8]) -> Option<Inline<N>> {
        let valid = (1..=N).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
        if !valid {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Inline {
            len: u8::try_from(s.len()).ok()?,
            bytes,
        })
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never falls back.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> PartialOrd for Inline<N> {
    fn partial_cmp(&self, other: &Inline<N>) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for Inline<N> {
    fn cmp(&self, other: &Inline<N>) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// A saved card's public name: a random UUID v4, meaningless without the vault.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub uuid::Uuid);

impl Token {
    /// A new token for a card being saved: random, so it says nothing about the card.
    pub fn random() -> Token {
        Token(uuid::Uuid::new_v4())
    }
    /// The UUID's sixteen bytes, as the vault keys its records by them.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
    /// The token whose bytes [`Token::as_bytes`] gave, read back from a stored key.
    pub fn from_bytes(b: [u8; 16]) -> Token {
        Token(uuid::Uuid::from_bytes(b))
    }
    /// As Assist writes tokens: upper-case hyphenated.
    pub fn parse(s: &str) -> Result<Token, NameError> {
        uuid::Uuid::parse_str(s)
            .map(Token)
            .map_err(|_| NameError::Token)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.0
                .hyphenated()
                .encode_upper(&mut uuid::Uuid::encode_buffer())
        )
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({self})")
    }
}

/// The merchant's own number for a customer. Assist allows "up to 32 symbols"; we allow ASCII
/// letters, digits and `. _ - @ +` (enough for numeric ids, UUIDs and e-mail addresses) and nothing
/// else, so that a customer number can never carry a separator of our storage keys, whitespace, a
/// quote or markup into a key, a log line or a payment page.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerNumber(Inline<32>);

impl CustomerNumber {
    /// One to 32 ASCII letters, digits or `. _ - @ +`; [`NameError::CustomerNumber`] otherwise.
    pub fn parse(s: &str) -> Result<CustomerNumber, NameError> {
        Inline::parse(s, b"._-@+")
            .map(CustomerNumber)
            .ok_or(NameError::CustomerNumber)
    }
    /// The customer number as the merchant gave it.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for CustomerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerNumber({})", self.as_str())
    }
}

/// Assist's Merchant_ID, which the link also sends as DE 42 (card acceptor ID, at most 15
/// characters there: the codec refuses a longer one when the message is built).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantId(Inline<32>);

impl MerchantId {
    /// One to 32 ASCII letters, digits or `. _ -`; [`NameError::MerchantId`] otherwise.
    pub fn parse(s: &str) -> Result<MerchantId, NameError> {
        Inline::parse(s, b"._-")
            .map(MerchantId)
            .ok_or(NameError::MerchantId)
    }
    /// The merchant ID as Assist and DE 42 write it.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantId({})", self.as_str())
    }
}

/// The payment a detokenize is for: the order engine's own reference of one payment attempt (an
/// extended billnumber such as `1234567890123456.1`, or any id unique per attempt). The vault
/// binds a detokenize grant, the reversal of that payment and the recording of its success to it;
/// it is not card data. No space (the link's card reference is space-separated), no separator of
/// a storage key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentRef(Inline<64>);

impl PaymentRef {
    /// One to 64 ASCII letters, digits or `. _ - :`; [`NameError::PaymentRef`] otherwise.
    pub fn parse(s: &str) -> Result<PaymentRef, NameError> {
        Inline::parse(s, b"._-:")
            .map(PaymentRef)
            .ok_or(NameError::PaymentRef)
    }
    /// The reference as the order engine gave it.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for PaymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentRef({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_text_and_limits() {
        let longest = "a".repeat(32);
        assert_eq!(MerchantId::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(
            MerchantId::parse(&"a".repeat(33)),
            Err(NameError::MerchantId)
        );
        assert_eq!(MerchantId::parse(""), Err(NameError::MerchantId));
        assert_eq!(MerchantId::parse("a b"), Err(NameError::MerchantId));
        assert_eq!(MerchantId::parse("é"), Err(NameError::MerchantId));
        assert_eq!(
            CustomerNumber::parse("cust-42@example.com")
                .unwrap()
                .as_str(),
            "cust-42@example.com"
        );
        assert_eq!(CustomerNumber::parse("a:b"), Err(NameError::CustomerNumber));
        let payment = "1234567890123456.1:".repeat(3);
        assert_eq!(PaymentRef::parse(&payment).unwrap().as_str(), payment);
        assert_eq!(
            PaymentRef::parse(&"1".repeat(65)),
            Err(NameError::PaymentRef)
        );
        assert_eq!(
            format!("{:?}", MerchantId::parse("452739").unwrap()),
            "MerchantId(452739)"
        );
    }

    #[test]
    fn names_order_as_their_text() {
        // As the `String`s they replaced: a shorter prefix first, then byte by byte.
        let mut ids: Vec<MerchantId> = ["b", "ab", "a", "B", "aa"]
            .iter()
            .map(|s| MerchantId::parse(s).unwrap())
            .collect();
        ids.sort();
        let sorted: Vec<&str> = ids.iter().map(MerchantId::as_str).collect();
        assert_eq!(sorted, ["B", "a", "aa", "ab", "b"]);
    }
}

/// Which of a customer's saved cards a payment may use: the vault grants a detokenize only for
/// a card this allows, so a token the merchant could not have shown is declined like an unknown
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardUse {
    /// Any card saved for the customer: an MIT on its agreement, or the payment that saved it.
    OnFile,
    /// Only a card the merchant may offer the shopper (it reached the merchant's threshold of
    /// successful payments and has not expired): Token Pay and One Click.
    Offered,
}
