//! Each kind of operation as a merchant's server (and, for the pages, a shopper) does it against
//! the real API, and the journal of what the soak asked and what it was told, which the
//! reconciliation checks against the authorizer, the simulator's ledger and the notifications.
//!
//! Owns the operations, their order numbers and amounts, and the pools they draw on (saved
//! customers, cards saved to be removed, orders paid earlier). Never holds a card number: the
//! cards are saved through the vault by their `testkit::cards` name before the run.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use testkit::cards::{MC_FRICTIONLESS, PLAIN_APPROVED};
use testkit::shopper::{PageState, Shopper, ShopperError, Submitted, TypedCard};

use super::mix::Kind;
use crate::merchant::{Failure, MerchantApi, SavedCustomer, field, json, percent_encoded};

/// What the shopper types if the ACS challenges (the simulator's code).
const CHALLENGE_CODE: &str = "1234";

/// Orders paid earlier that `orderstate` operations ask about (the most recent ones).
const RECENT: usize = 1024;

/// What the soak was told about an order it will reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Told {
    /// Paid: Approved (one-stage, or two-stage charged in full).
    Approved,
    /// Paid and then cancelled: Canceled.
    Canceled,
}

impl Told {
    /// The `orderstate` the authorizer and the notifications must show for it.
    pub fn orderstate(self) -> &'static str {
        match self {
            Told::Approved => "Approved",
            Told::Canceled => "Canceled",
        }
    }
}

/// An order the soak created (whatever became of it), by its OrderNumber.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// The merchant's OrderNumber, unique in the run.
    pub order_number: String,
    /// Its amount, minor units.
    pub amount_minor: u64,
    /// What created it.
    pub kind: Kind,
    /// What the soak was told at the end of the operation, when it was told anything for sure.
    pub told: Option<Told>,
    /// The order's billnumber, when an answer gave it.
    pub bill: Option<String>,
    /// The payment's RRN (`slipno`), when an answer gave it.
    pub rrn: Option<String>,
}

impl Attempt {
    /// The notification the shop is owed for it, as its billnumber and `orderstate`: one for
    /// every order the soak was told the end of and knows the billnumber of.
    pub fn owed_notice(&self) -> Option<(&str, &'static str)> {
        Some((self.bill.as_deref()?, self.told?.orderstate()))
    }
}

/// The journal: every order attempted, in order. The reconciliation reads it after the run.
#[derive(Debug, Default)]
pub struct Journal {
    /// Every order created.
    pub attempts: Vec<Attempt>,
    /// Tokens removed with rem_token.cfm (they must be gone from the list).
    pub removed_tokens: Vec<String>,
}

/// The operations and what they share.
#[derive(Debug)]
pub struct Flows {
    /// The merchant API (its address follows an authorizer restart).
    pub api: MerchantApi,
    /// Prefix of every OrderNumber of the run.
    run: String,
    /// Customers with a saved card, for Token Pay and the token list.
    customers: Vec<SavedCustomer>,
    /// Customers whose one saved card a `tokens` operation may remove.
    removable: Mutex<Vec<SavedCustomer>>,
    /// Recently approved OrderNumbers, for `orderstate`.
    recent: Mutex<VecDeque<String>>,
    /// Billnumbers of approved first payments with a recurring agreement, for MITs.
    initials: Mutex<VecDeque<String>>,
    journal: Mutex<Journal>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Operation `n`'s pick from `pool` (round robin), if the pool has anything yet.
fn pick(pool: &Mutex<VecDeque<String>>, n: u64) -> Option<String> {
    let pool = lock(pool);
    pool.get((n % pool.len().max(1) as u64) as usize).cloned()
}

/// A shopper's walk that must end on the result page of an approved payment.
fn paid_page(walk: Result<Submitted, ShopperError>) -> Result<(), Failure> {
    let submitted = walk.map_err(|e| Failure::Unexpected(format!("the page: {e}")))?;
    match submitted.state {
        PageState::Paid => Ok(()),
        other => Err(Failure::Unexpected(format!("the page: {other:?}"))),
    }
}

/// The amount of operation `n`: 1.00 to 1.99, varied so that a mix-up of two orders shows in the
/// sums, and far from the simulator's magic amounts (99.01 …).
fn amount_minor(n: u64) -> u64 {
    100 + n % 100
}

fn amount_text(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

impl Flows {
    /// Operations on `api` with these saved customers; OrderNumbers start with `run`.
    pub fn new(
        api: MerchantApi,
        run: String,
        customers: Vec<SavedCustomer>,
        removable: Vec<SavedCustomer>,
    ) -> Flows {
        Flows {
            api,
            run,
            customers,
            removable: Mutex::new(removable),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            initials: Mutex::new(VecDeque::new()),
            journal: Mutex::new(Journal::default()),
        }
    }

    /// The journal, once the load is over.
    pub fn take_journal(&self) -> Journal {
        std::mem::take(&mut *lock(&self.journal))
    }

    /// A first payment's order, approved with a recurring agreement, that MITs may use.
    pub fn add_initial(&self, bill: String) {
        lock(&self.initials).push_back(bill);
    }

    /// Operation `n` of `kind`.
    pub async fn run(&self, kind: Kind, n: u64) -> Result<(), Failure> {
        match kind {
            Kind::Tokenpay => self.token_pay(n, Kind::Tokenpay).await.map(drop),
            Kind::Twostage => self.two_stage(n).await,
            Kind::Cancel => self.cancel(n).await,
            Kind::Tokens => self.tokens(n).await,
            Kind::Orderstate => self.order_state(n).await,
            Kind::Mit => self.mit(n).await,
            Kind::First => self.first(n).await,
            Kind::Oneclick => self.one_click(n).await,
        }
    }

    fn customer(&self, n: u64) -> &SavedCustomer {
        &self.customers[(n % self.customers.len() as u64) as usize]
    }

    /// Journals a new order before it is asked for, so that one whose answer is lost is still
    /// reconciled; returns its index.
    fn attempt(&self, order_number: String, amount_minor: u64, kind: Kind) -> usize {
        let mut journal = lock(&self.journal);
        journal.attempts.push(Attempt {
            order_number,
            amount_minor,
            kind,
            told: None,
            bill: None,
            rrn: None,
        });
        journal.attempts.len() - 1
    }

    fn told(&self, i: usize, told: Told, order: Option<&serde_json::Value>) {
        let mut journal = lock(&self.journal);
        // An answer that comes after the run handed its journal to the reconciliation (an
        // operation still in flight when the load stopped) is not the reconciliation's to see.
        let Some(a) = journal.attempts.get_mut(i) else {
            return;
        };
        a.told = Some(told);
        if let Some(order) = order {
            a.bill = Some(field(order, "billnumber").to_owned());
            let rrn = field(order, "slipno");
            if !rrn.is_empty() {
                a.rrn = Some(rrn.to_owned());
            }
        }
    }

    fn expect_state(order: &serde_json::Value, state: &str) -> Result<(), Failure> {
        if field(order, "orderstate") == state {
            Ok(())
        } else {
            Err(Failure::Unexpected(format!(
                "{state} expected: {}",
                serde_json::Value::to_string(order)
            )))
        }
    }

    /// Token Pay order `n`, journaled first: its journal index, OrderNumber and answer.
    async fn token_pay_order(
        &self,
        n: u64,
        kind: Kind,
        delay: bool,
    ) -> Result<(usize, String, serde_json::Value), Failure> {
        let minor = amount_minor(n);
        let number = format!("{}-{n}", self.run);
        let i = self.attempt(number.clone(), minor, kind);
        let form = self.customer(n).token_pay_form(&amount_text(minor), delay);
        let order = self
            .api
            .order("/pay/tokenpay.cfm", &format!("{form}&OrderNumber={number}"))
            .await?;
        Ok((i, number, order))
    }

    /// Token Pay one-stage; the order, Approved.
    async fn token_pay(&self, n: u64, kind: Kind) -> Result<serde_json::Value, Failure> {
        let (i, number, order) = self.token_pay_order(n, kind, false).await?;
        Self::expect_state(&order, "Approved")?;
        self.told(i, Told::Approved, Some(&order));
        let mut recent = lock(&self.recent);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(number);
        Ok(order)
    }

    /// Token Pay two-stage (Delayed), then charged in full: Approved.
    async fn two_stage(&self, n: u64) -> Result<(), Failure> {
        let (i, _, delayed) = self.token_pay_order(n, Kind::Twostage, true).await?;
        Self::expect_state(&delayed, "Delayed")?;
        let bill = field(&delayed, "billnumber").to_owned();
        let charged = self
            .api
            .order("/charge/charge.cfm", &format!("Billnumber={bill}"))
            .await?;
        Self::expect_state(&charged, "Approved")?;
        // The RRN is the authorization's: the completion (0220) refers to it.
        self.told(i, Told::Approved, Some(&delayed));
        Ok(())
    }

    /// Token Pay one-stage, then cancelled in full: Canceled.
    async fn cancel(&self, n: u64) -> Result<(), Failure> {
        let paid = self.token_pay(n, Kind::Cancel).await?;
        let bill = field(&paid, "billnumber").to_owned();
        // Until the cancel's answer comes, the order may be either: a cancel whose answer is lost
        // (a fault) may have been applied, so the soak was told nothing for sure. The balance
        // check still covers it, by the authorizer's final state.
        self.retell(&bill, None);
        let cancelled = self
            .api
            .order(
                "/cancel/cancel.cfm",
                &format!("Billnumber={bill}&Externalrefundid={}-{n}-c", self.run),
            )
            .await?;
        Self::expect_state(&cancelled, "Canceled")?;
        self.retell(&bill, Some(Told::Canceled));
        Ok(())
    }

    /// What the soak now knows for sure of order `bill`.
    fn retell(&self, bill: &str, told: Option<Told>) {
        let mut journal = lock(&self.journal);
        if let Some(a) = journal
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.bill.as_deref() == Some(bill))
        {
            a.told = told;
        }
    }

    /// token.cfm of a customer; every fourth time, rem_token.cfm of a card saved to be removed.
    async fn tokens(&self, n: u64) -> Result<(), Failure> {
        let credentials =
            r#""merchant":{"merchant_id":"452739","login":"demo_login","password":"Demopass2026"}"#;
        let removing = if n.is_multiple_of(4) {
            lock(&self.removable).pop()
        } else {
            None
        };
        if let Some(customer) = removing {
            let body = format!(
                r#"{{{credentials},"token":"{}","customernumber":"{}"}}"#,
                customer.token, customer.name
            );
            let answer = self
                .api
                .post("/pay/oneclick/v1/rem_token.cfm", body)
                .await?;
            let json: serde_json::Value = json(&answer)?;
            if json["message"] != "Token removed" {
                return Err(Failure::Unexpected(json.to_string()));
            }
            lock(&self.journal).removed_tokens.push(customer.token);
            return Ok(());
        }
        let customer = self.customer(n);
        let body = format!(r#"{{{credentials},"customernumber":"{}"}}"#, customer.name);
        let answer = self.api.post("/pay/oneclick/v1/token.cfm", body).await?;
        let json: serde_json::Value = json(&answer)?;
        let listed = json
            .as_array()
            .is_some_and(|cards| cards.iter().any(|c| c["token"] == customer.token.as_str()));
        if listed {
            Ok(())
        } else {
            Err(Failure::Unexpected(format!("token not listed: {json}")))
        }
    }

    /// orderstate.cfm of a recently approved order (a Token Pay first, when there is none yet).
    async fn order_state(&self, n: u64) -> Result<(), Failure> {
        let Some(number) = pick(&self.recent, n) else {
            return self.token_pay(n, Kind::Tokenpay).await.map(drop);
        };
        let states = self.order_states(&number).await?;
        // Approved, or Canceled when a `cancel` operation took it since.
        match states.as_slice() {
            [s] if s == "Approved" || s == "Canceled" => Ok(()),
            _ => Err(Failure::Unexpected(format!("{number}: {states:?}"))),
        }
    }

    /// Every attempt's `orderstate` of an OrderNumber.
    pub async fn order_states(&self, number: &str) -> Result<Vec<String>, Failure> {
        Ok(self
            .order_records(number)
            .await?
            .iter()
            .map(|o| field(o, "orderstate").to_owned())
            .collect())
    }

    /// Every attempt's order record of an OrderNumber, as orderstate.cfm gives them.
    async fn order_records(&self, number: &str) -> Result<Vec<serde_json::Value>, Failure> {
        let body = self
            .api
            .post(
                "/orderstate/orderstate.cfm",
                format!(
                    "{}&Format=5&OrderNumber={}",
                    crate::merchant::CREDENTIALS,
                    percent_encoded(number)
                ),
            )
            .await?;
        let json: serde_json::Value = json(&body)?;
        let orders = json
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|root| root["orders"].as_array())
            .ok_or_else(|| Failure::Unexpected(json.to_string()))?;
        Ok(orders.clone())
    }

    /// payrequest.cfm for a shopper to pay on the page: the page's URL and the order's
    /// billnumber (the page's last path segment).
    async fn pay_request(&self, fields: &str) -> Result<(String, String), Failure> {
        let body = self
            .api
            .post(
                "/pay/payrequest.cfm",
                format!("{}&Format=5&{fields}", crate::merchant::CREDENTIALS),
            )
            .await?;
        let json: serde_json::Value = json(&body)?;
        let url = json["url"]
            .as_str()
            .or(json["payrequest"]["url"].as_str())
            .ok_or_else(|| Failure::Unexpected(format!("no url: {json}")))?
            .to_owned();
        let bill = url.rsplit('/').next().unwrap_or_default().to_owned();
        Ok((url, bill))
    }

    /// After a page payment: the order as orderstate.cfm has it, which must be Approved. (Its
    /// RRN is in neither: the reconciliation takes it from the payment's notification.)
    async fn paid_on_page(&self, i: usize, number: &str) -> Result<String, Failure> {
        let records = self.order_records(number).await?;
        let [order] = records.as_slice() else {
            return Err(Failure::Unexpected(format!("{number}: {records:?}")));
        };
        Self::expect_state(order, "Approved")?;
        self.told(i, Told::Approved, Some(order));
        Ok(field(order, "billnumber").to_owned())
    }

    fn shopper(&self) -> Shopper {
        // One per payment: the API's address changes when the authorizer restarts.
        Shopper::new(self.api.addr())
    }

    /// A first payment on the page: a new customer types a card (remembered, 3-D Secure
    /// frictionless) for an order with `RecurringIndicator=1` and no bounds: the first use of
    /// an unscheduled card-on-file agreement (seed 001), which any number of MITs then use (a
    /// scheduled one would allow one per period).
    async fn first(&self, n: u64) -> Result<(), Failure> {
        let minor = amount_minor(n);
        let number = format!("{}-{n}", self.run);
        let i = self.attempt(number.clone(), minor, Kind::First);
        let (url, _) = self
            .pay_request(&format!(
                "OrderNumber={number}&OrderAmount={}&OrderCurrency=RUB&CustomerNumber={}-f{n}\
                 &Lastname=Ivanov&Firstname=Ivan&Email=ivan%40example.com&RecurringIndicator=1",
                amount_text(minor),
                self.run
            ))
            .await?;
        paid_page(
            self.shopper()
                .pay_new(&url, TypedCard::remembered(MC_FRICTIONLESS), CHALLENGE_CODE)
                .await,
        )?;
        let bill = self.paid_on_page(i, &number).await?;
        self.add_initial(bill);
        Ok(())
    }

    /// One Click on the page: a customer with a saved card picks it and types its CVC.
    async fn one_click(&self, n: u64) -> Result<(), Failure> {
        let minor = amount_minor(n);
        let number = format!("{}-{n}", self.run);
        let i = self.attempt(number.clone(), minor, Kind::Oneclick);
        let (url, _) = self
            .pay_request(&format!(
                "OrderNumber={number}&OrderAmount={}&OrderCurrency=RUB&CustomerNumber={}\
                 &Lastname=Ivanov&Firstname=Ivan&Email=ivan%40example.com",
                amount_text(minor),
                self.customer(n).name
            ))
            .await?;
        let last4 = &PLAIN_APPROVED[PLAIN_APPROVED.len() - 4..];
        paid_page(
            self.shopper()
                .pay_saved(&url, last4, testkit::cards::CVC)
                .await,
        )?;
        self.paid_on_page(i, &number).await.map(drop)
    }

    /// rp.cfm on the agreement of an approved first payment (a Token Pay when there is none).
    async fn mit(&self, n: u64) -> Result<(), Failure> {
        let Some(initial) = pick(&self.initials, n) else {
            return self.token_pay(n, Kind::Tokenpay).await.map(drop);
        };
        let minor = amount_minor(n);
        let number = format!("{}-{n}", self.run);
        let i = self.attempt(number.clone(), minor, Kind::Mit);
        let order = self
            .api
            .order(
                "/recurrent/rp.cfm",
                &format!(
                    "BillNumber={initial}&OrderNumber={number}&Amount={}&Currency=RUB",
                    amount_text(minor)
                ),
            )
            .await?;
        Self::expect_state(&order, "Approved")?;
        self.told(i, Told::Approved, Some(&order));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_stay_clear_of_the_magic_ones() {
        for n in 0..1000 {
            let minor = amount_minor(n);
            assert!((100..200).contains(&minor));
            assert!(!simulator::MAGIC_DECLINES.iter().any(|&(m, _)| m == minor));
        }
        assert_eq!(amount_text(105), "1.05");
    }
}
