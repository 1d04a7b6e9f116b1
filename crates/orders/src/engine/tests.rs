//! Unit tests of the engine through its own traits: a fake network that answers by amount, a
//! fake vault, a settable clock, and a redb store in a temp dir. Each test fails for one reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use card::{CardUse, CustomerNumber, Cvc, Expiry, MerchantId, Pan, Token};
use futures::future::BoxFuture;
use iso8583::{Amount, Eci, MitReason, ResponseCode, Rrn, Stan, TransmissionTime};
use link::{
    ApprovalCode, AuthorizationRequest, AuthorizeError, CardRef, CompleteError, CompletionRequest,
    CredentialOnFile, Currency, Intent, LinkOutcome, NetworkTxnId, Prepared, ReversalState,
    ReverseError, ThreeDs, TransactionKind, TransactionRef,
};
use store::{EngineKind, Store};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::model::{CancelReason, OperationState, OrderState};
use crate::secrets::{NewCard, ResolvedCard, SecretsUnavailable};
use crate::settings::TurnoverLimits;
use crate::{Clock, OperationRef, PaymentCard};

/// Amounts the fake network treats specially.
const INSUFFICIENT: u64 = 5_100;
const NO_ANSWER: u64 = 9_100;
const FIRST_USE_ID: &str = "NTX000000000001";

/// What the fake network was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Auth {
        kind: TransactionKind,
        amount: u64,
        cof: CredentialOnFile,
        cvc: bool,
        three_ds: bool,
    },
    Complete(u64),
    Reverse {
        stan: u32,
        remaining: Option<u64>,
    },
}

#[derive(Debug, Default)]
pub(crate) struct FakeNet {
    sent: Mutex<Vec<Sent>>,
    stan: AtomicU32,
    /// `authorize` never returns: the process "dies" with the request on the wire.
    hang: AtomicBool,
}

impl FakeNet {
    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
    fn auths(&self) -> usize {
        self.sent()
            .iter()
            .filter(|s| matches!(s, Sent::Auth { .. }))
            .count()
    }
}

fn reference(req: Intent<'_>, stan: u32) -> TransactionRef {
    TransactionRef {
        mti: req.kind.mti(),
        stan: Stan::new(stan).unwrap(),
        transmission: TransmissionTime::from_ascii(b"0310120000").unwrap(),
        rrn: Rrn::from_ascii(format!("{stan:012}").as_bytes()).unwrap(),
        amount: req.amount,
        processing_code: req.kind.processing_code(),
        currency: req.currency,
        merchant: req.merchant.clone(),
        card: req.card.clone(),
    }
}

impl Acquirer for FakeNet {
    fn prepare(&self, req: Intent<'_>) -> Prepared {
        Prepared::new(reference(
            req,
            self.stan.fetch_add(1, Ordering::Relaxed) + 1,
        ))
    }

    fn authorize<'a>(
        &'a self,
        prepared: Prepared,
        req: AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, AuthorizeError>> {
        self.sent.lock().unwrap().push(Sent::Auth {
            kind: req.kind,
            amount: req.amount.0,
            cof: req.cof.clone(),
            cvc: req.cvc.is_some(),
            three_ds: req.three_ds.is_some(),
        });
        let reference = prepared.into_reference();
        let hang = self.hang.load(Ordering::Relaxed);
        Box::pin(async move {
            if hang {
                futures::future::pending::<()>().await;
            }
            let declined = |code| {
                Ok(LinkOutcome::Declined {
                    reference: reference.clone(),
                    code,
                })
            };
            if let CredentialOnFile::Merchant { original, .. } = &req.cof
                && original.as_str() != FIRST_USE_ID
            {
                return declined(ResponseCode::INVALID_TRANSACTION);
            }
            match req.amount.0 {
                INSUFFICIENT => declined(ResponseCode::INSUFFICIENT_FUNDS),
                NO_ANSWER => Ok(LinkOutcome::TimedOutReversed {
                    reference,
                    reversal: ReversalState::Acknowledged,
                }),
                _ => Ok(LinkOutcome::Approved {
                    reference,
                    approval_code: ApprovalCode::parse("A1B2C3").unwrap(),
                    network_txn_id: (req.cof == CredentialOnFile::FirstUse)
                        .then(|| NetworkTxnId::parse(FIRST_USE_ID).unwrap()),
                }),
            }
        })
    }

    fn complete<'a>(
        &'a self,
        req: CompletionRequest<'a>,
    ) -> BoxFuture<'a, Result<LinkOutcome, CompleteError>> {
        self.sent.lock().unwrap().push(Sent::Complete(req.amount.0));
        let mut reference = req.original.clone();
        reference.amount = req.amount;
        Box::pin(async move {
            Ok(LinkOutcome::Approved {
                reference,
                approval_code: ApprovalCode::parse("C0MPL1").unwrap(),
                network_txn_id: None,
            })
        })
    }

    fn reverse<'a>(
        &'a self,
        original: &'a TransactionRef,
        remaining: Option<Amount>,
    ) -> BoxFuture<'a, Result<ReversalState, ReverseError>> {
        self.sent.lock().unwrap().push(Sent::Reverse {
            stan: original.stan.value(),
            remaining: remaining.map(|a| a.0),
        });
        Box::pin(async { Ok(ReversalState::Acknowledged) })
    }
}

/// The vault: cards by (merchant, customer, token), and every payment reference a lookup named.
#[derive(Debug, Default)]
pub(crate) struct FakeVault {
    cards: Mutex<HashMap<CardRef, (Pan, Expiry, bool)>>,
    lookups: Mutex<Vec<OperationRef>>,
    /// What each resolve allowed, in order.
    uses: Mutex<Vec<CardUse>>,
    recorded: AtomicU32,
    /// Answers no lookup while set, as a vault that is away.
    away: AtomicBool,
}

impl FakeVault {
    fn put(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        card: NewCard<'_>,
        saved: bool,
    ) -> Token {
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
            .insert(r, (card.pan.clone(), card.expiry, saved));
        token
    }
}

impl CardSecrets for FakeVault {
    fn save<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>> {
        self.lookups.lock().unwrap().push(payment);
        let token = self.put(merchant, customer, card, true);
        Box::pin(async move { Ok(token) })
    }

    fn hold<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>> {
        self.lookups.lock().unwrap().push(payment);
        let token = self.put(merchant, customer, card, false);
        Box::pin(async move { Ok(token) })
    }

    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
        payment: OperationRef,
        card_use: CardUse,
    ) -> BoxFuture<'a, Result<Option<ResolvedCard>, SecretsUnavailable>> {
        if self.away.load(Ordering::Relaxed) {
            return Box::pin(async { Err(SecretsUnavailable("away".into())) });
        }
        self.lookups.lock().unwrap().push(payment);
        self.uses.lock().unwrap().push(card_use);
        let found = self
            .cards
            .lock()
            .unwrap()
            .get(&CardRef {
                payment: None,
                ..card.clone()
            })
            // A held card is never one the merchant could offer.
            .filter(|(_, _, saved)| *saved || card_use == CardUse::OnFile)
            .map(|(pan, expiry, _)| ResolvedCard {
                pan: pan.clone(),
                expiry: *expiry,
            });
        Box::pin(async move { Ok(found) })
    }

    fn record_payment<'a>(
        &'a self,
        _card: &'a CardRef,
        _at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), SecretsUnavailable>> {
        self.recorded.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug)]
pub(crate) struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn advance(&self, d: time::Duration) {
        *self.0.lock().unwrap() += d;
    }
    fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A Tuesday, 12:00 in Moscow.
const START: OffsetDateTime = datetime!(2026-03-10 09:00 UTC);

struct Fx {
    engine: Arc<Engine>,
    net: Arc<FakeNet>,
    vault: Arc<FakeVault>,
    clock: Arc<TestClock>,
    m: MerchantSettings,
    dir: tempfile::TempDir,
    store: Store,
}

fn merchant(id: &str) -> MerchantSettings {
    let mut m = MerchantSettings::new(MerchantId::parse(id).unwrap());
    m.cutoff = time::macros::time!(23:00);
    m
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(EngineKind::Redb, &dir.path().join("authorizer.redb")).unwrap();
    let net = Arc::new(FakeNet::default());
    let vault = Arc::new(FakeVault::default());
    let clock = Arc::new(TestClock(Mutex::new(START)));
    let engine = Arc::new(Engine::new(
        store.clone(),
        net.clone(),
        vault.clone(),
        clock.clone(),
    ));
    Fx {
        engine,
        net,
        vault,
        clock,
        m: merchant("452739"),
        dir,
        store,
    }
}

/// [`fx`] with a daily turnover limit of `daily` minor units (RUB) per customer.
fn fx_with_daily_limit(daily: u64) -> Fx {
    let mut f = fx();
    f.m.limits = Some(TurnoverLimits {
        currency: Currency::RUB,
        daily: Some(daily),
        weekly: None,
    });
    f
}

/// The settings of no merchant, for the engine's own passes in tests that need no notification.
fn nobody(_: &MerchantId) -> Option<MerchantSettings> {
    None
}

pub(crate) fn blank_record(amount: u64) -> OrderRecord {
    OrderRecord {
        version: crate::ORDER_RECORD_VERSION,
        bill: BillNumber::new(1_234_567_890_123_456).unwrap(),
        merchant: MerchantId::parse("452739").unwrap(),
        order_number: OrderNumber::parse("o-1").unwrap(),
        amount,
        currency: Currency::RUB,
        two_stage: false,
        created_at: Timestamp(0),
        expires_at: Timestamp(86_400),
        customer_number: None,
        customer_scope: "452739".into(),
        disable_3ds: false,
        details: OrderDetails::default(),
        agreement: None,
        initial: None,
        state: OrderState::InProcess,
        card: None,
        authorized: 0,
        captured: 0,
        cancelled: 0,
        captured_at: None,
        auto_cancel_at: None,
        turnover: Vec::new(),
        operations: Vec::new(),
    }
}

fn order(number: &str, amount: u64) -> NewOrder {
    NewOrder {
        order_number: OrderNumber::parse(number).unwrap(),
        amount,
        currency: Currency::RUB,
        two_stage: false,
        customer_number: Some(CustomerNumber::parse("cust-1").unwrap()),
        details: OrderDetails::default(),
        recurring: None,
        expires_at: None,
        disable_3ds: false,
    }
}

const PAN: &str = "4242424242424242";

fn three_ds() -> ThreeDs {
    ThreeDs {
        eci: Eci::AUTHENTICATED,
        cavv: iso8583::Cavv::parse("AAABBBCCCDDDEEEFFFGGGHHHIII="),
        version: Some("2.2.0".into()),
        ds_transaction_id: None,
    }
}

impl Fx {
    async fn create(&self, o: NewOrder) -> BillNumber {
        self.engine.create_order(&self.m, o).await.unwrap().bill
    }

    /// tokenpay.cfm: a new order `number` of `amount`, paid with `token`.
    async fn token_pay(&self, number: &str, amount: u64, token: Token) -> OperationResult {
        self.engine
            .token_pay(&self.m, order(number, amount), token)
            .await
            .unwrap()
    }

    /// Pays with the test card typed on the page, `save` with 3-D Secure.
    async fn pay_new(&self, bill: BillNumber, save: bool) -> OperationResult {
        self.try_pay_new(bill, save).await.unwrap()
    }

    async fn try_pay_new(
        &self,
        bill: BillNumber,
        save: bool,
    ) -> Result<OperationResult, EngineError> {
        let pan = Pan::parse(PAN).unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let card = NewCard {
            pan: &pan,
            expiry: Expiry::new(12, 2030).unwrap(),
            cvc: &cvc,
            holder: None,
        };
        let three_ds = save.then(three_ds);
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
    }

    /// An order paid (one-stage, or two-stage when `delay`) with a new card.
    async fn paid(&self, number: &str, amount: u64, delay: bool) -> BillNumber {
        let mut o = order(number, amount);
        o.two_stage = delay;
        let bill = self.create(o).await;
        self.pay_new(bill, false).await;
        bill
    }

    /// A saved card of `cust-1`.
    fn saved_card(&self) -> Token {
        let pan = Pan::parse(PAN).unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let card = NewCard {
            pan: &pan,
            expiry: Expiry::new(12, 2030).unwrap(),
            cvc: &cvc,
            holder: None,
        };
        self.vault.put(
            &self.m.id,
            &CustomerNumber::parse("cust-1").unwrap(),
            card,
            true,
        )
    }

    async fn cancel(
        &self,
        bill: BillNumber,
        amount: Option<u64>,
        id: Option<&str>,
    ) -> Result<OperationResult, EngineError> {
        let req = CancelRequest {
            amount,
            currency: None,
            reason: CancelReason::Customer,
            external_id: id.map(str::to_owned),
            client_ip: None,
        };
        self.engine.cancel(&self.m, bill, req).await
    }
}

fn request_error(r: Result<OperationResult, EngineError>) -> RequestError {
    match r {
        Err(EngineError::Request(e)) => e,
        other => panic!("expected a request error, got {other:?}"),
    }
}

fn op_state(r: &OperationResult) -> OperationState {
    r.operation().unwrap().state
}

// ---- payments ----

#[tokio::test]
async fn one_stage_payment_is_a_purchase_and_approves_the_order() {
    let f = fx();
    let bill = f.create(order("A-1", 1_000)).await;
    let paid = f.pay_new(bill, false).await;
    assert_eq!(paid.order.state, OrderState::Approved);
    assert_eq!(
        (paid.order.captured, op_state(&paid)),
        (1_000, OperationState::Success)
    );
    assert_eq!(paid.operation().unwrap().assist_code().as_str(), "AS000");
    let Sent::Auth { kind, cof, cvc, .. } = &f.net.sent()[0] else {
        panic!()
    };
    assert_eq!(
        (*kind, cof, *cvc),
        (TransactionKind::Purchase, &CredentialOnFile::None, true)
    );
    let card = paid.order.card.unwrap();
    assert_eq!(
        (card.masked.bin.as_str(), card.masked.last4.as_str()),
        ("424242", "4242")
    );
    assert_eq!(
        card.card.customer,
        bill.held_card_owner(),
        "held under the order, never under the customer"
    );
    assert_eq!(
        f.vault.lookups.lock().unwrap()[0].to_string(),
        format!("{bill}.1"),
        "held for this payment"
    );
}

#[tokio::test]
async fn no_pan_is_ever_written_to_the_store() {
    let f = fx();
    f.paid("A-1", 1_000, false).await;
    drop(f.engine);
    let bytes = std::fs::read(f.dir.path().join("authorizer.redb")).unwrap();
    assert!(!bytes.windows(PAN.len()).any(|w| w == PAN.as_bytes()));
}

#[tokio::test]
async fn a_decline_declines_the_order_with_its_de39_and_assist_code() {
    let f = fx();
    let bill = f.create(order("A-1", INSUFFICIENT)).await;
    let r = f.pay_new(bill, false).await;
    assert_eq!(r.order.state, OrderState::Declined);
    let op = r.operation().unwrap();
    assert_eq!(op.decline, Some(DeclineReason::InsufficientFunds));
    assert_eq!(op.assist_code().as_str(), "AS102");
    assert_eq!(
        op.last_transaction().unwrap().response_code.as_deref(),
        Some("51")
    );
}

#[tokio::test]
async fn a_timed_out_payment_is_declined_as_timeout() {
    let f = fx();
    let bill = f.create(order("A-1", NO_ANSWER)).await;
    let r = f.pay_new(bill, false).await;
    assert_eq!(
        (r.order.state, op_state(&r)),
        (OrderState::Declined, OperationState::Timeout)
    );
}

#[tokio::test]
async fn paying_a_declined_order_again_is_not_allowed() {
    let f = fx();
    let bill = f.create(order("A-1", INSUFFICIENT)).await;
    f.pay_new(bill, false).await;
    let e = request_error(f.try_pay_new(bill, false).await);
    assert_eq!(
        e,
        RequestError::NotAllowed {
            action: crate::Action::Pay,
            state: OrderState::Declined
        }
    );
    assert_eq!(e.codes().0, 15);
}

#[tokio::test]
async fn the_page_fills_missing_payer_fields_only_and_only_before_payment() {
    let f = fx();
    let mut new = order("A-1", 1_000);
    new.details.email = Some("shop@merchant.test".into());
    let bill = f.create(new).await;
    let payer = crate::PayerDetails {
        firstname: Some("Ann".into()),
        lastname: Some("Lee".into()),
        email: Some("typed@shopper.test".into()),
    };
    let kept = f
        .engine
        .complete_payer(&f.m, bill, payer.clone())
        .await
        .unwrap();
    assert_eq!(kept.details.firstname.as_deref(), Some("Ann"));
    assert_eq!(
        kept.details.email.as_deref(),
        Some("shop@merchant.test"),
        "the merchant's value stands"
    );
    assert_eq!(f.engine.order_of_page(bill).unwrap().details, kept.details);
    f.pay_new(bill, false).await;
    let refused = f.engine.complete_payer(&f.m, bill, payer).await;
    assert!(
        matches!(
            refused,
            Err(EngineError::Request(RequestError::NotAllowed { .. }))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn only_one_attempt_of_an_order_number_is_ever_paid() {
    let f = fx();
    let first = f.create(order("A-1", 1_000)).await;
    let second = f.create(order("A-1", 1_000)).await;
    assert_ne!(first, second, "every attempt is its own order");
    f.pay_new(first, false).await;
    assert_eq!(
        request_error(f.try_pay_new(second, false).await),
        RequestError::AlreadyPaid
    );
    assert_eq!(f.net.auths(), 1);
}

#[tokio::test]
async fn an_order_past_its_expiration_is_not_paid() {
    let f = fx();
    let bill = f.create(order("A-1", 1_000)).await;
    f.clock.advance(time::Duration::days(2));
    let e = request_error(f.try_pay_new(bill, false).await);
    assert_eq!(
        e,
        RequestError::NotAllowed {
            action: crate::Action::Pay,
            state: OrderState::Timeout
        }
    );
    assert_eq!(f.net.auths(), 0);
}

// ---- two-stage and charge ----

#[tokio::test]
async fn two_stage_is_delayed_and_a_smaller_charge_is_partial_delayed() {
    let f = fx();
    let bill = f.paid("A-1", 3_000, true).await;
    assert_eq!(
        f.engine.order(&f.m.id, bill).unwrap().state,
        OrderState::Delayed
    );
    let Sent::Auth { kind, .. } = &f.net.sent()[0] else {
        panic!()
    };
    assert_eq!(*kind, TransactionKind::Authorization);
    let r = f.engine.charge(&f.m, bill, Some(2_500)).await.unwrap();
    assert_eq!(
        (r.order.state, r.order.captured),
        (OrderState::PartialDelayed, 2_500)
    );
    assert_eq!(f.net.sent()[1], Sent::Complete(2_500));
}

#[tokio::test]
async fn a_repeated_charge_answers_the_first_without_a_second_message() {
    let f = fx();
    let bill = f.paid("A-1", 3_000, true).await;
    let first = f.engine.charge(&f.m, bill, None).await.unwrap();
    let again = f.engine.charge(&f.m, bill, Some(100)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(first.order.state, OrderState::Approved);
    assert_eq!(
        f.net
            .sent()
            .iter()
            .filter(|s| matches!(s, Sent::Complete(_)))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_charge_over_the_authorized_amount_is_refused() {
    let f = fx();
    let bill = f.paid("A-1", 3_000, true).await;
    let e = request_error(f.engine.charge(&f.m, bill, Some(3_001)).await);
    assert_eq!(e.codes(), (5, 108));
}

#[tokio::test]
async fn a_one_stage_order_cannot_be_charged() {
    let f = fx();
    let bill = f.paid("A-1", 3_000, false).await;
    let e = request_error(f.engine.charge(&f.m, bill, None).await);
    assert_eq!(e.codes(), (15, 201));
}

// ---- cancel ----

#[tokio::test]
async fn cancels_before_the_cutoff_are_reversals_partial_then_full() {
    let f = fx();
    let bill = f.paid("A-1", 1_000, false).await;
    let r = f.cancel(bill, Some(300), None).await.unwrap();
    assert_eq!(
        (r.order.state, r.order.cancelled),
        (OrderState::PartialCanceled, 300)
    );
    let r = f.cancel(bill, None, None).await.unwrap();
    assert_eq!(
        (r.order.state, r.order.cancelled),
        (OrderState::Canceled, 1_000)
    );
    let reversals: Vec<_> = f
        .net
        .sent()
        .into_iter()
        .filter(|s| matches!(s, Sent::Reverse { .. }))
        .collect();
    assert_eq!(
        reversals,
        vec![
            Sent::Reverse {
                stan: 1,
                remaining: Some(700)
            },
            Sent::Reverse {
                stan: 1,
                remaining: None
            }
        ]
    );
}

#[tokio::test]
async fn a_cancel_after_the_cutoff_command_is_a_refund() {
    let f = fx();
    let bill = f.paid("A-1", 1_000, false).await;
    f.engine.run_cutoff(&f.m).await.unwrap();
    let r = f.cancel(bill, Some(400), None).await.unwrap();
    assert_eq!(r.order.state, OrderState::PartialCanceled);
    assert_eq!(
        r.operation().unwrap().cancel.as_ref().unwrap().message,
        crate::CancelMessage::Refund
    );
    let Sent::Auth { kind, amount, .. } = f.net.sent().last().cloned().unwrap() else {
        panic!()
    };
    assert_eq!((kind, amount), (TransactionKind::Refund, 400));
}

#[tokio::test]
async fn the_daily_cutoff_in_the_merchants_zone_settles_payments() {
    let f = fx();
    let bill = f.paid("A-1", 1_000, false).await;
    // 23:00 Moscow is 20:00 UTC: a minute past it the payment has settled.
    f.clock.set(datetime!(2026-03-10 20:01 UTC));
    let r = f.cancel(bill, None, None).await.unwrap();
    assert_eq!(
        r.operation().unwrap().cancel.as_ref().unwrap().message,
        crate::CancelMessage::Refund
    );
}

#[tokio::test]
async fn cancels_never_exceed_what_was_paid() {
    let f = fx();
    let bill = f.paid("A-1", 1_000, false).await;
    f.cancel(bill, Some(600), None).await.unwrap();
    assert_eq!(
        request_error(f.cancel(bill, Some(401), None).await),
        RequestError::AmountTooLarge
    );
}

#[tokio::test]
async fn a_repeated_external_refund_id_answers_the_first_cancel() {
    let f = fx();
    let bill = f.paid("A-1", 1_000, false).await;
    let first = f
        .cancel(bill, Some(100), Some("refund-0001"))
        .await
        .unwrap();
    let again = f
        .cancel(bill, Some(100), Some("refund-0001"))
        .await
        .unwrap();
    assert_eq!(first.operation, again.operation);
    assert_eq!(again.order.cancelled, 100);
    assert_eq!(
        f.net
            .sent()
            .iter()
            .filter(|s| matches!(s, Sent::Reverse { .. }))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_delayed_order_is_cancelled_in_full_only() {
    let f = fx();
    let bill = f.paid("A-1", 3_000, true).await;
    assert_eq!(
        request_error(f.cancel(bill, Some(1_000), None).await),
        RequestError::PartialBeforeCharge
    );
    let r = f.cancel(bill, None, None).await.unwrap();
    assert_eq!(r.order.state, OrderState::Canceled);
    assert_eq!(
        f.net.sent().last(),
        Some(&Sent::Reverse {
            stan: 1,
            remaining: None
        })
    );
}

#[tokio::test]
async fn a_partially_charged_order_reverses_down_from_what_was_charged() {
    let f = fx();
    let bill = f.paid("A-1", 3_000, true).await;
    f.engine.charge(&f.m, bill, Some(2_500)).await.unwrap();
    let r = f.cancel(bill, Some(500), None).await.unwrap();
    assert_eq!(r.order.state, OrderState::PartialCanceled);
    assert_eq!(
        f.net.sent().last(),
        Some(&Sent::Reverse {
            stan: 1,
            remaining: Some(2_000)
        })
    );
}

#[tokio::test]
async fn a_declined_order_cannot_be_cancelled() {
    let f = fx();
    let bill = f.create(order("A-1", INSUFFICIENT)).await;
    f.pay_new(bill, false).await;
    assert_eq!(
        request_error(f.cancel(bill, None, None).await).codes(),
        (15, 201)
    );
}

// ---- sweep ----

#[tokio::test]
async fn the_sweep_expires_unpaid_orders_and_reverses_uncharged_delayed_ones() {
    let f = fx();
    let unpaid = f.create(order("A-1", 1_000)).await;
    let delayed = f.paid("A-2", 2_000, true).await;
    f.clock.advance(time::Duration::days(2));
    let report = f.engine.sweep(&nobody).await.unwrap();
    assert_eq!((report.expired, report.auto_cancelled), (1, 0));
    assert_eq!(
        f.engine.order(&f.m.id, unpaid).unwrap().state,
        OrderState::Timeout
    );
    f.clock.advance(time::Duration::days(6));
    let report = f.engine.sweep(&nobody).await.unwrap();
    assert_eq!(report.auto_cancelled, 1);
    let o = f.engine.order(&f.m.id, delayed).unwrap();
    assert_eq!(o.state, OrderState::Canceled);
    assert_eq!(
        o.operations[1].cancel.as_ref().unwrap().reason,
        CancelReason::AutoCancel
    );
}

// ---- card on file ----

#[tokio::test]
async fn a_first_use_without_3ds_is_declined_before_the_network() {
    let f = fx();
    let bill = f.create(order("A-1", 1_000)).await;
    let pan = Pan::parse(PAN).unwrap();
    let cvc = Cvc::parse("123").unwrap();
    let card = NewCard {
        pan: &pan,
        expiry: Expiry::new(12, 2030).unwrap(),
        cvc: &cvc,
        holder: None,
    };
    let r = f
        .engine
        .pay(
            &f.m,
            bill,
            PaymentCard::New {
                card,
                save: true,
                three_ds: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        r.operation().unwrap().decline,
        Some(DeclineReason::ThreeDsMissing)
    );
    assert_eq!(f.net.auths(), 0);
}

#[tokio::test]
async fn a_first_use_is_cof_i_with_cvc_and_3ds_and_keeps_the_network_id() {
    let f = fx();
    let bill = f.create(order("A-1", 1_000)).await;
    let r = f.pay_new(bill, true).await;
    let card = r.order.card.unwrap();
    assert!(card.saved);
    assert_eq!(card.network_txn_id.unwrap().as_str(), FIRST_USE_ID);
    let Sent::Auth {
        cof, cvc, three_ds, ..
    } = &f.net.sent()[0]
    else {
        panic!()
    };
    assert_eq!(
        (cof, *cvc, *three_ds),
        (&CredentialOnFile::FirstUse, true, true)
    );
    assert_eq!(f.vault.recorded.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn one_click_is_a_cit_with_cvc_bound_to_its_payment() {
    let f = fx();
    let token = f.saved_card();
    let bill = f.create(order("A-1", 700)).await;
    let cvc = Cvc::parse("123").unwrap();
    let r = f
        .engine
        .pay(&f.m, bill, PaymentCard::OneClick { token, cvc: &cvc })
        .await
        .unwrap();
    assert_eq!(r.order.state, OrderState::Approved);
    let Sent::Auth { cof, cvc, .. } = &f.net.sent()[0] else {
        panic!()
    };
    assert_eq!((cof, *cvc), (&CredentialOnFile::Cardholder, true));
    assert_eq!(
        f.vault.lookups.lock().unwrap()[0],
        OperationRef { bill, number: 1 }
    );
}

#[tokio::test]
async fn token_pay_is_a_cit_without_cvc() {
    let f = fx();
    let token = f.saved_card();
    let r = f.token_pay("T-1", 800, token).await;
    assert_eq!(r.order.state, OrderState::Approved);
    let Sent::Auth {
        cof, cvc, three_ds, ..
    } = &f.net.sent()[0]
    else {
        panic!()
    };
    assert_eq!(
        (cof, *cvc, *three_ds),
        (&CredentialOnFile::Cardholder, false, false)
    );
}

#[tokio::test]
async fn token_pay_with_another_customers_or_unknown_token_is_declined_before_the_network() {
    let f = fx();
    let token = f.saved_card();
    let mut other = order("T-1", 800);
    other.customer_number = Some(CustomerNumber::parse("cust-2").unwrap());
    let r = f.engine.token_pay(&f.m, other, token).await.unwrap();
    assert_eq!(
        r.operation().unwrap().decline,
        Some(DeclineReason::UnknownCard)
    );
    let r = f.token_pay("T-2", 800, Token::random()).await;
    assert_eq!(r.operation().unwrap().assist_code().as_str(), "AS101");
    assert_eq!(f.net.auths(), 0);
}

#[tokio::test]
async fn token_pay_and_one_click_ask_the_vault_only_for_a_card_the_merchant_could_offer() {
    let f = fx();
    let token = f.saved_card();
    f.token_pay("T-1", 800, token).await;
    let bill = f.create(order("A-1", 700)).await;
    let cvc = Cvc::parse("123").unwrap();
    f.engine
        .pay(&f.m, bill, PaymentCard::OneClick { token, cvc: &cvc })
        .await
        .unwrap();
    assert_eq!(
        *f.vault.uses.lock().unwrap(),
        [CardUse::Offered, CardUse::Offered]
    );
}

#[tokio::test]
async fn an_unknown_token_gives_its_turnover_back_and_leaves_nothing_in_flight() {
    let f = fx_with_daily_limit(1_500);
    let r = f.token_pay("T-1", 1_000, Token::random()).await;
    assert_eq!(r.operation().unwrap().assist_code().as_str(), "AS101");
    assert!(r.operation().unwrap().transactions.is_empty());
    assert!(f.engine.persist.in_flight().unwrap().is_empty());
    let token = f.saved_card();
    let r = f.token_pay("T-2", 1_000, token).await;
    assert_eq!(r.order.state, OrderState::Approved);
}

#[tokio::test]
async fn a_vault_away_leaves_the_order_as_it_was_to_be_paid_again() {
    let f = fx_with_daily_limit(1_500);
    let token = f.saved_card();
    let bill = f.create(order("A-1", 1_000)).await;
    let cvc = Cvc::parse("123").unwrap();
    f.vault.away.store(true, Ordering::Relaxed);
    let away = f
        .engine
        .pay(&f.m, bill, PaymentCard::OneClick { token, cvc: &cvc })
        .await;
    assert!(matches!(away, Err(EngineError::Secrets(_))), "{away:?}");
    let kept = f.engine.persist.load(bill).unwrap().unwrap();
    assert_eq!(
        (kept.state, kept.operations.len(), kept.turnover.len()),
        (OrderState::InProcess, 0, 0)
    );
    assert!(f.engine.persist.in_flight().unwrap().is_empty());
    assert_eq!(f.net.auths(), 0);
    f.vault.away.store(false, Ordering::Relaxed);
    let r = f
        .engine
        .pay(&f.m, bill, PaymentCard::OneClick { token, cvc: &cvc })
        .await
        .unwrap();
    assert_eq!(
        r.order.state,
        OrderState::Approved,
        "the turnover came back"
    );
}

#[tokio::test]
async fn a_vault_away_declines_a_token_pay_order_and_leaves_nothing_in_flight() {
    let f = fx();
    let token = f.saved_card();
    f.vault.away.store(true, Ordering::Relaxed);
    let r = f.token_pay("T-1", 800, token).await;
    assert_eq!(
        (r.order.state, r.operation().unwrap().decline),
        (OrderState::Declined, Some(DeclineReason::SystemError))
    );
    assert!(f.engine.persist.in_flight().unwrap().is_empty());
    assert_eq!(f.net.auths(), 0);
}

// ---- recurring ----

fn agreement() -> RecurringRequest {
    RecurringRequest::Scheduled {
        min_amount: 100,
        max_amount: 5_000,
        period_days: 30,
        max_date: time::macros::date!(2026 - 12 - 31),
    }
}

impl Fx {
    async fn initial(&self, recurring: RecurringRequest) -> BillNumber {
        let mut o = order("R-0", 1_000);
        o.recurring = Some(recurring);
        let bill = self.create(o).await;
        self.pay_new(bill, true).await;
        bill
    }

    async fn rp(
        &self,
        initial: BillNumber,
        number: &str,
        amount: u64,
        currency: Currency,
    ) -> Result<OperationResult, EngineError> {
        let req = RecurringPayment {
            initial,
            order_number: OrderNumber::parse(number).unwrap(),
            amount,
            currency,
            details: OrderDetails::default(),
        };
        self.engine.pay_recurring(&self.m, req).await
    }
}

#[tokio::test]
async fn a_recurring_payment_is_an_mit_carrying_the_first_network_id() {
    let f = fx();
    let initial = f.initial(agreement()).await;
    let r = f.rp(initial, "R-1", 2_000, Currency::RUB).await.unwrap();
    assert_eq!(r.order.state, OrderState::Approved);
    assert_eq!(r.order.initial, Some(initial));
    let Sent::Auth { cof, cvc, .. } = f.net.sent().last().cloned().unwrap() else {
        panic!()
    };
    let expected = CredentialOnFile::Merchant {
        reason: MitReason::Recurring,
        original: NetworkTxnId::parse(FIRST_USE_ID).unwrap(),
    };
    assert_eq!((cof, cvc), (expected, false));
}

#[tokio::test]
async fn a_recurring_payment_may_use_the_card_on_file_whether_offered_or_not() {
    let f = fx();
    let initial = f.initial(agreement()).await;
    f.rp(initial, "R-1", 2_000, Currency::RUB).await.unwrap();
    assert_eq!(f.vault.uses.lock().unwrap().last(), Some(&CardUse::OnFile));
}

#[tokio::test]
async fn recurring_payments_outside_the_agreement_never_reach_the_network() {
    let f = fx();
    let initial = f.initial(agreement()).await;
    let before = f.net.auths();
    let code = |r| request_error(r).codes();
    assert_eq!(
        code(f.rp(initial, "R-1", 5_001, Currency::RUB).await),
        (5, 108)
    );
    assert_eq!(
        code(f.rp(initial, "R-2", 2_000, Currency::USD).await),
        (5, 105)
    );
    f.rp(initial, "R-3", 2_000, Currency::RUB).await.unwrap();
    let before_soon = f.net.auths();
    assert_eq!(
        code(f.rp(initial, "R-4", 2_000, Currency::RUB).await),
        (5, 320),
        "too soon"
    );
    f.clock.set(datetime!(2027-01-01 09:00 UTC));
    assert_eq!(
        code(f.rp(initial, "R-5", 2_000, Currency::RUB).await),
        (5, 104)
    );
    assert_eq!((before_soon - before, f.net.auths() - before_soon), (1, 0));
}

#[tokio::test]
async fn an_unbounded_agreement_needs_mit_enabled_and_pays_unscheduled() {
    let mut f = fx();
    let mut o = order("U-0", 1_000);
    o.recurring = Some(RecurringRequest::Unscheduled);
    let e = f.engine.create_order(&f.m, o).await.unwrap_err();
    assert!(matches!(
        e,
        EngineError::Request(RequestError::MitNotAllowed)
    ));
    f.m.mit_allowed = true;
    let initial = f.initial(RecurringRequest::Unscheduled).await;
    f.rp(initial, "U-1", 77_777, Currency::RUB).await.unwrap();
    let Sent::Auth { cof, .. } = f.net.sent().last().cloned().unwrap() else {
        panic!()
    };
    assert!(matches!(
        cof,
        CredentialOnFile::Merchant {
            reason: MitReason::Unscheduled,
            ..
        }
    ));
}

// ---- limits ----

#[tokio::test]
async fn over_the_daily_limit_is_as109_before_the_network_and_cancels_release_it() {
    let f = fx_with_daily_limit(1_500);
    let first = f.paid("L-1", 1_000, false).await;
    let bill = f.create(order("L-2", 1_000)).await;
    let r = f.pay_new(bill, false).await;
    assert_eq!(r.operation().unwrap().assist_code().as_str(), "AS109");
    assert_eq!(f.net.auths(), 1);
    f.cancel(first, Some(600), None).await.unwrap();
    let bill = f.create(order("L-3", 1_000)).await;
    assert_eq!(
        f.pay_new(bill, false).await.order.state,
        OrderState::Approved
    );
}

#[tokio::test]
async fn the_weekly_limit_spans_days_and_a_decline_books_nothing() {
    let mut f = fx();
    f.m.limits = Some(TurnoverLimits {
        currency: Currency::RUB,
        daily: None,
        weekly: Some(2_000),
    });
    let bill = f.create(order("L-0", INSUFFICIENT)).await;
    f.pay_new(bill, false).await;
    f.paid("L-1", 1_500, false).await;
    f.clock.advance(time::Duration::days(1));
    let bill = f.create(order("L-2", 600)).await;
    assert_eq!(
        f.pay_new(bill, false).await.operation().unwrap().decline,
        Some(DeclineReason::TurnoverLimit)
    );
    f.clock.advance(time::Duration::days(6));
    let bill = f.create(order("L-3", 600)).await;
    assert_eq!(
        f.pay_new(bill, false).await.order.state,
        OrderState::Approved,
        "a new week"
    );
}

#[tokio::test]
async fn a_shared_customer_list_counts_turnover_across_its_merchants() {
    let mut f = fx();
    let limits = Some(TurnoverLimits {
        currency: Currency::RUB,
        daily: Some(1_500),
        weekly: None,
    });
    f.m.limits = limits;
    f.m.customer_list = Some("demo-entity".into());
    f.paid("S-1", 1_000, false).await;
    f.m = merchant("452740");
    f.m.limits = limits;
    f.m.customer_list = Some("demo-entity".into());
    let bill = f.create(order("S-2", 1_000)).await;
    assert_eq!(
        f.pay_new(bill, false).await.operation().unwrap().decline,
        Some(DeclineReason::TurnoverLimit)
    );
}

// ---- durability, queries ----

/// Starts paying order `bill` with a typed card while the network hangs; returns once its
/// message is sent, the payment's task still waiting for the answer.
async fn start_a_hanging_payment(
    f: &Fx,
    bill: BillNumber,
) -> tokio::task::JoinHandle<Result<OperationResult, EngineError>> {
    f.net.hang.store(true, Ordering::Relaxed);
    let engine = f.engine.clone();
    let m = f.m.clone();
    let task = tokio::spawn(async move {
        let pan = Pan::parse(PAN).unwrap();
        let cvc = Cvc::parse("123").unwrap();
        let card = NewCard {
            pan: &pan,
            expiry: Expiry::new(12, 2030).unwrap(),
            cvc: &cvc,
            holder: None,
        };
        engine
            .pay(
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
    while f.net.auths() == 0 {
        tokio::task::yield_now().await;
    }
    task
}

/// [`start_a_hanging_payment`], its task then dropped: the order is left with an operation in
/// flight that nothing runs.
async fn abandon_a_payment_in_flight(f: &Fx, bill: BillNumber) {
    let task = start_a_hanging_payment(f, bill).await;
    task.abort();
    let _ = task.await;
}

#[tokio::test]
async fn a_payment_caught_in_flight_is_reversed_and_declined_after_reopen() {
    let f = fx();
    let bill = f.create(order("C-1", 1_000)).await;
    abandon_a_payment_in_flight(&f, bill).await;
    drop(f.engine);
    drop(f.store);
    // The process is gone; a new one opens the same file.
    let store = Store::open(EngineKind::Redb, &f.dir.path().join("authorizer.redb")).unwrap();
    let engine = Engine::new(store, f.net.clone(), f.vault.clone(), f.clock.clone());
    let report = engine.recover(&nobody).await.unwrap();
    assert_eq!(report.payments_reversed, 1);
    let o = engine.order(&f.m.id, bill).unwrap();
    assert_eq!(
        (o.state, o.operations[0].state),
        (OrderState::Declined, OperationState::Timeout)
    );
    assert_eq!(
        f.net.sent().last(),
        Some(&Sent::Reverse {
            stan: 1,
            remaining: None
        })
    );
    assert_eq!(
        engine.recover(&nobody).await.unwrap(),
        RecoveryReport::default(),
        "nothing left"
    );
}

#[tokio::test]
async fn a_payment_still_running_is_left_to_its_task_however_old() {
    let f = fx();
    let bill = f.create(order("C-1", 1_000)).await;
    let running = start_a_hanging_payment(&f, bill).await;
    f.clock.advance(super::sweep::ABANDONED_AFTER);
    let report = f.engine.sweep(&nobody).await.unwrap();
    assert_eq!(report, SweepReport::default());
    assert!(
        !f.net
            .sent()
            .iter()
            .any(|s| matches!(s, Sent::Reverse { .. }))
    );
    running.abort();
}

#[tokio::test]
async fn a_payment_its_task_abandoned_is_resolved_by_the_sweep_once_it_is_old() {
    let f = fx();
    let bill = f.create(order("C-1", 1_000)).await;
    abandon_a_payment_in_flight(&f, bill).await;
    f.net.hang.store(false, Ordering::Relaxed);

    let young = f.engine.sweep(&nobody).await.unwrap();
    assert_eq!(
        young.abandoned,
        RecoveryReport::default(),
        "a payment may still be running"
    );
    assert_eq!(
        f.engine.order(&f.m.id, bill).unwrap().state,
        OrderState::InProcess
    );

    f.clock.advance(super::sweep::ABANDONED_AFTER);
    let report = f.engine.sweep(&nobody).await.unwrap();
    assert_eq!(report.abandoned.payments_reversed, 1);
    let o = f.engine.order(&f.m.id, bill).unwrap();
    assert_eq!(
        (o.state, o.operations[0].state),
        (OrderState::Declined, OperationState::Timeout)
    );
    assert!(matches!(f.net.sent().last(), Some(Sent::Reverse { .. })));
}

#[tokio::test]
async fn queries_find_every_attempt_by_number_and_by_period_and_state() {
    let f = fx();
    let declined = f.create(order("Q-1", INSUFFICIENT)).await;
    f.pay_new(declined, false).await;
    // Attempts are listed oldest first; created in the same instant they would tie, and the
    // tie-break (the random billnumber) would make the order a coin toss.
    f.clock.advance(time::Duration::seconds(1));
    let paid = f.paid("Q-1", 1_000, false).await;
    let attempts = f
        .engine
        .orders_by_number(&f.m.id, &OrderNumber::parse("Q-1").unwrap())
        .unwrap();
    assert_eq!(
        attempts.iter().map(|o| o.bill).collect::<Vec<_>>(),
        vec![declined, paid]
    );
    let day = f
        .engine
        .orders_in_period(
            &f.m.id,
            START,
            START + time::Duration::hours(1),
            Some(OrderState::Approved),
        )
        .unwrap();
    assert_eq!(day.iter().map(|o| o.bill).collect::<Vec<_>>(), vec![paid]);
    let before = f
        .engine
        .orders_in_period(
            &f.m.id,
            START - time::Duration::days(1),
            START - time::Duration::hours(1),
            None,
        )
        .unwrap();
    assert!(before.is_empty());
    let other = MerchantId::parse("452740").unwrap();
    assert!(matches!(
        f.engine.order(&other, paid),
        Err(EngineError::Request(RequestError::UnknownOrder))
    ));
}

// ---- notifications ----

/// The notifications in the store: (billnumber, operation, kind).
fn notices(store: &Store) -> Vec<(u64, u32, outbox::Kind)> {
    store
        .scan_prefix(b"outbox/n/")
        .unwrap()
        .into_iter()
        .map(|(_, v)| {
            let n: outbox::Notice = serde_json::from_slice(&v).unwrap();
            (n.id.bill, n.id.operation, n.kind)
        })
        .collect()
}

fn notifying(f: &mut Fx, n: crate::Notifications) {
    f.m.notifications = Some(n);
}

#[tokio::test]
async fn a_final_payment_is_notified_in_the_same_change() {
    let mut f = fx();
    notifying(&mut f, crate::Notifications::default());
    let bill = f.paid("N-1", 1_000, false).await;
    assert_eq!(
        notices(&f.store),
        vec![(bill.get(), 1, outbox::Kind::Payment)]
    );
}

#[tokio::test]
async fn without_notification_settings_nothing_is_queued() {
    let f = fx();
    f.paid("N-1", 1_000, false).await;
    assert!(notices(&f.store).is_empty());
}

#[tokio::test]
async fn only_successful_leaves_out_a_declined_payment() {
    let mut f = fx();
    notifying(
        &mut f,
        crate::Notifications {
            only_successful: true,
            ..crate::Notifications::default()
        },
    );
    f.paid("N-1", INSUFFICIENT, false).await;
    assert!(notices(&f.store).is_empty());
    let ok = f.paid("N-2", 1_000, false).await;
    assert_eq!(
        notices(&f.store),
        vec![(ok.get(), 1, outbox::Kind::Payment)]
    );
}

#[tokio::test]
async fn charges_cancels_and_timeouts_are_notified_when_asked() {
    let mut f = fx();
    notifying(
        &mut f,
        crate::Notifications {
            payments: false,
            charges: true,
            cancels: true,
            timeouts: true,
            only_successful: false,
        },
    );
    let paid = f.paid("N-1", 3_000, true).await;
    f.engine.charge(&f.m, paid, None).await.unwrap();
    f.cancel(paid, Some(1_000), None).await.unwrap();
    let unpaid = f.create(order("N-2", 1_000)).await;
    f.clock.advance(time::Duration::days(2));
    let m = f.m.clone();
    f.engine.sweep(&|_| Some(m.clone())).await.unwrap();
    let mut expected = vec![
        (paid.get(), 2, outbox::Kind::Charge),
        (paid.get(), 3, outbox::Kind::Cancel),
        (unpaid.get(), 0, outbox::Kind::Timeout),
    ];
    expected.sort_by_key(|(bill, op, _)| (*bill, *op));
    assert_eq!(notices(&f.store), expected);
}

#[tokio::test]
async fn a_recurring_mit_payment_is_notified_as_a_payment() {
    let mut f = fx();
    let initial = f.initial(agreement()).await;
    notifying(&mut f, crate::Notifications::default());
    let r = f.rp(initial, "R-1", 2_000, Currency::RUB).await.unwrap();
    assert_eq!(
        notices(&f.store),
        vec![(r.order.bill.get(), 1, outbox::Kind::Payment)]
    );
}

/// redb that refuses any write carrying a notification, as a disk that fails that commit would.
struct FailsNotifications(store::RedbEngine);

impl store::Engine for FailsNotifications {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, store::StoreError> {
        self.0.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<store::Pair>, store::StoreError> {
        self.0.scan_prefix(prefix)
    }
    fn scan_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<store::Pair>, store::StoreError> {
        self.0.scan_range(start, end, limit)
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<store::Pair>, store::StoreError> {
        self.0.last_with_prefix(prefix)
    }
    fn write(&self, batches: &[store::Batch]) -> Result<(), store::StoreError> {
        let notifies = batches
            .iter()
            .flat_map(store::Batch::ops)
            .any(|op| matches!(op, store::Op::Put { key, .. } if key.starts_with(b"outbox/")));
        if notifies {
            return Err(store::StoreError::CommitterStopped);
        }
        self.0.write(batches)
    }
}

#[tokio::test]
async fn a_failed_commit_leaves_neither_the_new_state_nor_its_notification() {
    let dir = tempfile::tempdir().unwrap();
    let redb = store::RedbEngine::open(&dir.path().join("a.redb")).unwrap();
    let store = Store::with_engine(Arc::new(FailsNotifications(redb))).unwrap();
    let engine = Engine::new(
        store.clone(),
        Arc::new(FakeNet::default()),
        Arc::new(FakeVault::default()),
        Arc::new(TestClock(Mutex::new(START))),
    );
    let mut m = merchant("452739");
    m.notifications = Some(crate::Notifications::default());
    let bill = engine
        .create_order(&m, order("N-1", 1_000))
        .await
        .unwrap()
        .bill;
    let pan = Pan::parse(PAN).unwrap();
    let cvc = Cvc::parse("123").unwrap();
    let card = NewCard {
        pan: &pan,
        expiry: Expiry::new(12, 2030).unwrap(),
        cvc: &cvc,
        holder: None,
    };
    let paid = engine
        .pay(
            &m,
            bill,
            PaymentCard::New {
                card,
                save: false,
                three_ds: None,
            },
        )
        .await;
    assert!(matches!(paid, Err(EngineError::Store(_))), "{paid:?}");
    assert_eq!(
        engine.order(&m.id, bill).unwrap().state,
        OrderState::InProcess,
        "the approval was not written"
    );
    assert!(notices(&store).is_empty());
}

#[test]
fn a_record_keeps_its_version_and_transactions_through_serde() {
    let mut r = blank_record(10);
    r.operations.push(crate::model::Operation::new(
        1,
        crate::OperationType::Payment,
        10,
        Timestamp(1),
    ));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"version\":1"));
    assert_eq!(serde_json::from_str::<OrderRecord>(&json).unwrap(), r);
}
