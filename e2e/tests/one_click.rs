//! The whole system end to end: the One Click walkthrough across the real `simulator` and `vault`
//! binaries and the authorizer's link, every step's outcome, the reconciliation with the
//! simulator's ledger, the vault's audit chain, and no test PAN at rest in any data directory.

use std::path::{Path, PathBuf};

use e2e::summary::{Expect, Outcome, StepName};
use e2e::walkthrough::{TEST_PAN, TEST_PAN_MASKED};
use e2e::{WalkthroughConfig, run};
use testkit::processes::Binaries;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_walkthrough_across_the_real_processes() {
    let binaries = Binaries::locate().expect("vault and simulator binaries");
    let dir = tempfile::tempdir().unwrap();
    let config = WalkthroughConfig {
        binaries,
        data_dir: dir.path().join("run"),
    };
    let summary = run(&config).await.expect("walkthrough runs to the end");
    let step = |name| {
        summary
            .step(name)
            .unwrap_or_else(|| panic!("step {name:?} missing:\n{summary}"))
    };

    let Outcome::Saved { token, created } = &step(StepName::SaveCard).outcome else {
        panic!("{summary}")
    };
    assert!(created, "a new card gets a new token");
    match &step(StepName::ListBeforePayment).outcome {
        Outcome::Listed { status, cards } => {
            assert_eq!(
                status, "Member",
                "saving a card makes the customer a Member"
            );
            assert!(
                cards.is_empty(),
                "not listed before the threshold of 1 success"
            );
        }
        other => panic!("{other:?}"),
    }
    match &step(StepName::ThreeDSecure).outcome {
        Outcome::Authenticated {
            status,
            eci,
            cavv_present,
            ..
        } => {
            assert_eq!(status, "Y", "challenge passed with 1234");
            assert_eq!(eci.as_deref(), Some("05"));
            assert!(cavv_present);
        }
        other => panic!("{other:?}"),
    }
    let first_use = step(StepName::FirstUse);
    let Outcome::Approved {
        network_txn_id: Some(network_txn_id),
        recorded: true,
        ..
    } = &first_use.outcome
    else {
        panic!("first use not approved with a network id:\n{summary}")
    };
    assert!(!network_txn_id.is_empty());
    match &step(StepName::ListAfterPayment).outcome {
        Outcome::Listed { status, cards } => {
            assert_eq!(status, "Member");
            assert_eq!(cards.len(), 1, "{summary}");
            let c = &cards[0];
            assert_eq!(&c.token, token, "the saved card is the one listed");
            assert_eq!(c.masked, TEST_PAN_MASKED);
            assert_eq!(c.brand, "VISA");
            assert!(c.active && c.need_cvc);
        }
        other => panic!("{other:?}"),
    }
    for name in [StepName::OneClick, StepName::Recurring] {
        assert!(
            matches!(
                step(name).outcome,
                Outcome::Approved {
                    network_txn_id: None,
                    recorded: true,
                    ..
                }
            ),
            "{name:?}:\n{summary}"
        );
    }
    for (name, code) in [(StepName::CvcMismatch, "N7"), (StepName::AmountLimit, "61")] {
        assert_eq!(
            step(name).outcome,
            Outcome::Declined { code: code.into() },
            "{summary}"
        );
        assert_eq!(step(name).expected, Expect::Declined(code));
    }
    assert_eq!(
        step(StepName::LostAnswer).outcome,
        Outcome::TimedOutReversed {
            reversal: "Acknowledged".into()
        },
        "{summary}"
    );
    assert!(summary.steps.iter().all(|s| s.ok()), "{summary}");

    // Every payment went out as a 0200 with its own STAN and RRN, on the masked test card.
    let payments: Vec<_> = summary
        .steps
        .iter()
        .filter_map(|s| s.payment.as_ref().map(|p| (s, p)))
        .collect();
    assert_eq!(payments.len(), 6);
    for (s, p) in &payments {
        assert_eq!(p.mti, 200);
        assert_eq!(p.rrn.len(), 12);
        assert_eq!(s.card, TEST_PAN_MASKED);
    }
    let mut stans: Vec<_> = payments.iter().map(|(_, p)| p.stan).collect();
    stans.sort_unstable();
    stans.dedup();
    assert_eq!(stans.len(), 6, "one STAN per payment");

    // The network saw exactly what the walkthrough saw, and the money adds up. The lost payment
    // was booked and then reversed once, with DE 2 found again through the vault.
    let r = &summary.reconciliation;
    let lost = step(StepName::LostAnswer).payment.as_ref().unwrap();
    assert_eq!(
        r.ledger_reversals,
        vec![(lost.stan, TEST_PAN_MASKED.to_owned())],
        "{summary}"
    );
    assert_eq!(r.walkthrough_reversals, r.ledger_reversals);
    assert_eq!(
        (r.cards_resolved, r.cards_unresolved),
        (1, 0),
        "the reversal's PAN came from the vault"
    );
    assert_eq!(r.walkthrough_approvals.len(), 3);
    assert_eq!(r.walkthrough_approvals, r.ledger_approvals);
    assert_eq!(r.walkthrough_declines.len(), 2);
    assert_eq!(r.walkthrough_declines, r.ledger_declines);
    assert_eq!(r.approved_amount, 1_500 + 2_500 + 990);
    assert_eq!(r.card_debited, 4_990);
    assert!(r.balances_add_up);
    assert!(summary.ok());

    assert!(
        summary.audit.starts_with("audit log intact"),
        "vault audit verify: {}",
        summary.audit
    );

    // The simulator wrote the run's ledger file (JSON lines, flushed at its graceful stop).
    let ledger_file = config.simulator_dir().join("ledger.jsonl");
    let lines = std::fs::read_to_string(&ledger_file).unwrap();
    let entries: Vec<simulator::LedgerEntry> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        entries
            .iter()
            .any(|e| e.action == simulator::Action::Reversed && e.card_present),
        "the lost payment's reversal, with DE 2, is in {}",
        ledger_file.display()
    );
    assert!(
        entries.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "gap-free"
    );

    // No PAN in what the walkthrough reports, nor at rest anywhere it ran.
    let printed = format!("{summary}\n{summary:?}");
    assert!(!printed.contains(TEST_PAN), "PAN in the summary");
    let files = files(&config.data_dir);
    for must in [
        config.vault_dir().join("data").join("vault.redb"),
        config.authorizer_dir().join("authorizer.redb"),
    ] {
        assert!(files.contains(&must), "{} was scanned", must.display());
    }
    let utf16: Vec<u8> = TEST_PAN.bytes().flat_map(|b| [b, 0]).collect();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, TEST_PAN.as_bytes()) && !contains(&bytes, &utf16),
            "test PAN found in {}",
            file.display()
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}
