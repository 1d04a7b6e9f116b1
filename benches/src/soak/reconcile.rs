//! After the load: does every party agree on what happened? Every payment the soak was told was
//! approved is Approved in the authorizer (orderstate), approved in the simulator's ledger and
//! notified to the shop; every cancel's reversal was applied once; the ledger's balances add up,
//! and its net debit equals what the authorizer's final order states say was paid; no
//! notification was acknowledged twice; no card number or CVC in any file the run left.
//!
//! Owns the checks and the list of differences. It reads snapshots the runner gathered (the
//! journal, the final order states, the ledger file, the shop's forms); it queries nothing itself
//! except the files it greps.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use simulator::{Action, LedgerEntry};

use super::flows::{Attempt, Told};
use super::mix::Kind;

/// Differences listed in full; past this only counted.
const LISTED: usize = 50;

/// What the reconciliation checked and found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Orders created by the soak.
    pub orders: u64,
    /// Of which the soak was told were approved (or approved and then cancelled).
    pub told: u64,
    /// Ledger entries read.
    pub ledger_entries: u64,
    /// Notifications the shop received.
    pub notifications: u64,
    /// Files searched for card data.
    pub files_searched: u64,
    /// Notifications the shop acknowledged again because the outbox had not recorded its earlier
    /// acknowledgement (the try timed out first, or a crash cut off its record): at least once,
    /// as the outbox promises, so not a difference.
    pub resent: u64,
    /// Every difference found (the first [`LISTED`] in full).
    pub differences: Vec<String>,
    /// How many differences in all.
    pub difference_count: u64,
}

impl Reconciliation {
    fn differ(&mut self, what: String) {
        self.difference_count += 1;
        if self.differences.len() < LISTED {
            self.differences.push(what);
        }
    }

    /// Whether nothing differed.
    pub fn clean(&self) -> bool {
        self.difference_count == 0
    }

    /// The verdict as text.
    pub fn text(&self) -> String {
        let mut out = format!(
            "reconciliation: {} orders ({} told approved or cancelled), {} ledger entries, \
             {} notifications ({} acknowledged again, the earlier acknowledgement unrecorded), {} files \
             searched for card data: {}\n",
            self.orders,
            self.told,
            self.ledger_entries,
            self.notifications,
            self.resent,
            self.files_searched,
            if self.clean() {
                "no difference".to_owned()
            } else {
                format!("{} DIFFERENCES", self.difference_count)
            }
        );
        for d in &self.differences {
            let _ = writeln!(out, "difference: {d}");
        }
        out
    }
}

/// One notification the shop received and acknowledged.
#[derive(Debug, Clone)]
pub struct Notified {
    /// `billnumber` as sent (the order's, a dot, the operation's number).
    pub billnumber: String,
    /// `orderstate` as sent.
    pub orderstate: String,
    /// `slipno` as sent: the payment's RRN.
    pub slipno: String,
}

/// The notifications (`billnumber` as sent) the shop acknowledged more than once, each with how
/// many times: what the outbox's own record must explain.
pub fn acknowledged_again(notified: &[Notified]) -> BTreeMap<&str, usize> {
    let mut acked: BTreeMap<&str, usize> = BTreeMap::new();
    for n in notified {
        *acked.entry(n.billnumber.as_str()).or_default() += 1;
    }
    acked.retain(|_, times| *times > 1);
    acked
}

/// What the reconciliation reads.
#[derive(Debug)]
pub struct Evidence<'a> {
    /// Every order the soak created.
    pub attempts: &'a [Attempt],
    /// The authorizer's orderstate of each attempt (every attempt of its OrderNumber), or why it
    /// could not be asked.
    pub states: &'a [Result<Vec<String>, String>],
    /// The simulator's ledger, every entry of the run.
    pub ledger: &'a [LedgerEntry],
    /// The test cards the run used: (masked number, opening balance).
    pub cards: &'a [(String, i64)],
    /// Every notification acknowledged by the shop, in order.
    pub notified: &'a [Notified],
    /// For each notification [`acknowledged_again`], how many of its tries the outbox recorded as
    /// acknowledged (the authorizer's `/notifications/<bill>`); missing when it could not be
    /// read. A shop's acknowledgement can miss the outbox's record (its try timed out first, or
    /// the authorizer was killed before writing it), and then the outbox tries again: at least
    /// once, "a merchant may then see one twice, never none". Re-sending one it recorded as
    /// acknowledged is the difference.
    pub recorded_acks: &'a HashMap<String, usize>,
}

/// Runs every check but the file search ([`search_card_data`]).
pub fn reconcile(e: &Evidence<'_>) -> Reconciliation {
    let mut r = Reconciliation {
        orders: e.attempts.len() as u64,
        ledger_entries: e.ledger.len() as u64,
        notifications: e.notified.len() as u64,
        ..Reconciliation::default()
    };
    let approvals: HashMap<&str, &LedgerEntry> = e
        .ledger
        .iter()
        .filter(|l| l.action == Action::Approved)
        .filter_map(|l| Some((l.rrn.as_deref()?, l)))
        .collect();
    let mut reversals: HashMap<(String, u32), u64> = HashMap::new();
    for l in e.ledger.iter().filter(|l| l.action == Action::Reversed) {
        if let Some(original) = &l.original {
            *reversals.entry(original.clone()).or_default() += 1;
        }
    }
    for (original, n) in &reversals {
        if *n > 1 {
            r.differ(format!("reversal of {original:?} applied {n} times"));
        }
    }
    let mut notified: HashMap<&str, Vec<&str>> = HashMap::new();
    // The RRN of an order's approval as its notification gave it, for the orders whose answer
    // did not carry one (paid on the page).
    let mut notified_rrn: HashMap<&str, &str> = HashMap::new();
    for n in e.notified {
        let order = n.billnumber.split('.').next().unwrap_or_default();
        notified.entry(order).or_default().push(&n.orderstate);
        if n.orderstate == "Approved" && !n.slipno.is_empty() {
            notified_rrn.insert(order, &n.slipno);
        }
    }
    for (bill, times) in acknowledged_again(e.notified) {
        match e.recorded_acks.get(bill) {
            Some(recorded) if *recorded <= 1 => r.resent += 1,
            Some(recorded) => r.differ(format!(
                "notification {bill} acknowledged {times} times, {recorded} of them recorded by \
                 the outbox"
            )),
            None => r.differ(format!(
                "notification {bill} acknowledged {times} times; the outbox's record of it \
                 could not be read"
            )),
        }
    }

    let mut paid_per_authorizer: i64 = 0;
    for (a, state) in e.attempts.iter().zip(e.states) {
        let states = match state {
            Ok(states) => states,
            Err(why) => {
                r.differ(format!("{}: orderstate failed: {why}", a.order_number));
                continue;
            }
        };
        let amount = i64::try_from(a.amount_minor).unwrap_or(i64::MAX);
        // What the authorizer holds as paid: an authorization (Delayed) is debited too.
        paid_per_authorizer += states
            .iter()
            .filter(|s| matches!(s.as_str(), "Approved" | "Delayed"))
            .count() as i64
            * amount;
        // An order made for the page and never paid (its shopper's walk failed during a fault)
        // waits for its shopper, as in life; any other order must have been resolved.
        let unpaid_page = matches!(a.kind, Kind::First | Kind::Oneclick) && a.told.is_none();
        for s in states.iter().filter(|s| s.as_str() == "In Process") {
            if !unpaid_page {
                r.differ(format!(
                    "{} ({}): still {s} after the run",
                    a.order_number, a.kind
                ));
            }
        }
        let Some(told) = a.told else { continue };
        r.told += 1;
        let expected = told.orderstate();
        if states.as_slice() != [expected] {
            r.differ(format!(
                "{} ({}): told {expected}, the authorizer says {states:?}",
                a.order_number, a.kind
            ));
        }
        let bill = a.bill.as_deref().unwrap_or_default();
        let rrn = a.rrn.as_deref().or_else(|| notified_rrn.get(bill).copied());
        match rrn.and_then(|rrn| approvals.get(rrn)) {
            None => r.differ(format!(
                "{} ({}): told {expected}, no approval with RRN {rrn:?} in the ledger",
                a.order_number, a.kind
            )),
            Some(approval) => {
                if approval.amount != Some(a.amount_minor) {
                    r.differ(format!(
                        "{}: amount {} in the ledger, {} asked",
                        a.order_number,
                        approval.amount.unwrap_or_default(),
                        a.amount_minor
                    ));
                }
                let key = (approval.mti.clone(), approval.stan.unwrap_or_default());
                let reversed = reversals.get(&key).copied().unwrap_or(0);
                let refunded = told == Told::Canceled && reversed == 0;
                match told {
                    Told::Approved if reversed > 0 => r.differ(format!(
                        "{}: told Approved, reversed in the ledger",
                        a.order_number
                    )),
                    // A cancel after the order's settlement is a refund, which the ledger books
                    // as its own message; the balance check below covers it.
                    Told::Canceled if reversed != 1 && !refunded => r.differ(format!(
                        "{}: told Canceled, reversed {reversed} times",
                        a.order_number
                    )),
                    _ => {}
                }
            }
        }
        let got = notified.get(bill).cloned().unwrap_or_default();
        if !got.contains(&expected) {
            r.differ(format!(
                "{} (bill {bill}): told {expected}, the shop was notified {got:?}",
                a.order_number
            ));
        }
    }

    // The ledger explains every unit: each card's opening plus its deltas is its last balance.
    let mut last: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut net: i64 = 0;
    for l in e.ledger {
        net -= l.balance_delta;
        if let (Some(card), Some(after)) = (&l.card, l.balance_after) {
            let entry = last.entry(card.as_str()).or_insert((0, after));
            entry.0 += l.balance_delta;
            entry.1 = after;
        }
    }
    for (card, opening) in e.cards {
        if let Some((deltas, after)) = last.get(card.as_str())
            && opening + deltas != *after
        {
            r.differ(format!(
                "{card}: opening {opening} + deltas {deltas} != balance {after}"
            ));
        }
    }
    if net != paid_per_authorizer {
        r.differ(format!(
            "the ledger's net debit is {net}, the authorizer's Approved and Delayed orders \
             add up to {paid_per_authorizer}"
        ));
    }
    r
}

/// Searches every file under each of `roots` for each of `needles` (card numbers, and a CVC in
/// the shapes a form or JSON would carry it); each hit is a difference naming the file and which
/// needle, never the needle itself.
pub fn search_card_data(r: &mut Reconciliation, roots: &[PathBuf], needles: &[(String, Vec<u8>)]) {
    let mut files = Vec::new();
    for root in roots {
        walk(root, &mut files);
    }
    for file in files {
        r.files_searched += 1;
        match contains_any(&file, needles) {
            Ok(hits) => {
                for name in hits {
                    r.differ(format!("{name} found in {}", file.display()));
                }
            }
            Err(e) => r.differ(format!("cannot read {}: {e}", file.display())),
        }
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, files),
            // Sockets and such cannot be read; only regular files hold data.
            Ok(t) if t.is_file() => files.push(path),
            _ => {}
        }
    }
}

/// The names of the needles found in `file`, read in chunks that overlap by the longest needle.
fn contains_any(file: &Path, needles: &[(String, Vec<u8>)]) -> std::io::Result<Vec<String>> {
    let longest = needles.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut kept = 0;
    let mut found = vec![false; needles.len()];
    loop {
        let read = f.read(&mut buf[kept..])?;
        if read == 0 {
            break;
        }
        let filled = kept + read;
        let window = &buf[..filled];
        for (i, (_, needle)) in needles.iter().enumerate() {
            if !found[i]
                && window
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
            {
                found[i] = true;
            }
        }
        kept = longest.saturating_sub(1).min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
    Ok(needles
        .iter()
        .zip(found)
        .filter(|(_, f)| *f)
        .map(|((name, _), _)| name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, action: Action, rrn: &str, delta: i64, after: i64) -> LedgerEntry {
        LedgerEntry {
            seq,
            at_ms: 0,
            connection: 1,
            mti: if action == Action::Reversed {
                "0400"
            } else {
                "0200"
            }
            .into(),
            stan: Some(if action == Action::Reversed {
                9
            } else {
                seq as u32
            }),
            rrn: Some(rrn.into()),
            card: Some("424242******4242".into()),
            card_present: true,
            amount: Some(150),
            original: (action == Action::Reversed).then(|| ("0200".into(), 1)),
            response_code: Some("00".into()),
            approval_code: None,
            network_id: None,
            action,
            balance_delta: delta,
            balance_after: Some(after),
            delivery: simulator::Delivery::Sent,
        }
    }

    #[test]
    fn a_told_approval_missing_anywhere_and_a_double_reversal_are_differences() {
        let attempt = |n: &str, told, rrn: &str| Attempt {
            order_number: n.into(),
            amount_minor: 150,
            kind: Kind::Tokenpay,
            told,
            bill: Some(format!("b{n}")),
            rrn: Some(rrn.into()),
        };
        let attempts = [
            attempt("1", Some(Told::Canceled), "r1"),
            attempt("2", None, "r2"),
        ];
        let states = [Ok(vec!["Canceled".to_owned()]), Ok(vec![])];
        let ledger = [
            entry(1, Action::Approved, "r1", -150, 850),
            entry(2, Action::Reversed, "r1", 150, 1000),
        ];
        let cards = [("424242******4242".to_owned(), 1000)];
        let notified = [Notified {
            billnumber: "b1.2".into(),
            orderstate: "Canceled".into(),
            slipno: String::new(),
        }];
        let unread = HashMap::new();
        let evidence = Evidence {
            attempts: &attempts,
            states: &states,
            ledger: &ledger,
            cards: &cards,
            notified: &notified,
            recorded_acks: &unread,
        };
        let clean = reconcile(&evidence);
        assert!(clean.clean(), "{}", clean.text());

        let twice = [
            ledger[0].clone(),
            ledger[1].clone(),
            entry(3, Action::Reversed, "r1", 150, 1150),
        ];
        let states = [Ok(vec!["Approved".to_owned()]), Ok(vec![])];
        let twice_acked = [notified[0].clone(), notified[0].clone()];
        let recorded_twice = HashMap::from([("b1.2".to_owned(), 2)]);
        let r = reconcile(&Evidence {
            ledger: &twice,
            states: &states,
            notified: &twice_acked,
            recorded_acks: &recorded_twice,
            ..evidence
        });
        let text = r.text();
        for expected in [
            "applied 2 times",
            "acknowledged 2 times, 2 of them recorded",
            "the authorizer says",
            "net debit",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
    }

    #[test]
    fn a_notification_acknowledged_again_after_an_unrecorded_acknowledgement_is_no_difference() {
        let notified = [Notified {
            billnumber: "b1.1".into(),
            orderstate: "Approved".into(),
            slipno: "r1".into(),
        }];
        let twice_acked = [notified[0].clone(), notified[0].clone()];
        let recorded_once = HashMap::from([("b1.1".to_owned(), 1)]);
        let evidence = Evidence {
            attempts: &[],
            states: &[],
            ledger: &[],
            cards: &[],
            notified: &twice_acked,
            recorded_acks: &recorded_once,
        };
        let r = reconcile(&evidence);
        assert!(r.clean(), "{}", r.text());
        assert_eq!(r.resent, 1);

        let unread = HashMap::new();
        let r = reconcile(&Evidence {
            recorded_acks: &unread,
            ..evidence
        });
        assert!(r.text().contains("could not be read"), "{}", r.text());
    }

    #[test]
    fn card_data_is_found_across_chunk_boundaries_and_named_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![b'x'; (1 << 20) - 5];
        data.extend_from_slice(b"4242424242424242");
        std::fs::write(dir.path().join("big.log"), &data).unwrap();
        std::fs::write(dir.path().join("clean.log"), b"424242******4242").unwrap();
        let needles = [(
            "the PAN of PLAIN_APPROVED".to_owned(),
            b"4242424242424242".to_vec(),
        )];
        let mut r = Reconciliation::default();
        search_card_data(&mut r, &[dir.path().to_path_buf()], &needles);
        assert_eq!(r.files_searched, 2);
        assert_eq!(r.difference_count, 1, "{}", r.text());
        assert!(r.differences[0].contains("big.log"));
        assert!(!r.text().contains("4242424242424242"));
    }
}
