//! What a walkthrough saw: each step with its masked card, trace numbers and outcome, what the
//! step was expected to give, the reconciliation against the simulator's ledger and the vault's
//! audit verdict; printed as a table.
//!
//! Owns the summary's types and its rendering. Must never hold a PAN, a CVC or a CAVV: cards
//! appear masked (6 + 4) and 3-D Secure only as status, ECI and whether a CAVV came back.

use std::fmt;

/// The steps of the One Click walkthrough, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepName {
    /// 1: the facade tokenizes the test card for the customer.
    SaveCard,
    /// 2: the customer's cards listed before any payment: none yet (threshold 1).
    ListBeforePayment,
    /// 3: 3-D Secure at the simulator's ACS, the shopper answering the challenge.
    ThreeDSecure,
    /// 4: the first payment on the saved card (COF `I`, CVC2 and 3-D Secure).
    FirstUse,
    /// 5: the listing again, now showing the paid card.
    ListAfterPayment,
    /// 6: a One Click payment the shopper starts (CIT, COF `C`, CVC only).
    OneClick,
    /// 7: a recurring payment the merchant starts (MIT, COF `M`, reason `R`, no CVC).
    Recurring,
    /// 8: One Click with a wrong CVC2, which the issuer declines `N7`.
    CvcMismatch,
    /// 9: One Click for the magic amount 99.61, declined `61` (exceeds amount limit).
    AmountLimit,
    /// 10: One Click for the magic amount 99.01, never answered, so the link reverses it.
    LostAnswer,
}

impl StepName {
    /// The step's name in the summary's table.
    pub fn label(self) -> &'static str {
        match self {
            StepName::SaveCard => "save card (facade: tokenize)",
            StepName::ListBeforePayment => "list cards before any payment",
            StepName::ThreeDSecure => "3-D Secure at the ACS (code 1234)",
            StepName::FirstUse => "first use, COF I, CVC2 + 3DS",
            StepName::ListAfterPayment => "list cards after the payment",
            StepName::OneClick => "One Click CIT, COF C, CVC only",
            StepName::Recurring => "recurring MIT, COF M/R",
            StepName::CvcMismatch => "One Click with a wrong CVC2",
            StepName::AmountLimit => "One Click, magic amount 99.61",
            StepName::LostAnswer => "One Click, answer lost (99.01)",
        }
    }
}

/// The trace of one payment message, as the link assigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The message type (0200 for the walkthrough's purchases).
    pub mti: u16,
    /// DE 11, the systems trace audit number the link gave the message.
    pub stan: u32,
    /// DE 37, the retrieval reference number the ledger records it under.
    pub rrn: String,
    /// Minor units.
    pub amount: u64,
}

/// A card as a One Click listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCardView {
    /// The vault's token for the card, what the merchant keeps instead of the PAN.
    pub token: String,
    /// The PAN masked, first 6 and last 4 digits.
    pub masked: String,
    /// The card's payment system as Assist names it, such as `VISA`.
    pub brand: &'static str,
    /// `MM.YYYY`.
    pub expire: String,
    /// False once the card has expired.
    pub active: bool,
    /// Whether the shopper must type the CVC (always, One Click being customer-initiated).
    pub need_cvc: bool,
}

/// What a step gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The vault saved the card.
    Saved {
        /// The card's token.
        token: String,
        /// A new token, not a card saved before for this customer.
        created: bool,
    },
    /// The vault listed the customer's cards.
    Listed {
        /// The customer's One Click standing in the vault: new, member or denied.
        status: String,
        /// The cards shown, masked.
        cards: Vec<ListedCardView>,
    },
    /// The ACS answered the 3-D Secure authentication.
    Authenticated {
        /// The transaction status (`Y` authenticated).
        status: String,
        /// The Electronic Commerce Indicator, if the ACS gave one.
        eci: Option<String>,
        /// Whether a CAVV came back (never the CAVV itself).
        cavv_present: bool,
        /// The directory server's transaction ID.
        ds_trans_id: String,
    },
    /// The issuer approved the payment (response code `00`).
    Approved {
        /// DE 38, the issuer's approval code.
        approval_code: String,
        /// The network's transaction ID, which later MITs on the card quote.
        network_txn_id: Option<String>,
        /// The success was recorded in the vault (listing threshold, retention clock).
        recorded: bool,
    },
    /// The issuer declined the payment.
    Declined {
        /// DE 39, the response code.
        code: String,
    },
    /// No answer came in time, so the link reversed the payment.
    TimedOutReversed {
        /// What became of the reversal (`Acknowledged` when the network took it).
        reversal: String,
    },
}

/// What a step should give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A new token for a card not saved before.
    Created,
    /// This many listed cards, all active and needing the CVC.
    Listed(usize),
    /// `Y` with an ECI and a CAVV.
    Authenticated,
    /// Approved, and the success recorded in the vault.
    Approved,
    /// Approved with the network's transaction ID (a first use).
    ApprovedWithNetworkId,
    /// Declined with this response code.
    Declined(&'static str),
    /// No answer in time, and the network acknowledged the link's reversal.
    Reversed,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Created => f.write_str("new token"),
            Expect::Listed(n) => write!(f, "{n} listed"),
            Expect::Authenticated => f.write_str("Y + CAVV"),
            Expect::Approved => f.write_str("00"),
            Expect::ApprovedWithNetworkId => f.write_str("00 + NTI"),
            Expect::Declined(code) => f.write_str(code),
            Expect::Reversed => f.write_str("reversed"),
        }
    }
}

/// One step of the walkthrough: what was done, on which card, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which step.
    pub name: StepName,
    /// Masked card, 6 + 4.
    pub card: String,
    /// The payment message's trace, for the steps that send one.
    pub payment: Option<Payment>,
    /// What the step gave.
    pub outcome: Outcome,
    /// What it should have given.
    pub expected: Expect,
}

impl Step {
    /// Whether the outcome is what the step expected.
    pub fn ok(&self) -> bool {
        match (&self.expected, &self.outcome) {
            (Expect::Created, Outcome::Saved { created, .. }) => *created,
            (Expect::Listed(n), Outcome::Listed { cards, .. }) => {
                cards.len() == *n && cards.iter().all(|c| c.active && c.need_cvc)
            }
            (
                Expect::Authenticated,
                Outcome::Authenticated {
                    status,
                    eci,
                    cavv_present,
                    ..
                },
            ) => status == "Y" && eci.is_some() && *cavv_present,
            (Expect::Approved, Outcome::Approved { recorded, .. }) => *recorded,
            (
                Expect::ApprovedWithNetworkId,
                Outcome::Approved {
                    network_txn_id,
                    recorded,
                    ..
                },
            ) => *recorded && network_txn_id.is_some(),
            (Expect::Declined(want), Outcome::Declined { code }) => code == want,
            (Expect::Reversed, Outcome::TimedOutReversed { reversal }) => {
                reversal == "Acknowledged"
            }
            _ => false,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Saved { token, created } => {
                let how = if *created { "new" } else { "updated" };
                write!(f, "token {token} ({how})")
            }
            Outcome::Listed { status, cards } if cards.is_empty() => {
                write!(f, "{status}, no card listed yet")
            }
            Outcome::Listed { status, cards } => {
                write!(f, "{status}:")?;
                for c in cards {
                    let active = if c.active { "active" } else { "inactive" };
                    let cvc = if c.need_cvc { ", needCVC" } else { "" };
                    write!(f, " {} {} {} {active}{cvc}", c.brand, c.masked, c.expire)?;
                }
                Ok(())
            }
            Outcome::Authenticated {
                status,
                eci,
                cavv_present,
                ds_trans_id,
            } => {
                let eci = eci.as_deref().unwrap_or("-");
                let cavv = if *cavv_present { "yes" } else { "no" };
                write!(f, "{status} ECI {eci} CAVV {cavv} DS {ds_trans_id}")
            }
            Outcome::Approved {
                approval_code,
                network_txn_id,
                recorded,
            } => {
                write!(f, "00 approved, code {approval_code}")?;
                if let Some(id) = network_txn_id {
                    write!(f, ", NTI {id}")?;
                }
                if *recorded {
                    f.write_str(", recorded in vault")?;
                }
                Ok(())
            }
            Outcome::Declined { code } => write!(f, "{code} declined"),
            Outcome::TimedOutReversed { reversal } => write!(f, "timed out, reversal {reversal}"),
        }
    }
}

/// The walkthrough's view against the simulator's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// (STAN, RRN) of every approval the walkthrough saw, sorted.
    pub walkthrough_approvals: Vec<(u32, String)>,
    /// (STAN, RRN) of every approval in the ledger that no reversal undid, sorted.
    pub ledger_approvals: Vec<(u32, String)>,
    /// (STAN, masked card) of every payment the walkthrough saw timed out and reversed, sorted.
    pub walkthrough_reversals: Vec<(u32, String)>,
    /// (original STAN, masked card of DE 2) of every reversal the ledger applied, sorted. The card
    /// is there only if the link found the PAN again through the vault.
    pub ledger_reversals: Vec<(u32, String)>,
    /// (STAN, response code) of every decline the walkthrough saw, sorted.
    pub walkthrough_declines: Vec<(u32, String)>,
    /// (STAN, response code) of every decline in the ledger, sorted.
    pub ledger_declines: Vec<(u32, String)>,
    /// Sum of the approved amounts the walkthrough saw (minor units).
    pub approved_amount: u64,
    /// Card references the link's resolver turned back into a PAN through the vault (one per
    /// reversal sent).
    pub cards_resolved: u64,
    /// Card references the link's resolver could not turn back into a PAN; a reversal then
    /// goes without DE 2.
    pub cards_unresolved: u64,
    /// Opening minus current balance of the walkthrough's card in the ledger.
    pub card_debited: i64,
    /// Opening balance plus every entry's delta equals the current balance, for every card.
    pub balances_add_up: bool,
    /// Entries in the ledger (sign-ons included).
    pub ledger_entries: usize,
}

impl Reconciliation {
    /// Whether the ledger holds exactly the walkthrough's approvals, declines and reversals,
    /// every reversal found its card, and the card was debited exactly the approved amounts.
    pub fn ok(&self) -> bool {
        self.walkthrough_approvals == self.ledger_approvals
            && self.walkthrough_declines == self.ledger_declines
            && self.walkthrough_reversals == self.ledger_reversals
            && self.cards_unresolved == 0
            && self.cards_resolved >= self.walkthrough_reversals.len() as u64
            && i64::try_from(self.approved_amount) == Ok(self.card_debited)
            && self.balances_add_up
    }
}

/// Everything a walkthrough reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The walkthrough against the simulator's ledger.
    pub reconciliation: Reconciliation,
    /// `vault audit verify`'s verdict, run after the vault stopped.
    pub audit: String,
}

impl Summary {
    /// The named step, if the walkthrough got that far.
    pub fn step(&self, name: StepName) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Every step as expected and the ledger reconciled.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(Step::ok) && self.reconciliation.ok()
    }
}

/// Minor units as `12.34`.
pub(crate) fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Signed minor units as `-12.34`.
pub(crate) fn signed_money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}", money(minor.unsigned_abs()))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<2} {:<34} {:<16} {:<4} {:<6} {:<12} {:>7} {:<10} {:<3} result",
            "#", "step", "card", "MTI", "STAN", "RRN", "amount", "expected", "ok"
        )?;
        for (i, s) in self.steps.iter().enumerate() {
            let (mti, stan, rrn, amount) = match &s.payment {
                Some(p) => (
                    format!("{:04}", p.mti),
                    format!("{:06}", p.stan),
                    p.rrn.clone(),
                    money(p.amount),
                ),
                None => Default::default(),
            };
            writeln!(
                f,
                "{:<2} {:<34} {:<16} {:<4} {:<6} {:<12} {:>7} {:<10} {:<3} {}",
                i + 1,
                s.name.label(),
                s.card,
                mti,
                stan,
                rrn,
                amount,
                s.expected.to_string(),
                if s.ok() { "ok" } else { "NO" },
                s.outcome
            )?;
        }
        let r = &self.reconciliation;
        writeln!(f)?;
        writeln!(
            f,
            "ledger: {} entries; approvals walkthrough {} / ledger {}; declines walkthrough {} / ledger {}; reversals walkthrough {} / ledger {}",
            r.ledger_entries,
            r.walkthrough_approvals.len(),
            r.ledger_approvals.len(),
            r.walkthrough_declines.len(),
            r.ledger_declines.len(),
            r.walkthrough_reversals.len(),
            r.ledger_reversals.len()
        )?;
        writeln!(
            f,
            "reversal cards found again through the vault: {} (not found: {})",
            r.cards_resolved, r.cards_unresolved
        )?;
        writeln!(
            f,
            "balance: approved {} = card debited {}; balances add up: {}",
            money(r.approved_amount),
            signed_money(r.card_debited),
            r.balances_add_up
        )?;
        writeln!(
            f,
            "reconciliation: {}",
            if r.ok() { "OK" } else { "MISMATCH" }
        )?;
        writeln!(f, "vault audit: {}", self.audit)
    }
}
