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
    SaveCard,
    ListBeforePayment,
    ThreeDSecure,
    FirstUse,
    ListAfterPayment,
    OneClick,
    Recurring,
    CvcMismatch,
    AmountLimit,
    LostAnswer,
}

impl StepName {
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
    pub mti: u16,
    pub stan: u32,
    pub rrn: String,
    /// Minor units.
    pub amount: u64,
}

/// A card as a One Click listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCardView {
    pub token: String,
    pub masked: String,
    pub brand: &'static str,
    /// `MM.YYYY`.
    pub expire: String,
    pub active: bool,
    pub need_cvc: bool,
}

/// What a step gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Saved {
        token: String,
        created: bool,
    },
    Listed {
        status: String,
        cards: Vec<ListedCardView>,
    },
    Authenticated {
        status: String,
        eci: Option<String>,
        cavv_present: bool,
        ds_trans_id: String,
    },
    Approved {
        approval_code: String,
        network_txn_id: Option<String>,
        /// The success was recorded in the vault (listing threshold, retention clock).
        recorded: bool,
    },
    Declined {
        code: String,
    },
    TimedOutReversed {
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
    Approved,
    /// Approved with the network's transaction ID (a first use).
    ApprovedWithNetworkId,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: StepName,
    /// Masked card, 6 + 4.
    pub card: String,
    pub payment: Option<Payment>,
    pub outcome: Outcome,
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
    /// reversal sent), and those it could not.
    pub cards_resolved: u64,
    pub cards_unresolved: u64,
    /// Opening minus current balance of the walkthrough's card in the ledger.
    pub card_debited: i64,
    /// Opening balance plus every entry's delta equals the current balance, for every card.
    pub balances_add_up: bool,
    /// Entries in the ledger (sign-ons included).
    pub ledger_entries: usize,
}

impl Reconciliation {
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
    pub steps: Vec<Step>,
    pub reconciliation: Reconciliation,
    /// `vault audit verify`'s verdict, run after the vault stopped.
    pub audit: String,
}

impl Summary {
    pub fn step(&self, name: StepName) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Every step as expected and the ledger reconciled.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(Step::ok) && self.reconciliation.ok()
    }
}

fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn signed_money(minor: i64) -> String {
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
