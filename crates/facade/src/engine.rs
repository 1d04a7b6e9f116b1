//! The engine services (order.cfm, payrequest.cfm, tokenpay.cfm, rp.cfm, charge.cfm,
//! cancel.cfm/wscancel.cfm, orderstate.cfm, orderresult.cfm): each typed request becomes one
//! call of the order engine (`requests`) and its result one `assist` answer (`answers`); a
//! refusal is the engine's `RequestError::codes()`. The outbox's result notifications are
//! rendered here too ([`outbox::Render`]), from the same answer model.
//!
//! Owns that mapping and nothing else: authentication and integrity are checked before a request
//! gets here, and the engine owns every rule of the order life cycle. Must never put a card
//! number or a vault error's text into an answer.

mod answers;
mod requests;

use assist::answer::{Body, PayRequestAnswer, PayRequestState};
use assist::codes::{Fault, FirstCode, SecondCode};
use assist::requests::{
    CancelRequest, ChargeRequest, OrderRequest, OrderResultRequest, OrderStateRequest,
    RecurrentRequest, TokenPayRequest,
};
use orders::{EngineError, OrderRecord, RequestError};
use outbox::RenderError;
use time::OffsetDateTime;

use crate::Facade;
use crate::api::Outcome;
use crate::merchants::Merchant;
use answers::{Answers, utc};

/// order.cfm: creates the order and sends the shopper's browser to its payment page.
pub(crate) async fn order(
    facade: &Facade,
    merchant: &Merchant,
    r: &OrderRequest,
) -> Result<Outcome, Fault> {
    let order = create(facade, merchant, r).await?;
    Ok(Outcome::Redirect(facade.page_url(&order)?))
}

/// payrequest.cfm: creates the order and answers its payment page's URL.
pub(crate) async fn pay_request(
    facade: &Facade,
    merchant: &Merchant,
    r: &OrderRequest,
) -> Result<Outcome, Fault> {
    let order = create(facade, merchant, r).await?;
    Ok(Outcome::Body(Body::PayRequest(PayRequestAnswer {
        url: facade.page_url(&order)?,
        expirationtime: utc(order.expires_at.to_datetime()),
        state: PayRequestState::InProcess,
    })))
}

async fn create(
    facade: &Facade,
    merchant: &Merchant,
    r: &OrderRequest,
) -> Result<OrderRecord, Fault> {
    facade
        .orders
        .create_order(
            &facade.merchant_settings(merchant),
            requests::new_order(merchant, r)?,
        )
        .await
        .map_err(refusal)
}

/// tokenpay.cfm: a new order paid with the customer's saved card.
pub(crate) async fn token_pay(
    facade: &Facade,
    merchant: &Merchant,
    r: &TokenPayRequest,
) -> Result<Outcome, Fault> {
    let (order, token) = requests::token_pay(merchant, r)?;
    let result = facade
        .orders
        .token_pay(&facade.merchant_settings(merchant), order, token)
        .await
        .map_err(refusal)?;
    answer(merchant).payment(&result).map(Outcome::Body)
}

/// rp.cfm: a new order paid by an MIT on the initial order's agreement.
pub(crate) async fn recurring(
    facade: &Facade,
    merchant: &Merchant,
    r: &RecurrentRequest,
) -> Result<Outcome, Fault> {
    let result = facade
        .orders
        .pay_recurring(&facade.merchant_settings(merchant), requests::recurring(r)?)
        .await
        .map_err(refusal)?;
    answer(merchant).payment(&result).map(Outcome::Body)
}

/// charge.cfm: the full or a smaller amount of a Delayed order.
pub(crate) async fn charge(
    facade: &Facade,
    merchant: &Merchant,
    r: &ChargeRequest,
) -> Result<Outcome, Fault> {
    let (bill, amount) = requests::charge(r)?;
    // The engine charges in the order's currency; an amount in another is refused here, as
    // the engine refuses it for a cancel.
    if let Some((_, currency)) = amount {
        let order = facade
            .orders
            .order(&merchant.vault_id, bill)
            .map_err(refusal)?;
        if order.currency != currency {
            return Err(refusal(RequestError::CurrencyMismatch.into()));
        }
    }
    let result = facade
        .orders
        .charge(
            &facade.merchant_settings(merchant),
            bill,
            amount.map(|(a, _)| a),
        )
        .await
        .map_err(refusal)?;
    answer(merchant).payment(&result).map(Outcome::Body)
}

/// cancel.cfm / wscancel.cfm: a reversal before the order's settlement, a refund after.
pub(crate) async fn cancel(
    facade: &Facade,
    merchant: &Merchant,
    r: &CancelRequest,
) -> Result<Outcome, Fault> {
    let (bill, req) = requests::cancel(r)?;
    let result = facade
        .orders
        .cancel(&facade.merchant_settings(merchant), bill, req)
        .await
        .map_err(refusal)?;
    answer(merchant).cancel(&result).map(Outcome::Body)
}

/// orderstate.cfm: every attempt of an OrderNumber (within the period, when one is sent).
pub(crate) fn order_state(
    facade: &Facade,
    merchant: &Merchant,
    r: &OrderStateRequest,
) -> Result<Outcome, Fault> {
    let mut records = facade
        .orders
        .orders_by_number(
            &merchant.vault_id,
            &requests::order_number(&r.order_number)?,
        )
        .map_err(refusal)?;
    if r.period.start.is_some() || r.period.end.is_some() {
        let (from, to) = r.period.resolve(OffsetDateTime::now_utc())?;
        records.retain(|o| (from..=to).contains(&utc(o.created_at.to_datetime())));
    }
    answer(merchant).states(&records).map(Outcome::Body)
}

/// orderresult.cfm: orders with their operations, by billnumber, OrderNumber or period.
pub(crate) fn order_result(
    facade: &Facade,
    merchant: &Merchant,
    r: &OrderResultRequest,
) -> Result<Outcome, Fault> {
    let (from, to) = r.window(OffsetDateTime::now_utc())?;
    let orders = &facade.orders;
    let id = &merchant.vault_id;
    let mut records = match (&r.bill, &r.order_number) {
        (Some(bill), _) => vec![
            orders
                .order(id, requests::order_of(*bill)?)
                .map_err(refusal)?,
        ],
        (None, Some(number)) => orders
            .orders_by_number(id, &requests::order_number(number)?)
            .map_err(refusal)?,
        (None, None) => orders
            .orders_in_period(id, from.assume_utc(), to.assume_utc(), None)
            .map_err(refusal)?,
    };
    if let Some(number) = &r.order_number {
        records.retain(|o| o.order_number.as_str() == number.as_str());
    }
    if r.period.start.is_some() || r.period.end.is_some() {
        records.retain(|o| (from..=to).contains(&utc(o.created_at.to_datetime())));
    }
    answer(merchant).results(&records).map(Outcome::Body)
}

fn answer(merchant: &Merchant) -> Answers<'_> {
    Answers::new(merchant, OffsetDateTime::now_utc())
}

/// What an engine error answers: the merchant's request refused with its codes, or firstcode 2
/// without the reason (logged for the operator, never answered).
pub(crate) fn refusal(e: EngineError) -> Fault {
    match e {
        EngineError::Request(r) => {
            let (first, second) = r.codes();
            match (FirstCode::from_code(first), SecondCode::from_code(second)) {
                (Some(first), Some(second)) => Fault::new(first, second, r.to_string()),
                _ => {
                    tracing::error!(first, second, "the engine named codes assist does not know");
                    Fault::internal()
                }
            }
        }
        EngineError::OutcomeUnknown(bill) => {
            // The order stays In Process until recovery resolves it; orderstate shows it then.
            tracing::warn!(%bill, "outcome unknown; recovery will resolve it");
            Fault::new(
                FirstCode::Internal,
                SecondCode::Operation,
                "the operation's outcome is not known yet",
            )
        }
        e @ (EngineError::Secrets(_) | EngineError::Store(_) | EngineError::Corrupt(_)) => {
            tracing::warn!(error = %e, "engine call failed");
            Fault::internal()
        }
    }
}

/// Result notifications are rendered here, when they are sent: from the order as stored and the
/// merchant's entry as it is now (its URL, salt, test mode).
impl outbox::Render for Facade {
    fn render(&self, notice: &outbox::Notice) -> Result<outbox::Request, RenderError> {
        let gone = |what: &str| RenderError::Gone(format!("the {what} is not there any more"));
        let merchant = card::MerchantId::parse(&notice.merchant)
            .ok()
            .and_then(|id| self.merchants.by_vault_id(&id))
            .ok_or_else(|| gone("merchant"))?;
        let url = self.notification_url(merchant).ok_or(RenderError::NoUrl)?;
        let bill = orders::BillNumber::new(notice.id.bill).ok_or_else(|| gone("order"))?;
        let order = match self.orders.order(&merchant.vault_id, bill) {
            Ok(order) => order,
            Err(EngineError::Request(_)) => return Err(gone("order")),
            Err(e) => {
                tracing::warn!(error = %e, "a notification's order could not be read");
                return Err(RenderError::Internal("the order could not be read".into()));
            }
        };
        let notification = answer(merchant)
            .notification(&order, notice.id.operation)
            .map_err(|_| gone("operation"))?;
        Ok(outbox::Request {
            url: url.as_str().to_owned(),
            form: notification
                .form()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        })
    }
}

impl Facade {
    /// The payment page of an order.
    fn page_url(&self, order: &OrderRecord) -> Result<String, Fault> {
        Ok(format!(
            "{}/pay/page/{}",
            self.pages_url,
            answers::billnumber(order.bill)?
        ))
    }
}
