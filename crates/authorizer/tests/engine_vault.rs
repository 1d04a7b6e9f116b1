//! The order engine with the REAL vault process (`VaultSecrets` over its `facade` and
//! `authorizer` clients), the real link and the in-process simulator: card-on-file payments find
//! their card through a grant and a detokenize for their own payment, a token that is not the
//! customer's never reaches the network, every detokenize the vault audits had its grant, and a
//! payment whose answer was lost is reversed with the card found again by `VaultCards`.

use std::sync::Arc;
use std::time::Duration;

use authorizer::cards::VaultCards;
use authorizer::secrets::VaultSecrets;
use card::{CustomerNumber, Cvc, Expiry, MerchantId, Pan, Token};
use link::{Currency, Link, ThreeDs};
use orders::{
    DeclineReason, Engine, MerchantSettings, NewCard, NewOrder, OperationResult, OrderDetails,
    OrderNumber, OrderState, PaymentCard, RecurringPayment, RecurringRequest, SystemClock,
};
use simulator::faults::MAGIC_NO_RESPONSE;
use simulator::{Action, Faults};
use store::{EngineKind, Store};
use testkit::cards::{MC_FRICTIONLESS, PLAIN_APPROVED, masked};
use testkit::network::{MERCHANT, Sim, link_config};
use testkit::processes::{Binaries, VaultProcess, VaultSetup};
use vault::{VaultClient, VaultEndpoint};

/// The vault's op codes in its audit log (README, Protocol).
const OP_DETOKENIZE: u8 = 3;
const OP_ISSUE_GRANT: u8 = 10;
const OP_DETOKENIZE_FOR_REVERSAL: u8 = 11;

struct World {
    setup: VaultSetup,
    vault: VaultProcess,
    sim: Sim,
    link: Link,
    cards: VaultCards,
    engine: Engine,
    m: MerchantSettings,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let bins = Binaries::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let setup = VaultSetup::init(&bins.vault, &dir.path().join("vault"), MERCHANT)
        .await
        .unwrap();
    let vault = setup.serve().await.unwrap();
    let endpoint = VaultEndpoint::Unix(setup.socket());
    let facade = VaultClient::connect(endpoint.clone(), setup.facade.credentials())
        .await
        .unwrap();
    let authorizer = VaultClient::connect(endpoint, setup.authorizer.credentials())
        .await
        .unwrap();
    let secrets = VaultSecrets::new(facade, authorizer.clone());
    secrets.ready().await.expect("each client has its role");
    let cards = VaultCards::new(authorizer);

    let sim = Sim::start(Faults::default()).await;
    let mut config = link_config(&sim.pki, &[sim.handle.iso_addr]).unwrap();
    config.connections = 1;
    // Only the lost answer waits for it; long enough for a loaded machine's approvals.
    config.request_timeout = Duration::from_secs(2);
    let store = Store::open(EngineKind::Redb, &dir.path().join("authorizer.redb")).unwrap();
    let link = Link::start(config, store.clone(), Arc::new(cards.clone())).unwrap();
    assert!(
        link.wait_ready(Duration::from_secs(10)).await,
        "link never signed on"
    );
    let engine = Engine::new(
        store,
        Arc::new(link.clone()),
        Arc::new(secrets),
        Arc::new(SystemClock),
    );
    World {
        setup,
        vault,
        sim,
        link,
        cards,
        engine,
        m: MerchantSettings::new(MerchantId::parse(MERCHANT).unwrap()),
        _dir: dir,
    }
}

fn order(number: &str, amount: u64, customer: &str) -> NewOrder {
    NewOrder {
        order_number: OrderNumber::parse(number).unwrap(),
        amount,
        currency: Currency::RUB,
        two_stage: false,
        customer_number: Some(CustomerNumber::parse(customer).unwrap()),
        details: OrderDetails::default(),
        recurring: None,
        expires_at: None,
        disable_3ds: false,
    }
}

impl World {
    /// Pays `order` with a card typed on the page, saved (with 3-D Secure at the simulator's
    /// ACS) or held for this payment only.
    async fn pay_new(&self, order: NewOrder, digits: &str, save: bool) -> OperationResult {
        let bill = self.engine.create_order(&self.m, order).await.unwrap().bill;
        let pan = Pan::parse(digits).unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let card = NewCard {
            pan: &pan,
            expiry: Expiry::new(12, 2099).unwrap(),
            cvc: &cvc,
            holder: Some("IVAN IVANOV"),
        };
        let three_ds = match save {
            true => Some(self.three_ds(&pan).await),
            false => None,
        };
        self.engine
            .pay(
                &self.m,
                bill,
                PaymentCard::New {
                    card,
                    save,
                    three_ds,
                },
            )
            .await
            .unwrap()
    }

    async fn three_ds(&self, pan: &Pan) -> ThreeDs {
        let r = self.sim.acs().authenticate_passing(pan).await.unwrap();
        ThreeDs {
            eci: iso8583::Eci::parse(&r.eci.unwrap()).unwrap(),
            cavv: r.cavv.map(|c| iso8583::Cavv::parse(&c).unwrap()),
            version: Some("2.2.0".into()),
            ds_transaction_id: Some(iso8583::DsTransactionId::parse(&r.ds_trans_id).unwrap()),
        }
    }

    async fn one_click(&self, order: NewOrder, token: Token) -> OperationResult {
        let bill = self.engine.create_order(&self.m, order).await.unwrap().bill;
        let cvc = Cvc::parse("123").unwrap();
        self.engine
            .pay(&self.m, bill, PaymentCard::OneClick { token, cvc: &cvc })
            .await
            .unwrap()
    }

    /// Messages the simulator has seen.
    fn sent(&self) -> usize {
        self.sim.handle.ledger().entries.len()
    }

    /// Stops the vault and the link; the vault's audit log, read from its database.
    async fn audit(self) -> Vec<vault::audit::Event> {
        self.link.shutdown().await;
        self.vault.stop().await.unwrap();
        let store =
            Store::open(EngineKind::Redb, &self.setup.data_dir().join("vault.redb")).unwrap();
        vault::audit::entries(&store)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }
}

fn approved(r: &OperationResult) -> bool {
    r.order.state == OrderState::Approved
}

fn token_of(r: &OperationResult) -> Token {
    r.order.card.as_ref().unwrap().card.token
}

fn declined_for(r: &OperationResult) -> Option<DeclineReason> {
    r.operation().and_then(|op| op.decline)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_card_pays_one_click_token_pay_and_recurring_through_the_vault() {
    let w = world().await;
    let mut first = order("F-1", 1_000, "cust-1");
    first.recurring = Some(RecurringRequest::Scheduled {
        min_amount: 100,
        max_amount: 5_000,
        period_days: 30,
        max_date: time::macros::date!(2099 - 12 - 31),
    });
    let first = w.pay_new(first, MC_FRICTIONLESS, true).await;
    assert!(approved(&first), "first use: {:?}", first.operation());
    let token = token_of(&first);
    assert!(
        first.order.card.as_ref().unwrap().network_txn_id.is_some(),
        "the first use's network ID is kept for the MIT"
    );

    let again = w.one_click(order("O-1", 700, "cust-1"), token).await;
    assert!(approved(&again), "One Click: {:?}", again.operation());

    // Token Pay needs the card listed, which the first use's recorded payment did.
    let tp = w
        .engine
        .token_pay(&w.m, order("T-1", 800, "cust-1"), token)
        .await
        .unwrap();
    assert!(approved(&tp), "Token Pay: {:?}", tp.operation());

    let mit = w
        .engine
        .pay_recurring(
            &w.m,
            RecurringPayment {
                initial: first.order.bill,
                order_number: OrderNumber::parse("R-1").unwrap(),
                amount: 2_000,
                currency: Currency::RUB,
                details: OrderDetails::default(),
            },
        )
        .await
        .unwrap();
    // The simulator approves an MIT only when it quotes an approved first use of this card.
    assert!(approved(&mit), "MIT: {:?}", mit.operation());
    let b = w
        .sim
        .handle
        .ledger()
        .balance(&masked(MC_FRICTIONLESS))
        .unwrap();
    assert_eq!(b.opening - b.current, 4_500, "all four reached the card");
    w.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_is_not_the_customers_is_declined_before_the_network() {
    let w = world().await;
    let saved = w
        .pay_new(order("F-1", 1_000, "alice"), MC_FRICTIONLESS, true)
        .await;
    let held = w
        .pay_new(order("F-2", 1_000, "alice"), PLAIN_APPROVED, false)
        .await;
    assert!(approved(&saved) && approved(&held));
    let before = w.sent();

    let bob = w
        .one_click(order("O-1", 700, "bob"), token_of(&saved))
        .await;
    assert_eq!(declined_for(&bob), Some(DeclineReason::UnknownCard));
    let bob = w
        .engine
        .token_pay(&w.m, order("T-1", 700, "bob"), token_of(&saved))
        .await
        .unwrap();
    assert_eq!(declined_for(&bob), Some(DeclineReason::UnknownCard));
    // Neither the shopper nor a customer named after the card's order may pay with a card held
    // for that order only.
    let alice = w
        .one_click(order("O-2", 700, "alice"), token_of(&held))
        .await;
    assert_eq!(declined_for(&alice), Some(DeclineReason::UnknownCard));
    let owner = held.order.card.as_ref().unwrap().card.customer.clone();
    let squatter = w
        .one_click(order("O-3", 700, owner.as_str()), token_of(&held))
        .await;
    assert_eq!(declined_for(&squatter), Some(DeclineReason::UnknownCard));

    assert_eq!(w.sent(), before, "nothing reached the network");
    w.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_detokenize_the_vault_audits_had_its_grant() {
    let w = world().await;
    let first = w
        .pay_new(order("F-1", 1_000, "cust-1"), MC_FRICTIONLESS, true)
        .await;
    let token = token_of(&first);
    let again = w.one_click(order("O-1", 700, "cust-1"), token).await;
    assert!(approved(&first) && approved(&again));

    let log = w.audit().await;
    let count = |op: u8| {
        log.iter()
            .filter(|e| e.op == op && e.token == Some(token) && e.outcome == 0)
            .count()
    };
    // Saving binds the card to its first payment (a grant and a detokenize), One Click
    // resolves it for its own.
    assert_eq!(count(OP_DETOKENIZE), 2);
    assert_eq!(count(OP_ISSUE_GRANT), count(OP_DETOKENIZE));
    assert!(
        log.iter()
            .filter(|e| e.op == OP_ISSUE_GRANT)
            .all(|e| e.client == "facade"),
        "grants are the facade role's"
    );
    assert!(
        log.iter()
            .filter(|e| e.op == OP_DETOKENIZE)
            .all(|e| e.client == "authorizer"),
        "detokenize is the authorizer role's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_reversed_with_the_held_card_found_again() {
    let w = world().await;
    // The simulator books the payment and never answers it: the link times out and reverses.
    let lost = w
        .pay_new(
            order("L-1", MAGIC_NO_RESPONSE, "cust-1"),
            PLAIN_APPROVED,
            false,
        )
        .await;
    assert_eq!(declined_for(&lost), Some(DeclineReason::NoAnswer));
    let ledger = w.sim.handle.ledger();
    let reversal = ledger
        .entries
        .iter()
        .find(|e| e.action == Action::Reversed)
        .expect("the payment was reversed");
    assert!(reversal.card_present, "the reversal carried DE 2");
    assert_eq!(w.cards.counts(), (1, 0), "VaultCards found the card");
    let b = ledger.balance(&masked(PLAIN_APPROVED)).unwrap();
    assert_eq!(b.opening, b.current, "the ledger is back where it started");

    let log = w.audit().await;
    assert_eq!(
        log.iter()
            .filter(|e| e.op == OP_DETOKENIZE_FOR_REVERSAL && e.outcome == 0)
            .count(),
        1
    );
}
