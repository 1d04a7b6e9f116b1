//! Dispatch and roles: who may do what (the role table), which path a call takes (the protocol's
//! [`Op`] is split by type into reads, writes and admin work, so a read handler cannot be handed a
//! write), and the one place a call is answered: [`CardVault::answer_when_durable`], after the
//! call's audit entry and the change it describes are durable in one commit.
//!
//! Owns each call's audit event (who, role, op, token, scope, customer number, outcome). Must never
//! answer a call before its audit entry is durable, and never put card data into an event.

use store::Batch;
use tokio::sync::{OwnedMutexGuard, oneshot};

use super::CardVault;
use super::error::CallError;
use crate::audit::{AuditError, Event};
use crate::config::MerchantPolicy;
use crate::model::{Role, Timestamp, VaultError};
use crate::protocol::{AdminOp, Op, OpKind, ReadOp, Reply, Status, WriteOp, op_code, status_code};
use crate::service::rules::Rules;

/// Who is calling, as authenticated by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The configured client id, recorded in each of its calls' audit entries.
    pub client: String,
    /// What it may call, from its configuration, never from the request.
    pub role: Role,
    /// Who was on the other end of the connection ([`crate::peer::Peer::describe`]), recorded
    /// with each of its calls.
    pub peer: String,
}

/// The role table: the facade saves, lists, removes, sets status and grants a detokenize for the
/// payment it is serving; only the authorizer sees a PAN again (with a grant, or to reverse a
/// payment it detokenized) and records the payments it made, and it cannot list (it never needs
/// to, and listing is how a stolen authorizer secret would find tokens); only operators purge
/// and rotate.
pub fn permits(role: Role, op: &Op) -> bool {
    match op {
        Op::Hello { .. } => true,
        Op::Read(ReadOp::Detokenize { .. } | ReadOp::DetokenizeForReversal { .. }) => {
            role == Role::Authorizer
        }
        Op::Read(ReadOp::List { .. } | ReadOp::IssueGrant { .. }) => role == Role::Facade,
        Op::Write(WriteOp::Tokenize(_) | WriteOp::Remove { .. } | WriteOp::SetStatus { .. }) => {
            role == Role::Facade
        }
        Op::Write(WriteOp::RecordPayment { .. }) => role == Role::Authorizer,
        Op::Admin(_) => role == Role::Admin,
    }
}

/// What a call leaves to commit with its audit entry.
#[derive(Debug, Default)]
struct Change {
    batch: Batch,
    /// The customer's lock, held until the change is durable: the next call for the same
    /// customer must read it.
    lock: Option<OwnedMutexGuard<()>>,
}

impl Change {
    fn locked(batch: Batch, lock: OwnedMutexGuard<()>) -> Change {
        Change {
            batch,
            lock: Some(lock),
        }
    }
}

impl CardVault {
    /// Runs one authenticated call and gives its answer to `answer` once the call's audit entry
    /// (and any change) is durable. Reads and refusals are answered from the audit appender with
    /// no task of their own; writes and admin work run in a task each. `Err` only when the audit
    /// log has stopped (`answer` has then been told so): the connection should close.
    pub async fn call(
        &self,
        caller: &Caller,
        op: Op,
        answer: impl FnOnce(Result<Reply, VaultError>) + Send + 'static,
    ) -> Result<(), AuditError> {
        let mut event = event_for(caller, &op);
        if !permits(caller.role, &op) {
            let refused = Err(VaultError::Forbidden(caller.role.name()).into());
            return self.answer_when_durable(event, refused, answer).await;
        }
        match op {
            Op::Hello { .. } => {
                let refused = Err(VaultError::BadRequest("already authenticated".into()).into());
                self.answer_when_durable(event, refused, answer).await
            }
            Op::Read(read @ ReadOp::IssueGrant { .. }) => {
                let outcome = self.read(caller, read, &mut event);
                self.answer_when_queued(event, outcome, answer).await
            }
            Op::Read(read) => {
                let outcome = self.read(caller, read, &mut event);
                self.answer_when_durable(event, outcome, answer).await
            }
            // A stopped audit log has answered these through `answer` already.
            Op::Write(write) => {
                let this = self.clone();
                tokio::spawn(async move {
                    let outcome = this.write(write, &mut event).await;
                    let _ = this.answer_when_durable(event, outcome, answer).await;
                });
                Ok(())
            }
            Op::Admin(admin) => {
                let this = self.clone();
                tokio::spawn(async move {
                    let outcome = this
                        .admin(admin)
                        .await
                        .map(|reply| (reply, Change::default()));
                    let _ = this.answer_when_durable(event, outcome, answer).await;
                });
                Ok(())
            }
        }
    }

    /// Audits a connection that failed to authenticate (the claimed id sanitised: the peer chose
    /// it); returns what to answer it.
    pub async fn refused(&self, claimed_client: &str, peer: &str) -> Result<Reply, VaultError> {
        let event = Event {
            at_ms: now_ms(),
            client: crate::peer::sanitize_claimed_id(claimed_client),
            role: None,
            op: op_code(OpKind::Hello),
            token: None,
            scope: String::new(),
            customer: String::new(),
            outcome: status_code(Status::Ok),
            peer: peer.to_string(),
            detail: String::new(),
        };
        let (tx, rx) = oneshot::channel();
        let refused = Err(VaultError::Unauthenticated.into());
        // `answer` is always called, also when the audit log has stopped.
        let _ = self
            .answer_when_durable(event, refused, move |a| {
                let _ = tx.send(a);
            })
            .await;
        rx.await
            .unwrap_or_else(|_| Err(CallError::Audit(AuditError::Stopped).into_answer()))
    }

    /// The one place a call is answered: `answer` runs once the call's audit entry and its change
    /// are durable in one commit (called from the audit appender, so no task waits for it). A
    /// failed commit answers `Internal` whatever the call's outcome was: a caller is never told
    /// of a change that is not on disk.
    async fn answer_when_durable(
        &self,
        mut event: Event,
        outcome: Result<(Reply, Change), CallError>,
        answer: impl FnOnce(Result<Reply, VaultError>) + Send + 'static,
    ) -> Result<(), AuditError> {
        let (result, change) = settle(&mut event, outcome);
        let Change { batch, lock } = change;
        let metrics = std::sync::Arc::clone(&self.inner.metrics);
        self.inner
            .audit
            .append_then(event, batch, move |committed| {
                let _held_until_durable = lock;
                answer(match committed {
                    Ok(()) => result,
                    Err(e) => {
                        metrics.audit_failures.inc();
                        Err(CallError::Audit(e).into_answer())
                    }
                });
            })
            .await
    }

    /// A grant is answered once its audit entry is queued, not once it is durable: a grant
    /// discloses nothing (a key into the vault's memory, lost with it on a crash), and the
    /// detokenize that presents it queues its own entry behind this one, so that detokenize's
    /// durable answer implies this entry is on disk too. It saves a payment one fsync-bound
    /// commit in a row. A failed commit is counted (and fails that detokenize).
    async fn answer_when_queued(
        &self,
        mut event: Event,
        outcome: Result<(Reply, Change), CallError>,
        answer: impl FnOnce(Result<Reply, VaultError>) + Send + 'static,
    ) -> Result<(), AuditError> {
        let (result, Change { batch, lock }) = settle(&mut event, outcome);
        let metrics = std::sync::Arc::clone(&self.inner.metrics);
        let queued = self
            .inner
            .audit
            .append_then(event, batch, move |committed| {
                let _held_until_durable = lock;
                if committed.is_err() {
                    metrics.audit_failures.inc();
                }
            })
            .await;
        answer(match &queued {
            Ok(()) => result,
            // The only way queueing fails: the appender is gone.
            Err(_) => Err(CallError::Audit(AuditError::Stopped).into_answer()),
        });
        queued
    }

    /// The merchant's policy and scope, noted in the call's audit event before anything else
    /// can fail.
    fn place(
        &self,
        merchant: &crate::model::MerchantId,
        event: &mut Event,
    ) -> Result<(&MerchantPolicy, String), VaultError> {
        let (policy, scope) = self.rules().place(merchant)?;
        event.scope.clone_from(&scope);
        Ok((policy, scope))
    }

    /// A read changes no card record and takes no lock; a detokenize with a grant leaves the note
    /// of the payment it served, committed with its audit entry.
    fn read(
        &self,
        caller: &Caller,
        op: ReadOp,
        event: &mut Event,
    ) -> Result<(Reply, Change), CallError> {
        let rules = self.rules();
        let budget = &self.inner.budget;
        match op {
            ReadOp::Detokenize {
                merchant,
                customer,
                token,
                payment,
                grant,
            } => {
                budget.take(&caller.client)?;
                let (_, scope) = self.place(&merchant, event)?;
                self.inner
                    .grants
                    .consume(grant, &scope, &customer, token, &payment)?;
                let secret = rules.detokenize(&scope, &customer, &token)?;
                let mut batch = Batch::default();
                self.payments().detokenized(
                    &mut batch,
                    &scope,
                    &customer,
                    &token,
                    &payment,
                    Timestamp::now(),
                );
                budget.answered(&caller.client);
                self.inner.metrics.detokenized.inc();
                Ok((
                    Reply::Secret(secret),
                    Change {
                        batch,
                        ..Change::default()
                    },
                ))
            }
            ReadOp::DetokenizeForReversal {
                merchant,
                customer,
                token,
                payment,
            } => {
                budget.take(&caller.client)?;
                let (_, scope) = self.place(&merchant, event)?;
                self.payments().may_reverse(
                    &scope,
                    &customer,
                    &token,
                    &payment,
                    Timestamp::now(),
                )?;
                let secret = rules.detokenize(&scope, &customer, &token)?;
                budget.answered(&caller.client);
                self.inner.metrics.detokenized.inc();
                Ok((Reply::Secret(secret), Change::default()))
            }
            ReadOp::IssueGrant {
                merchant,
                customer,
                token,
                payment,
                card_use,
            } => {
                let (policy, scope) = self.place(&merchant, event)?;
                // Only for a card that exists (a grant never names nothing) and that the use
                // allows.
                rules.grantable(
                    &scope,
                    &customer,
                    &token,
                    card_use,
                    policy.listing_threshold,
                    Timestamp::now(),
                )?;
                let grant = self
                    .inner
                    .grants
                    .issue(&scope, &customer, token, &payment)?;
                Ok((Reply::Granted(grant), Change::default()))
            }
            ReadOp::List { merchant, customer } => {
                let (policy, scope) = self.place(&merchant, event)?;
                let cards = rules.list(
                    &scope,
                    &customer,
                    policy.listing_threshold,
                    Timestamp::now(),
                )?;
                Ok((Reply::Cards(cards), Change::default()))
            }
        }
    }

    async fn write(&self, op: WriteOp, event: &mut Event) -> Result<(Reply, Change), CallError> {
        let rules = self.rules();
        let locks = &self.inner.locks;
        match op {
            WriteOp::Tokenize(req) => {
                let (_, scope) = self.place(&req.merchant, event)?;
                let lock = locks.lock(&scope, req.customer.as_str()).await;
                let (saved, batch) = rules.tokenize(&scope, req, &self.inner.fingerprints)?;
                event.token = Some(saved.token);
                Ok((Reply::Saved(saved), Change::locked(batch, lock)))
            }
            WriteOp::Remove {
                merchant,
                customer,
                token,
            } => {
                let (_, scope) = self.place(&merchant, event)?;
                let lock = locks.lock(&scope, customer.as_str()).await;
                let batch = rules.remove(&scope, &customer, &token)?;
                Ok((Reply::Done, Change::locked(batch, lock)))
            }
            WriteOp::SetStatus {
                merchant,
                customer,
                status,
            } => {
                let (_, scope) = self.place(&merchant, event)?;
                let lock = locks.lock(&scope, customer.as_str()).await;
                let batch = Rules::set_status(&scope, &customer, status);
                Ok((Reply::Done, Change::locked(batch, lock)))
            }
            WriteOp::RecordPayment {
                merchant,
                customer,
                token,
                payment,
                at,
            } => {
                let (_, scope) = self.place(&merchant, event)?;
                let payments = self.payments();
                let now = payments.payment_time(at, Timestamp::now())?;
                let lock = locks.lock(&scope, customer.as_str()).await;
                if payments.recorded(&scope, &customer, &token, &payment)? {
                    // A replay: answered as the first was, counted once.
                    return Ok((Reply::Done, Change::locked(Batch::default(), lock)));
                }
                let mut batch = rules.record_payment(&scope, &customer, &token, now)?;
                payments.note_recorded(&mut batch, &scope, &customer, &token, &payment, now);
                Ok((Reply::Done, Change::locked(batch, lock)))
            }
        }
    }

    async fn admin(&self, op: AdminOp) -> Result<Reply, CallError> {
        match op {
            AdminOp::Purge => Ok(Reply::Purged(self.purge(Timestamp::now()).await?)),
            AdminOp::RotateKeys => Ok(Reply::Rotated(self.rotate().await?)),
            AdminOp::RotateFingerprintKey => Ok(Reply::Rotated(self.rotate_fingerprint().await?)),
            AdminOp::VerifyAudit => Ok(Reply::AuditVerified(self.verify_audit().await?)),
        }
    }
}

fn event_for(caller: &Caller, op: &Op) -> Event {
    Event {
        at_ms: now_ms(),
        client: caller.client.clone(),
        role: Some(caller.role),
        op: op_code(op.kind()),
        token: op.token(),
        scope: String::new(),
        customer: op
            .customer()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        outcome: status_code(Status::Ok),
        peer: caller.peer.clone(),
        detail: String::new(),
    }
}

/// The answer a call's outcome makes, noted as the outcome of its audit event.
fn settle(
    event: &mut Event,
    outcome: Result<(Reply, Change), CallError>,
) -> (Result<Reply, VaultError>, Change) {
    let (result, change) = match outcome {
        Ok((reply, change)) => (Ok(reply), change),
        Err(e) => (Err(e.into_answer()), Change::default()),
    };
    event.outcome = status_code(match &result {
        Ok(_) => Status::Ok,
        Err(e) => e.status(),
    });
    (result, change)
}

/// Milliseconds since the Unix epoch, for audit entries.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CustomerStatus, GrantId, PaymentRef, Token};
    use crate::service::testing::{customer, merchant, saved_req};

    /// One op of each kind, with the roles that may run it.
    fn table() -> Vec<(Op, &'static [Role])> {
        let (m, c, token) = (merchant("452739"), customer("c1"), Token::random());
        let payment = PaymentRef::parse("p-1").unwrap();
        vec![
            (
                Op::Write(WriteOp::Tokenize(saved_req(
                    "c1",
                    "4111111111111111",
                    "12.2030",
                ))),
                &[Role::Facade],
            ),
            (
                Op::Read(ReadOp::Detokenize {
                    merchant: m.clone(),
                    customer: c.clone(),
                    token,
                    payment: payment.clone(),
                    grant: GrantId([1; 16]),
                }),
                &[Role::Authorizer],
            ),
            (
                Op::Read(ReadOp::List {
                    merchant: m.clone(),
                    customer: c.clone(),
                }),
                &[Role::Facade],
            ),
            (
                Op::Read(ReadOp::IssueGrant {
                    merchant: m.clone(),
                    customer: c.clone(),
                    token,
                    payment: payment.clone(),
                    card_use: card::CardUse::OnFile,
                }),
                &[Role::Facade],
            ),
            (
                Op::Read(ReadOp::DetokenizeForReversal {
                    merchant: m.clone(),
                    customer: c.clone(),
                    token,
                    payment: payment.clone(),
                }),
                &[Role::Authorizer],
            ),
            (
                Op::Write(WriteOp::Remove {
                    merchant: m.clone(),
                    customer: c.clone(),
                    token,
                }),
                &[Role::Facade],
            ),
            (
                Op::Write(WriteOp::SetStatus {
                    merchant: m.clone(),
                    customer: c.clone(),
                    status: CustomerStatus::Deny,
                }),
                &[Role::Facade],
            ),
            (
                Op::Write(WriteOp::RecordPayment {
                    merchant: m,
                    customer: c,
                    token,
                    payment,
                    at: Timestamp(1),
                }),
                &[Role::Authorizer],
            ),
            (Op::Admin(AdminOp::Purge), &[Role::Admin]),
            (Op::Admin(AdminOp::RotateKeys), &[Role::Admin]),
            (Op::Admin(AdminOp::RotateFingerprintKey), &[Role::Admin]),
            (Op::Admin(AdminOp::VerifyAudit), &[Role::Admin]),
        ]
    }

    #[test]
    fn the_role_table_gives_each_op_to_its_roles_only() {
        for (op, allowed) in table() {
            for role in [Role::Facade, Role::Authorizer, Role::Admin] {
                assert_eq!(
                    permits(role, &op),
                    allowed.contains(&role),
                    "{role:?} {:?}",
                    op.kind()
                );
            }
        }
    }

    #[test]
    fn only_the_authorizer_sees_a_pan_again() {
        let sees_pan: Vec<Role> = [Role::Facade, Role::Authorizer, Role::Admin]
            .into_iter()
            .filter(|r| {
                table().iter().any(|(op, _)| {
                    matches!(
                        op.kind(),
                        OpKind::Detokenize | OpKind::DetokenizeForReversal
                    ) && permits(*r, op)
                })
            })
            .collect();
        assert_eq!(sees_pan, vec![Role::Authorizer]);
    }

    #[test]
    fn an_event_names_the_op_token_and_customer_never_the_card() {
        let (op, _) = table().swap_remove(1);
        let caller = Caller {
            client: "authorizer".into(),
            role: Role::Authorizer,
            peer: "unix uid=1 gid=1 pid=1".into(),
        };
        let e = event_for(&caller, &op);
        assert_eq!(
            (e.op, e.token, e.customer.as_str(), e.role),
            (3, op.token(), "c1", Some(Role::Authorizer))
        );
        let (tokenize, _) = table().swap_remove(0);
        let e = event_for(&caller, &tokenize);
        assert!(!format!("{e:?}").contains("4111"), "{e:?}");
    }
}
