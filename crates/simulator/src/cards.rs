//! The table of test cards: how the simulated issuer treats each documented card number.
//!
//! Owns the profiles only (static facts: enrolment, status, opening balance, limits). Mutable
//! per-card state (balance, velocity window) lives in the issuer; this module must never hold a
//! PAN beyond the literal test numbers of the table.

use std::time::Duration;

/// Every test card's CVC2.
pub const TEST_CVC: &[u8] = b"123";

/// The opening balance (minor units) of a card not listed in the table.
pub const DEFAULT_BALANCE: i64 = 100_000_000;

/// How the ACS treats a card in 3-D Secure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolment {
    /// The cardholder must type the one-time code on the challenge page.
    Challenge,
    /// Authenticated without interaction (ECI 05).
    Frictionless,
    /// Not enrolled: the ACS answers with an attempt (ECI 06) and a CAVV.
    Attempts,
}

/// The issuer's standing verdict on a card, before any per-transaction check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In good standing: the per-transaction rules decide.
    Active,
    /// Reported stolen: every authorization gets 05.
    Stolen,
    /// Account closed as expired whatever DE 14 says: 54.
    Expired,
}

/// Static facts about one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardProfile {
    /// How the ACS authenticates the card (frictionless, attempt or challenge).
    pub enrolment: Enrolment,
    /// Whether the issuer declines the card outright, whatever the request.
    pub standing: Standing,
    /// Every cardholder-present authorization needs a valid 3-D Secure result, not only the
    /// first use of a stored credential.
    pub always_3ds: bool,
    /// The balance in minor units the card starts each run with; approvals draw on it, a balance
    /// below the amount gets 51.
    pub opening_balance: i64,
    /// At most this many approvals within the window; more get 65.
    pub velocity: Option<(u32, Duration)>,
}

const APPROVED: CardProfile = CardProfile {
    enrolment: Enrolment::Attempts,
    standing: Standing::Active,
    always_3ds: false,
    opening_balance: 1_000_000_000_000,
    velocity: None,
};

/// The documented test cards (crates/simulator/README.md repeats this table).
pub const TEST_CARDS: &[(&str, CardProfile)] = &[
    (
        "4111111111111111",
        CardProfile {
            enrolment: Enrolment::Challenge,
            ..APPROVED
        },
    ),
    (
        "5555555555554444",
        CardProfile {
            enrolment: Enrolment::Frictionless,
            ..APPROVED
        },
    ),
    (
        "2200000000000004",
        CardProfile {
            enrolment: Enrolment::Challenge,
            ..APPROVED
        },
    ),
    ("4242424242424242", APPROVED),
    (
        "4000000000000002",
        CardProfile {
            standing: Standing::Stolen,
            ..APPROVED
        },
    ),
    (
        "4000000000000069",
        CardProfile {
            standing: Standing::Expired,
            ..APPROVED
        },
    ),
    (
        "4000000000009995",
        CardProfile {
            opening_balance: 10_000,
            ..APPROVED
        },
    ),
    (
        "4000000000003220",
        CardProfile {
            enrolment: Enrolment::Challenge,
            always_3ds: true,
            ..APPROVED
        },
    ),
    (
        "4000000000000259",
        CardProfile {
            velocity: Some((3, Duration::from_secs(60))),
            ..APPROVED
        },
    ),
];

/// The profile of a card number: its table entry, or an active, non-enrolled card with
/// [`DEFAULT_BALANCE`] for any other Luhn-valid number.
pub fn profile(pan: &[u8]) -> CardProfile {
    TEST_CARDS
        .iter()
        .find(|(number, _)| number.as_bytes() == pan)
        .map_or(
            CardProfile {
                opening_balance: DEFAULT_BALANCE,
                ..APPROVED
            },
            |(_, p)| *p,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_card_is_luhn_valid_and_listed_once() {
        for (number, _) in TEST_CARDS {
            let pan = card::Pan::parse(number).unwrap();
            assert!(pan.luhn_valid(), "{pan:?}");
            assert_eq!(TEST_CARDS.iter().filter(|(n, _)| n == number).count(), 1);
        }
    }

    #[test]
    fn unlisted_cards_get_the_default_profile() {
        let p = profile(b"5105105105105100");
        assert_eq!(p.opening_balance, DEFAULT_BALANCE);
        assert_eq!(p.standing, Standing::Active);
        assert_eq!(profile(b"4000000000000002").standing, Standing::Stolen);
    }
}
