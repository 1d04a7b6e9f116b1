//! Why a payment (or a charge, a refund) did not go through: [`DeclineReason`], and the ONE
//! exhaustive table from a reason to its DE 39, its Assist `responsecode` and the category a
//! payment page shows the shopper (`spec/iso8583.md` "Response codes", `spec/assist-api.md`
//! "Codes").
//!
//! Owns that table, in [`DeclineReason::codes`]: a new reason does not compile until it has a
//! row. Must never hold card data, and never invent a DE 39 for a reason that never reached the
//! network.

use iso8583::ResponseCode;
use serde::{Deserialize, Serialize};

/// Why an operation was declined: by the issuer (a DE 39), by the network's rules, or by us
/// before anything was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeclineReason {
    /// DE 39 `05`: do not honour.
    DoNotHonour,
    /// DE 39 `12`: invalid transaction (e.g. an MIT quoting an unknown network ID).
    InvalidTransaction,
    /// DE 39 `13`: invalid amount.
    InvalidAmount,
    /// DE 39 `14`: invalid card number.
    InvalidCard,
    /// DE 39 `30`: format error.
    FormatError,
    /// DE 39 `51`: insufficient funds.
    InsufficientFunds,
    /// DE 39 `54`: expired card.
    ExpiredCard,
    /// DE 39 `57`: not permitted to the cardholder.
    NotPermitted,
    /// DE 39 `61`: the card's amount limit.
    CardAmountLimit,
    /// DE 39 `65`: the card's frequency limit.
    CardFrequencyLimit,
    /// DE 39 `1A`: 3-D Secure required (or its result was refused).
    AuthenticationRequired,
    /// DE 39 `N7`: CVC2 mismatch.
    CvcMismatch,
    /// DE 39 `91`: issuer or switch unavailable.
    IssuerUnavailable,
    /// DE 39 `94`: duplicate transmission.
    Duplicate,
    /// DE 39 `96`: system malfunction at the network.
    NetworkMalfunction,
    /// A DE 39 outside the spec's table; the raw code is kept on the transaction.
    OtherIssuerCode,
    /// Ours, before the network: the customer's daily or weekly turnover limit.
    TurnoverLimit,
    /// Ours, before the network: the token is unknown, removed, inactive or another
    /// customer's. Never paid with another card instead.
    UnknownCard,
    /// Ours, before the network: a card being saved (first use) needs a 3-D Secure result.
    ThreeDsMissing,
    /// The request went out and no answer came in time: the link reversed it.
    NoAnswer,
    /// Nothing was sent: no connection to the processing centre.
    NetworkUnavailable,
    /// Nothing was sent, or the outcome was lost: a fault of ours.
    SystemError,
}

/// The Assist `responsecode` of an operation (`AS000`…`AS998`); the facade turns
/// [`AssistCode::as_str`] into `assist::ResponseCode` one-to-one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssistCode {
    /// `AS000` approved.
    Approved,
    /// `AS100` declined, generic.
    Declined,
    /// `AS101` card number or parameters.
    CardOrParameters,
    /// `AS102` insufficient funds.
    InsufficientFunds,
    /// `AS104` expired.
    Expired,
    /// `AS105` card limit.
    CardLimit,
    /// `AS107` data error.
    DataError,
    /// `AS109` gateway limit (the customer's turnover).
    GatewayLimit,
    /// `AS110` 3-D Secure required.
    ThreeDsRequired,
    /// `AS200` repeat later.
    RepeatLater,
    /// `AS300` in progress.
    InProgress,
    /// `AS998` system error.
    SystemError,
}

impl AssistCode {
    /// The text on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AssistCode::Approved => "AS000",
            AssistCode::Declined => "AS100",
            AssistCode::CardOrParameters => "AS101",
            AssistCode::InsufficientFunds => "AS102",
            AssistCode::Expired => "AS104",
            AssistCode::CardLimit => "AS105",
            AssistCode::DataError => "AS107",
            AssistCode::GatewayLimit => "AS109",
            AssistCode::ThreeDsRequired => "AS110",
            AssistCode::RepeatLater => "AS200",
            AssistCode::InProgress => "AS300",
            AssistCode::SystemError => "AS998",
        }
    }
}

/// What a payment page tells the shopper, without the detail a fraudster could probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShopperReason {
    /// The bank declined; ask it or use another card.
    DeclinedByBank,
    /// Not enough money on the card.
    InsufficientFunds,
    /// The CVC2 was wrong.
    WrongCvc,
    /// The card has expired.
    Expired,
    /// The card number or its details were wrong.
    WrongCardDetails,
    /// 3-D Secure failed or was not done.
    ThreeDsFailed,
    /// A spending limit (the card's or the shop's) was reached.
    LimitReached,
    /// A saved card cannot be used any more.
    CardUnavailable,
    /// Try again a little later.
    TryLater,
}

/// One row of the decline table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclineCodes {
    /// The network's code, when the reason came from (or went through) the network.
    pub de39: Option<ResponseCode>,
    /// The merchant's `responsecode`.
    pub assist: AssistCode,
    /// The shopper's category.
    pub shopper: ShopperReason,
}

impl DeclineReason {
    /// The table. Exhaustive on purpose: no wildcard arm.
    pub fn codes(self) -> DeclineCodes {
        use AssistCode as A;
        use DeclineReason as R;
        use ShopperReason as S;
        let (de39, assist, shopper) = match self {
            R::DoNotHonour => (
                Some(ResponseCode::DO_NOT_HONOUR),
                A::Declined,
                S::DeclinedByBank,
            ),
            R::InvalidTransaction => (
                Some(ResponseCode::INVALID_TRANSACTION),
                A::Declined,
                S::DeclinedByBank,
            ),
            R::InvalidAmount => (
                Some(ResponseCode::INVALID_AMOUNT),
                A::Declined,
                S::DeclinedByBank,
            ),
            R::InvalidCard => (
                Some(ResponseCode::INVALID_CARD),
                A::CardOrParameters,
                S::WrongCardDetails,
            ),
            R::FormatError => (Some(ResponseCode::FORMAT_ERROR), A::DataError, S::TryLater),
            R::InsufficientFunds => (
                Some(ResponseCode::INSUFFICIENT_FUNDS),
                A::InsufficientFunds,
                S::InsufficientFunds,
            ),
            R::ExpiredCard => (Some(ResponseCode::EXPIRED_CARD), A::Expired, S::Expired),
            R::NotPermitted => (
                Some(ResponseCode::NOT_PERMITTED),
                A::Declined,
                S::DeclinedByBank,
            ),
            R::CardAmountLimit => (
                Some(ResponseCode::EXCEEDS_AMOUNT_LIMIT),
                A::CardLimit,
                S::LimitReached,
            ),
            R::CardFrequencyLimit => (
                Some(ResponseCode::EXCEEDS_FREQUENCY),
                A::CardLimit,
                S::LimitReached,
            ),
            R::AuthenticationRequired => (
                Some(ResponseCode::AUTHENTICATION_REQUIRED),
                A::ThreeDsRequired,
                S::ThreeDsFailed,
            ),
            R::CvcMismatch => (Some(ResponseCode::CVC_MISMATCH), A::Declined, S::WrongCvc),
            R::IssuerUnavailable => (
                Some(ResponseCode::ISSUER_UNAVAILABLE),
                A::RepeatLater,
                S::TryLater,
            ),
            R::Duplicate => (
                Some(ResponseCode::DUPLICATE),
                A::Declined,
                S::DeclinedByBank,
            ),
            R::NetworkMalfunction => (
                Some(ResponseCode::SYSTEM_MALFUNCTION),
                A::SystemError,
                S::TryLater,
            ),
            R::OtherIssuerCode => (None, A::Declined, S::DeclinedByBank),
            R::TurnoverLimit => (None, A::GatewayLimit, S::LimitReached),
            R::UnknownCard => (None, A::CardOrParameters, S::CardUnavailable),
            R::ThreeDsMissing => (None, A::ThreeDsRequired, S::ThreeDsFailed),
            R::NoAnswer | R::NetworkUnavailable => (None, A::RepeatLater, S::TryLater),
            R::SystemError => (None, A::SystemError, S::TryLater),
        };
        DeclineCodes {
            de39,
            assist,
            shopper,
        }
    }

    /// The reasons the network gives, looked up by their DE 39 (`00` is not a decline).
    pub fn of_de39(code: ResponseCode) -> Option<DeclineReason> {
        if code.is_approved() {
            return None;
        }
        Some(
            DeclineReason::ALL
                .into_iter()
                .find(|r| r.codes().de39 == Some(code))
                .unwrap_or(DeclineReason::OtherIssuerCode),
        )
    }

    /// Every reason, for lookups and tests.
    pub const ALL: [DeclineReason; 22] = [
        DeclineReason::DoNotHonour,
        DeclineReason::InvalidTransaction,
        DeclineReason::InvalidAmount,
        DeclineReason::InvalidCard,
        DeclineReason::FormatError,
        DeclineReason::InsufficientFunds,
        DeclineReason::ExpiredCard,
        DeclineReason::NotPermitted,
        DeclineReason::CardAmountLimit,
        DeclineReason::CardFrequencyLimit,
        DeclineReason::AuthenticationRequired,
        DeclineReason::CvcMismatch,
        DeclineReason::IssuerUnavailable,
        DeclineReason::Duplicate,
        DeclineReason::NetworkMalfunction,
        DeclineReason::OtherIssuerCode,
        DeclineReason::TurnoverLimit,
        DeclineReason::UnknownCard,
        DeclineReason::ThreeDsMissing,
        DeclineReason::NoAnswer,
        DeclineReason::NetworkUnavailable,
        DeclineReason::SystemError,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec/iso8583.md`'s table, row by row.
    #[test]
    fn every_de39_of_the_spec_maps_to_its_assist_code() {
        let spec = [
            ("05", "AS100"),
            ("12", "AS100"),
            ("13", "AS100"),
            ("14", "AS101"),
            ("30", "AS107"),
            ("51", "AS102"),
            ("54", "AS104"),
            ("57", "AS100"),
            ("61", "AS105"),
            ("65", "AS105"),
            ("1A", "AS110"),
            ("N7", "AS100"),
            ("91", "AS200"),
            ("94", "AS100"),
            ("96", "AS998"),
        ];
        for (de39, assist) in spec {
            let code = ResponseCode::from_ascii(de39.as_bytes()).unwrap();
            let reason = DeclineReason::of_de39(code).unwrap();
            assert_eq!(reason.codes().assist.as_str(), assist, "{de39}");
            assert_eq!(reason.codes().de39, Some(code), "{de39} round trip");
        }
        assert_eq!(DeclineReason::of_de39(ResponseCode::APPROVED), None);
        let odd = ResponseCode::from_ascii(b"Q9").unwrap();
        assert_eq!(
            DeclineReason::of_de39(odd),
            Some(DeclineReason::OtherIssuerCode)
        );
    }

    #[test]
    fn our_own_reasons_have_no_de39_and_the_limit_is_as109() {
        for r in [
            DeclineReason::TurnoverLimit,
            DeclineReason::UnknownCard,
            DeclineReason::ThreeDsMissing,
            DeclineReason::NoAnswer,
            DeclineReason::NetworkUnavailable,
            DeclineReason::SystemError,
        ] {
            assert_eq!(r.codes().de39, None, "{r:?}");
        }
        assert_eq!(
            DeclineReason::TurnoverLimit.codes().assist.as_str(),
            "AS109"
        );
        assert_eq!(
            DeclineReason::CvcMismatch.codes().shopper,
            ShopperReason::WrongCvc
        );
    }
}
