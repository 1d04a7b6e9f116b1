//! The simulated issuer and card network: the deterministic rules that decide each request, the
//! per-card balances they move, and the booking of every decision in the ledger.
//!
//! Owns all mutable network state (balances, approvals by original key, network transaction
//! IDs, used authentication values, velocity windows, seen STANs) behind one lock, so that a
//! decision and its ledger entry are one atomic step and a snapshot is always consistent. It
//! must never see the wire (the server turns frames into [`Request`]s and decisions into
//! responses) and never keep a PAN: cards are known by their keyed fingerprint.

use std::collections::VecDeque;
use std::hash::RandomState;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use iso8583::{CofIndicator, Message, ResponseCode};

use crate::auth_value::{CardFingerprint, Cavv, IssuerKey};
use crate::cards::{self, Standing, TEST_CVC};
use crate::ledger::{Action, Balance, Delivery, Journal, Ledger, LedgerEntry};
use crate::request::{Adjustment, Payment, PaymentKind, Reject, Request, TxnKey};

/// Magic amounts (minor units) of 0100/0200 that the issuer declines with a fixed code.
pub const MAGIC_DECLINES: &[(u64, ResponseCode)] = &[
    (9957, ResponseCode::NOT_PERMITTED),
    (9961, ResponseCode::EXCEEDS_AMOUNT_LIMIT),
    (9991, ResponseCode::ISSUER_UNAVAILABLE),
    (9996, ResponseCode::SYSTEM_MALFUNCTION),
];

/// What the issuer answers; the server turns it into the response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub code: ResponseCode,
    pub approval_code: Option<[u8; 6]>,
    /// DE 48.03, on a first-use approval.
    pub network_id: Option<Vec<u8>>,
    /// DE 48.30: `M`, `N` or `P` when a CVC2 was presented.
    pub cvc_result: Option<u8>,
    /// DE 48.31: `2` valid, `1` invalid when a CAVV was presented.
    pub cavv_result: Option<u8>,
}

impl Decision {
    pub(crate) fn code(code: ResponseCode) -> Decision {
        Decision {
            code,
            approval_code: None,
            network_id: None,
            cvc_result: None,
            cavv_result: None,
        }
    }
}

/// An approval that later messages (reversal, completion) can change.
#[derive(Debug)]
struct Booking {
    card: CardFingerprint,
    kind: PaymentKind,
    /// Money still held (or still refunded) by this approval.
    remaining: u64,
    completed: bool,
}

#[derive(Debug)]
struct CardState {
    masked: String,
    opening: i64,
    balance: i64,
    /// Approval instants within the velocity window, oldest first.
    recent: VecDeque<Instant>,
}

/// Maps that grow by one entry per message resize a little on each insert instead of all at
/// once: a rehash of 57,000 bookings under the issuer's lock stalled every connection for 18 ms.
/// SipHash (std's hasher) because card data and network input choose the keys.
type Map<K, V> = griddle::HashMap<K, V, RandomState>;
type Set<T> = griddle::HashSet<T, RandomState>;

#[derive(Debug)]
struct State {
    cards: Map<CardFingerprint, CardState>,
    bookings: Map<TxnKey, Booking>,
    /// The DE 7 under which each (terminal, STAN) was last used: a repeat is a duplicate.
    seen: Map<([u8; 8], u32), [u8; 10]>,
    network_ids: Map<Vec<u8>, CardFingerprint>,
    used_cavvs: Set<Cavv>,
    /// Each payment's terminal and key, oldest first, with when it arrived: what to forget.
    remembered: VecDeque<(Instant, [u8; 8], TxnKey)>,
    approvals: u64,
    journal: Journal,
}

impl State {
    /// Forgets the bookings and seen STANs of payments that arrived before `horizon`. A STAN
    /// used again since (they wrap) is kept: only its own entry's DE 7 is removed.
    fn forget_before(&mut self, horizon: Instant) {
        while let Some(&(at, terminal, key)) = self.remembered.front() {
            if at >= horizon {
                return;
            }
            self.remembered.pop_front();
            self.bookings.remove(&key);
            if self.seen.get(&(terminal, key.stan)) == Some(&key.time) {
                self.seen.remove(&(terminal, key.stan));
            }
        }
    }
}

/// The issuer: shared by every connection of the ISO server and by the ACS (for the key).
#[derive(Debug)]
pub struct Issuer {
    key: IssuerKey,
    remember: Duration,
    state: Mutex<State>,
}

/// The facts of one message for its ledger entry that the issuer does not derive itself.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub connection: u64,
    pub delivery: Delivery,
}

impl Issuer {
    pub fn new(
        key: IssuerKey,
        ledger_file: Option<&Path>,
        ledger_cap: usize,
        remember: Duration,
    ) -> std::io::Result<Issuer> {
        Ok(Issuer {
            key,
            remember,
            state: Mutex::new(State {
                cards: Map::default(),
                bookings: Map::default(),
                seen: Map::default(),
                network_ids: Map::default(),
                used_cavvs: Set::default(),
                remembered: VecDeque::new(),
                approvals: 0,
                journal: Journal::open(ledger_file, ledger_cap)?,
            }),
        })
    }

    pub fn key(&self) -> &IssuerKey {
        &self.key
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half a decision: every mutation is done
        // after all checks. Keep serving rather than poison the whole network.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides one decoded message and books it. `Err` carries the reason a message was
    /// rejected, already booked; the server answers 30 when a response MTI exists.
    pub fn process(&self, msg: &Message, arrival: Arrival) -> Result<Decision, Reject> {
        let mut entry = blank_entry(msg, arrival);
        let request = Request::parse(msg);
        let mut state = self.lock();
        entry.seq = state.journal.next_seq();
        let result = match request {
            Ok(request) => Ok(self.decide(&mut state, request, &mut entry)),
            Err(reject) => {
                entry.action = Action::Rejected {
                    reason: reject.to_string(),
                };
                if msg.mti().response().is_some() {
                    entry.response_code = Some(ResponseCode::FORMAT_ERROR.as_str().to_owned());
                } else {
                    entry.delivery = Delivery::None;
                }
                Err(reject)
            }
        };
        if let Ok(decision) = &result {
            entry.response_code = Some(decision.code.as_str().to_owned());
            entry.approval_code = decision.approval_code.map(|c| ascii(&c));
            entry.network_id = decision.network_id.as_deref().map(ascii);
        }
        state.journal.push(entry);
        result
    }

    /// Books a frame that could not be decoded.
    pub fn record_malformed(&self, connection: u64, reason: String) {
        let mut state = self.lock();
        let entry = LedgerEntry {
            seq: state.journal.next_seq(),
            connection,
            action: Action::Malformed { reason },
            delivery: Delivery::None,
            ..empty_entry()
        };
        state.journal.push(entry);
    }

    /// A consistent copy of the journal and balances.
    pub fn ledger(&self) -> Ledger {
        let mut state = self.lock();
        state.journal.flush();
        let (entries, trimmed) = state.journal.snapshot();
        Ledger {
            entries,
            trimmed,
            balances: state
                .cards
                .values()
                .map(|c| {
                    (
                        c.masked.clone(),
                        Balance {
                            opening: c.opening,
                            current: c.balance,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn flush(&self) {
        self.lock().journal.flush();
    }

    fn decide(&self, state: &mut State, request: Request, entry: &mut LedgerEntry) -> Decision {
        match request {
            Request::Payment(payment) => self.payment(state, &payment, entry),
            Request::Completion(adjustment) => self.adjust(state, &adjustment, entry, complete),
            Request::Reversal(adjustment) => self.adjust(state, &adjustment, entry, reverse),
            Request::Network(code) => {
                entry.action = Action::Network;
                Decision::code(match code {
                    1 | 2 | 301 => ResponseCode::APPROVED,
                    _ => ResponseCode::INVALID_TRANSACTION,
                })
            }
        }
    }

    fn payment(&self, state: &mut State, p: &Payment, entry: &mut LedgerEntry) -> Decision {
        entry.action = Action::Declined;
        let previous = state.seen.insert((p.terminal, p.key.stan), p.key.time);
        if previous == Some(p.key.time) {
            return Decision::code(ResponseCode::DUPLICATE);
        }
        let now = Instant::now();
        state.remembered.push_back((now, p.terminal, p.key));
        if let Some(horizon) = now.checked_sub(self.remember) {
            state.forget_before(horizon);
        }
        if !p.pan.luhn_valid() {
            return Decision::code(ResponseCode::INVALID_CARD);
        }
        let card = self.key.fingerprint(p.pan.expose());
        let profile = cards::profile(p.pan.expose());
        state.cards.entry(card).or_insert_with(|| CardState {
            masked: p.pan.masked(),
            opening: profile.opening_balance,
            balance: profile.opening_balance,
            recent: VecDeque::new(),
        });
        let mut decision = Decision::code(ResponseCode::APPROVED);
        decision.cvc_result = p
            .cvc
            .as_ref()
            .map(|c| if c.expose() == TEST_CVC { b'M' } else { b'N' });
        let three_ds_valid = p.three_ds.as_ref().and_then(|t| {
            let cavv = t.cavv?;
            let valid = matches!(&t.eci, b"05" | b"06")
                && !state.used_cavvs.contains(&cavv)
                && self.key.verify(
                    card,
                    t.ds_trans_id.as_deref().unwrap_or_default(),
                    &t.eci,
                    cavv,
                );
            decision.cavv_result = Some(if valid { b'2' } else { b'1' });
            Some((valid, cavv))
        });
        let refund = p.kind == PaymentKind::Refund;
        let checks = Checks {
            profile: &profile,
            cvc_result: decision.cvc_result,
            three_ds: three_ds_valid,
        };
        let declined = static_decline(p, &checks)
            .or_else(|| {
                if refund {
                    None
                } else {
                    network_rule(state, p, card, three_ds_valid)
                }
            })
            .or_else(|| {
                if refund {
                    None
                } else {
                    verification_decline(p, &checks)
                }
            });
        if let Some(code) = declined {
            decision.code = code;
            return decision;
        }
        let Some(holder) = state.cards.get_mut(&card) else {
            return Decision::code(ResponseCode::SYSTEM_MALFUNCTION);
        };
        let amount = i64::try_from(p.amount).unwrap_or(i64::MAX);
        if refund {
            holder.balance += amount;
            entry.balance_delta = amount;
            entry.action = Action::Refunded;
        } else {
            let now = Instant::now();
            if let Some((limit, window)) = profile.velocity {
                while holder
                    .recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > window)
                {
                    holder.recent.pop_front();
                }
                if holder.recent.len() >= limit as usize {
                    decision.code = ResponseCode::EXCEEDS_FREQUENCY;
                    return decision;
                }
            }
            if holder.balance < amount {
                decision.code = ResponseCode::INSUFFICIENT_FUNDS;
                return decision;
            }
            // Only approvals count towards velocity.
            if profile.velocity.is_some() {
                holder.recent.push_back(now);
            }
            holder.balance -= amount;
            entry.balance_delta = -amount;
            entry.action = Action::Approved;
        }
        entry.balance_after(holder.balance);
        if let Some((true, cavv)) = three_ds_valid {
            state.used_cavvs.insert(cavv);
        }
        state.approvals += 1;
        decision.approval_code = Some(approval_code(state.approvals));
        if p.cof == Some(CofIndicator::FirstUse) {
            let id = format!("SIM{:012}", state.approvals).into_bytes();
            state.network_ids.insert(id.clone(), card);
            decision.network_id = Some(id);
        }
        state.bookings.insert(
            p.key,
            Booking {
                card,
                kind: p.kind,
                remaining: p.amount,
                completed: false,
            },
        );
        decision
    }

    fn adjust(
        &self,
        state: &mut State,
        a: &Adjustment,
        entry: &mut LedgerEntry,
        apply: Adjust,
    ) -> Decision {
        entry.original = Some((format!("{:04}", a.original.mti), a.original.stan));
        let card = a.pan.as_ref().map(|pan| self.key.fingerprint(pan.expose()));
        let Some(booking) = state.bookings.get_mut(&a.original) else {
            entry.action = Action::ReversalOfUnknown;
            // A completion needs its authorization; a reversal of the unknown is acknowledged.
            return Decision::code(if entry.mti == "0220" {
                entry.action = Action::Declined;
                ResponseCode::INVALID_TRANSACTION
            } else {
                ResponseCode::APPROVED
            });
        };
        if card.is_some_and(|card| card != booking.card) {
            entry.action = Action::Declined;
            return Decision::code(ResponseCode::INVALID_TRANSACTION);
        }
        match apply(booking, a) {
            Ok((delta, action)) => {
                entry.action = action;
                entry.balance_delta = delta;
                if let Some(holder) = state.cards.get_mut(&booking.card) {
                    // A reversal may come without DE 2; the ledger still names the card.
                    entry.card = Some(holder.masked.clone());
                    holder.balance += delta;
                    entry.balance_after(holder.balance);
                }
                Decision::code(ResponseCode::APPROVED)
            }
            Err(code) => {
                entry.action = Action::Declined;
                Decision::code(code)
            }
        }
    }
}

/// What a payment's verification produced, for the decline checks.
struct Checks<'a> {
    profile: &'a cards::CardProfile,
    cvc_result: Option<u8>,
    /// Whether a presented CAVV verified, and which it was.
    three_ds: Option<(bool, Cavv)>,
}

/// Declines that depend on the card and amount alone, in the README's order.
fn static_decline(p: &Payment, c: &Checks<'_>) -> Option<ResponseCode> {
    let (now_year, now_month) = current_year_month();
    if c.profile.standing == Standing::Stolen {
        return Some(ResponseCode::DO_NOT_HONOUR);
    }
    if c.profile.standing == Standing::Expired || p.expiry.is_expired_at(now_year, now_month) {
        return Some(ResponseCode::EXPIRED_CARD);
    }
    if p.amount == 0 {
        return Some(ResponseCode::INVALID_AMOUNT);
    }
    MAGIC_DECLINES
        .iter()
        .find(|(a, _)| *a == p.amount)
        .map(|(_, code)| *code)
}

/// CVC2 and 3-D Secure: a wrong CVC2, an invalid or replayed CAVV, or a card that always needs
/// 3-D Secure presented without it.
fn verification_decline(p: &Payment, c: &Checks<'_>) -> Option<ResponseCode> {
    if c.cvc_result == Some(b'N') {
        return Some(ResponseCode::CVC_MISMATCH);
    }
    match c.three_ds {
        Some((false, _)) => Some(ResponseCode::AUTHENTICATION_REQUIRED),
        None if c.profile.always_3ds && p.cof != Some(CofIndicator::MerchantInitiated) => {
            Some(ResponseCode::AUTHENTICATION_REQUIRED)
        }
        _ => None,
    }
}

/// A change that a reversal or completion makes to a booking: the balance delta and what to
/// record, or the decline code.
type Adjust = fn(&mut Booking, &Adjustment) -> Result<(i64, Action), ResponseCode>;

/// The network rules of `spec/iso8583.md` for stored credentials.
fn network_rule(
    state: &State,
    p: &Payment,
    card: CardFingerprint,
    three_ds: Option<(bool, Cavv)>,
) -> Option<ResponseCode> {
    match p.cof {
        Some(CofIndicator::MerchantInitiated) => {
            let linked = p
                .network_id
                .as_ref()
                .and_then(|id| state.network_ids.get(id));
            if p.cvc.is_some() || p.three_ds.is_some() || linked != Some(&card) {
                Some(ResponseCode::INVALID_TRANSACTION)
            } else {
                None
            }
        }
        Some(CofIndicator::FirstUse) => {
            // ECI 07 without a CAVV is how a merchant that disabled 3-D Secure for the order
            // says so; anything else must be a valid authentication.
            let merchant_opted_out = p
                .three_ds
                .as_ref()
                .is_some_and(|t| &t.eci == b"07" && t.cavv.is_none());
            let authenticated = matches!(three_ds, Some((true, _))) || merchant_opted_out;
            if p.cvc.is_none() || !authenticated {
                Some(ResponseCode::AUTHENTICATION_REQUIRED)
            } else {
                None
            }
        }
        Some(CofIndicator::CardholderInitiated) | None => None,
    }
}

fn reverse(booking: &mut Booking, a: &Adjustment) -> Result<(i64, Action), ResponseCode> {
    let target = a.replacement.unwrap_or(0);
    if booking.remaining <= target {
        return Ok((0, Action::ReversalRepeated));
    }
    let released = i64::try_from(booking.remaining - target).unwrap_or(i64::MAX);
    booking.remaining = target;
    // Reversing a refund takes the refunded money back.
    let delta = if booking.kind == PaymentKind::Refund {
        -released
    } else {
        released
    };
    Ok((delta, Action::Reversed))
}

fn complete(booking: &mut Booking, a: &Adjustment) -> Result<(i64, Action), ResponseCode> {
    if booking.kind != PaymentKind::Authorization {
        return Err(ResponseCode::INVALID_TRANSACTION);
    }
    if booking.completed {
        return if booking.remaining == a.amount {
            Ok((0, Action::CompletionRepeated))
        } else {
            Err(ResponseCode::INVALID_TRANSACTION)
        };
    }
    if booking.remaining == 0 {
        return Err(ResponseCode::INVALID_TRANSACTION);
    }
    if a.amount > booking.remaining {
        return Err(ResponseCode::INVALID_AMOUNT);
    }
    let released = i64::try_from(booking.remaining - a.amount).unwrap_or(i64::MAX);
    booking.remaining = a.amount;
    booking.completed = true;
    Ok((released, Action::Completed))
}

/// Six characters, unique per run: the approval counter in base 36.
fn approval_code(n: u64) -> [u8; 6] {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = [b'0'; 6];
    let mut rest = n;
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(rest % 36) as usize];
        rest /= 36;
    }
    out
}

fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn current_year_month() -> (u16, u8) {
    let now = time::OffsetDateTime::now_utc();
    (
        u16::try_from(now.year()).unwrap_or(u16::MAX),
        u8::from(now.month()),
    )
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn empty_entry() -> LedgerEntry {
    LedgerEntry {
        seq: 0,
        at_ms: unix_ms(),
        connection: 0,
        mti: String::new(),
        stan: None,
        rrn: None,
        card: None,
        card_present: false,
        amount: None,
        original: None,
        response_code: None,
        approval_code: None,
        network_id: None,
        action: Action::Declined,
        balance_delta: 0,
        balance_after: None,
        delivery: Delivery::None,
    }
}

fn blank_entry(msg: &Message, arrival: Arrival) -> LedgerEntry {
    LedgerEntry {
        connection: arrival.connection,
        delivery: arrival.delivery,
        mti: msg.mti().to_string(),
        stan: msg.stan().map(|s| s.value()),
        rrn: msg.rrn().map(|r| r.as_str().to_owned()),
        card: msg.field(2).map(card::mask_digits),
        card_present: msg.field(2).is_some(),
        amount: msg.amount().map(|a| a.0),
        ..empty_entry()
    }
}

impl LedgerEntry {
    fn balance_after(&mut self, balance: i64) {
        self.balance_after = Some(balance);
    }
}
