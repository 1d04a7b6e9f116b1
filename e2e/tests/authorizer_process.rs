//! The `authorizer` binary with its real vault: a reversal left in its store-and-forward queue is
//! held while the vault is down (never sent without the card), then sent with the card found
//! again through the vault once the vault is back, and the network applies it.

use std::sync::Arc;
use std::time::Duration;

use authorizer::cards::VaultCards;
use card::{Cvc, Expiry, Pan, PaymentRef};
use iso8583::Amount;
use link::{
    AuthorizationRequest, CredentialOnFile, Currency, Endpoint, Link, LinkOutcome, Merchant,
    ReversalState, TransactionKind,
};
use simulator::{AcsClient, Action};
use testkit::cards::{PLAIN_APPROVED as PAN, masked};
use testkit::eventually;
use testkit::metrics::value as metric;
use testkit::network::{MERCHANT, link_config};
use testkit::processes::{
    AuthorizerPeers, AuthorizerProcess, Binaries, SimulatorProcess, VaultSetup,
};
use vault::{
    CardUse, ClientOptions, CustomerNumber, MerchantId, TokenizeRequest, VaultClient, VaultEndpoint,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_reversal_waits_for_the_vault_and_then_goes_with_the_card() {
    let bins = Binaries::locate().expect("binaries");
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatorProcess::start(&bins.simulator, &dir.path().join("simulator"))
        .await
        .unwrap();
    let setup = VaultSetup::init(&bins.vault, &dir.path().join("vault"), MERCHANT)
        .await
        .unwrap();
    let vault = setup.serve().await.unwrap();
    let facade = VaultClient::connect_with(
        VaultEndpoint::Unix(setup.socket()),
        setup.facade.credentials(),
        ClientOptions::default(),
    )
    .await
    .unwrap();

    // The shopper's card is saved; a purchase with it is approved on the network.
    let merchant = MerchantId::parse(MERCHANT).unwrap();
    let customer = CustomerNumber::parse("cust-7").unwrap();
    let pan = Pan::parse(PAN).unwrap();
    let saved = facade
        .tokenize(TokenizeRequest {
            merchant: merchant.clone(),
            customer: customer.clone(),
            pan: pan.clone(),
            expiry: Expiry::new(12, 2099).unwrap(),
            holder: None,
        })
        .await
        .unwrap();
    // The payment's detokenize, granted to the facade for this payment: what lets the vault give
    // the card again for its reversal.
    let payment = PaymentRef::parse("bill-1").unwrap();
    let authorizer = VaultClient::connect_with(
        VaultEndpoint::Unix(setup.socket()),
        setup.authorizer.credentials(),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let grant = facade
        .grant_detokenize(&merchant, &customer, saved.token, &payment, CardUse::OnFile)
        .await
        .unwrap();
    let secret = authorizer
        .detokenize(&merchant, &customer, saved.token, &payment, grant)
        .await
        .unwrap();
    assert_eq!(secret.pan, pan);
    drop((secret, authorizer));
    let card = VaultCards::card_ref(&merchant, &customer, saved.token, &payment);
    let authorizer_dir = dir.path().join("authorizer");
    let store_path = AuthorizerProcess::data_dir(&authorizer_dir).join("authorizer.db");
    std::fs::create_dir_all(store_path.parent().unwrap()).unwrap();
    let cards = || {
        Arc::new(VaultCards::connecting(
            VaultEndpoint::Unix(setup.socket()),
            setup.authorizer.credentials(),
            ClientOptions::default(),
        ))
    };
    let open = || store::Store::open(store::EngineKind::Redb, &store_path).unwrap();
    let link = Link::start(
        link_config(&sim.pki().unwrap(), &[sim.iso_addr]).unwrap(),
        open(),
        cards(),
    )
    .unwrap();
    assert!(link.wait_ready(Duration::from_secs(10)).await);
    let cvc = Cvc::parse("123").unwrap();
    let outcome = link
        .authorize(AuthorizationRequest {
            kind: TransactionKind::Purchase,
            pan: &pan,
            expiry: Expiry::new(12, 2099).unwrap(),
            cvc: Some(&cvc),
            card: card.clone(),
            amount: Amount(4_200),
            currency: Currency::RUB,
            cof: CredentialOnFile::None,
            three_ds: None,
            merchant: Merchant {
                id: merchant.clone(),
                name_location: None,
                category_code: None,
            },
        })
        .await
        .unwrap();
    let LinkOutcome::Approved { reference, .. } = outcome else {
        panic!("{outcome:?}")
    };
    link.shutdown().await;

    // The merchant cancels it while the processing centre is out of reach: the reversal is queued
    // in the authorizer's store, not sent.
    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut offline = link_config(&sim.pki().unwrap(), &[sim.iso_addr]).unwrap();
    offline.endpoints = vec![Endpoint::new(unreachable.to_string(), "localhost").unwrap()];
    offline.request_timeout = Duration::from_millis(300);
    let link = Link::start(offline, open(), cards()).unwrap();
    assert_eq!(
        link.reverse(&reference).await.unwrap(),
        ReversalState::Queued
    );
    link.shutdown().await;

    // The vault goes down; the authorizer process starts, signs on, and must hold the reversal.
    vault.stop().await.unwrap();
    let process = AuthorizerProcess::start(
        &bins.authorizer,
        &authorizer_dir,
        &AuthorizerPeers::new(&sim, &setup),
    )
    .await
    .unwrap();
    eventually("the reversal held for the vault, twice", async || {
        let m = process.metrics().await.unwrap();
        metric(&m, "link_reversals_held_total").is_some_and(|n| n >= 2.0)
    })
    .await;
    let acs = AcsClient::new(sim.acs_addr);
    let reversals_of = |ledger: &simulator::Ledger| {
        ledger
            .entries
            .iter()
            .filter(|e| e.original.as_ref().map(|o| o.1) == Some(reference.stan.value()))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        reversals_of(&acs.ledger().await.unwrap()).is_empty(),
        "nothing was sent without the card"
    );
    let m = process.metrics().await.unwrap();
    assert_eq!(metric(&m, "link_reversals_pending"), Some(1.0), "{m}");

    // The vault is back: the next retry finds the card and the network applies the reversal.
    let vault = setup.serve().await.unwrap();
    eventually("the queue drained", async || {
        let m = process.metrics().await.unwrap();
        metric(&m, "link_reversals_pending") == Some(0.0)
    })
    .await;
    let reversals = reversals_of(&acs.ledger().await.unwrap());
    assert_eq!(reversals.len(), 1, "{reversals:?}");
    let r = &reversals[0];
    assert_eq!(
        r.mti, "0420",
        "a repeat of a reversal never sent is an advice"
    );
    assert_eq!(r.action, Action::Reversed);
    assert!(r.card_present, "DE 2 came from the vault");
    assert_eq!(r.card, Some(masked(PAN)));
    assert_eq!(r.balance_delta, 4_200);

    process.stop().await.unwrap();
    vault.stop().await.unwrap();
    sim.stop().await.unwrap();
}
