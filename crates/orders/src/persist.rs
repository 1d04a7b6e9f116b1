//! The engine's records in the authorizer's [`Store`], and the one way they change: a [`Change`]
//! is one batch, committed (group commit, fsynced with redb) before the engine acknowledges
//! anything.
//!
//! Keys (one prefix per kind, numbers fixed-width so byte order is time order):
//! - `orders/o/<billnumber>` → the order (JSON, versioned);
//! - `orders/n/<merchant>/<hex(OrderNumber)>/<billnumber>` → every attempt of an OrderNumber;
//! - `orders/d/<merchant>/<created, 20 digits>/<billnumber>` → state: the merchant's orders by
//!   date (orderresult, orderstate, the cabinet's search);
//! - `orders/open/<billnumber>`: In Process or Delayed, what the sweep looks at;
//! - `orders/inflight/<billnumber>`: an operation waiting for the network, what recovery looks at;
//! - `orders/t/<scope>/<customer>/<d|w>/<day|week>` → a turnover counter (u64, big-endian);
//! - `orders/cutoff/<merchant>` → the last cut-off run by command (seconds, big-endian);
//! - `outbox/…`: a notification of the change, when the merchant asks for one (the `outbox`
//!   crate's records, added to the same batch).
//!
//! Every index entry is derived from the order record in the same batch, so an index never
//! disagrees with its order. Must never write an order without its indexes, nor anything that is
//! card data.

use store::{Batch, Store};
use time::OffsetDateTime;

use crate::clock::Timestamp;
use crate::error::EngineError;
use crate::ids::{BillNumber, OrderNumber};
use crate::model::{ORDER_RECORD_VERSION, OrderRecord, OrderState};
use crate::settings::MerchantSettings;

const ORDER: &str = "orders/o/";
const OPEN: &str = "orders/open/";
const INFLIGHT: &str = "orders/inflight/";

fn order_key(bill: BillNumber) -> String {
    format!("{ORDER}{bill}")
}

fn number_prefix(merchant: &card::MerchantId, number: &OrderNumber) -> String {
    format!(
        "orders/n/{}/{}/",
        merchant.as_str(),
        hex::encode(number.as_str())
    )
}

fn date_prefix(merchant: &card::MerchantId) -> String {
    format!("orders/d/{}/", merchant.as_str())
}

fn date_key(merchant: &card::MerchantId, at: Timestamp, bill: Option<BillNumber>) -> String {
    let secs = u64::try_from(at.0).unwrap_or(0);
    match bill {
        Some(b) => format!("{}{secs:020}/{b}", date_prefix(merchant)),
        None => format!("{}{secs:020}/", date_prefix(merchant)),
    }
}

fn cutoff_key(merchant: &card::MerchantId) -> String {
    format!("orders/cutoff/{}", merchant.as_str())
}

/// The billnumber at the end of an index key.
fn bill_of(key: &[u8]) -> Option<BillNumber> {
    let text = std::str::from_utf8(key).ok()?;
    BillNumber::new(text.rsplit('/').next()?.parse().ok()?)
}

/// One state change: everything in it is written in one atomic batch.
#[derive(Debug, Default)]
pub(crate) struct Change {
    batch: Batch,
    /// It carries a notification, so the outbox is woken once it is durable.
    notifies: bool,
}

impl Change {
    /// Writes `order` with every index it implies.
    pub fn order(&mut self, order: &OrderRecord) -> Result<&mut Change, EngineError> {
        let mut stored = order.clone();
        stored.version = ORDER_RECORD_VERSION;
        let json = serde_json::to_vec(&stored)
            .map_err(|_| EngineError::Corrupt(order.bill.to_string()))?;
        let bill = order.bill;
        self.batch.put(order_key(bill), json);
        self.batch.put(
            format!(
                "{}{bill}",
                number_prefix(&order.merchant, &order.order_number)
            ),
            Vec::new(),
        );
        self.batch.put(
            date_key(&order.merchant, order.created_at, Some(bill)),
            order.state.as_str(),
        );
        let open = matches!(order.state, OrderState::InProcess | OrderState::Delayed);
        self.marker(format!("{OPEN}{bill}"), open);
        self.marker(format!("{INFLIGHT}{bill}"), order.in_flight().is_some());
        Ok(self)
    }

    fn marker(&mut self, key: String, present: bool) {
        if present {
            self.batch.put(key, Vec::new());
        } else {
            self.batch.delete(key);
        }
    }

    /// Adds the notification of operation `n` of `order` (0: the order's own Timeout), when
    /// the merchant's settings ask for it: the state change and its notification are written
    /// together or not at all.
    pub fn notify(
        &mut self,
        m: &MerchantSettings,
        order: &OrderRecord,
        n: u32,
        at: OffsetDateTime,
    ) -> &mut Change {
        let Some(kind) = m.notifications.and_then(|p| p.kind_for(order, n)) else {
            return self;
        };
        let at_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        outbox::enqueue(
            &mut self.batch,
            outbox::NewNotice {
                merchant: order.merchant.as_str().to_owned(),
                id: outbox::NoticeId {
                    bill: order.bill.get(),
                    operation: n,
                },
                kind,
                at_ms,
            },
        );
        self.notifies = true;
        self
    }

    /// Whether the change carries a notification.
    pub fn notifies(&self) -> bool {
        self.notifies
    }

    /// Sets a turnover counter.
    pub fn counter(&mut self, key: &str, value: u64) -> &mut Change {
        self.batch.put(key, value.to_be_bytes().to_vec());
        self
    }

    /// Records a cut-off run now for `merchant`.
    pub fn cutoff(&mut self, merchant: &card::MerchantId, at: Timestamp) -> &mut Change {
        self.batch
            .put(cutoff_key(merchant), at.0.to_be_bytes().to_vec());
        self
    }
}

/// Reads and writes the engine's records.
#[derive(Debug, Clone)]
pub(crate) struct Persist {
    store: Store,
}

impl Persist {
    pub fn new(store: Store) -> Persist {
        Persist { store }
    }

    /// Commits `change`; durable when this returns `Ok`.
    pub async fn commit(&self, change: Change) -> Result<(), EngineError> {
        Ok(self.store.commit(change.batch).await?)
    }

    /// The order `bill`, if there is one.
    pub fn load(&self, bill: BillNumber) -> Result<Option<OrderRecord>, EngineError> {
        let Some(bytes) = self.store.get(order_key(bill).as_bytes())? else {
            return Ok(None);
        };
        let record: OrderRecord =
            serde_json::from_slice(&bytes).map_err(|_| EngineError::Corrupt(bill.to_string()))?;
        if record.version > ORDER_RECORD_VERSION {
            return Err(EngineError::Corrupt(bill.to_string()));
        }
        Ok(Some(record))
    }

    /// Whether `bill` is taken.
    pub fn exists(&self, bill: BillNumber) -> Result<bool, EngineError> {
        Ok(self.store.get(order_key(bill).as_bytes())?.is_some())
    }

    fn bills(&self, prefix: &str) -> Result<Vec<BillNumber>, EngineError> {
        self.store
            .scan_prefix(prefix.as_bytes())?
            .into_iter()
            .map(|(k, _)| bill_of(&k).ok_or_else(|| EngineError::Corrupt(prefix.to_owned())))
            .collect()
    }

    /// Every attempt of `number`, oldest billnumber first.
    pub fn attempts(
        &self,
        merchant: &card::MerchantId,
        number: &OrderNumber,
    ) -> Result<Vec<BillNumber>, EngineError> {
        self.bills(&number_prefix(merchant, number))
    }

    /// The merchant's orders created in `[from, to]`, oldest first.
    pub fn created_between(
        &self,
        merchant: &card::MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<BillNumber>, EngineError> {
        let start = date_key(merchant, from, None);
        let end = date_key(merchant, to.plus(time::Duration::seconds(1)), None);
        self.store
            .scan_range(start.as_bytes(), end.as_bytes(), usize::MAX)?
            .into_iter()
            .map(|(k, _)| bill_of(&k).ok_or_else(|| EngineError::Corrupt(start.clone())))
            .collect()
    }

    /// Orders In Process or Delayed.
    pub fn open(&self) -> Result<Vec<BillNumber>, EngineError> {
        self.bills(OPEN)
    }

    /// Orders with an operation waiting for the network.
    pub fn in_flight(&self) -> Result<Vec<BillNumber>, EngineError> {
        self.bills(INFLIGHT)
    }

    /// A turnover counter (0 when never written).
    pub fn counter(&self, key: &str) -> Result<u64, EngineError> {
        Ok(match self.store.get(key.as_bytes())? {
            None => 0,
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| EngineError::Corrupt(key.to_owned()))?,
            ),
        })
    }

    /// The last cut-off run by command for `merchant`.
    pub fn manual_cutoff(
        &self,
        merchant: &card::MerchantId,
    ) -> Result<Option<Timestamp>, EngineError> {
        let key = cutoff_key(merchant);
        self.store
            .get(key.as_bytes())?
            .map(|v| {
                v.as_slice()
                    .try_into()
                    .map(|b| Timestamp(i64::from_be_bytes(b)))
                    .map_err(|_| EngineError::Corrupt(key.clone()))
            })
            .transpose()
    }
}
