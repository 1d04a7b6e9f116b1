//! The tour: the whole system from the outside, through the real merchant API and the real
//! payment pages. The real `simulator`, `vault` and `authorizer` processes on a temp directory
//! (`testkit::stack`), the dev merchant 452739 notifying a shop server of the tour's
//! (`testkit::shop`), and a shopper without scripts (`testkit::shopper`). It pays a first
//! payment that saves a card through a 3-D Secure challenge, One Click on the page, Token Pay, a
//! recurring MIT on an agreement, a two-stage payment and its charge, a partial cancel before the
//! cut-off and a refund after it, lists and removes a saved card, then checks the notifications
//! the shop received and reconciles everything against the simulator's ledger.
//!
//! Owns the script and its table ([`Tour`]). A step that goes otherwise than expected is a FAIL
//! row, not an error; an error means the tour could not go on (a process or a request failed).
//! Must never print or keep a card number or a CVC: cards appear masked.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::summary::{money, signed_money};
use simulator::ledger::{Action, Ledger};
use testkit::cards::{CHALLENGE_CODE, CVC, MC_FRICTIONLESS, VISA_CHALLENGE, masked};
use testkit::http::{Answer, Client, HttpError};
use testkit::shop::{Merchant, Shop};
use testkit::shopper::{PageState, Shopper, ShopperError, Submitted, TypedCard};
use testkit::stack::{Stack, StackOptions, dev_merchants_notifying, notification_sections};

/// The shopper, as the dev merchant numbers its customers.
const CUSTOMER: &str = "7001";
/// How long the tour waits for the shop's notifications to settle.
const NOTIFIED_WITHIN: Duration = Duration::from_secs(20);

/// Why the tour stopped before its table was complete.
#[derive(Debug, thiserror::Error)]
pub enum TourError {
    /// The shop's notification server could not listen, or the merchants file could not be read.
    #[error("set-up: {0}")]
    Io(#[from] std::io::Error),
    /// A merchant API or admin request failed (not an answer: no answer).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The shopper's walk through the pages could not go on.
    #[error("shopper: {0}")]
    Shopper(#[from] ShopperError),
    /// The simulator's ledger could not be read.
    #[error("ledger: {0}")]
    Ledger(#[from] simulator::acs_client::AcsClientError),
    /// An answer the tour needs a value from (a billnumber, a page URL, a token) lacks it.
    #[error("{what}: {answer}")]
    Unexpected {
        /// What was looked for.
        what: &'static str,
        /// The answer (merchant API answers carry masked cards only).
        answer: String,
    },
}

/// One row of the tour's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What the step does.
    pub step: &'static str,
    /// The merchant's order number and the gateway's billnumber, when the step has an order.
    pub order: String,
    /// What happened, in words (cards masked).
    pub happened: String,
    /// The codes that show it (order state, AS response code, ledger counts).
    pub codes: String,
    /// Whether it went as the tour expects.
    pub ok: bool,
}

/// The tour's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tour {
    /// Every row, in the order run.
    pub rows: Vec<Row>,
}

impl Tour {
    /// Every row went as expected.
    pub fn ok(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.ok)
    }
}

impl fmt::Display for Tour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |column: fn(&Row) -> &str, title: &str| {
            self.rows
                .iter()
                .map(|r| column(r).chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (s, o, h, c) = (
            width(|r| r.step, "step"),
            width(|r| &r.order, "order / bill"),
            width(|r| &r.happened, "what happened"),
            width(|r| &r.codes, "codes"),
        );
        writeln!(
            f,
            "{:<2} {:<s$} {:<o$} {:<h$} {:<c$} result",
            "#", "step", "order / bill", "what happened", "codes"
        )?;
        for (i, r) in self.rows.iter().enumerate() {
            writeln!(
                f,
                "{:<2} {:<s$} {:<o$} {:<h$} {:<c$} {}",
                i + 1,
                r.step,
                r.order,
                r.happened,
                r.codes,
                if r.ok { "OK" } else { "FAIL" }
            )?;
        }
        let failed = self.rows.iter().filter(|r| !r.ok).count();
        write!(
            f,
            "tour: {} steps, {}",
            self.rows.len(),
            if failed == 0 {
                "all OK".to_owned()
            } else {
                format!("{failed} FAILED")
            }
        )
    }
}

/// An order the tour made, and what it expects the ledger to hold for it.
#[derive(Debug, Clone)]
struct Order {
    number: &'static str,
    bill: String,
    /// The RRN (`slipno`) of its approved authorization, if approved.
    rrn: Option<String>,
    /// Minor units authorized.
    amount: u64,
    /// The card's mask as the ledger keys its balance.
    card: String,
}

impl Order {
    /// The order of a payment answer's record; approved when it has an RRN.
    fn from_record(number: &'static str, record: &Value, amount: u64, pan: &str) -> Order {
        Order {
            number,
            bill: field(record, "billnumber").to_owned(),
            rrn: Some(field(record, "slipno").to_owned()).filter(|s| !s.is_empty()),
            amount,
            card: masked(pan),
        }
    }

    fn label(&self) -> String {
        format!("{} / {}", self.number, self.bill)
    }
}

/// How the shopper pays on the page.
#[derive(Debug, Clone, Copy)]
enum OnPage {
    /// Types `pan`, "remember" ticked; `challenge`: the ACS is expected to challenge it.
    Typed { pan: &'static str, challenge: bool },
    /// Chooses the saved card ending in `last4` (`pan`) and types its CVC.
    Saved {
        last4: &'static str,
        pan: &'static str,
    },
}

/// Starts the system from the binaries `testkit::processes::Binaries::locate` finds, runs the
/// tour, stops the system (its temp directory goes with it) and returns the table.
pub async fn run() -> Result<Tour, TourError> {
    let shop = Shop::serve().await?;
    let url = shop.url("452739");
    let stack = Stack::start(StackOptions {
        merchants_file: Some(dev_merchants_notifying(&url, &url)?),
        sections: notification_sections(&[shop.addr().port()], "[50, 100, 200]", 5_000),
        ..StackOptions::default()
    })
    .await;
    let tourist = Tourist {
        merchant: Merchant::dev(stack.authorizer().api_addr),
        shopper: Shopper::new(stack.authorizer().api_addr),
        admin: format!("http://{}", stack.authorizer().admin_addr),
        http: Client::default(),
        shop,
        stack: &stack,
        tour: Tour::default(),
        orders: Vec::new(),
    };
    tourist.go().await
}

/// The tour while it runs: the merchant's server, the shopper, the table so far.
struct Tourist<'s> {
    merchant: Merchant,
    shopper: Shopper,
    /// `http://` the authorizer's admin endpoint (cut-off, notifications).
    admin: String,
    http: Client,
    shop: Shop,
    stack: &'s Stack,
    tour: Tour,
    /// Every order made, for the notifications and the ledger.
    orders: Vec<Order>,
}

/// The order record of a payment answer (`{"tokenpay":{"orders":[…]}}` and its kin).
fn first_order(v: &Value) -> Option<&Value> {
    v.as_object()?.values().next()?.get("orders")?.get(0)
}

fn field<'v>(v: &'v Value, name: &str) -> &'v str {
    v.get(name).and_then(Value::as_str).unwrap_or("")
}

fn json(answer: &Answer) -> Value {
    serde_json::from_str(&answer.body).unwrap_or(Value::Null)
}

/// The one order record of a payment, charge or cancel answer; `Null` if it has none.
fn record(answer: &Answer) -> Value {
    first_order(&json(answer)).cloned().unwrap_or(Value::Null)
}

impl Tourist<'_> {
    fn row(
        &mut self,
        step: &'static str,
        order: String,
        happened: String,
        codes: String,
        ok: bool,
    ) {
        self.tour.rows.push(Row {
            step,
            order,
            happened,
            codes,
            ok,
        });
    }

    async fn go(mut self) -> Result<Tour, TourError> {
        let first = self.first_payment().await?;
        self.one_click().await?;
        let token = self.saved_token("1111").await?;
        let token_paid = self.token_pay("T-3", 10_000, false, &token).await?;
        self.recurring().await?;
        let delayed = self.token_pay("T-6", 5_000, true, &token).await?;
        self.charge(&delayed).await?;
        self.cancel(
            "partial cancel (reversal)",
            &token_paid,
            Some(3_000),
            "PartialCanceled",
        )
        .await?;
        self.cutoff().await?;
        self.cancel("cancel after cut-off (refund)", &first, None, "Canceled")
            .await?;
        self.list_and_remove(&token).await?;
        self.notifications().await?;
        self.reconcile(&token_paid, &first).await?;
        Ok(self.tour)
    }

    /// payrequest.cfm for `number` of `amount`, `extra` parameters after; the page's URL and
    /// the order's billnumber.
    async fn payrequest(
        &self,
        number: &str,
        amount: u64,
        extra: &[(&str, &str)],
    ) -> Result<(String, String), TourError> {
        let amount = money(amount);
        let mut params = vec![
            ("OrderNumber", number),
            ("OrderAmount", amount.as_str()),
            ("OrderCurrency", "RUB"),
            ("CustomerNumber", CUSTOMER),
            ("Lastname", "Ivanov"),
            ("Firstname", "Ivan"),
            ("Email", "ivan@example.com"),
            ("Format", "5"),
        ];
        params.extend_from_slice(extra);
        let answer = self.merchant.call("/pay/payrequest.cfm", &params).await?;
        let v = json(&answer);
        let url = v["url"]
            .as_str()
            .or(v["payrequest"]["url"].as_str())
            .ok_or(TourError::Unexpected {
                what: "payrequest.cfm's page URL",
                answer: answer.body.clone(),
            })?
            .to_owned();
        let bill = url.rsplit('/').next().unwrap_or_default().to_owned();
        Ok((url, bill))
    }

    /// orderresult.cfm of `bill`: the order with its operations.
    async fn order_result(&self, bill: &str) -> Result<Value, TourError> {
        let answer = self
            .merchant
            .call(
                "/orderresult/orderresult.cfm",
                &[("Billnumber", bill), ("Format", "5")],
            )
            .await?;
        first_order(&json(&answer))
            .cloned()
            .ok_or(TourError::Unexpected {
                what: "orderresult.cfm's order",
                answer: answer.body,
            })
    }

    /// An order made by payrequest.cfm (`extra` parameters after the usual) and paid by the
    /// shopper on its page; its row holds what the page showed against what the order says.
    async fn page_payment(
        &mut self,
        step: &'static str,
        number: &'static str,
        amount: u64,
        extra: &[(&str, &str)],
        way: OnPage,
    ) -> Result<Order, TourError> {
        let (page, bill) = self.payrequest(number, amount, extra).await?;
        let (pan, expect_challenge) = match way {
            OnPage::Typed { pan, challenge } => (pan, challenge),
            OnPage::Saved { pan, .. } => (pan, false),
        };
        let Submitted {
            state, challenged, ..
        } = match way {
            OnPage::Typed { pan, .. } => {
                self.shopper
                    .pay_new(&page, TypedCard::remembered(pan), CHALLENGE_CODE)
                    .await?
            }
            OnPage::Saved { last4, .. } => self.shopper.pay_saved(&page, last4, CVC).await?,
        };
        let order = self.order_result(&bill).await?;
        let operation = &order["operations"][0];
        let ok = state == PageState::Paid
            && challenged == expect_challenge
            && field(&order, "orderstate") == "Approved"
            && field(operation, "responsecode") == "AS000";
        let happened = format!(
            "page: {state:?}{}, card {}",
            if challenged {
                " after the ACS challenge"
            } else {
                ""
            },
            field(operation, "meannumber")
        );
        let codes = format!(
            "{} {}",
            field(&order, "orderstate"),
            field(operation, "responsecode")
        );
        let made = Order {
            number,
            bill,
            rrn: Some(field(operation, "slipno").to_owned()).filter(|s| !s.is_empty()),
            amount,
            card: masked(pan),
        };
        self.row(step, made.label(), happened, codes, ok);
        self.orders.push(made.clone());
        Ok(made)
    }

    /// A first payment on the page that saves the card; the challenge card, so saving it must
    /// go through the ACS's challenge.
    async fn first_payment(&mut self) -> Result<Order, TourError> {
        let way = OnPage::Typed {
            pan: VISA_CHALLENGE,
            challenge: true,
        };
        self.page_payment("first payment, card saved (3-DS)", "T-1", 1_500, &[], way)
            .await
    }

    /// One Click on the page: the saved card's chip, its CVC only.
    async fn one_click(&mut self) -> Result<(), TourError> {
        let way = OnPage::Saved {
            last4: "1111",
            pan: VISA_CHALLENGE,
        };
        self.page_payment("One Click on the page (CVC only)", "T-2", 2_500, &[], way)
            .await?;
        Ok(())
    }

    /// The token of the customer's listed card ending in `last4` (token.cfm).
    async fn saved_token(&self, last4: &str) -> Result<String, TourError> {
        let list = self.list().await?;
        let v = json(&list);
        v.as_array()
            .and_then(|cards| cards.iter().find(|c| field(c, "post") == last4))
            .map(|c| field(c, "token").to_owned())
            .ok_or(TourError::Unexpected {
                what: "token.cfm's saved card",
                answer: list.body,
            })
    }

    async fn list(&self) -> Result<Answer, TourError> {
        Ok(self
            .merchant
            .one_click(
                "/pay/oneclick/v1/token.cfm",
                &[("customernumber", CUSTOMER), ("language", "RU")],
            )
            .await?)
    }

    /// Token Pay (tokenpay.cfm) with the saved card; one-stage, or two-stage when `delay`.
    async fn token_pay(
        &mut self,
        number: &'static str,
        amount: u64,
        delay: bool,
        token: &str,
    ) -> Result<Order, TourError> {
        let answer = self
            .merchant
            .token_pay(number, &money(amount), delay, CUSTOMER, token)
            .await?;
        let record = record(&answer);
        let expected = if delay { "Delayed" } else { "Approved" };
        let made = Order::from_record(number, &record, amount, VISA_CHALLENGE);
        let ok = answer.status == 200
            && field(&record, "orderstate") == expected
            && field(&record, "responsecode") == "AS000";
        self.row(
            if delay {
                "two-stage Token Pay (Delay=1)"
            } else {
                "Token Pay (tokenpay.cfm)"
            },
            made.label(),
            format!("{} RUB on {}", money(amount), field(&record, "meannumber")),
            format!(
                "{} {}",
                field(&record, "orderstate"),
                field(&record, "responsecode")
            ),
            ok,
        );
        self.orders.push(made.clone());
        Ok(made)
    }

    /// An initial payment on the page with a recurring agreement, then an MIT on it (rp.cfm).
    async fn recurring(&mut self) -> Result<(), TourError> {
        let agreement = [
            ("RecurringIndicator", "1"),
            ("RecurringMinAmount", "1.00"),
            ("RecurringMaxAmount", "100.00"),
            ("RecurringPeriod", "30"),
            ("RecurringMaxDate", "31.12.2030"),
        ];
        let way = OnPage::Typed {
            pan: MC_FRICTIONLESS,
            challenge: false,
        };
        let initial = self
            .page_payment(
                "recurring: initial payment, agreement",
                "T-4",
                1_000,
                &agreement,
                way,
            )
            .await?;
        let answer = self
            .merchant
            .call(
                "/recurrent/rp.cfm",
                &[
                    ("BillNumber", &initial.bill),
                    ("OrderNumber", "T-5"),
                    ("Amount", "20.00"),
                    ("Currency", "RUB"),
                    ("Format", "5"),
                ],
            )
            .await?;
        let record = record(&answer);
        let made = Order::from_record("T-5", &record, 2_000, MC_FRICTIONLESS);
        let ok =
            field(&record, "orderstate") == "Approved" && field(&record, "responsecode") == "AS000";
        self.row(
            "recurring MIT (rp.cfm)",
            made.label(),
            format!(
                "20.00 RUB on {}, on {}'s agreement",
                field(&record, "meannumber"),
                initial.number
            ),
            format!(
                "{} {}",
                field(&record, "orderstate"),
                field(&record, "responsecode")
            ),
            ok,
        );
        self.orders.push(made);
        Ok(())
    }

    /// charge.cfm of a Delayed order, in full.
    async fn charge(&mut self, order: &Order) -> Result<(), TourError> {
        let amount = money(order.amount);
        let answer = self
            .merchant
            .call(
                "/charge/charge.cfm",
                &[
                    ("Billnumber", &order.bill),
                    ("Amount", &amount),
                    ("Currency", "RUB"),
                    ("Format", "5"),
                ],
            )
            .await?;
        let record = record(&answer);
        self.row(
            "charge of the two-stage order",
            order.label(),
            format!("{amount} RUB charged (0220)"),
            format!(
                "{} {}",
                field(&record, "orderstate"),
                field(&record, "responsecode")
            ),
            answer.status == 200 && field(&record, "orderstate") == "Approved",
        );
        Ok(())
    }

    /// cancel.cfm of `amount` (all of it when `None`); the order must end `expected`.
    async fn cancel(
        &mut self,
        step: &'static str,
        order: &Order,
        amount: Option<u64>,
        expected: &str,
    ) -> Result<(), TourError> {
        let amount = amount.map(money);
        let mut params = vec![("Billnumber", order.bill.as_str()), ("Format", "5")];
        if let Some(a) = &amount {
            params.extend([("Amount", a.as_str()), ("Currency", "RUB")]);
        }
        let answer = self.merchant.call("/cancel/cancel.cfm", &params).await?;
        let record = record(&answer);
        self.row(
            step,
            order.label(),
            format!(
                "{} of {} RUB cancelled",
                amount.as_deref().unwrap_or("all"),
                money(order.amount)
            ),
            format!(
                "{} {}",
                field(&record, "orderstate"),
                field(&record, "responsecode")
            ),
            answer.status == 200 && field(&record, "orderstate") == expected,
        );
        Ok(())
    }

    /// The operator runs the merchant's settlement cut-off now (admin `POST /cutoff/452739`).
    async fn cutoff(&mut self) -> Result<(), TourError> {
        let url = format!("{}/cutoff/{}", self.admin, self.merchant.id);
        let answer = self.http.post_form(&url, "").await?;
        self.row(
            "settlement cut-off (admin)",
            String::new(),
            "what was paid is settled: a cancel is now a refund".into(),
            format!("HTTP {}", answer.status),
            answer.status == 200,
        );
        Ok(())
    }

    /// token.cfm lists both saved cards; rem_token.cfm removes one; Token Pay with it is declined.
    async fn list_and_remove(&mut self, token: &str) -> Result<(), TourError> {
        let list = self.list().await?;
        let cards: Vec<String> = json(&list)
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| format!("{} *{}", field(c, "brand"), field(c, "post")))
                    .collect()
            })
            .unwrap_or_default();
        self.row(
            "token.cfm: saved cards",
            format!("customer {CUSTOMER}"),
            cards.join(", "),
            format!("{} cards", cards.len()),
            list.status == 200 && cards.len() == 2,
        );
        let removed = self
            .merchant
            .one_click(
                "/pay/oneclick/v1/rem_token.cfm",
                &[
                    ("token", token),
                    ("language", "RU"),
                    ("customernumber", CUSTOMER),
                ],
            )
            .await?;
        let message = field(&json(&removed), "message").to_owned();
        let after = self.list().await?;
        let left = json(&after).as_array().map_or(0, Vec::len);
        self.row(
            "rem_token.cfm: card *1111 removed",
            format!("customer {CUSTOMER}"),
            format!("{message}; {left} card(s) listed after"),
            format!("HTTP {}", removed.status),
            removed.status == 200 && message == "Token removed" && left == 1,
        );
        let answer = self
            .merchant
            .token_pay("T-7", "10.00", false, CUSTOMER, token)
            .await?;
        let record = record(&answer);
        let made = Order::from_record("T-7", &record, 1_000, VISA_CHALLENGE);
        self.row(
            "Token Pay with the removed token",
            made.label(),
            "declined before the network".into(),
            format!(
                "{} {}",
                field(&record, "orderstate"),
                field(&record, "responsecode")
            ),
            field(&record, "orderstate") == "Declined" && field(&record, "responsecode") == "AS101",
        );
        self.orders.push(made);
        Ok(())
    }

    /// The admin endpoint's notifications of `bill`: each one's state.
    async fn notice_states(&self, bill: &str) -> Result<Vec<String>, TourError> {
        let answer = self
            .http
            .get(&format!("{}/notifications/{bill}", self.admin))
            .await?;
        Ok(json(&answer)
            .as_array()
            .map(|ns| {
                ns.iter()
                    .map(|n| field(&n["notice"], "state").to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Each order's notifications, once all are settled: how many the shop received, each
    /// acknowledged once, as the authorizer's outbox says.
    async fn notifications(&mut self) -> Result<(), TourError> {
        let bills: Vec<String> = self.orders.iter().map(|o| o.bill.clone()).collect();
        let settled = testkit::within(NOTIFIED_WITHIN, async || {
            for bill in &bills {
                match self.notice_states(bill).await {
                    Ok(states) if states.iter().all(|s| s == "acknowledged") => {}
                    _ => return false,
                }
            }
            true
        })
        .await;
        let acknowledged = self.shop.acknowledged();
        let twice = self.shop.acknowledged_twice();
        for order in self.orders.clone() {
            let states = self.notice_states(&order.bill).await?;
            let received = self.shop.of(&order.bill).len();
            let acks: usize = acknowledged
                .iter()
                .filter(|(b, _)| b.starts_with(&format!("{}.", order.bill)))
                .map(|(_, n)| n)
                .sum();
            // A payment declined before the network may or may not be notified; an approved
            // one must be.
            let ok = settled
                && (order.rrn.is_none() || !states.is_empty())
                && received == states.len()
                && acks == states.len()
                && states.iter().all(|s| s == "acknowledged");
            self.row(
                "notifications the shop received",
                order.label(),
                format!("{received} received, {acks} acknowledged"),
                states.join(","),
                ok,
            );
        }
        self.row(
            "no notification acknowledged twice",
            String::new(),
            format!("{} billnumbers acknowledged", acknowledged.len()),
            twice.join(","),
            twice.is_empty(),
        );
        Ok(())
    }

    /// The simulator's ledger against the tour: each approved payment present with its amount,
    /// the reversal and the refund applied once, no declined authorization sent, the balances
    /// explained by the journal and each card debited exactly what the tour expects.
    async fn reconcile(&mut self, reversed: &Order, refunded: &Order) -> Result<(), TourError> {
        let ledger = simulator::AcsClient::new(self.stack.sim.acs_addr)
            .ledger()
            .await?;
        for order in self.orders.clone().iter().filter(|o| o.rrn.is_some()) {
            let rrn = order.rrn.as_deref().unwrap_or_default();
            let entry = ledger.approvals().find(|e| e.rrn.as_deref() == Some(rrn));
            let (happened, ok) = match entry {
                Some(e) => (
                    format!(
                        "{} {} RUB approved, RRN {rrn}",
                        e.mti,
                        money(e.amount.unwrap_or(0))
                    ),
                    e.amount == Some(order.amount),
                ),
                None => (format!("no approval with RRN {rrn}"), false),
            };
            self.row(
                "ledger: payment present",
                order.label(),
                happened,
                String::new(),
                ok,
            );
        }
        let stan = |o: &Order| {
            o.rrn
                .as_deref()
                .and_then(|rrn| ledger.approvals().find(|e| e.rrn.as_deref() == Some(rrn)))
                .and_then(|e| e.stan)
        };
        let reversals = applied(&ledger, Action::Reversed);
        let of_reversed = ledger
            .applied_reversals()
            .filter(|e| e.original.as_ref().map(|o| o.1) == stan(reversed))
            .count();
        self.row(
            "ledger: reversal applied once",
            reversed.label(),
            format!("{reversals} reversal(s) in the ledger, {of_reversed} of this order"),
            String::new(),
            reversals == 1 && of_reversed == 1,
        );
        let refunds: Vec<u64> = ledger
            .entries
            .iter()
            .filter(|e| e.action == Action::Refunded)
            .map(|e| e.amount.unwrap_or(0))
            .collect();
        self.row(
            "ledger: refund applied once",
            refunded.label(),
            format!(
                "refunds: {}",
                refunds
                    .iter()
                    .map(|a| money(*a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            String::new(),
            refunds == [refunded.amount],
        );
        let declines = applied(&ledger, Action::Declined);
        self.row(
            "ledger: no declined authorization",
            String::new(),
            format!("{declines} declined (the removed token never reached the network)"),
            String::new(),
            declines == 0,
        );
        // What each card should have lost: every approval, less the reversal's and the refund's
        // amounts.
        let mut expected: BTreeMap<String, i64> = BTreeMap::new();
        for o in self.orders.iter().filter(|o| o.rrn.is_some()) {
            *expected.entry(o.card.clone()).or_default() += i64::try_from(o.amount).unwrap_or(0);
        }
        *expected.entry(reversed.card.clone()).or_default() -= 3_000;
        *expected.entry(refunded.card.clone()).or_default() -=
            i64::try_from(refunded.amount).unwrap_or(0);
        for (card, debited) in expected {
            let actual = ledger.balance(&card).map(|b| b.opening - b.current);
            self.row(
                "ledger: card debited as expected",
                card.clone(),
                format!(
                    "expected {}, ledger {}",
                    signed_money(debited),
                    actual.map_or("none".into(), signed_money)
                ),
                String::new(),
                actual == Some(debited),
            );
        }
        self.row(
            "ledger: balances add up",
            String::new(),
            format!(
                "{} entries, opening + deltas = current for every card",
                ledger.entries.len()
            ),
            format!("trimmed {}", ledger.trimmed),
            ledger.balances_add_up() && ledger.trimmed == 0,
        );
        Ok(())
    }
}

fn applied(ledger: &Ledger, action: Action) -> usize {
    ledger.entries.iter().filter(|e| e.action == action).count()
}
