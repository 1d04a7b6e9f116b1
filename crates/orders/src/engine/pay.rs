//! Payments: a new card (kept with consent or held for this payment), One Click, Token Pay and,
//! through `recurring`, MITs. One path for all of them: checks before the network (state, the
//! other attempts, expiry, 3-D Secure of a first use, the turnover limit), then the prepared
//! reference and the booked turnover in one batch (for a saved card, written while the vault
//! finds it: both must be done before the message leaves, neither needs the other), then the
//! network, then the outcome in one batch.
//!
//! Owns the credential-on-file choices of `spec/iso8583.md` (DE 48.01/02/03, CVC, 3-D Secure).
//! Must never pay with any card but the one the token names for this customer.

use card::{CardUse, CustomerNumber, Cvc, Token};
use iso8583::{Amount, Eci, MitReason};
use link::{AuthorizationRequest, CardRef, CredentialOnFile, Intent, ThreeDs, TransactionKind};

use super::{AuthResult, Engine, NewOrder, OperationResult};
use crate::clock::Timestamp;
use crate::decline::DeclineReason;
use crate::error::{Action, EngineError, RequestError};
use crate::limits;
use crate::model::{
    MaskedCard, Operation, OperationType, OrderCard, OrderRecord, PaymentMeans, Transaction,
    TxnPurpose, TxnState,
};
use crate::persist::Change;
use crate::secrets::{NewCard, ResolvedCard};
use crate::settings::MerchantSettings;
use crate::state::{InProcess, Lifecycle};

/// How the shopper (or the merchant) presents the card of a payment.
#[derive(Debug)]
pub enum PaymentCard<'a> {
    /// Typed on the payment page. `save`: kept with the shopper's consent (COF `I`, with CVC and,
    /// unless the order disabled it, the 3-D Secure result); otherwise held for this payment
    /// only (no COF indicator).
    New {
        /// The card.
        card: NewCard<'a>,
        /// "Remember this card".
        save: bool,
        /// The ACS's result.
        three_ds: Option<ThreeDs>,
    },
    /// One Click: a saved card and its CVC (CIT, COF `C`).
    OneClick {
        /// The saved card.
        token: Token,
        /// Typed by the shopper.
        cvc: &'a Cvc,
    },
    /// Token Pay: a saved card shown by the merchant (CIT, COF `C`, no CVC, no 3-D Secure).
    TokenPay {
        /// The saved card.
        token: Token,
    },
}

/// How the card of a payment reaches the message: typed on the page (in hand), or saved (found
/// in the vault, for the use it is put to).
enum Presented<'a> {
    Typed {
        card: NewCard<'a>,
        three_ds: Option<ThreeDs>,
        save: bool,
    },
    Saved {
        card_use: CardUse,
        /// A shopper on the payment page, who can try the same order again; otherwise the
        /// merchant's call made the order and hears its outcome now.
        on_page: bool,
    },
}

/// The card of a payment, including the merchant-initiated kind only `recurring` makes.
#[derive(Debug)]
pub(super) enum Source<'a> {
    Card(PaymentCard<'a>),
    Mit { card: OrderCard, reason: MitReason },
}

impl Source<'_> {
    fn means(&self) -> PaymentMeans {
        match self {
            Source::Card(PaymentCard::New { save, .. }) => PaymentMeans::NewCard { saved: *save },
            Source::Card(PaymentCard::OneClick { .. }) => PaymentMeans::OneClick,
            Source::Card(PaymentCard::TokenPay { .. }) => PaymentMeans::TokenPay,
            Source::Mit { reason, .. } => PaymentMeans::Mit {
                scheduled: *reason == MitReason::Recurring,
            },
        }
    }
}

/// Whose card it is in the vault: the order's CustomerNumber, or for an order without one a
/// name of the order's own (`b<billnumber>`), since the vault keys every card by a customer.
fn card_owner(order: &OrderRecord) -> Result<CustomerNumber, EngineError> {
    match &order.customer_number {
        Some(c) => Ok(c.clone()),
        None => CustomerNumber::parse(&format!("b{}", order.bill))
            .map_err(|_| EngineError::Corrupt(order.bill.to_string())),
    }
}

/// What the payment page asks the shopper for when the merchant did not send it (seed 004: the
/// first name, last name and e-mail are required for a card payment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayerDetails {
    /// Firstname.
    pub firstname: Option<String>,
    /// Lastname.
    pub lastname: Option<String>,
    /// Email.
    pub email: Option<String>,
}

impl Engine {
    /// The payment page's customer fields: each one the order lacks is kept with it, one the
    /// merchant sent is never replaced. Only while the order is In Process and unpaid.
    pub async fn complete_payer(
        &self,
        m: &MerchantSettings,
        bill: crate::BillNumber,
        payer: PayerDetails,
    ) -> Result<OrderRecord, EngineError> {
        let (_held, mut record) = self.lock_order(Some(&m.id), bill, &[]).await?;
        if record.state != crate::model::OrderState::InProcess || record.payment().is_some() {
            return Err(RequestError::NotAllowed {
                action: Action::Pay,
                state: record.state,
            }
            .into());
        }
        let d = &mut record.details;
        for (kept, given) in [
            (&mut d.firstname, payer.firstname),
            (&mut d.lastname, payer.lastname),
            (&mut d.email, payer.email),
        ] {
            if kept.is_none() {
                *kept = given;
            }
        }
        self.write(Change::default(), &record, None).await?;
        Ok(record)
    }

    /// The payment pages' call: pays order `bill` with a new card or One Click.
    pub async fn pay(
        &self,
        m: &MerchantSettings,
        bill: crate::BillNumber,
        card: PaymentCard<'_>,
    ) -> Result<OperationResult, EngineError> {
        let (_held, record) = self.lock_order(Some(&m.id), bill, &[]).await?;
        self.run_payment(m, record, Source::Card(card), None).await
    }

    /// tokenpay.cfm: creates the order and pays it with the customer's saved card `token`.
    pub async fn token_pay(
        &self,
        m: &MerchantSettings,
        order: NewOrder,
        token: Token,
    ) -> Result<OperationResult, EngineError> {
        let record = self.new_record(m, order, None)?;
        let _held = self.locks.lock(&Self::lock_keys(&record)).await;
        self.run_payment(
            m,
            record,
            Source::Card(PaymentCard::TokenPay { token }),
            None,
        )
        .await
    }

    /// Pays `record` (locked by the caller, with `initial` for a recurring payment).
    pub(super) async fn run_payment(
        &self,
        m: &MerchantSettings,
        record: OrderRecord,
        source: Source<'_>,
        initial: Option<OrderRecord>,
    ) -> Result<OperationResult, EngineError> {
        let now = self.now();
        let ts = Timestamp::of(now);
        let mut order = match Lifecycle::of(record) {
            Lifecycle::InProcess(o) => o,
            other => {
                return Err(RequestError::NotAllowed {
                    action: Action::Pay,
                    state: other.state(),
                }
                .into());
            }
        };
        let r = order.record();
        if r.payment().is_some() {
            return Err(RequestError::InProgress.into());
        }
        for other in self.persist.attempts(&r.merchant, &r.order_number)? {
            if other == r.bill {
                continue;
            }
            if let Some(o) = self.persist.load(other)?
                && (crate::model::was_paid(o.state) || o.in_flight().is_some())
            {
                return Err(RequestError::AlreadyPaid.into());
            }
        }
        if ts >= r.expires_at {
            let expired = order.expired();
            let mut change = Change::default();
            change.notify(m, expired.record(), 0, now);
            self.write(change, expired.record(), None).await?;
            return Err(RequestError::NotAllowed {
                action: Action::Pay,
                state: expired.record().state,
            }
            .into());
        }
        let opref = r.next_operation();
        let mut op = Operation::new(opref.number, OperationType::Payment, r.amount, ts);
        op.means = Some(source.means());
        op.client_ip.clone_from(&r.details.client_ip);

        if matches!(
            source,
            Source::Card(PaymentCard::OneClick { .. } | PaymentCard::TokenPay { .. })
        ) && r.customer_number.is_none()
        {
            return Err(RequestError::MissingCustomer.into());
        }
        if let Source::Card(PaymentCard::New {
            save: true,
            three_ds: None,
            ..
        }) = &source
            && !r.disable_3ds
        {
            return self
                .decline_before_network(m, order, op, DeclineReason::ThreeDsMissing)
                .await;
        }

        let mut change = Change::default();
        let bookings = match &r.customer_number {
            Some(c) => limits::book(&self.persist, &mut change, m, c, r.currency, r.amount, now)?,
            None => Some(Vec::new()),
        };
        let Some(bookings) = bookings else {
            return self
                .decline_before_network(m, order, op, DeclineReason::TurnoverLimit)
                .await;
        };

        let owner = card_owner(r)?;
        let kind = if r.two_stage {
            TransactionKind::Authorization
        } else {
            TransactionKind::Purchase
        };
        let (amount, currency) = (Amount(r.amount), r.currency);
        let merchant = m.link_merchant();
        let card_of = |customer, token| CardRef {
            merchant: m.id.clone(),
            customer,
            token,
            payment: Some(opref.payment_ref()),
        };
        let (card_ref, cvc, cof, presented) = match source {
            Source::Card(PaymentCard::New {
                card,
                save,
                three_ds,
            }) => {
                // A card the shopper did not save belongs to this order, not to the customer:
                // it must never be listed or paid with for anyone else.
                let owner = match save {
                    true => owner,
                    false => opref.bill.held_card_owner(),
                };
                let token = if save {
                    self.secrets.save(&m.id, &owner, card, opref).await?
                } else {
                    self.secrets.hold(&m.id, &owner, card, opref).await?
                };
                let three_ds = three_ds.or_else(|| {
                    (save && r.disable_3ds).then_some(ThreeDs {
                        eci: Eci::NOT_AUTHENTICATED,
                        cavv: None,
                        version: None,
                        ds_transaction_id: None,
                    })
                });
                let card_ref = card_of(owner, token);
                let cof = if save {
                    CredentialOnFile::FirstUse
                } else {
                    CredentialOnFile::None
                };
                let typed = Presented::Typed {
                    card,
                    three_ds,
                    save,
                };
                (card_ref, Some(card.cvc), cof, typed)
            }
            // The vault refuses a token the merchant could not have shown (another customer's,
            // removed, below the listing threshold, expired) like an unknown one.
            Source::Card(PaymentCard::OneClick { token, cvc }) => (
                card_of(owner, token),
                Some(cvc),
                CredentialOnFile::Cardholder,
                Presented::Saved {
                    card_use: CardUse::Offered,
                    on_page: true,
                },
            ),
            Source::Card(PaymentCard::TokenPay { token }) => (
                card_of(owner, token),
                None,
                CredentialOnFile::Cardholder,
                Presented::Saved {
                    card_use: CardUse::Offered,
                    on_page: false,
                },
            ),
            Source::Mit { card, reason } => {
                let Some(original) = card.network_txn_id.clone() else {
                    return self
                        .decline_before_network(m, order, op, DeclineReason::UnknownCard)
                        .await;
                };
                (
                    card.card,
                    None,
                    CredentialOnFile::Merchant { reason, original },
                    Presented::Saved {
                        card_use: CardUse::OnFile,
                        on_page: false,
                    },
                )
            }
        };

        let prepared = self.acquirer.prepare(Intent {
            kind,
            card: &card_ref,
            amount,
            currency,
            merchant: &merchant,
        });
        let reference = prepared.reference().clone();
        op.transactions.push(Transaction {
            purpose: match kind {
                TransactionKind::Authorization => TxnPurpose::Authorization,
                TransactionKind::Purchase | TransactionKind::Refund => TxnPurpose::Purchase,
            },
            reference: Some(reference.clone()),
            state: TxnState::Prepared,
            response_code: None,
            at: ts,
        });
        let n = op.number;
        let rec = order.record_mut();
        rec.operations.push(op);
        rec.turnover = bookings;
        let kept = |pan, expiry, saved| OrderCard {
            card: card_ref.clone(),
            masked: MaskedCard::of(pan, expiry),
            saved,
            network_txn_id: None,
        };
        let resolved: ResolvedCard;
        // The reference and the booked turnover are durable before the message can leave.
        let (pan, expiry, three_ds) = match presented {
            Presented::Typed {
                card,
                three_ds,
                save,
            } => {
                rec.card = Some(kept(card.pan, card.expiry, save));
                self.write(change, order.record(), None).await?;
                (card.pan, card.expiry, three_ds)
            }
            Presented::Saved { card_use, on_page } => {
                // Neither needs the other, so the write and the vault's lookup (a durable audit
                // entry of its own) run at once: a payment waits for one commit instead of two in
                // a row. The card's mask is written with the outcome.
                let (written, found) = futures::join!(
                    self.write(change, order.record(), None),
                    self.secrets.resolve(&card_ref, opref, card_use)
                );
                written?;
                resolved = match found {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        return self
                            .decline_unsent(m, order, n, DeclineReason::UnknownCard)
                            .await;
                    }
                    Err(e) if on_page => {
                        self.withdraw(order).await?;
                        return Err(e.into());
                    }
                    // The order exists only because this call made it, and is already durable:
                    // it ends declined, so that the merchant can find it, never In Process.
                    Err(e) => {
                        tracing::warn!(bill = %opref.bill, error = %e, "no card from the vault");
                        return self
                            .decline_unsent(m, order, n, DeclineReason::SystemError)
                            .await;
                    }
                };
                order.record_mut().card = Some(kept(&resolved.pan, resolved.expiry, true));
                (&resolved.pan, resolved.expiry, None)
            }
        };

        let req = AuthorizationRequest {
            kind,
            pan,
            expiry,
            cvc,
            card: card_ref,
            amount,
            currency,
            cof,
            three_ds,
            merchant,
        };
        let outcome = self.acquirer.authorize(prepared, req).await;
        let bill = order.record().bill;
        let (result, txn) = self.read_authorization(bill, &reference, outcome).await?;
        self.finish_payment(m, order, n, result, txn, initial).await
    }

    /// The vault had no card for payment `n`, whose reference is already durable: nothing was
    /// sent, so the prepared transaction goes and the payment is declined for `reason`.
    async fn decline_unsent(
        &self,
        m: &MerchantSettings,
        mut order: InProcess,
        n: u32,
        reason: DeclineReason,
    ) -> Result<OperationResult, EngineError> {
        if let Some(op) = order.record_mut().operation_mut(n) {
            op.transactions.pop();
        }
        self.decline_payment(m, order, n, reason, TxnState::Declined, None)
            .await
    }

    /// The vault could not answer for the page's payment just prepared: nothing was sent, so the
    /// order is written back as it was before the attempt (its turnover given back), for the
    /// shopper to pay again.
    async fn withdraw(&self, mut order: InProcess) -> Result<(), EngineError> {
        let mut change = Change::default();
        let r = order.record_mut();
        r.operations.pop();
        r.card = None;
        limits::release(&self.persist, &mut change, &mut r.turnover, u64::MAX)?;
        r.turnover.clear();
        self.write(change, order.record(), None).await
    }

    /// Writes the outcome of payment operation `n`.
    async fn finish_payment(
        &self,
        m: &MerchantSettings,
        mut order: InProcess,
        n: u32,
        result: AuthResult,
        txn: TxnState,
        initial: Option<OrderRecord>,
    ) -> Result<OperationResult, EngineError> {
        let now = self.now();
        let ts = Timestamp::of(now);
        let (approval_code, network_txn_id) = match result {
            AuthResult::Declined { reason, de39 } => {
                return self.decline_payment(m, order, n, reason, txn, de39).await;
            }
            AuthResult::Approved {
                approval_code,
                network_txn_id,
            } => (approval_code, network_txn_id),
        };
        let r = order.record_mut();
        if let Some(op) = r.operation_mut(n) {
            mark_last(op, txn, Some("00".into()), ts);
            op.succeed(Some(approval_code), ts);
        }
        if let (Some(card), Some(id)) = (r.card.as_mut(), network_txn_id) {
            card.network_txn_id = Some(id);
        }
        let two_stage = r.two_stage;
        let after: Lifecycle = if two_stage {
            order.authorized(ts.plus(m.auto_cancel_after)).into()
        } else {
            order.paid(ts).into()
        };
        let initial = initial.map(|mut i| {
            if let Some(a) = i.agreement.as_mut() {
                a.last_payment_at = Some(ts);
            }
            i
        });
        let record = after.into_record();
        // The vault's note feeds the listing threshold and the retention clock only, and the
        // payment stands either way, so it need not wait for our write: both run at once and a
        // payment waits for one durable commit instead of two in a row. (If our write failed
        // the vault has counted a payment that recovery then reverses: one success too many
        // for the threshold, never a card shown that was not saved.)
        let recorded = async {
            match record.card.as_ref().filter(|c| c.saved) {
                Some(card) => self.secrets.record_payment(&card.card, now).await,
                None => Ok(()),
            }
        };
        let mut change = Change::default();
        change.notify(m, &record, n, now);
        let (written, recorded) =
            futures::join!(self.write(change, &record, initial.as_ref()), recorded);
        written?;
        if let Err(e) = recorded {
            tracing::warn!(bill = %record.bill, error = %e, "vault did not record the payment");
        }
        Ok(OperationResult {
            order: record,
            operation: n,
        })
    }

    /// Payment operation `n` did not go through: the order is Declined and its turnover given
    /// back.
    pub(super) async fn decline_payment(
        &self,
        m: &MerchantSettings,
        mut order: InProcess,
        n: u32,
        reason: DeclineReason,
        txn: TxnState,
        de39: Option<String>,
    ) -> Result<OperationResult, EngineError> {
        let now = self.now();
        let ts = Timestamp::of(now);
        let mut change = Change::default();
        let r = order.record_mut();
        if let Some(op) = r.operation_mut(n) {
            mark_last(op, txn, de39, ts);
            op.decline(reason, ts);
        }
        limits::release(&self.persist, &mut change, &mut r.turnover, u64::MAX)?;
        let record = Lifecycle::from(order.declined()).into_record();
        change.notify(m, &record, n, now);
        self.write(change, &record, None).await?;
        Ok(OperationResult {
            order: record,
            operation: n,
        })
    }

    /// Declines `op` before anything reached the network.
    async fn decline_before_network(
        &self,
        m: &MerchantSettings,
        mut order: InProcess,
        mut op: Operation,
        reason: DeclineReason,
    ) -> Result<OperationResult, EngineError> {
        let now = self.now();
        op.decline(reason, Timestamp::of(now));
        let n = op.number;
        order.record_mut().operations.push(op);
        let record = Lifecycle::from(order.declined()).into_record();
        let mut change = Change::default();
        change.notify(m, &record, n, now);
        self.write(change, &record, None).await?;
        Ok(OperationResult {
            order: record,
            operation: n,
        })
    }
}

/// Sets the state of `op`'s last transaction.
pub(super) fn mark_last(op: &mut Operation, state: TxnState, de39: Option<String>, at: Timestamp) {
    if let Some(t) = op.transactions.last_mut() {
        t.state = state;
        t.response_code = de39.or(t.response_code.take());
        t.at = at;
    }
}
