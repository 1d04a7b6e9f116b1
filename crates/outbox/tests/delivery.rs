//! The outbox's delivery rules over a real store, with a scripted merchant ([`Deliver`]) and a
//! renderer that needs no order: what is acknowledged, refused, retried and given up, re-sent by
//! hand, and that a dead merchant holds only its own slots.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use outbox::{
    AttemptOutcome, Deliver, DeliverError, Kind, NewNotice, NoticeId, NoticeState, Outbox,
    OutboxConfig, Render, RenderError, Reply, Request, RetrySchedule,
};
use store::{Batch, EngineKind, Store};
use testkit::eventually;

const ACK: &str = r#"<pushpaymentresult firstcode="0" secondcode="0"><order><billnumber>1</billnumber></order></pushpaymentresult>"#;

#[derive(Debug)]
struct ByMerchant;

impl Render for ByMerchant {
    fn render(&self, notice: &outbox::Notice) -> Result<Request, RenderError> {
        Ok(Request {
            url: notice.merchant.clone(),
            form: vec![("billnumber".into(), notice.id.bill.to_string())],
        })
    }
}

/// What a merchant answers, in turn; then it acknowledges. `dead` merchants never answer.
#[derive(Debug, Default)]
struct Merchants {
    script: Mutex<HashMap<String, VecDeque<Result<Reply, DeliverError>>>>,
    calls: Mutex<HashMap<String, usize>>,
    dead: Vec<String>,
}

impl Merchants {
    fn answers(&self, merchant: &str, replies: Vec<Result<Reply, DeliverError>>) {
        self.script
            .lock()
            .unwrap()
            .insert(merchant.into(), replies.into());
    }

    fn calls(&self, merchant: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(merchant)
            .copied()
            .unwrap_or(0)
    }
}

fn reply(status: u16, body: &str) -> Result<Reply, DeliverError> {
    Ok(Reply {
        status,
        body: Bytes::from(body.to_owned()),
    })
}

impl Deliver for Merchants {
    fn deliver<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Reply, DeliverError>> {
        Box::pin(async move {
            *self
                .calls
                .lock()
                .unwrap()
                .entry(request.url.clone())
                .or_default() += 1;
            if self.dead.contains(&request.url) {
                return std::future::pending().await;
            }
            let next = self
                .script
                .lock()
                .unwrap()
                .get_mut(&request.url)
                .and_then(VecDeque::pop_front);
            next.unwrap_or_else(|| reply(200, ACK))
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    merchants: Arc<Merchants>,
    outbox: Arc<Outbox>,
    _run: tokio::task::JoinHandle<()>,
}

fn config(waits: usize) -> OutboxConfig {
    OutboxConfig {
        schedule: RetrySchedule::new(vec![Duration::from_millis(5); waits]).unwrap(),
        per_merchant: 2,
        total: 8,
    }
}

/// [`start`] with `config(3)` and merchant `dead` never answering.
fn start_with_a_dead_merchant() -> Harness {
    let m = Merchants {
        dead: vec!["dead".into()],
        ..Merchants::default()
    };
    start(m, config(3))
}

fn start(merchants: Merchants, config: OutboxConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(EngineKind::Redb, &dir.path().join("a.redb")).unwrap();
    let merchants = Arc::new(merchants);
    let outbox = Arc::new(Outbox::new(
        store.clone(),
        Arc::new(ByMerchant),
        merchants.clone(),
        config,
    ));
    let run = tokio::spawn(outbox.clone().run(std::future::pending()));
    Harness {
        _dir: dir,
        store,
        merchants,
        outbox,
        _run: run,
    }
}

impl Harness {
    async fn notify(&self, merchant: &str, bill: u64) -> NoticeId {
        let id = NoticeId { bill, operation: 1 };
        let mut batch = Batch::default();
        outbox::enqueue(
            &mut batch,
            NewNotice {
                merchant: merchant.into(),
                id,
                kind: Kind::Payment,
                at_ms: outbox::now_ms(),
            },
        );
        self.store.commit(batch).await.unwrap();
        self.outbox.doorbell().ring();
        id
    }

    fn state(&self, id: NoticeId) -> NoticeState {
        self.outbox.notifications(None, id.bill).unwrap()[0]
            .notice
            .state
    }

    async fn settled(&self, id: NoticeId, state: NoticeState) {
        eventually(&format!("{id:?} {state:?}"), async || {
            self.state(id) == state
        })
        .await;
    }

    fn outcomes(&self, id: NoticeId) -> Vec<(Option<u16>, AttemptOutcome)> {
        self.outbox.notifications(None, id.bill).unwrap()[0]
            .attempts
            .iter()
            .map(|a| (a.status, a.outcome))
            .collect()
    }
}

#[tokio::test]
async fn an_acknowledged_notification_is_sent_once() {
    let h = start(Merchants::default(), config(3));
    let id = h.notify("a", 1).await;
    h.settled(id, NoticeState::Acknowledged).await;
    // A later notification of the same merchant goes through the same loop after it.
    let later = h.notify("a", 2).await;
    h.settled(later, NoticeState::Acknowledged).await;
    assert_eq!(h.merchants.calls("a"), 2);
    assert_eq!(
        h.outcomes(id),
        vec![(Some(200), AttemptOutcome::Acknowledged)]
    );
    assert!(
        h.outbox
            .metrics()
            .contains("outbox_notifications_acknowledged_total 2")
    );
    assert!(h.outbox.metrics().contains("outbox_queue_depth 0"));
}

#[tokio::test]
async fn failures_are_retried_until_acknowledged() {
    let m = Merchants::default();
    m.answers("a", vec![reply(500, ""), reply(200, "OK")]);
    let h = start(m, config(3));
    let id = h.notify("a", 1).await;
    h.settled(id, NoticeState::Acknowledged).await;
    assert_eq!(h.merchants.calls("a"), 3);
    assert_eq!(
        h.outcomes(id),
        vec![
            (Some(500), AttemptOutcome::Retry),
            (Some(200), AttemptOutcome::Retry),
            (Some(200), AttemptOutcome::Acknowledged)
        ]
    );
}

#[tokio::test]
async fn a_refusal_is_kept_and_not_sent_again() {
    let m = Merchants::default();
    m.answers(
        "a",
        vec![reply(
            200,
            r#"<pushpaymentresult firstcode="5" secondcode="143"/>"#,
        )],
    );
    let h = start(m, config(3));
    let id = h.notify("a", 1).await;
    h.settled(id, NoticeState::Refused).await;
    let other = h.notify("a", 2).await;
    h.settled(other, NoticeState::Acknowledged).await;
    assert_eq!(h.merchants.calls("a"), 2);
    let attempt = &h.outbox.notifications(None, 1).unwrap()[0].attempts[0];
    assert_eq!(
        (attempt.firstcode.as_deref(), attempt.secondcode.as_deref()),
        (Some("5"), Some("143"))
    );
}

#[tokio::test]
async fn the_schedule_ends_in_failure() {
    let m = Merchants::default();
    m.answers("a", vec![reply(503, ""), reply(503, ""), reply(503, "")]);
    let h = start(m, config(2));
    let id = h.notify("a", 1).await;
    h.settled(id, NoticeState::Failed).await;
    assert_eq!(h.merchants.calls("a"), 3);
    assert_eq!(
        h.outcomes(id).last(),
        Some(&(Some(503), AttemptOutcome::Failed))
    );
}

#[tokio::test]
async fn an_unusable_url_fails_at_once() {
    let m = Merchants::default();
    m.answers(
        "a",
        vec![Err(DeliverError::Config("port 22 is not allowed".into()))],
    );
    let h = start(m, config(3));
    let id = h.notify("a", 1).await;
    h.settled(id, NoticeState::Failed).await;
    let attempts = &h.outbox.notifications(None, 1).unwrap()[0].attempts;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error.as_deref(), Some("port 22 is not allowed"));
}

#[tokio::test]
async fn a_notification_can_be_resent_by_hand() {
    let h = start(Merchants::default(), config(3));
    let id = h.notify("a", 1).await;
    h.settled(id, NoticeState::Acknowledged).await;
    assert!(matches!(
        h.outbox.resend(Some("b"), id).await,
        Err(outbox::OutboxError::Unknown(_))
    ));
    h.outbox.resend(Some("a"), id).await.unwrap();
    eventually("the second acknowledgement", async || {
        h.outcomes(id).len() == 2 && h.state(id) == NoticeState::Acknowledged
    })
    .await;
    let attempts = &h.outbox.notifications(Some("a"), 1).unwrap()[0].attempts;
    assert!(!attempts[0].by_hand && attempts[1].by_hand);
    assert_eq!(h.merchants.calls("a"), 2);
}

#[tokio::test]
async fn a_dead_merchant_does_not_delay_another() {
    let h = start_with_a_dead_merchant();
    for bill in 1..=10 {
        h.notify("dead", bill).await;
    }
    let live = h.notify("live", 100).await;
    h.settled(live, NoticeState::Acknowledged).await;
    // The dead merchant holds its two slots and no more.
    assert_eq!(h.merchants.calls("dead"), 2);
}

#[tokio::test]
async fn a_notice_behind_a_long_backlog_of_a_dead_merchant_is_reached() {
    let h = start_with_a_dead_merchant();
    // More due entries ahead of the live merchant's than one look at the schedule goes through:
    // it is reached by the looks that go on from where the last one stopped.
    let mut batch = Batch::default();
    let at_ms = outbox::now_ms();
    for bill in 1..=3_000 {
        outbox::enqueue(
            &mut batch,
            NewNotice {
                merchant: "dead".into(),
                id: NoticeId { bill, operation: 1 },
                kind: Kind::Payment,
                at_ms,
            },
        );
    }
    h.store.commit(batch).await.unwrap();
    let live = h.notify("live", 100_000).await;
    h.settled(live, NoticeState::Acknowledged).await;
}
