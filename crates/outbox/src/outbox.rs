//! [`Outbox`]: the delivery loop over the durable schedule, one try at a time per notification,
//! bounded per merchant and in total so that a slow or dead merchant only ever holds its own
//! slots; what each try came to (acknowledged, refused, retried later, failed for good); the
//! attempt list and re-sending by hand.
//!
//! Owns the life of a notification after the engine wrote it. Must never send a notification
//! twice at once, send one the merchant acknowledged or refused (unless re-sent by hand), or
//! let one merchant's schedule wait behind another's.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::OutboxError;
use crate::ack::{self, Verdict};
use crate::deliver::{Deliver, DeliverError, Request};
use crate::metrics::Metrics;
use crate::notice::{Attempt, AttemptOutcome, Notice, NoticeId, NoticeState, Records};
use crate::schedule::RetrySchedule;

/// The notification's URL and fields, rendered when it is sent: from the stored order (its
/// operations are immutable once final) and the merchant's settings as they are now.
pub trait Render: Send + Sync + fmt::Debug + 'static {
    /// Renders `notice`.
    fn render(&self, notice: &Notice) -> Result<Request, RenderError>;
}

/// Why a notification could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The merchant has no notification URL now: tried again on the schedule, in case one is set.
    #[error("no notification URL is configured")]
    NoUrl,
    /// The merchant, the order or the operation is not there: it can never be sent.
    #[error("{0}")]
    Gone(String),
    /// Ours (the store): tried again on the schedule.
    #[error("{0}")]
    Internal(String),
}

/// How the outbox delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Waits between tries.
    pub schedule: RetrySchedule,
    /// Tries in flight for one merchant at most.
    pub per_merchant: usize,
    /// Tries in flight at most.
    pub total: usize,
}

impl Default for OutboxConfig {
    fn default() -> OutboxConfig {
        OutboxConfig {
            schedule: RetrySchedule::default(),
            per_merchant: 32,
            total: 128,
        }
    }
}

/// Rung by the engine after it committed a notification, so that the first try does not wait
/// for the next due time the loop knew of.
#[derive(Debug, Clone, Default)]
pub struct Doorbell(Arc<Notify>);

impl Doorbell {
    /// Wakes the delivery loop (once, however often it is rung before the loop looks).
    pub fn ring(&self) {
        self.0.notify_one();
    }
}

/// A notification with every attempt made, as the cabinet and the admin endpoint show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotificationView {
    /// The notification.
    pub notice: Notice,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// Tries in flight: one claim per notification, counted per merchant.
#[derive(Debug, Default)]
struct Busy {
    ids: HashSet<NoticeId>,
    per_merchant: HashMap<String, usize>,
}

impl Busy {
    /// Whether `merchant` has `limit` tries in flight already.
    fn is_full(&self, merchant: &str, limit: usize) -> bool {
        self.per_merchant.get(merchant).copied().unwrap_or(0) >= limit
    }
}

/// The result notifications of one authorizer.
pub struct Outbox {
    records: Records,
    render: Arc<dyn Render>,
    deliver: Arc<dyn Deliver>,
    config: OutboxConfig,
    metrics: Metrics,
    doorbell: Doorbell,
    busy: Mutex<Busy>,
    /// Where the last look at the schedule stopped, when it stopped at [`SCAN`] entries: the
    /// next look goes on from there, so every due entry is looked at in turn however long the
    /// backlog of a slow merchant ahead of it.
    resume: Mutex<Option<store::Due>>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, as notices count time.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How long a stop waits for the tries in flight: a dead merchant must not hold the process.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How many due entries one read of the schedule takes.
const PAGE: usize = 256;
/// How many due entries one look at the schedule goes through at most. A look runs after every
/// payment's commit and every try's end; without a bound, a backlog (a merchant slower than its
/// payments) made each look longer and the loop quadratic, until it took the whole process.
const SCAN: usize = PAGE;
/// When the last look stopped at [`SCAN`] entries, the next comes this soon at the latest.
const RESUME_AFTER: Duration = Duration::from_millis(20);
/// Looks at the schedule are this far apart at least: the rings and the tries' ends that come
/// in between (a thousand a second each at a thousand payments a second) are answered by one
/// look, not one each.
const LOOK_APART: Duration = Duration::from_millis(2);

/// Releases a try's claim when the try ends, however it ends.
struct Claim<'a> {
    outbox: &'a Outbox,
    id: NoticeId,
    merchant: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut busy = self.outbox.busy();
        busy.ids.remove(&self.id);
        if let Some(n) = busy.per_merchant.get_mut(&self.merchant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.per_merchant.remove(&self.merchant);
            }
        }
    }
}

impl Outbox {
    /// The outbox over `store` (the authorizer's, where the engine writes notifications).
    pub fn new(
        store: store::Store,
        render: Arc<dyn Render>,
        deliver: Arc<dyn Deliver>,
        config: OutboxConfig,
    ) -> Outbox {
        Outbox {
            records: Records::new(store),
            render,
            deliver,
            config,
            metrics: Metrics::default(),
            doorbell: Doorbell::default(),
            busy: Mutex::new(Busy::default()),
            resume: Mutex::new(None),
        }
    }

    /// The outbox woken by `bell`: the one handed to the engine, which is built before the
    /// renderer the outbox needs.
    pub fn with_doorbell(mut self, bell: Doorbell) -> Outbox {
        self.doorbell = bell;
        self
    }

    /// The bell the engine rings after committing a notification.
    pub fn doorbell(&self) -> Doorbell {
        self.doorbell.clone()
    }

    fn busy(&self) -> MutexGuard<'_, Busy> {
        // The guarded maps stay consistent across a panic (each change is one insert or remove).
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers until `shutdown` resolves, then gives the tries in flight [`SHUTDOWN_GRACE`] to
    /// finish and abandons the rest: they stay due in the store and are tried again at the next
    /// start (a merchant may then see one twice, never none).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut tries = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let wake = match self.dispatch(&mut tries) {
                Ok(wake) => wake,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: reading the schedule failed; trying again");
                    Some(Instant::now() + Duration::from_secs(1))
                }
            };
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.doorbell.0.notified() => {}
                () = sleep => {}
                // A try ended: its merchant's slot is free again.
                Some(_) = tries.join_next(), if !tries.is_empty() => {}
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(LOOK_APART) => {}
            }
            // The tries that ended meanwhile, so that their slots count as free in the look.
            while tries.try_join_next().is_some() {}
        }
        let drained = async { while tries.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
            tracing::info!(
                left = tries.len(),
                "outbox: tries still in flight abandoned at shutdown"
            );
            tries.shutdown().await;
        }
    }

    /// Starts a try for every due notification a slot allows, looking at [`SCAN`] due entries
    /// at most (from where the last look stopped); when to look again.
    fn dispatch(self: &Arc<Self>, tries: &mut JoinSet<()>) -> Result<Option<Instant>, OutboxError> {
        let now = now_ms();
        let mut resume = self.resume.lock().unwrap_or_else(PoisonError::into_inner);
        let mut after = resume.take();
        let mut busy = self.busy();
        let mut seen = 0;
        'pages: loop {
            let page = self
                .records
                .queue
                .due(&self.records.store, now, after.as_ref(), PAGE)?;
            let Some(last) = page.last().cloned() else {
                // The end of what is due: the next look starts from the front.
                break;
            };
            for due in page {
                if busy.ids.len() >= self.config.total {
                    break 'pages;
                }
                seen += 1;
                // A merchant whose slots are all taken is passed over by its tag, without
                // reading the notice (entries from before tags read it to know).
                let limit = self.config.per_merchant;
                if std::str::from_utf8(&due.tag)
                    .is_ok_and(|m| !m.is_empty() && busy.is_full(m, limit))
                {
                    continue;
                }
                let Some(id) = NoticeId::from_bytes(&due.id) else {
                    continue;
                };
                if busy.ids.contains(&id) {
                    continue;
                }
                let Some(notice) = self.records.notice(id)? else {
                    continue;
                };
                if notice.state != NoticeState::Pending
                    || notice.due_ms != due.at
                    || busy.is_full(&notice.merchant, limit)
                {
                    continue;
                }
                *busy
                    .per_merchant
                    .entry(notice.merchant.clone())
                    .or_default() += 1;
                busy.ids.insert(id);
                let me = Arc::clone(self);
                tries.spawn(async move { me.try_once(notice).await });
            }
            if seen >= SCAN {
                *resume = Some(last);
                break;
            }
            after = Some(last);
        }
        let stopped_early = resume.is_some();
        drop(busy);
        drop(resume);
        let next = self.records.queue.next_at(&self.records.store, now + 1)?;
        let next = next.map(|at| Instant::now() + Duration::from_millis(at - now));
        Ok(match (stopped_early, next) {
            (true, Some(at)) => Some(at.min(Instant::now() + RESUME_AFTER)),
            (true, None) => Some(Instant::now() + RESUME_AFTER),
            (false, next) => next,
        })
    }

    /// One try of `notice` (claimed by `dispatch`), and its record.
    async fn try_once(&self, notice: Notice) {
        let _claim = Claim {
            outbox: self,
            id: notice.id,
            merchant: notice.merchant.clone(),
        };
        let at_ms = now_ms();
        let mut attempt = Attempt {
            at_ms,
            status: None,
            firstcode: None,
            secondcode: None,
            error: None,
            outcome: AttemptOutcome::Retry,
            by_hand: notice.by_hand,
        };
        let verdict = match self.render.render(&notice) {
            Err(e @ RenderError::Gone(_)) => Err((e.to_string(), false)),
            Err(e) => Err((e.to_string(), true)),
            Ok(request) => {
                self.metrics.sent();
                match self.deliver.deliver(&request).await {
                    Err(DeliverError::Config(why)) => Err((why, false)),
                    Err(DeliverError::Network(why)) => Err((why, true)),
                    Ok(reply) => {
                        attempt.status = Some(reply.status);
                        if let Ok(codes) = ack::parse(&reply.body) {
                            attempt.firstcode = Some(codes.firstcode);
                            attempt.secondcode = Some(codes.secondcode);
                        }
                        Ok(Verdict::of(reply.status, &reply.body))
                    }
                }
            }
        };
        let (state, next_due) = match verdict {
            Ok(Verdict::Acknowledged) => {
                attempt.outcome = AttemptOutcome::Acknowledged;
                (NoticeState::Acknowledged, None)
            }
            Ok(Verdict::Refused { .. }) => {
                attempt.outcome = AttemptOutcome::Refused;
                (NoticeState::Refused, None)
            }
            Ok(Verdict::Retry(why)) | Err((why, true)) => {
                attempt.error = Some(why);
                match self.config.schedule.after_try(notice.tries + 1) {
                    Some(wait) => (NoticeState::Pending, Some(now_ms() + millis(wait))),
                    None => {
                        attempt.outcome = AttemptOutcome::Failed;
                        (NoticeState::Failed, None)
                    }
                }
            }
            Err((why, false)) => {
                attempt.error = Some(why);
                attempt.outcome = AttemptOutcome::Failed;
                (NoticeState::Failed, None)
            }
        };
        match self
            .records
            .finish_try(&notice, &attempt, next_due, state)
            .await
        {
            Ok(_) => self.metrics.ended(attempt.outcome),
            Err(e) => {
                // The schedule still holds it: it is tried again (at least once is the promise).
                tracing::warn!(bill = notice.id.bill, error = %e, "outbox: the try's result was not written");
            }
        }
        if attempt.outcome != AttemptOutcome::Retry {
            tracing::info!(
                bill = notice.id.bill,
                operation = notice.id.operation,
                kind = notice.kind.as_str(),
                outcome = ?attempt.outcome,
                "notification settled"
            );
        }
    }

    /// Every notification of order `bill` with its attempts; only `merchant`'s when given (the
    /// cabinet passes the logged-in merchant, the operator none).
    pub fn notifications(
        &self,
        merchant: Option<&str>,
        bill: u64,
    ) -> Result<Vec<NotificationView>, OutboxError> {
        self.records
            .of_order(bill)?
            .into_iter()
            .filter(|n| merchant.is_none_or(|m| m == n.merchant))
            .map(|notice| {
                let attempts = self.records.attempts(notice.id)?;
                Ok(NotificationView { notice, attempts })
            })
            .collect()
    }

    /// Re-sends a notification by hand, whatever its state: a new round of the schedule starts
    /// now. Refused while a try of it is in flight.
    pub async fn resend(
        &self,
        merchant: Option<&str>,
        id: NoticeId,
    ) -> Result<Notice, OutboxError> {
        {
            let mut busy = self.busy();
            if !busy.ids.insert(id) {
                return Err(OutboxError::InFlight(id));
            }
        }
        let _claim = Claim {
            outbox: self,
            id,
            merchant: String::new(),
        };
        let notice = self
            .records
            .notice(id)?
            .filter(|n| merchant.is_none_or(|m| m == n.merchant))
            .ok_or(OutboxError::Unknown(id))?;
        let restarted = self.records.restart(&notice, now_ms()).await?;
        self.doorbell.ring();
        tracing::info!(
            bill = id.bill,
            operation = id.operation,
            "notification re-sent by hand"
        );
        Ok(restarted)
    }

    /// Prometheus text of the outbox's counters and its queue depth.
    pub fn metrics(&self) -> String {
        let depth = self.records.queue.len(&self.records.store).unwrap_or(0);
        self.metrics.render(depth)
    }
}
