//! Fault injection, observed from the acquirer's side of a real TLS connection.

use std::time::Duration;

use iso8583::{Message, Mti};
use simulator::{Action, Delivery, Fault, FaultMatch, FaultRule, Faults, Latency};
use testkit::cards::*;
use testkit::iso::*;
use testkit::network::Sim;

fn delay_rule(amount: u64, ms: u64) -> FaultRule {
    FaultRule {
        matches: FaultMatch {
            amount: Some(amount),
            ..FaultMatch::default()
        },
        fault: Fault::Delay {
            latency: Latency::Fixed { ms },
        },
        probability: 1.0,
    }
}

#[tokio::test]
async fn a_slower_response_is_overtaken_on_the_same_connection() {
    let sim = Sim::start(Faults {
        rules: vec![delay_rule(111, 300)],
        ..Faults::default()
    })
    .await;
    let mut client = sim.client().await;
    let slow = payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 111, &[]);
    let fast = payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 222, &[]);
    client.send(&slow).await;
    client.send(&fast).await;
    let first = client.recv().await.unwrap();
    let second = client.recv().await.unwrap();
    assert_eq!(first.stan(), fast.stan());
    assert_eq!(second.stan(), slow.stan());
    let ledger = sim.handle.ledger();
    assert_eq!(ledger.entries[0].delivery, Delivery::Delayed { ms: 300 });
}

#[tokio::test]
async fn many_in_flight_with_random_latency_are_all_answered_once() {
    let faults = Faults {
        latency: Latency::Uniform {
            min_ms: 0,
            max_ms: 20,
        },
        seed: testkit::faults::seed("many_in_flight_with_random_latency_are_all_answered_once"),
        ..Faults::default()
    };
    let sim = Sim::start(faults).await;
    let mut client = sim.client().await;
    let requests: Vec<Message> = (0..200)
        .map(|i| payment(Mti::AUTH_REQUEST, MC_FRICTIONLESS, 100 + i, &[]))
        .collect();
    for request in &requests {
        client.send(request).await;
    }
    let mut stans = Vec::new();
    for _ in &requests {
        let response = client.recv().await.unwrap();
        assert_eq!(code(&response), "00");
        stans.push(response.stan().unwrap().value());
    }
    let mut expected: Vec<u32> = requests.iter().map(|r| r.stan().unwrap().value()).collect();
    expected.sort_unstable();
    stans.sort_unstable();
    assert_eq!(stans, expected);
}

#[tokio::test]
async fn no_response_still_books_the_approval_so_that_the_reversal_has_something_to_undo() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let lost = payment(
        Mti::FINANCIAL_REQUEST,
        VISA_CHALLENGE,
        simulator::faults::MAGIC_NO_RESPONSE,
        &[],
    );
    client.send(&lost).await;
    // Responses without faults are written in order: the echo's answer coming next proves that
    // none was written for the lost request.
    let echo = echo();
    let next = client.call(&echo).await;
    assert_eq!(next.mti(), Mti::NETWORK_RESPONSE);
    let reversed = client.call(&reversal(&lost)).await;
    assert_eq!(code(&reversed), "00");
    let ledger = sim.handle.ledger();
    assert_eq!(ledger.entries[0].action, Action::Approved);
    assert_eq!(ledger.entries[0].delivery, Delivery::NoResponse);
    assert_eq!(ledger.entries[2].action, Action::Reversed);
    let balance = ledger.balance("411111******1111").unwrap();
    assert_eq!(balance.current, balance.opening);
}

#[tokio::test]
async fn a_late_response_arrives_after_the_configured_delay() {
    let faults = Faults {
        late_delay: Duration::from_millis(200),
        ..Faults::default()
    };
    let sim = Sim::start(faults).await;
    let mut client = sim.client().await;
    let late = payment(
        Mti::AUTH_REQUEST,
        VISA_CHALLENGE,
        simulator::faults::MAGIC_LATE,
        &[],
    );
    client.send(&late).await;
    let started = tokio::time::Instant::now();
    client.send(&echo()).await;
    assert_eq!(client.recv().await.unwrap().mti(), Mti::NETWORK_RESPONSE);
    let response = client.recv().await.unwrap();
    assert_eq!(response.stan(), late.stan());
    assert_eq!(code(&response), "00");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        sim.handle.ledger().entries[0].delivery,
        Delivery::Late { ms: 200 }
    );
}

#[tokio::test]
async fn a_dropped_connection_cuts_a_response_in_half_and_the_next_connection_works() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    client
        .send(&payment(
            Mti::AUTH_REQUEST,
            VISA_CHALLENGE,
            simulator::faults::MAGIC_DROP_CONNECTION,
            &[],
        ))
        .await;
    match client.recv_frame().await {
        None | Some(Err(_)) => {}
        Some(Ok(_)) => panic!("a whole frame arrived instead of half of one"),
    }
    let mut again = sim.client().await;
    assert_eq!(
        code(
            &again
                .call(&payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 100, &[]))
                .await
        ),
        "00"
    );
}

#[tokio::test]
async fn a_malformed_response_is_a_frame_that_does_not_decode() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    client
        .send(&payment(
            Mti::AUTH_REQUEST,
            VISA_CHALLENGE,
            simulator::faults::MAGIC_MALFORMED,
            &[],
        ))
        .await;
    let frame = client.recv_frame().await.unwrap().unwrap();
    assert!(Message::decode(frame).is_err());
    assert_eq!(sim.handle.ledger().entries[0].delivery, Delivery::Malformed);
}

#[tokio::test]
async fn refused_handshakes_until_the_fault_is_switched_off() {
    let sim = Sim::start(Faults {
        refuse_handshake: true,
        ..Faults::default()
    })
    .await;
    assert!(
        IsoClient::connect(sim.handle.iso_addr, &sim.pki)
            .await
            .is_err()
    );
    sim.handle.set_faults(Faults::default());
    let mut client = sim.client().await;
    assert_eq!(client.call(&echo()).await.mti(), Mti::NETWORK_RESPONSE);
}

#[tokio::test]
async fn faults_by_mti_and_card_from_the_handle_and_disconnect_all() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    sim.handle.set_faults(Faults {
        rules: vec![FaultRule {
            matches: FaultMatch {
                mti: Some(400),
                card: Some(VISA_CHALLENGE.into()),
                ..FaultMatch::default()
            },
            fault: Fault::NoResponse,
            probability: 1.0,
        }],
        ..Faults::default()
    });
    let original = payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 100, &[]);
    assert_eq!(code(&client.call(&original).await), "00");
    client.send(&reversal(&original)).await;
    assert_eq!(client.call(&echo()).await.mti(), Mti::NETWORK_RESPONSE);
    sim.handle.disconnect_all();
    assert!(
        client.recv().await.is_none(),
        "the connection was closed by the simulator"
    );
    let ledger = sim.handle.ledger();
    assert_eq!(ledger.entries[1].action, Action::Reversed);
    assert_eq!(ledger.entries[1].delivery, Delivery::NoResponse);
}

/// The same control over HTTP (`PUT /faults`, `POST /faults/disconnect` on the ACS listener), as a
/// soak drives the simulator binary from outside.
#[tokio::test]
async fn faults_are_replaced_and_connections_closed_over_http() {
    use testkit::http::{request, request_with};
    let sim = Sim::start(Faults::default()).await;
    let acs = sim.handle.acs_addr;
    let json = |method: &'static str, body: String| async move {
        let headers = [("content-type", "application/json")];
        request_with(acs, method, "/faults", &headers, &body).await
    };
    let mut client = sim.client().await;
    let rule = FaultRule {
        matches: FaultMatch {
            amount: Some(333),
            ..FaultMatch::default()
        },
        fault: Fault::NoResponse,
        probability: 1.0,
    };
    let faults = Faults {
        rules: vec![rule.clone()],
        seed: 7,
        ..Faults::default()
    };
    let put = json("PUT", serde_json::to_string(&faults).unwrap()).await;
    assert_eq!(put.status, 204, "{put:?}");
    assert_eq!(sim.handle.faults(), faults);
    let got = request(acs, "GET", "/faults", "").await;
    assert_eq!(serde_json::from_str::<Faults>(&got.body).unwrap(), faults);
    let bad = json("PUT", r#"{"rules": 3}"#.into()).await;
    assert!(bad.status >= 400, "{bad:?}");
    assert_eq!(sim.handle.faults(), faults, "a bad body changes nothing");

    client
        .send(&payment(Mti::AUTH_REQUEST, MC_FRICTIONLESS, 333, &[]))
        .await;
    assert_eq!(client.call(&echo()).await.mti(), Mti::NETWORK_RESPONSE);
    let disconnect = request(acs, "POST", "/faults/disconnect", "").await;
    assert_eq!(disconnect.status, 204, "{disconnect:?}");
    assert!(client.recv().await.is_none(), "closed by the simulator");
    assert_eq!(
        sim.handle.ledger().entries[0].delivery,
        Delivery::NoResponse
    );

    let cleared = json("PUT", "{}".into()).await;
    assert_eq!(cleared.status, 204, "{cleared:?}");
    assert!(sim.handle.faults().rules.is_empty());
}
