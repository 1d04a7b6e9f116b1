//! The link under the simulator's faults: time-outs and reversals, store-and-forward across a
//! restart of the link, late responses, dropped connections, malformed responses, out-of-order
//! answers, back-pressure past the in-flight limit, fail-over, and a reconciliation under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use link::{ConnectionState, LinkOutcome, ReversalState};
use simulator::{Action, Fault, FaultMatch, FaultRule, Faults, Latency};
use testkit::cards::*;
use testkit::network::*;

fn rule(mti: Option<u16>, fault: Fault, probability: f64) -> FaultRule {
    FaultRule {
        matches: FaultMatch {
            mti,
            amount: None,
            card: None,
        },
        fault,
        probability,
    }
}

/// The ledger entries that changed money for the request with this STAN and RRN.
fn approved_then_reversed(ledger: &simulator::Ledger, stan: u32, rrn: &str) -> (bool, usize) {
    let approved = ledger.approval(stan, rrn).is_some();
    let reversals = ledger
        .applied_reversals()
        .filter(|e| {
            e.original.as_ref().is_some_and(|(_, s)| *s == stan) && e.rrn.as_deref() == Some(rrn)
        })
        .count();
    (approved, reversals)
}

#[tokio::test]
async fn no_answer_is_reversed_and_store_and_forward_delivers_after_a_restart() {
    // The authorization is processed but never answered (magic amount 9901); every reversal is
    // swallowed too, so the reversal ends in store-and-forward.
    let faults = Faults {
        rules: vec![
            rule(Some(400), Fault::NoResponse, 1.0),
            rule(Some(420), Fault::NoResponse, 1.0),
            rule(Some(421), Fault::NoResponse, 1.0),
        ],
        ..Faults::default()
    };
    let net = Net::start(faults).await;
    let outcome = net.pay(PLAIN_APPROVED, 9901).await;
    let LinkOutcome::TimedOutReversed {
        reference,
        reversal,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(reversal, ReversalState::Queued);
    assert_eq!(net.link.pending_reversals().unwrap().len(), 1);
    assert_eq!(
        net.link.metrics().reversals_pending.load(Ordering::Relaxed),
        1
    );

    // The link goes down with the reversal still queued, and the network comes back.
    let Net {
        sim,
        link,
        vault,
        dir,
    } = net;
    link.shutdown().await;
    let on_disk = std::fs::read(dir.path().join("authorizer.redb")).unwrap();
    assert!(
        !on_disk.windows(16).any(|w| w == PLAIN_APPROVED.as_bytes()),
        "no PAN in the store"
    );
    let token = reference.card.token.to_string();
    assert!(
        on_disk.windows(token.len()).any(|w| w == token.as_bytes()),
        "the record names the card by its token"
    );
    sim.handle.set_faults(Faults::default());
    let link = start_link(
        fast_link_config(&sim.pki, &[sim.handle.iso_addr]),
        &dir,
        &vault,
    );
    assert_eq!(
        link.metrics().reversals_pending.load(Ordering::Relaxed),
        1,
        "restored from the store"
    );
    let m = link.metrics();
    testkit::eventually("store-and-forward to drain", async || {
        m.reversals_pending.load(Ordering::Relaxed) == 0
    })
    .await;
    assert!(link.pending_reversals().unwrap().is_empty());

    let ledger = sim.handle.ledger();
    let (approved, reversed) =
        approved_then_reversed(&ledger, reference.stan.value(), reference.rrn.as_str());
    assert!(approved, "the network did approve the unanswered request");
    assert_eq!(reversed, 1, "applied exactly once");
    let kinds: Vec<&str> = ledger
        .entries
        .iter()
        .map(|e| e.mti.as_str())
        .filter(|m| m.starts_with("04"))
        .collect();
    assert_eq!(kinds.first(), Some(&"0400"));
    assert!(
        kinds.contains(&"0420") || kinds.contains(&"0421"),
        "{kinds:?}"
    );
    let card = ledger.balance(&masked(PLAIN_APPROVED)).unwrap();
    assert_eq!(card.opening, card.current, "money back where it was");
    link.shutdown().await;
}

#[tokio::test]
async fn late_response_after_reversal_is_ignored() {
    let faults = Faults {
        late_delay: Duration::from_millis(700),
        ..Faults::default()
    };
    let net = Net::start(faults).await;
    let outcome = net.pay(PLAIN_APPROVED, 9902).await;
    let LinkOutcome::TimedOutReversed {
        reference,
        reversal,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(reversal, ReversalState::Acknowledged);
    let m = net.link.metrics();
    testkit::eventually("the late answer", async || {
        m.late_responses.load(Ordering::Relaxed) == 1
    })
    .await;
    let ledger = net.sim.handle.ledger();
    assert_eq!(
        approved_then_reversed(&ledger, reference.stan.value(), reference.rrn.as_str()),
        (true, 1)
    );
    let card = ledger.balance(&masked(PLAIN_APPROVED)).unwrap();
    assert_eq!(card.opening, card.current);
}

#[tokio::test]
async fn dropped_connection_reconnects_and_the_lost_request_is_reversed() {
    let net = Net::start(Faults::default()).await;
    let outcome = net.pay(PLAIN_APPROVED, 9903).await;
    let LinkOutcome::TimedOutReversed {
        reference,
        reversal,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(reversal, ReversalState::Acknowledged);
    // All connections dropped by the network: the pool reconnects and signs on again.
    net.sim.handle.disconnect_all();
    let m = net.link.metrics();
    testkit::eventually("reconnects", async || {
        m.slots
            .iter()
            .map(|s| s.connects.load(Ordering::Relaxed))
            .sum::<u64>()
            >= 4
    })
    .await;
    assert!(net.link.wait_ready(Duration::from_secs(10)).await);
    assert!(matches!(
        net.pay(PLAIN_APPROVED, 1_000).await,
        LinkOutcome::Approved { .. }
    ));
    let ledger = net.sim.handle.ledger();
    assert_eq!(
        approved_then_reversed(&ledger, reference.stan.value(), reference.rrn.as_str()),
        (true, 1)
    );
}

#[tokio::test]
async fn malformed_response_is_counted_and_the_request_reversed() {
    let net = Net::start(Faults::default()).await;
    let outcome = net.pay(PLAIN_APPROVED, 9904).await;
    assert!(
        matches!(outcome, LinkOutcome::TimedOutReversed { .. }),
        "{outcome:?}"
    );
    assert!(
        net.link
            .metrics()
            .malformed_responses
            .load(Ordering::Relaxed)
            >= 1
    );
    let ledger = net.sim.handle.ledger();
    let card = ledger.balance(&masked(PLAIN_APPROVED)).unwrap();
    assert_eq!(card.opening, card.current);
}

#[tokio::test]
async fn out_of_order_answers_reach_their_own_waiters() {
    let faults = Faults {
        latency: Latency::Uniform {
            min_ms: 0,
            max_ms: 40,
        },
        seed: testkit::faults::seed("out_of_order_answers_reach_their_own_waiters"),
        ..Faults::default()
    };
    let net = Arc::new(Net::start_with(faults, |c| c.connections = 1).await);
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            (1_000 + i, net.pay(PLAIN_APPROVED, 1_000 + i).await)
        }));
    }
    let ledger_wait = futures::future::join_all(tasks).await;
    let ledger = net.sim.handle.ledger();
    let mut seqs = Vec::new();
    for r in ledger_wait {
        let (amount, outcome) = r.unwrap();
        let LinkOutcome::Approved {
            reference,
            approval_code,
            ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        let entry = ledger
            .approval(reference.stan.value(), reference.rrn.as_str())
            .expect("in the ledger");
        // Matched to the right request: the network's amount and approval code are ours.
        assert_eq!(entry.amount, Some(amount));
        assert_eq!(entry.approval_code.as_deref(), Some(approval_code.as_str()));
        seqs.push(entry.seq);
    }
    assert_eq!(seqs.len(), 60);
}

#[tokio::test]
async fn a_burst_past_the_in_flight_limit_waits_instead_of_failing() {
    let faults = Faults {
        latency: Latency::Fixed { ms: 20 },
        ..Faults::default()
    };
    let net = Arc::new(
        Net::start_with(faults, |c| {
            c.connections = 1;
            c.max_in_flight = 4;
            c.request_timeout = Duration::from_secs(5);
        })
        .await,
    );
    let peak = Arc::new(AtomicI64::new(0));
    let m = net.link.metrics();
    let watcher = {
        let (peak, m) = (peak.clone(), m.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(m.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let net = net.clone();
            tokio::spawn(async move { net.pay(PLAIN_APPROVED, 100).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), LinkOutcome::Approved { .. }));
    }
    watcher.abort();
    let peak = peak.load(Ordering::Relaxed);
    assert!((1..=4).contains(&peak), "peak in flight {peak}");
    assert_eq!(net.sim.handle.ledger().approvals().count(), 40);
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint() {
    let sim = Sim::start(Faults::default()).await;
    // An address with nobody listening, first in the list.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(TestVault::default());
    let link = start_link(
        fast_link_config(&sim.pki, &[dead, sim.handle.iso_addr]),
        &dir,
        &vault,
    );
    assert!(link.wait_ready(Duration::from_secs(10)).await);
    let m = link.metrics();
    assert!((0..2).any(|s| m.state(s) == ConnectionState::Up));
    assert!(
        m.render()
            .contains(&format!("endpoint=\"{}\"}} 3", sim.handle.iso_addr))
    );
    link.shutdown().await;
}

#[tokio::test]
async fn refused_handshake_keeps_retrying_until_the_network_lets_us_in() {
    let sim = Sim::start(Faults {
        refuse_handshake: true,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(TestVault::default());
    let link = start_link(
        fast_link_config(&sim.pki, &[sim.handle.iso_addr]),
        &dir,
        &vault,
    );
    assert!(!link.wait_ready(Duration::from_millis(300)).await);
    assert!(matches!(
        link.authorize(link::AuthorizationRequest {
            kind: link::TransactionKind::Purchase,
            pan: &card::Pan::parse(PLAIN_APPROVED).unwrap(),
            expiry: future_expiry(),
            cvc: None,
            card: net_card(),
            amount: iso8583::Amount(1),
            currency: link::Currency::RUB,
            cof: link::CredentialOnFile::None,
            three_ds: None,
            merchant: merchant(),
        })
        .await,
        Err(link::AuthorizeError::Unavailable(
            link::Unavailable::NoConnection
        ))
    ));
    sim.handle.set_faults(Faults::default());
    assert!(link.wait_ready(Duration::from_secs(10)).await);
    link.shutdown().await;
}

#[tokio::test]
async fn reconciliation_under_load_with_faults() {
    let faults = Faults {
        latency: Latency::Uniform {
            min_ms: 0,
            max_ms: 5,
        },
        late_delay: Duration::from_millis(600),
        rules: vec![
            rule(Some(200), Fault::NoResponse, 0.03),
            rule(Some(200), Fault::Late, 0.03),
            rule(Some(200), Fault::DropConnection, 0.01),
            rule(Some(200), Fault::Malformed, 0.01),
            rule(Some(400), Fault::NoResponse, 0.3),
        ],
        seed: testkit::faults::seed("reconciliation_under_load_with_faults"),
        ..Faults::default()
    };
    let net = Arc::new(Net::start_with(faults, |c| c.connections = 3).await);
    let cards = [PLAIN_APPROVED, MC_FRICTIONLESS, UNLISTED, LOW_BALANCE];
    // Sixteen shoppers at a time, 25 payments each.
    let tasks: Vec<_> = (0..16u64)
        .map(|w| {
            let net = net.clone();
            tokio::spawn(async move {
                let mut done = Vec::new();
                for j in 0..25u64 {
                    let i = w * 25 + j;
                    let card = cards[(i % 4) as usize];
                    let cof = link::CredentialOnFile::None;
                    let kind = link::TransactionKind::Purchase;
                    done.push((
                        card,
                        net.pay_with(kind, card, 100 + i, cof, None, Some("123"))
                            .await,
                    ));
                }
                done
            })
        })
        .collect();
    // A request that was never written (its connection dropped first) is an error, not an
    // outcome: the orphan check below proves the network did not keep it either.
    let mut outcomes = Vec::new();
    let mut not_sent = 0;
    for t in tasks {
        for done in t.await.unwrap() {
            match done {
                (card, Ok(outcome)) => outcomes.push((card, outcome)),
                (
                    _,
                    Err(link::AuthorizeError::Unavailable(
                        link::Unavailable::NotWritten | link::Unavailable::NoConnection,
                    )),
                ) => not_sent += 1,
                (_, Err(e)) => panic!("{e}"),
            }
        }
    }
    assert!(not_sent < 40, "{not_sent} not sent");
    let m = net.link.metrics();
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while m.reversals_pending.load(Ordering::Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "store-and-forward did not drain: {:?}\n{}",
        net.link.pending_reversals(),
        m.render()
    );
    // Late answers still in the air are harmless (never applied) but let the ledger settle.
    let ledger = net.sim.handle.ledger();

    let mut believed_debits: std::collections::BTreeMap<String, i64> = Default::default();
    let (mut approved, mut reversed) = (0, 0);
    for (card, outcome) in &outcomes {
        let r = outcome.reference();
        let (net_approved, reversals) =
            approved_then_reversed(&ledger, r.stan.value(), r.rrn.as_str());
        match outcome {
            LinkOutcome::Approved { approval_code, .. } => {
                approved += 1;
                assert!(
                    net_approved && reversals == 0,
                    "approval {} {}: network {net_approved} {reversals}",
                    r.stan,
                    r.rrn
                );
                let e = ledger.approval(r.stan.value(), r.rrn.as_str()).unwrap();
                assert_eq!(e.approval_code.as_deref(), Some(approval_code.as_str()));
                *believed_debits
                    .entry(card::mask_digits(card.as_bytes()))
                    .or_default() += r.amount.0 as i64;
            }
            LinkOutcome::Declined { .. } => assert!(!net_approved),
            LinkOutcome::TimedOutReversed { .. } => {
                reversed += 1;
                // Either the network never approved it, or it did and the reversal was applied once.
                assert_eq!(
                    reversals,
                    usize::from(net_approved),
                    "reversed {} {}",
                    r.stan,
                    r.rrn
                );
            }
        }
    }
    // A dropped connection takes every request in flight on it into reversal, so the split
    // varies from run to run; what must hold is that both paths were exercised.
    assert!(
        approved > 200 && reversed > 0,
        "approved {approved}, reversed {reversed}"
    );
    assert_eq!(outcomes.len() + not_sent, 400);
    // One acknowledgement per reversal: two senders of one record would each count theirs.
    assert_eq!(
        m.reversals_acknowledged.load(Ordering::Relaxed),
        reversed as u64,
        "{}",
        m.render()
    );
    // No orphan: every approval the network holds unreversed is one the link believes in.
    let believed: std::collections::HashSet<(u32, String)> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, LinkOutcome::Approved { .. }))
        .map(|(_, o)| {
            let r = o.reference();
            (r.stan.value(), r.rrn.as_str().to_owned())
        })
        .collect();
    for e in ledger.approvals() {
        let key = (e.stan.unwrap(), e.rrn.clone().unwrap());
        let reversed_once = approved_then_reversed(&ledger, key.0, &key.1).1 == 1;
        assert!(
            believed.contains(&key) ^ reversed_once,
            "orphan or double: {key:?}"
        );
    }
    // Balances: what the link believes was debited is exactly what the network moved.
    for (masked, debited) in believed_debits {
        let b = ledger.balance(&masked).unwrap();
        assert_eq!(b.opening - b.current, debited, "{masked}");
    }
    assert!(ledger.balances_add_up());
    assert!(
        ledger
            .entries
            .iter()
            .all(|e| !matches!(e.action, Action::Rejected { .. })),
        "no format errors"
    );
}

#[tokio::test]
async fn idle_connections_send_echo_tests() {
    let net = Net::start_with(Faults::default(), |c| {
        c.connections = 1;
        c.echo_interval = Duration::from_millis(30);
    })
    .await;
    let m = net.link.metrics();
    // One sign-on, then echo tests while nothing else happens.
    let seen_by_network = || {
        net.sim
            .handle
            .ledger()
            .entries
            .iter()
            .filter(|e| e.mti == "0800")
            .count()
    };
    testkit::eventually("echo tests", async || seen_by_network() >= 4).await;
    assert!(m.sent(iso8583::Mti::NETWORK_REQUEST) >= 4);
    assert_eq!(m.state(0), ConnectionState::Up);
}
