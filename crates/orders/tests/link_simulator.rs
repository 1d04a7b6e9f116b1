//! The engine with the REAL link against the in-process simulator over mutual TLS: one-stage,
//! two-stage with a partial charge, a cancel before the cut-off (a reversal) and after it (a
//! refund) in the simulator's ledger, a recurring MIT carrying the first payment's network ID
//! (the simulator refuses it otherwise), and a payment the network approved but the engine never
//! heard of, resolved by `recover` after the process "restarts" on the same redb file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use card::{CustomerNumber, Cvc, Expiry, MerchantId, Pan, Token};
use futures::future::BoxFuture;
use iso8583::Amount;
use link::{
    AuthorizationRequest, AuthorizeError, CardRef, CardResolver, CardsUnavailable, CompleteError,
    CompletionRequest, Currency, Endpoint, Intent, Link, LinkConfig, LinkOutcome, Prepared,
    ReversalState, ReverseError, ThreeDs, TlsMaterial, TransactionRef, client_config,
};
use orders::{
    Acquirer, CancelMessage, CancelReason, CancelRequest, CardSecrets, Engine, MerchantSettings,
    NewCard, NewOrder, OperationRef, OrderDetails, OrderNumber, OrderState, PaymentCard,
    RecurringPayment, RecurringRequest, ResolvedCard, SecretsUnavailable, SystemClock,
};
use simulator::{AcsClient, Action, DevPki, SimConfig, Simulator, SimulatorHandle};
use store::{EngineKind, Store};
use tokio::net::TcpListener;

const PLAIN_APPROVED: &str = "4242424242424242";
const MC_FRICTIONLESS: &str = "5555555555554444";

/// The vault for both the engine (`CardSecrets`) and the link (`CardResolver`), in memory.
#[derive(Debug, Default)]
struct Vault {
    cards: Mutex<HashMap<CardRef, (Pan, Expiry)>>,
}

impl Vault {
    fn put(&self, merchant: &MerchantId, customer: &CustomerNumber, card: NewCard<'_>) -> Token {
        let token = Token::random();
        let r = CardRef {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            payment: None,
        };
        self.cards
            .lock()
            .unwrap()
            .insert(r, (card.pan.clone(), card.expiry));
        token
    }
}

impl CardSecrets for Vault {
    fn save<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        _payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>> {
        let t = self.put(merchant, customer, card);
        Box::pin(async move { Ok(t) })
    }
    fn hold<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        _payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>> {
        let t = self.put(merchant, customer, card);
        Box::pin(async move { Ok(t) })
    }
    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
        _payment: OperationRef,
        _card_use: card::CardUse,
    ) -> BoxFuture<'a, Result<Option<ResolvedCard>, SecretsUnavailable>> {
        let found = self
            .cards
            .lock()
            .unwrap()
            .get(&CardRef {
                payment: None,
                ..card.clone()
            })
            .map(|(pan, expiry)| ResolvedCard {
                pan: pan.clone(),
                expiry: *expiry,
            });
        Box::pin(async move { Ok(found) })
    }
    fn record_payment<'a>(
        &'a self,
        _card: &'a CardRef,
        _at: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), SecretsUnavailable>> {
        Box::pin(async { Ok(()) })
    }
}

impl CardResolver for Vault {
    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
    ) -> BoxFuture<'a, Result<Option<Pan>, CardsUnavailable>> {
        let pan = self
            .cards
            .lock()
            .unwrap()
            .get(&CardRef {
                payment: None,
                ..card.clone()
            })
            .map(|(p, _)| p.clone());
        Box::pin(async move { Ok(pan) })
    }
}

/// The real link, except that after the network answered an authorization the "process dies"
/// before the engine hears of it.
#[derive(Debug)]
struct DiesAfterSending(Link);

impl Acquirer for DiesAfterSending {
    fn prepare(&self, intent: Intent<'_>) -> Prepared {
        Acquirer::prepare(&self.0, intent)
    }
    fn authorize<'a>(
        &'a self,
        prepared: Prepared,
        req: AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, AuthorizeError>> {
        Box::pin(async move {
            let _answered = Acquirer::authorize(&self.0, prepared, req).await;
            futures::future::pending().await
        })
    }
    fn complete<'a>(
        &'a self,
        req: CompletionRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, CompleteError>> {
        Acquirer::complete(&self.0, req)
    }
    fn reverse<'a>(
        &'a self,
        original: &'a TransactionRef,
        remaining: Option<Amount>,
    ) -> BoxFuture<'a, Result<ReversalState, ReverseError>> {
        Acquirer::reverse(&self.0, original, remaining)
    }
}

struct World {
    sim: SimulatorHandle,
    pki: DevPki,
    vault: Arc<Vault>,
    dir: tempfile::TempDir,
    m: MerchantSettings,
}

async fn world() -> World {
    let pki = DevPki::generate();
    let config = SimConfig::with_pki(&pki);
    let iso = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acs = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(config, iso, acs).await.unwrap();
    let mut m = MerchantSettings::new(MerchantId::parse("452739").unwrap());
    m.mit_allowed = true;
    World {
        sim,
        pki,
        vault: Arc::new(Vault::default()),
        dir: tempfile::tempdir().unwrap(),
        m,
    }
}

impl World {
    fn link_config(&self) -> LinkConfig {
        let tls = client_config(&TlsMaterial {
            ca_cert_pem: self.pki.ca_cert_pem.clone(),
            client_cert_pem: self.pki.client_cert_pem.clone(),
            client_key_pem: self.pki.client_key_pem.clone(),
        })
        .unwrap();
        let endpoint = Endpoint::new(self.sim.iso_addr.to_string(), "localhost").unwrap();
        let mut c = LinkConfig::new(vec![endpoint], tls);
        c.connections = 1;
        c
    }

    /// Opens the process's database and starts its link: what start-up does.
    async fn start(&self) -> (Store, Link) {
        let store =
            Store::open(EngineKind::Redb, &self.dir.path().join("authorizer.redb")).unwrap();
        let link = Link::start(self.link_config(), store.clone(), self.vault.clone()).unwrap();
        assert!(
            link.wait_ready(Duration::from_secs(10)).await,
            "link never signed on"
        );
        (store, link)
    }

    fn engine(&self, store: Store, acquirer: Arc<dyn Acquirer>) -> Engine {
        Engine::new(store, acquirer, self.vault.clone(), Arc::new(SystemClock))
    }

    async fn pay(
        &self,
        engine: &Engine,
        order: NewOrder,
        digits: &str,
        save: bool,
    ) -> orders::OperationResult {
        let bill = engine.create_order(&self.m, order).await.unwrap().bill;
        let pan = Pan::parse(digits).unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let card = NewCard {
            pan: &pan,
            expiry: Expiry::new(12, 2099).unwrap(),
            cvc: &cvc,
            holder: None,
        };
        let three_ds = match save {
            true => Some(self.three_ds(&pan).await),
            false => None,
        };
        engine
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
        let r = AcsClient::new(self.sim.acs_addr)
            .authenticate_passing(pan)
            .await
            .unwrap();
        ThreeDs {
            eci: iso8583::Eci::parse(&r.eci.unwrap()).unwrap(),
            cavv: r.cavv.map(|c| iso8583::Cavv::parse(&c).unwrap()),
            version: Some("2.2.0".into()),
            ds_transaction_id: Some(iso8583::DsTransactionId::parse(&r.ds_trans_id).unwrap()),
        }
    }

    /// What the card at `masked` has paid, net, in the simulator's books.
    fn spent(&self, masked: &str) -> i64 {
        let b = self.sim.ledger().balance(masked).unwrap();
        b.opening - b.current
    }
}

fn order(number: &str, amount: u64, two_stage: bool) -> NewOrder {
    NewOrder {
        order_number: OrderNumber::parse(number).unwrap(),
        amount,
        currency: Currency::RUB,
        two_stage,
        customer_number: Some(CustomerNumber::parse("cust-1").unwrap()),
        details: OrderDetails::default(),
        recurring: None,
        expires_at: None,
        disable_3ds: false,
    }
}

fn cancel(amount: Option<u64>) -> CancelRequest {
    CancelRequest {
        amount,
        currency: None,
        reason: CancelReason::Shop,
        external_id: None,
        client_ip: None,
    }
}

const PLAIN: &str = "424242******4242";

#[tokio::test]
async fn payments_charges_reversals_and_refunds_reach_the_ledger() {
    let w = world().await;
    let (store, link) = w.start().await;
    let engine = w.engine(store, Arc::new(link.clone()));

    // One-stage.
    let one = w
        .pay(&engine, order("I-1", 1_000, false), PLAIN_APPROVED, false)
        .await;
    assert_eq!(one.order.state, OrderState::Approved);
    assert_eq!(w.spent(PLAIN), 1_000);

    // Two-stage, charged for less: only the charged amount stays taken.
    let two = w
        .pay(&engine, order("I-2", 3_000, true), PLAIN_APPROVED, false)
        .await;
    assert_eq!(two.order.state, OrderState::Delayed);
    let charged = engine
        .charge(&w.m, two.order.bill, Some(2_500))
        .await
        .unwrap();
    assert_eq!(charged.order.state, OrderState::PartialDelayed);
    assert_eq!(w.spent(PLAIN), 3_500);

    // Before the cut-off a cancel is a reversal (partial: DE 95).
    let c = engine
        .cancel(&w.m, one.order.bill, cancel(Some(400)))
        .await
        .unwrap();
    assert_eq!(
        c.operation().unwrap().cancel.as_ref().unwrap().message,
        CancelMessage::Reversal
    );
    assert_eq!(w.spent(PLAIN), 3_100);
    let reversed = w
        .sim
        .ledger()
        .entries
        .iter()
        .filter(|e| e.action == Action::Reversed)
        .count();
    assert_eq!(reversed, 1);

    // After the cut-off, a refund.
    engine.run_cutoff(&w.m).await.unwrap();
    let c = engine
        .cancel(&w.m, charged.order.bill, cancel(None))
        .await
        .unwrap();
    assert_eq!(c.order.state, OrderState::Canceled);
    assert_eq!(
        c.operation().unwrap().cancel.as_ref().unwrap().message,
        CancelMessage::Refund
    );
    assert!(
        w.sim
            .ledger()
            .entries
            .iter()
            .any(|e| e.action == Action::Refunded && e.amount == Some(2_500))
    );
    assert_eq!(w.spent(PLAIN), 600);
    assert!(w.sim.ledger().balances_add_up());
    link.shutdown().await;
}

#[tokio::test]
async fn a_recurring_mit_carries_the_first_payments_network_id() {
    let w = world().await;
    let (store, link) = w.start().await;
    let engine = w.engine(store, Arc::new(link.clone()));
    let mut initial = order("R-0", 1_000, false);
    initial.recurring = Some(RecurringRequest::Scheduled {
        min_amount: 100,
        max_amount: 5_000,
        period_days: 30,
        max_date: time::macros::date!(2099 - 12 - 31),
    });
    let first = w.pay(&engine, initial, MC_FRICTIONLESS, true).await;
    assert_eq!(
        first.order.state,
        OrderState::Approved,
        "{:?}",
        first.operation()
    );
    let id = first
        .order
        .card
        .as_ref()
        .unwrap()
        .network_txn_id
        .clone()
        .unwrap();

    let req = RecurringPayment {
        initial: first.order.bill,
        order_number: OrderNumber::parse("R-1").unwrap(),
        amount: 2_000,
        currency: Currency::RUB,
        details: OrderDetails::default(),
    };
    let mit = engine.pay_recurring(&w.m, req).await.unwrap();
    assert_eq!(
        mit.order.state,
        OrderState::Approved,
        "{:?}",
        mit.operation()
    );
    // The simulator approves an MIT only when DE 48.03 names an approved first use of the card
    // (12 otherwise): the approval of the rp order's own STAN is the proof.
    let ledger = w.sim.ledger();
    let first_use = ledger
        .approvals()
        .find(|e| e.amount == Some(1_000))
        .unwrap();
    assert_eq!(first_use.network_id.as_deref(), Some(id.as_str()));
    let sent = mit.order.payment_reference().unwrap();
    let approval = ledger
        .approval(sent.stan.value(), sent.rrn.as_str())
        .unwrap();
    assert_eq!(
        (approval.amount, approval.response_code.as_deref()),
        (Some(2_000), Some("00"))
    );
    link.shutdown().await;
}

#[tokio::test]
async fn a_payment_answered_by_the_network_but_lost_by_a_crash_is_reversed_on_restart() {
    let w = world().await;
    let (store, link) = w.start().await;
    let engine = Arc::new(w.engine(store, Arc::new(DiesAfterSending(link.clone()))));
    let bill = engine
        .create_order(&w.m, order("K-1", 1_500, false))
        .await
        .unwrap()
        .bill;
    let (e, m) = (engine.clone(), w.m.clone());
    let paying = tokio::spawn(async move {
        let pan = Pan::parse(PLAIN_APPROVED).unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let card = NewCard {
            pan: &pan,
            expiry: Expiry::new(12, 2099).unwrap(),
            cvc: &cvc,
            holder: None,
        };
        e.pay(
            &m,
            bill,
            PaymentCard::New {
                card,
                save: false,
                three_ds: None,
            },
        )
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.sim.ledger().approvals().count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.spent(PLAIN), 1_500, "the network took the money");
    // The process dies: the task, the engine, the link and the database handle go.
    paying.abort();
    let _ = paying.await;
    drop(engine);
    link.shutdown().await;

    let (store, link) = w.start().await;
    let engine = w.engine(store, Arc::new(link.clone()));
    assert_eq!(
        engine.order(&w.m.id, bill).unwrap().state,
        OrderState::InProcess
    );
    let report = engine.recover(&|_| None).await.unwrap();
    assert_eq!(report.payments_reversed, 1);
    let o = engine.order(&w.m.id, bill).unwrap();
    assert_eq!(o.state, OrderState::Declined);
    assert_eq!(w.spent(PLAIN), 0, "reversed: the ledger agrees");
    link.shutdown().await;
}
