//! Every issuer rule through the real link and the real simulator over mutual TLS: one response
//! code each, and the network rules of stored credentials (first use, CIT, MIT).

use iso8583::{MitReason, ResponseCode};
use link::{CredentialOnFile, LinkOutcome, NetworkTxnId, ThreeDs, TransactionKind};
use simulator::Faults;
use testkit::cards::*;
use testkit::network::*;

fn code(outcome: &LinkOutcome) -> ResponseCode {
    match outcome {
        LinkOutcome::Approved { .. } => ResponseCode::APPROVED,
        LinkOutcome::Declined { code, .. } => *code,
        LinkOutcome::TimedOutReversed { .. } => panic!("unexpected time-out: {outcome:?}"),
    }
}

#[tokio::test]
async fn each_rule_gives_its_response_code() {
    let net = Net::start(Faults::default()).await;
    let cases: &[(&str, &str, u64, Option<&str>, ResponseCode)] = &[
        (
            "approved",
            PLAIN_APPROVED,
            1_000,
            Some("123"),
            ResponseCode::APPROVED,
        ),
        (
            "Luhn-invalid",
            LUHN_INVALID,
            1_000,
            Some("123"),
            ResponseCode::INVALID_CARD,
        ),
        (
            "stolen",
            STOLEN,
            1_000,
            Some("123"),
            ResponseCode::DO_NOT_HONOUR,
        ),
        (
            "expired account",
            EXPIRED_ACCOUNT,
            1_000,
            Some("123"),
            ResponseCode::EXPIRED_CARD,
        ),
        (
            "insufficient funds",
            LOW_BALANCE,
            20_000,
            Some("123"),
            ResponseCode::INSUFFICIENT_FUNDS,
        ),
        (
            "CVC2 mismatch",
            PLAIN_APPROVED,
            1_000,
            Some("999"),
            ResponseCode::CVC_MISMATCH,
        ),
        (
            "3-DS required",
            ALWAYS_3DS,
            1_000,
            Some("123"),
            ResponseCode::AUTHENTICATION_REQUIRED,
        ),
        (
            "zero amount",
            PLAIN_APPROVED,
            0,
            Some("123"),
            ResponseCode::INVALID_AMOUNT,
        ),
        (
            "not permitted",
            PLAIN_APPROVED,
            9957,
            Some("123"),
            ResponseCode::NOT_PERMITTED,
        ),
        (
            "amount limit",
            PLAIN_APPROVED,
            9961,
            Some("123"),
            ResponseCode::EXCEEDS_AMOUNT_LIMIT,
        ),
        (
            "issuer unavailable",
            PLAIN_APPROVED,
            9991,
            Some("123"),
            ResponseCode::ISSUER_UNAVAILABLE,
        ),
        (
            "system malfunction",
            PLAIN_APPROVED,
            9996,
            Some("123"),
            ResponseCode::SYSTEM_MALFUNCTION,
        ),
    ];
    for (what, card, amount, cvc, expected) in cases {
        let outcome = net
            .pay_with(
                TransactionKind::Purchase,
                card,
                *amount,
                CredentialOnFile::None,
                None,
                *cvc,
            )
            .await
            .unwrap();
        assert_eq!(code(&outcome), *expected, "{what}");
    }
    // Velocity: three approvals a minute, the fourth is 65.
    for _ in 0..3 {
        assert_eq!(code(&net.pay(VELOCITY, 100).await), ResponseCode::APPROVED);
    }
    assert_eq!(
        code(&net.pay(VELOCITY, 100).await),
        ResponseCode::EXCEEDS_FREQUENCY
    );

    let m = net.link.metrics();
    // Four approvals plus the sign-on of each of the two connections.
    assert_eq!(m.responses(ResponseCode::APPROVED), 4 + 2);
    assert_eq!(m.responses(ResponseCode::INSUFFICIENT_FUNDS), 1);
    let text = m.render();
    assert!(
        text.contains("link_responses_total{code=\"65\"} 1"),
        "{text}"
    );
    // The simulator saw what the link believes: 4 approvals, and the balances add up.
    let ledger = net.sim.handle.ledger();
    assert_eq!(ledger.approvals().count(), 4);
    assert!(ledger.balances_add_up());
}

#[tokio::test]
async fn stored_credentials_first_use_then_cit_and_mit() {
    let net = Net::start(Faults::default()).await;
    // First use without 3-D Secure: 1A. With a CAVV from the ACS: approved with a network ID.
    let bare = net
        .pay_with(
            TransactionKind::Authorization,
            MC_FRICTIONLESS,
            5_000,
            CredentialOnFile::FirstUse,
            None,
            Some("123"),
        )
        .await
        .unwrap();
    assert_eq!(code(&bare), ResponseCode::AUTHENTICATION_REQUIRED);
    let three_ds = net.three_ds(MC_FRICTIONLESS).await;
    assert_eq!(
        three_ds.eci.as_str(),
        "05",
        "Mastercard test card is frictionless"
    );
    let first = net
        .pay_with(
            TransactionKind::Authorization,
            MC_FRICTIONLESS,
            5_000,
            CredentialOnFile::FirstUse,
            Some(three_ds.clone()),
            Some("123"),
        )
        .await
        .unwrap();
    let LinkOutcome::Approved {
        network_txn_id: Some(network_id),
        approval_code,
        ..
    } = first
    else {
        panic!("first use not approved with a network ID: {first:?}");
    };
    assert_eq!(approval_code.as_str().len(), 6);
    // The same CAVV again is a replay: declined.
    let replay = net
        .pay_with(
            TransactionKind::Purchase,
            MC_FRICTIONLESS,
            5_000,
            CredentialOnFile::FirstUse,
            Some(three_ds),
            Some("123"),
        )
        .await
        .unwrap();
    assert_eq!(code(&replay), ResponseCode::AUTHENTICATION_REQUIRED);
    // A forged CAVV: declined.
    let forged = ThreeDs {
        eci: iso8583::Eci::AUTHENTICATED,
        cavv: iso8583::Cavv::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        version: Some("2.2.0".into()),
        ds_transaction_id: iso8583::DsTransactionId::parse("00000000-0000-4000-8000-000000000000"),
    };
    let forged = net
        .pay_with(
            TransactionKind::Purchase,
            MC_FRICTIONLESS,
            5_000,
            CredentialOnFile::FirstUse,
            Some(forged),
            Some("123"),
        )
        .await
        .unwrap();
    assert_eq!(code(&forged), ResponseCode::AUTHENTICATION_REQUIRED);

    // One Click CIT with the CVC: approved.
    let cit = net
        .pay_with(
            TransactionKind::Purchase,
            MC_FRICTIONLESS,
            700,
            CredentialOnFile::Cardholder,
            None,
            Some("123"),
        )
        .await
        .unwrap();
    assert_eq!(code(&cit), ResponseCode::APPROVED);
    // MIT quoting the first use: approved; quoting an unknown ID: 12.
    let mit = |original: NetworkTxnId| CredentialOnFile::Merchant {
        reason: MitReason::Recurring,
        original,
    };
    let ok = net
        .pay_with(
            TransactionKind::Purchase,
            MC_FRICTIONLESS,
            800,
            mit(network_id),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(code(&ok), ResponseCode::APPROVED);
    let unknown = NetworkTxnId::parse("SIM999999999999").unwrap();
    let bad = net
        .pay_with(
            TransactionKind::Purchase,
            MC_FRICTIONLESS,
            800,
            mit(unknown),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(code(&bad), ResponseCode::INVALID_TRANSACTION);
}

#[tokio::test]
async fn challenge_cards_of_each_brand_refund_and_completion() {
    let net = Net::start(Faults::default()).await;
    for card in [VISA_CHALLENGE, MIR_CHALLENGE] {
        let three_ds = net.three_ds(card).await;
        let outcome = net
            .pay_with(
                TransactionKind::Purchase,
                card,
                1_500,
                CredentialOnFile::FirstUse,
                Some(three_ds),
                Some("123"),
            )
            .await
            .unwrap();
        assert_eq!(code(&outcome), ResponseCode::APPROVED, "{card}");
    }
    // Two-stage: authorize 3000, complete for 2500; refund 1000.
    let auth = net
        .pay_with(
            TransactionKind::Authorization,
            PLAIN_APPROVED,
            3_000,
            CredentialOnFile::None,
            None,
            Some("123"),
        )
        .await
        .unwrap();
    let LinkOutcome::Approved { reference, .. } = &auth else {
        panic!("{auth:?}")
    };
    let done = net.complete(PLAIN_APPROVED, reference, 2_500).await;
    assert_eq!(code(&done), ResponseCode::APPROVED);
    let refund = net
        .pay_with(
            TransactionKind::Refund,
            PLAIN_APPROVED,
            1_000,
            CredentialOnFile::None,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(code(&refund), ResponseCode::APPROVED);
    let ledger = net.sim.handle.ledger();
    let card = ledger.balance(&masked(PLAIN_APPROVED)).unwrap();
    assert_eq!(card.opening - card.current, 2_500 - 1_000);
    assert!(net.link.echo().await.unwrap() < std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn a_partial_reversal_releases_part_of_an_authorization_and_the_rest_completes() {
    let net = Net::start(Faults::default()).await;
    let auth = net
        .pay_with(
            TransactionKind::Authorization,
            PLAIN_APPROVED,
            10_000,
            CredentialOnFile::None,
            None,
            Some("123"),
        )
        .await
        .unwrap();
    let LinkOutcome::Approved { reference, .. } = &auth else {
        panic!("{auth:?}")
    };
    assert!(matches!(
        net.link
            .reverse_partially(reference, iso8583::Amount(10_000))
            .await,
        Err(link::ReverseError::NotAPartialReversal { .. })
    ));
    assert_eq!(
        net.link
            .reverse_partially(reference, iso8583::Amount(4_000))
            .await
            .unwrap(),
        link::ReversalState::Acknowledged
    );
    let ledger = net.sim.handle.ledger();
    let reversal = ledger
        .applied_reversals()
        .find(|e| e.original.as_ref().map(|o| o.1) == Some(reference.stan.value()))
        .expect("the partial reversal was applied");
    assert_eq!(
        (reversal.mti.as_str(), reversal.balance_delta),
        ("0400", 6_000),
        "DE 4 is the original amount, DE 95 what remains"
    );
    let card = ledger.balance(&masked(PLAIN_APPROVED)).unwrap();
    assert_eq!(card.opening - card.current, 4_000);

    let done = net.complete(PLAIN_APPROVED, reference, 4_000).await;
    assert_eq!(code(&done), ResponseCode::APPROVED);
    let card = net
        .sim
        .handle
        .ledger()
        .balance(&masked(PLAIN_APPROVED))
        .unwrap();
    assert_eq!(card.opening - card.current, 4_000);
}

/// The order engine's crash safety: the reference is known (and can be made durable) before
/// anything is sent, the network sees exactly it, and a prepared request that never left is
/// reversed harmlessly after a restart.
#[tokio::test]
async fn a_prepared_authorization_is_sent_under_its_reserved_reference() {
    let net = Net::start(Faults::default()).await;
    let pan = card::Pan::parse(PLAIN_APPROVED).unwrap();
    let cvc = card::Cvc::parse("123").unwrap();
    let card = net_card();
    let request = |amount: u64| purchase(&pan, &cvc, card.clone(), amount);

    let prepared = net.link.prepare(request(1_100).intent());
    let reserved = prepared.reference().clone();
    let outcome = net
        .link
        .authorize_prepared(prepared, request(1_100))
        .await
        .unwrap();
    assert!(
        matches!(outcome, LinkOutcome::Approved { .. }),
        "{outcome:?}"
    );
    assert_eq!(outcome.reference(), &reserved);
    assert!(
        net.sim
            .handle
            .ledger()
            .approval(reserved.stan.value(), reserved.rrn.as_str())
            .is_some()
    );

    // Trace numbers reserved for one request do not carry another.
    let other = net.link.prepare(request(1_200).intent());
    let stan = other.reference().stan.value();
    assert!(matches!(
        net.link.authorize_prepared(other, request(9_999)).await,
        Err(link::AuthorizeError::PreparedForAnother)
    ));

    // Prepared, then the process died before sending: the restart reverses it, and the network
    // acknowledges a reversal of what it never saw without moving money.
    let lost = net.link.prepare(request(1_300).intent());
    assert_eq!(
        net.link.reverse(lost.reference()).await.unwrap(),
        link::ReversalState::Acknowledged
    );
    let ledger = net.sim.handle.ledger();
    assert!(
        ledger.entries.iter().all(|e| e.stan != Some(stan)),
        "never sent"
    );
    let reversal = ledger
        .entries
        .iter()
        .find(|e| e.original.as_ref().map(|o| o.1) == Some(lost.reference().stan.value()))
        .unwrap();
    assert_eq!(reversal.action, simulator::Action::ReversalOfUnknown);
    assert_eq!(reversal.balance_delta, 0);
}
