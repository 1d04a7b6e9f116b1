//! The names of orders and operations: [`BillNumber`] (ours, 16 digits), [`OperationRef`] (the
//! extended billnumber `<billnumber>.<n>`) and [`OrderNumber`] (the merchant's).
//!
//! Owns their formats and the making of new billnumbers. Must never accept a name that could
//! carry a storage-key separator into a key unescaped (order numbers are hex-encoded in keys by
//! `persist`).

use std::fmt;

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
    fn an_order_number_refuses_empty_long_and_control_text() {
        assert!(OrderNumber::parse("A20042011_28").is_ok());
        assert!(OrderNumber::parse("").is_err());
        assert!(OrderNumber::parse(&"x".repeat(129)).is_err());
        assert!(OrderNumber::parse("a\nb").is_err());
    }
}
