//! The test cards, named for what a test wants of them. One table for every test, bench and the
//! end-to-end walkthrough, so that a test says `LOW_BALANCE` instead of a number whose meaning
//! lives elsewhere.
//!
//! The behaviour stays where it is decided: the simulator's issuer table
//! (`simulator::cards::TEST_CARDS`, repeated in its README). [`profile`] reads it, and this
//! module's tests check each name against it, so a name cannot drift from what the issuer does.
//! Holds only the literal numbers of that table (and two numbers that are deliberately not in it).

pub use simulator::cards::{CardProfile, Enrolment, Standing, TEST_CVC};

/// [`TEST_CVC`] as a page's form or an API call types it.
pub const CVC: &str = "123";
/// The one-time code that passes the simulator ACS's challenge.
pub use simulator::acs::CHALLENGE_CODE;

/// Visa, approved; 3-D Secure by challenge (code `1234`).
pub const VISA_CHALLENGE: &str = "4111111111111111";
/// Mastercard, approved; 3-D Secure frictionless (ECI 05).
pub const MC_FRICTIONLESS: &str = "5555555555554444";
/// Mir, approved; 3-D Secure by challenge (code `1234`).
pub const MIR_CHALLENGE: &str = "2200000000000004";
/// Visa, approved; not enrolled (the ACS answers with an attempt, ECI 06).
pub const PLAIN_APPROVED: &str = "4242424242424242";
/// Reported stolen: every authorization gets `05`.
pub const STOLEN: &str = "4000000000000002";
/// Account closed as expired whatever DE 14 says: `54`.
pub const EXPIRED_ACCOUNT: &str = "4000000000000069";
/// A small opening balance (100.00): `51` once approvals exceed it.
pub const LOW_BALANCE: &str = "4000000000009995";
/// Every cardholder payment needs a valid 3-D Secure result, else `1A`.
pub const ALWAYS_3DS: &str = "4000000000003220";
/// At most 3 approvals per 60 s, then `65`.
pub const VELOCITY: &str = "4000000000000259";
/// A Luhn-valid Mastercard that is not in the table: the issuer's default profile.
pub const UNLISTED: &str = "5105105105105100";
/// Fails the Luhn check: `14`.
pub const LUHN_INVALID: &str = "4111111111111112";

/// How the simulator's issuer and ACS treat `number`: its row of the simulator's table, or the
/// default profile for an unlisted number.
pub fn profile(number: &str) -> CardProfile {
    simulator::cards::profile(number.as_bytes())
}

/// `number` masked as every log, ledger and listing shows it (first 6, last 4).
pub fn masked(number: &str) -> String {
    card::mask_digits(number.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(number: &str) -> bool {
        simulator::cards::TEST_CARDS
            .iter()
            .any(|(n, _)| *n == number)
    }

    #[test]
    fn each_name_says_what_the_simulator_does() {
        let default = profile(UNLISTED);
        assert!(!listed(UNLISTED));
        for approved in [
            VISA_CHALLENGE,
            MC_FRICTIONLESS,
            MIR_CHALLENGE,
            PLAIN_APPROVED,
        ] {
            let p = profile(approved);
            assert!(listed(approved), "{approved}");
            assert_eq!(p.standing, Standing::Active);
            assert!(!p.always_3ds && p.velocity.is_none());
            assert!(p.opening_balance > default.opening_balance);
        }
        assert_eq!(profile(VISA_CHALLENGE).enrolment, Enrolment::Challenge);
        assert_eq!(profile(MIR_CHALLENGE).enrolment, Enrolment::Challenge);
        assert_eq!(profile(MC_FRICTIONLESS).enrolment, Enrolment::Frictionless);
        assert_eq!(profile(PLAIN_APPROVED).enrolment, Enrolment::Attempts);
        assert_eq!(profile(STOLEN).standing, Standing::Stolen);
        assert_eq!(profile(EXPIRED_ACCOUNT).standing, Standing::Expired);
        assert!(profile(LOW_BALANCE).opening_balance < default.opening_balance);
        assert!(profile(ALWAYS_3DS).always_3ds);
        assert_eq!(profile(VELOCITY).velocity.map(|(n, _)| n), Some(3));
        for named in [STOLEN, EXPIRED_ACCOUNT, LOW_BALANCE, ALWAYS_3DS, VELOCITY] {
            assert!(listed(named), "{named}");
        }
        assert!(!card::Pan::parse(LUHN_INVALID).unwrap().luhn_valid());
        assert_eq!(CVC.as_bytes(), TEST_CVC);
    }
}
