//! The names of orders and operations: [`BillNumber`] (ours, 16 digits), [`OperationRef`] (the
//! extended billnumber `<billnumber>.<n>`) and [`OrderNumber`] (the merchant's).
//!
//! Owns their formats and the making of new billnumbers. Must never accept a name that could
//! carry a storage-key separator into a key unescaped (order numbers are hex-encoded in keys by
//! `persist`).

use std::fmt;

use card::{CustomerNumber, PaymentRef};
use serde::{Deserialize, Serialize};

/// Our unique number of an order: 16 digits, the first never 0, so it always prints as 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BillNumber(u64);

impl BillNumber {
    const MIN: u64 = 1_000_000_000_000_000;
    const MAX: u64 = 9_999_999_999_999_999;

    /// A number of 16 digits; `None` otherwise (the facade reads 15-digit input as its own
    /// number with a leading zero, which is not one of ours, so it is simply not found).
    pub fn new(n: u64) -> Option<BillNumber> {
        (Self::MIN..=Self::MAX)
            .contains(&n)
            .then_some(BillNumber(n))
    }

    /// A random one; `persist` checks it is unused before the order is written.
    pub(crate) fn random() -> BillNumber {
        BillNumber(rand::Rng::gen_range(
            &mut rand::thread_rng(),
            Self::MIN..=Self::MAX,
        ))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The vault owner of a card held for this order's payment only, `h<billnumber>`: a name of
    /// the order rather than of a customer, so the held card is never among a customer's cards.
    pub fn held_card_owner(self) -> CustomerNumber {
        // `h` and sixteen digits: always within CustomerNumber's alphabet and length.
        CustomerNumber::parse(&format!("h{self}"))
            .expect("h and a billnumber is a valid customer number")
    }

    /// The order whose held card `owner` names, when it is such a name.
    pub fn of_held_card_owner(owner: &CustomerNumber) -> Option<BillNumber> {
        let digits = owner.as_str().strip_prefix('h')?;
        if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        BillNumber::new(digits.parse().ok()?)
    }
}

impl fmt::Display for BillNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}", self.0)
    }
}

/// An operation inside an order, `<billnumber>.<n>`: `.1` the payment, then each charge or
/// cancel in the order it was asked for. The vault binds a detokenize to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OperationRef {
    /// The order.
    pub bill: BillNumber,
    /// The operation's number inside it, from 1.
    pub number: u32,
}

impl fmt::Display for OperationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.bill, self.number)
    }
}

impl OperationRef {
    /// The reference the vault binds a detokenize (and a later reversal) to.
    pub fn payment_ref(&self) -> PaymentRef {
        // Sixteen digits, a dot and a number: always within PaymentRef's alphabet and length.
        PaymentRef::parse(&self.to_string())
            .expect("an extended billnumber is a valid payment reference")
    }
}

/// The merchant's own number of an order (`OrderNumber`, up to 128 characters). Several of our
/// orders (payment attempts) may share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderNumber(String);

/// Why text is not an [`OrderNumber`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("OrderNumber must be 1 to 128 characters without control characters")]
pub struct BadOrderNumber;

impl OrderNumber {
    /// 1 to 128 characters, none of them a control character.
    pub fn parse(s: &str) -> Result<OrderNumber, BadOrderNumber> {
        let n = s.chars().count();
        if (1..=128).contains(&n) && !s.chars().any(char::is_control) {
            Ok(OrderNumber(s.to_owned()))
        } else {
            Err(BadOrderNumber)
        }
    }

    /// The text as the merchant sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_billnumber_is_sixteen_digits_and_an_operation_extends_it() {
        assert!(BillNumber::new(999_999_999_999_999).is_none());
        let b = BillNumber::random();
        assert_eq!(b.to_string().len(), 16);
        let op = OperationRef { bill: b, number: 3 };
        assert_eq!(op.to_string(), format!("{b}.3"));
    }

    #[test]
    fn a_held_cards_owner_names_its_order_and_only_its_order() {
        let b = BillNumber::random();
        let owner = b.held_card_owner();
        assert_eq!(owner.as_str(), format!("h{b}"));
        assert_eq!(BillNumber::of_held_card_owner(&owner), Some(b));
        for other in ["cust-1", &format!("b{b}"), "h123", "h0123456789012345"] {
            let c = CustomerNumber::parse(other).unwrap();
            assert_eq!(BillNumber::of_held_card_owner(&c), None, "{other}");
        }
    }

    #[test]
    fn an_order_number_refuses_empty_long_and_control_text() {
        assert!(OrderNumber::parse("A20042011_28").is_ok());
        assert!(OrderNumber::parse("").is_err());
        assert!(OrderNumber::parse(&"x".repeat(129)).is_err());
        assert!(OrderNumber::parse("a\nb").is_err());
    }
}
