//! Every issuer rule and network rule of the README, through a real mutual-TLS connection.

use iso8583::{Mti, ProcessingCode, tag};
use simulator::{Action, Faults};
use testkit::cards::*;
use testkit::iso::*;
use testkit::network::Sim;

fn de48(msg: &iso8583::Message, t: u8) -> Option<Vec<u8>> {
    msg.de48().and_then(|d| d.get(t).map(<[u8]>::to_vec))
}

#[tokio::test]
async fn approves_the_test_card_of_each_brand_with_an_approval_code_and_debits_it() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    for pan in [VISA_CHALLENGE, MC_FRICTIONLESS, MIR_CHALLENGE] {
        let request = payment(Mti::AUTH_REQUEST, pan, 1_000, &[(tag::CVC2, b"123")]);
        let response = client.call(&request).await;
        assert_eq!(response.mti(), Mti::AUTH_RESPONSE);
        assert_eq!(code(&response), "00");
        assert_eq!(response.approval_code().unwrap().len(), 6);
        assert_eq!(
            de48(&response, tag::CVC2_RESULT).as_deref(),
            Some(&b"M"[..])
        );
        assert_eq!(response.field(2), request.field(2), "DE 2 is echoed");
        assert_eq!(response.rrn(), request.rrn());
    }
    let ledger = sim.handle.ledger();
    assert_eq!(ledger.approvals().count(), 3);
    let visa = ledger.balance("411111******1111").unwrap();
    assert_eq!(visa.opening - visa.current, 1_000);
    assert!(ledger.balances_add_up());
}

#[tokio::test]
async fn declines_by_card_and_amount_with_the_documented_codes() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let cases: &[(&str, u64, &[u8; 4], &str)] = &[
        (LUHN_INVALID, 1_000, b"3012", "14"),
        (VISA_CHALLENGE, 1_000, b"2001", "54"),
        (EXPIRED_ACCOUNT, 1_000, b"3012", "54"),
        (STOLEN, 1_000, b"3012", "05"),
        (VISA_CHALLENGE, 0, b"3012", "13"),
        (VISA_CHALLENGE, 9_957, b"3012", "57"),
        (VISA_CHALLENGE, 9_961, b"3012", "61"),
        (VISA_CHALLENGE, 9_991, b"3012", "91"),
        (VISA_CHALLENGE, 9_996, b"3012", "96"),
        (ALWAYS_3DS, 1_000, b"3012", "1A"),
    ];
    for &(pan, amount, expiry, expected) in cases {
        let request = payment_with(
            Mti::FINANCIAL_REQUEST,
            ProcessingCode::Purchase,
            pan,
            amount,
            expiry,
            &[],
        );
        let response = client.call(&request).await;
        assert_eq!(
            code(&response),
            expected,
            "card {} amount {amount}",
            &pan[pan.len() - 4..]
        );
        assert!(response.approval_code().is_none());
    }
    let ledger = sim.handle.ledger();
    assert!(
        ledger
            .entries
            .iter()
            .all(|e| e.action == Action::Declined && e.balance_delta == 0)
    );
    assert!(
        ledger
            .entries
            .iter()
            .all(|e| !e.card.as_deref().unwrap().contains("111111111111"))
    );
}

#[tokio::test]
async fn cvc2_mismatch_is_n7_with_the_cvc_result() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let response = client
        .call(&payment(
            Mti::AUTH_REQUEST,
            VISA_CHALLENGE,
            500,
            &[(tag::CVC2, b"999")],
        ))
        .await;
    assert_eq!(code(&response), "N7");
    assert_eq!(
        de48(&response, tag::CVC2_RESULT).as_deref(),
        Some(&b"N"[..])
    );
}

#[tokio::test]
async fn balance_is_debited_by_approvals_and_credited_by_reversals_and_refunds() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let first = payment(Mti::FINANCIAL_REQUEST, LOW_BALANCE, 6_000, &[]);
    assert_eq!(code(&client.call(&first).await), "00");
    let second = payment(Mti::FINANCIAL_REQUEST, LOW_BALANCE, 6_000, &[]);
    assert_eq!(code(&client.call(&second).await), "51");
    let reversed = client.call(&reversal(&first)).await;
    assert_eq!(reversed.mti(), Mti::REVERSAL_RESPONSE);
    assert_eq!(code(&reversed), "00");
    let third = payment(Mti::FINANCIAL_REQUEST, LOW_BALANCE, 6_000, &[]);
    assert_eq!(code(&client.call(&third).await), "00");
    let refund = payment_with(
        Mti::FINANCIAL_REQUEST,
        ProcessingCode::Refund,
        LOW_BALANCE,
        2_500,
        b"3012",
        &[],
    );
    assert_eq!(code(&client.call(&refund).await), "00");
    let balance = sim.handle.ledger().balance("400000******9995").unwrap();
    assert_eq!(balance.current, 10_000 - 6_000 + 2_500);
    assert!(sim.handle.ledger().balances_add_up());
}

#[tokio::test]
async fn a_reversal_is_applied_once_however_often_it_is_repeated() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let original = payment(Mti::AUTH_REQUEST, MC_FRICTIONLESS, 7_000, &[]);
    assert_eq!(code(&client.call(&original).await), "00");
    let amount = 7_000;
    for mti in [
        Mti::REVERSAL_REQUEST,
        Mti::REVERSAL_ADVICE,
        Mti::REVERSAL_ADVICE_REPEAT,
    ] {
        let response = client.call(&follow_up(mti, &original, amount, None)).await;
        assert_eq!(response.mti(), mti.response().unwrap());
        assert_eq!(code(&response), "00");
    }
    let never_seen = payment(Mti::AUTH_REQUEST, MC_FRICTIONLESS, 1, &[]);
    assert_eq!(code(&client.call(&reversal(&never_seen)).await), "00");
    let ledger = sim.handle.ledger();
    let actions: Vec<_> = ledger
        .entries
        .iter()
        .filter(|e| e.original.is_some())
        .map(|e| e.action.clone())
        .collect();
    assert_eq!(
        actions,
        [
            Action::Reversed,
            Action::ReversalRepeated,
            Action::ReversalRepeated,
            Action::ReversalOfUnknown
        ]
    );
    let balance = ledger.balance("555555******4444").unwrap();
    assert_eq!(balance.current, balance.opening);
}

#[tokio::test]
async fn completion_settles_at_most_the_authorized_amount_and_partial_reversal_releases_the_rest() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let auth = payment(Mti::AUTH_REQUEST, MIR_CHALLENGE, 5_000, &[]);
    assert_eq!(code(&client.call(&auth).await), "00");
    let too_much = follow_up(Mti::COMPLETION_ADVICE, &auth, 6_000, None);
    let response = client.call(&too_much).await;
    assert_eq!(
        (response.mti(), code(&response).as_str()),
        (Mti::COMPLETION_ADVICE_RESPONSE, "13")
    );
    assert_eq!(
        code(
            &client
                .call(&follow_up(Mti::COMPLETION_ADVICE, &auth, 3_000, None))
                .await
        ),
        "00"
    );
    assert_eq!(
        code(
            &client
                .call(&follow_up(Mti::COMPLETION_ADVICE, &auth, 3_000, None))
                .await
        ),
        "00"
    );
    let balance = sim.handle.ledger().balance("220000******0004").unwrap();
    assert_eq!(balance.opening - balance.current, 3_000);

    let purchase = payment(Mti::FINANCIAL_REQUEST, MIR_CHALLENGE, 4_000, &[]);
    assert_eq!(code(&client.call(&purchase).await), "00");
    let partial = follow_up(Mti::REVERSAL_REQUEST, &purchase, 4_000, Some(1_500));
    assert_eq!(code(&client.call(&partial).await), "00");
    assert_eq!(
        code(&client.call(&partial).await),
        "00",
        "a repeated partial reversal is acknowledged"
    );
    let ledger = sim.handle.ledger();
    let balance = ledger.balance("220000******0004").unwrap();
    assert_eq!(balance.opening - balance.current, 3_000 + 1_500);
    assert!(ledger.balances_add_up());
}

#[tokio::test]
async fn velocity_limit_declines_the_fourth_approval_within_the_window() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let codes: Vec<String> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(code(
                &client
                    .call(&payment(Mti::AUTH_REQUEST, VELOCITY, 100, &[]))
                    .await,
            ));
        }
        out
    };
    assert_eq!(codes, ["00", "00", "00", "65"]);
}

#[tokio::test]
async fn a_repeated_stan_with_the_same_transmission_time_is_a_duplicate() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let request = payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 100, &[]);
    assert_eq!(code(&client.call(&request).await), "00");
    assert_eq!(code(&client.call(&request).await), "94");
    let ledger = sim.handle.ledger();
    assert_eq!(ledger.approvals().count(), 1);
}

#[tokio::test]
async fn first_use_needs_cvc2_and_3ds_and_returns_a_network_id_that_mit_must_carry() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let no_cvc = payment(
        Mti::AUTH_REQUEST,
        VISA_CHALLENGE,
        100,
        &[(tag::COF_INDICATOR, b"I"), (tag::ECI, b"07")],
    );
    assert_eq!(code(&client.call(&no_cvc).await), "1A");
    let no_3ds = payment(
        Mti::AUTH_REQUEST,
        VISA_CHALLENGE,
        100,
        &[(tag::COF_INDICATOR, b"I"), (tag::CVC2, b"123")],
    );
    assert_eq!(code(&client.call(&no_3ds).await), "1A");
    // ECI 07 without a CAVV: the merchant disabled 3-D Secure for this order.
    let opted_out = payment(
        Mti::AUTH_REQUEST,
        VISA_CHALLENGE,
        100,
        &[
            (tag::COF_INDICATOR, b"I"),
            (tag::CVC2, b"123"),
            (tag::ECI, b"07"),
        ],
    );
    let approved = client.call(&opted_out).await;
    assert_eq!(code(&approved), "00");
    let network_id = de48(&approved, tag::NETWORK_TRANSACTION_ID).expect("first use returns 48.03");

    let mit = |id: &[u8], pan: &str| {
        payment(
            Mti::FINANCIAL_REQUEST,
            pan,
            100,
            &[
                (tag::COF_INDICATOR, b"M"),
                (tag::MIT_REASON, b"R"),
                (tag::NETWORK_TRANSACTION_ID, id),
            ],
        )
    };
    assert_eq!(
        code(&client.call(&mit(&network_id, VISA_CHALLENGE)).await),
        "00"
    );
    assert_eq!(
        code(&client.call(&mit(b"SIM999999999999", VISA_CHALLENGE)).await),
        "12"
    );
    assert_eq!(
        code(&client.call(&mit(&network_id, MC_FRICTIONLESS)).await),
        "12",
        "ID of another card"
    );
    let without_id = payment(
        Mti::FINANCIAL_REQUEST,
        VISA_CHALLENGE,
        100,
        &[(tag::COF_INDICATOR, b"M")],
    );
    assert_eq!(code(&client.call(&without_id).await), "12");
    let with_cvc = payment(
        Mti::FINANCIAL_REQUEST,
        VISA_CHALLENGE,
        100,
        &[
            (tag::COF_INDICATOR, b"M"),
            (tag::NETWORK_TRANSACTION_ID, &network_id),
            (tag::CVC2, b"123"),
        ],
    );
    assert_eq!(
        code(&client.call(&with_cvc).await),
        "12",
        "an MIT carries no CVC2"
    );
    let cit = payment(
        Mti::FINANCIAL_REQUEST,
        VISA_CHALLENGE,
        100,
        &[(tag::COF_INDICATOR, b"C")],
    );
    assert_eq!(
        code(&client.call(&cit).await),
        "00",
        "a Token Pay CIT needs no CVC2"
    );
}

#[tokio::test]
async fn a_request_missing_a_mandatory_field_gets_30_and_changes_nothing() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let mut b = iso8583::MessageBuilder::new(Mti::AUTH_REQUEST);
    b.field(2, VISA_CHALLENGE.as_bytes())
        .field(3, b"000000")
        .field(4, b"100")
        .stan(next_stan())
        .field(7, now_de7().as_bytes());
    let response = client.call(&b.build().unwrap()).await;
    assert_eq!(code(&response), "30");
    let echo = client.call(&echo()).await;
    assert_eq!(
        (echo.mti(), code(&echo).as_str()),
        (Mti::NETWORK_RESPONSE, "00")
    );
    let ledger = sim.handle.ledger();
    assert!(
        matches!(&ledger.entries[0].action, Action::Rejected { reason } if reason.contains("DE 12"))
    );
    assert_eq!(ledger.entries[1].action, Action::Network);
}

#[tokio::test]
async fn a_payment_older_than_the_memory_window_is_forgotten() {
    let pki = simulator::DevPki::generate();
    let mut config = simulator::SimConfig::with_pki(&pki);
    config.remember = std::time::Duration::ZERO;
    let sim = Sim::start_with(config, pki).await;
    let mut client = sim.client().await;
    let first = payment(Mti::AUTH_REQUEST, MC_FRICTIONLESS, 7_000, &[]);
    assert_eq!(code(&client.call(&first).await), "00");
    // The next payment arrives after the (empty) window: the first one's booking goes.
    let second = payment(Mti::AUTH_REQUEST, MC_FRICTIONLESS, 1_000, &[]);
    assert_eq!(code(&client.call(&second).await), "00");
    assert_eq!(code(&client.call(&reversal(&first)).await), "00");
    let last = sim.handle.ledger().entries.last().unwrap().action.clone();
    assert_eq!(last, Action::ReversalOfUnknown);
}
