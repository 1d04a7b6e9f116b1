//! The facade's reads: orderstate.cfm (every attempt of an OrderNumber), orderresult.cfm (by
//! OrderNumber, billnumber or period) and one order with its operations (the cabinet, the
//! payment pages).
//!
//! Owns nothing but the lookups, through `persist`'s indexes. Answers are snapshots; they carry
//! the card masked only, since nothing else is stored.

use card::MerchantId;
use time::OffsetDateTime;

use super::Engine;
use crate::clock::Timestamp;
use crate::error::EngineError;
use crate::ids::{BillNumber, OrderNumber};
use crate::model::{OrderRecord, OrderState};

impl Engine {
    /// One order of `merchant` with its operations and transactions; another merchant's is not
    /// found (10/201).
    pub fn order(
        &self,
        merchant: &MerchantId,
        bill: BillNumber,
    ) -> Result<OrderRecord, EngineError> {
        self.load_for(Some(merchant), bill)
    }

    /// The order behind a payment page's URL, which carries the billnumber alone (random among
    /// 9·10^15, so it is the page's capability): the caller finds the merchant from the order.
    pub fn order_of_page(&self, bill: BillNumber) -> Result<OrderRecord, EngineError> {
        self.load_for(None, bill)
    }

    /// orderstate.cfm / orderresult.cfm by OrderNumber: every attempt, oldest first.
    pub fn orders_by_number(
        &self,
        merchant: &MerchantId,
        number: &OrderNumber,
    ) -> Result<Vec<OrderRecord>, EngineError> {
        let mut out = Vec::new();
        for bill in self.persist.attempts(merchant, number)? {
            out.extend(self.persist.load(bill)?);
        }
        out.sort_by_key(|o| (o.created_at, o.bill));
        Ok(out)
    }

    /// orderresult.cfm by period (and the cabinet's search): orders created in `[from, to]`,
    /// in `state` when given, oldest first.
    pub fn orders_in_period(
        &self,
        merchant: &MerchantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        state: Option<OrderState>,
    ) -> Result<Vec<OrderRecord>, EngineError> {
        let mut out = Vec::new();
        for bill in
            self.persist
                .created_between(merchant, Timestamp::of(from), Timestamp::of(to))?
        {
            if let Some(o) = self.persist.load(bill)?
                && state.is_none_or(|s| s == o.state)
            {
                out.push(o);
            }
        }
        Ok(out)
    }
}
