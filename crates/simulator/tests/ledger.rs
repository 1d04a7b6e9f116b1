//! Reconciliation from the network's side: under concurrent connections with lost responses,
//! the ledger books every approval, applies each reversal exactly once, and explains every unit
//! of every balance.

use std::collections::HashSet;

use iso8583::{MessageBuilder, Mti, ReversalAttempt};
use simulator::{Action, Delivery, Fault, FaultMatch, FaultRule, Faults};
use testkit::cards::*;
use testkit::iso::*;
use testkit::network::Sim;

#[tokio::test]
async fn lost_responses_are_reversed_exactly_once_across_concurrent_connections() {
    let faults = Faults {
        rules: vec![FaultRule {
            matches: FaultMatch {
                mti: Some(200),
                ..FaultMatch::default()
            },
            fault: Fault::NoResponse,
            probability: 0.1,
        }],
        seed: testkit::faults::seed(
            "lost_responses_are_reversed_exactly_once_across_concurrent_connections",
        ),
        ..Faults::default()
    };
    let sim = Sim::start(faults).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut client = sim.client().await;
        tasks.push(tokio::spawn(async move {
            let requests: Vec<_> = (0..100)
                .map(|i| payment(Mti::FINANCIAL_REQUEST, MC_FRICTIONLESS, 10 + i, &[]))
                .collect();
            for request in &requests {
                client.send(request).await;
            }
            let marker = echo();
            client.send(&marker).await;
            // Unfaulted responses are written in request order: everything before the echo's
            // answer is every answer there will be.
            let mut answered = HashSet::new();
            loop {
                let response = client.recv().await.unwrap();
                if response.mti() == Mti::NETWORK_RESPONSE {
                    break;
                }
                assert_eq!(code(&response), "00");
                answered.insert(response.stan().unwrap());
            }
            let mut kept = 0;
            for request in requests
                .iter()
                .filter(|r| !answered.contains(&r.stan().unwrap()))
            {
                for mti in [Mti::REVERSAL_REQUEST, Mti::REVERSAL_ADVICE] {
                    let amount = request.amount().unwrap().0;
                    let response = client.call(&follow_up(mti, request, amount, None)).await;
                    assert_eq!(code(&response), "00");
                }
            }
            for request in requests
                .iter()
                .filter(|r| answered.contains(&r.stan().unwrap()))
            {
                kept += request.amount().unwrap().0;
            }
            (requests.len() - answered.len(), kept)
        }));
    }
    let mut lost = 0;
    let mut kept = 0;
    for task in tasks {
        let (l, k) = task.await.unwrap();
        lost += l;
        kept += k;
    }
    let ledger = sim.handle.ledger();
    assert_eq!(
        ledger.approvals().count(),
        400,
        "lost responses were approved all the same"
    );
    assert_eq!(
        ledger
            .approvals()
            .filter(|e| e.delivery == Delivery::NoResponse)
            .count(),
        lost
    );
    assert_eq!(ledger.applied_reversals().count(), lost);
    assert_eq!(
        ledger
            .entries
            .iter()
            .filter(|e| e.action == Action::ReversalRepeated)
            .count(),
        lost
    );
    let seqs: Vec<u64> = ledger.entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free sequence"
    );
    let balance = ledger.balance("555555******4444").unwrap();
    assert_eq!(
        balance.opening - balance.current,
        i64::try_from(kept).unwrap()
    );
    assert!(ledger.balances_add_up());
}

#[tokio::test]
async fn a_reversal_without_the_card_number_is_found_by_its_original_data() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let original = payment(Mti::FINANCIAL_REQUEST, VISA_CHALLENGE, 900, &[]);
    assert_eq!(code(&client.call(&original).await), "00");
    let advice = MessageBuilder::reversal(
        ReversalAttempt::Advice,
        &original_of(&original),
        None,
        None,
        &origin(next_stan()),
    );
    let response = client.call(&advice.build().unwrap()).await;
    assert_eq!(
        (response.mti(), code(&response).as_str()),
        (Mti::REVERSAL_ADVICE_RESPONSE, "00")
    );
    let ledger = sim.handle.ledger();
    assert_eq!(ledger.entries[1].action, Action::Reversed);
    assert_eq!(ledger.entries[1].card.as_deref(), Some("411111******1111"));
    assert!(ledger.balances_add_up());
    let balance = ledger.balance("411111******1111").unwrap();
    assert_eq!(balance.current, balance.opening);
}
