//! The link's operational counters and their Prometheus text form.
//!
//! Owns only numbers: every counter is an atomic so the hot path never waits on metrics. It must
//! never hold or render card data; the only labels are MTIs, response codes, slot numbers and
//! endpoint addresses.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use iso8583::{Mti, ResponseCode};

/// Request MTIs the link sends, in the order they are rendered.
const SENT_MTIS: [Mti; 7] = [
    Mti::AUTH_REQUEST,
    Mti::FINANCIAL_REQUEST,
    Mti::COMPLETION_ADVICE,
    Mti::REVERSAL_REQUEST,
    Mti::REVERSAL_ADVICE,
    Mti::REVERSAL_ADVICE_REPEAT,
    Mti::NETWORK_REQUEST,
];

/// Response codes of the spec; anything else is counted as "other".
const CODES: [ResponseCode; 16] = [
    ResponseCode::APPROVED,
    ResponseCode::DO_NOT_HONOUR,
    ResponseCode::INVALID_TRANSACTION,
    ResponseCode::INVALID_AMOUNT,
    ResponseCode::INVALID_CARD,
    ResponseCode::FORMAT_ERROR,
    ResponseCode::INSUFFICIENT_FUNDS,
    ResponseCode::EXPIRED_CARD,
    ResponseCode::NOT_PERMITTED,
    ResponseCode::EXCEEDS_AMOUNT_LIMIT,
    ResponseCode::EXCEEDS_FREQUENCY,
    ResponseCode::AUTHENTICATION_REQUIRED,
    ResponseCode::CVC_MISMATCH,
    ResponseCode::ISSUER_UNAVAILABLE,
    ResponseCode::DUPLICATE,
    ResponseCode::SYSTEM_MALFUNCTION,
];

/// Upper bounds of the latency buckets, in microseconds (0.25 ms .. 10 s).
const BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 10_000_000,
];

/// Connection states as a gauge value: what an operator's alert compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnectionState {
    /// No connection; the supervisor is waiting out its backoff.
    Down = 0,
    /// TCP connect and TLS handshake under way.
    Connecting = 1,
    /// Connected; the 0800/001 sign-on is not answered yet, so no traffic.
    SigningOn = 2,
    /// Signed on and open to traffic.
    Up = 3,
}

impl ConnectionState {
    fn from_u8(v: u8) -> ConnectionState {
        match v {
            1 => ConnectionState::Connecting,
            2 => ConnectionState::SigningOn,
            3 => ConnectionState::Up,
            _ => ConnectionState::Down,
        }
    }
}

/// Per-slot connection gauges.
#[derive(Debug)]
pub struct SlotMetrics {
    /// The slot's [`ConnectionState`] as its `u8`: `link_connection_state{slot,endpoint}`.
    pub state: AtomicU8,
    /// Index into the configured endpoints of the current (or last tried) endpoint.
    pub endpoint: AtomicU64,
    /// Connections this slot signed on: `link_connects_total`.
    pub connects: AtomicU64,
    /// Connections this slot lost or closed: `link_disconnects_total`.
    pub disconnects: AtomicU64,
}

/// Every counter of the link, shared by its tasks and rendered for `GET /metrics`.
#[derive(Debug)]
pub struct LinkMetrics {
    endpoints: Vec<String>,
    /// One entry per pool slot, by slot index.
    pub slots: Vec<SlotMetrics>,
    /// Requests written and not yet answered: `link_in_flight`.
    pub in_flight: AtomicI64,
    sent: [AtomicU64; SENT_MTIS.len()],
    responses: [AtomicU64; CODES.len() + 1],
    /// Requests that got no answer in time (each then reversed): `link_timeouts_total`.
    pub timeouts: AtomicU64,
    /// Requests whose connection dropped before the answer: `link_connection_lost_total`.
    pub connection_lost: AtomicU64,
    /// Reversals the network answered `00` (0410/0430): `link_reversals_acknowledged_total`.
    pub reversals_acknowledged: AtomicU64,
    /// Reversals in store-and-forward not yet acknowledged: `link_reversals_pending`.
    pub reversals_pending: AtomicI64,
    /// Reversal sends put off because the card could not be looked up: `link_reversals_held_total`.
    pub reversals_held: AtomicU64,
    /// Answers to requests already given up (logged, ignored): `link_late_responses_total`.
    pub late_responses: AtomicU64,
    /// Frames from the network that did not decode: `link_malformed_responses_total`.
    pub malformed_responses: AtomicU64,
    latency: [AtomicU64; BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
}

impl LinkMetrics {
    /// All zero, every slot down; `endpoints` are the addresses the state gauge is labelled with.
    pub fn new(endpoints: Vec<String>, slots: usize) -> LinkMetrics {
        LinkMetrics {
            endpoints,
            slots: (0..slots)
                .map(|_| SlotMetrics {
                    state: AtomicU8::new(ConnectionState::Down as u8),
                    endpoint: AtomicU64::new(0),
                    connects: AtomicU64::new(0),
                    disconnects: AtomicU64::new(0),
                })
                .collect(),
            in_flight: AtomicI64::new(0),
            sent: Default::default(),
            responses: Default::default(),
            timeouts: AtomicU64::new(0),
            connection_lost: AtomicU64::new(0),
            reversals_acknowledged: AtomicU64::new(0),
            reversals_pending: AtomicI64::new(0),
            reversals_held: AtomicU64::new(0),
            late_responses: AtomicU64::new(0),
            malformed_responses: AtomicU64::new(0),
            latency: Default::default(),
            latency_sum_us: AtomicU64::new(0),
        }
    }

    /// Counts a request written under `mti`; an MTI the link never sends is not counted.
    pub fn record_sent(&self, mti: Mti) {
        if let Some(i) = SENT_MTIS.iter().position(|m| *m == mti) {
            self.sent[i].fetch_add(1, Relaxed);
        }
    }

    /// Requests sent under `mti` so far.
    pub fn sent(&self, mti: Mti) -> u64 {
        SENT_MTIS
            .iter()
            .position(|m| *m == mti)
            .map_or(0, |i| self.sent[i].load(Relaxed))
    }

    /// Counts a matched answer by its DE 39 (outside the spec's codes, or absent, as `other`) and
    /// its round trip in the latency histogram.
    pub fn record_response(&self, code: Option<ResponseCode>, latency: Duration) {
        let i = code
            .and_then(|c| CODES.iter().position(|k| *k == c))
            .unwrap_or(CODES.len());
        self.responses[i].fetch_add(1, Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(BUCKETS_US.len());
        self.latency[b].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
    }

    /// Matched answers with `code` so far; 0 for a code outside the spec.
    pub fn responses(&self, code: ResponseCode) -> u64 {
        CODES
            .iter()
            .position(|k| *k == code)
            .map_or(0, |i| self.responses[i].load(Relaxed))
    }

    /// Records `slot`'s connection state; an unknown slot is ignored.
    pub fn set_state(&self, slot: usize, state: ConnectionState) {
        if let Some(s) = self.slots.get(slot) {
            s.state.store(state as u8, Relaxed);
        }
    }

    /// `slot`'s connection state; [`ConnectionState::Down`] for an unknown slot.
    pub fn state(&self, slot: usize) -> ConnectionState {
        self.slots.get(slot).map_or(ConnectionState::Down, |s| {
            ConnectionState::from_u8(s.state.load(Relaxed))
        })
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let _ = self.render_into(&mut o);
        o
    }

    fn render_into(&self, o: &mut String) -> std::fmt::Result {
        writeln!(
            o,
            "# HELP link_in_flight Requests written to the network and not yet answered."
        )?;
        writeln!(o, "# TYPE link_in_flight gauge")?;
        writeln!(o, "link_in_flight {}", self.in_flight.load(Relaxed))?;
        writeln!(o, "# HELP link_requests_sent_total Requests sent, by MTI.")?;
        writeln!(o, "# TYPE link_requests_sent_total counter")?;
        for (m, c) in SENT_MTIS.iter().zip(&self.sent) {
            writeln!(
                o,
                "link_requests_sent_total{{mti=\"{m}\"}} {}",
                c.load(Relaxed)
            )?;
        }
        writeln!(
            o,
            "# HELP link_responses_total Responses matched to a request, by DE 39."
        )?;
        writeln!(o, "# TYPE link_responses_total counter")?;
        for (code, c) in CODES.iter().zip(&self.responses) {
            writeln!(
                o,
                "link_responses_total{{code=\"{code}\"}} {}",
                c.load(Relaxed)
            )?;
        }
        writeln!(
            o,
            "link_responses_total{{code=\"other\"}} {}",
            self.responses[CODES.len()].load(Relaxed)
        )?;
        for (name, help, v) in [
            (
                "link_timeouts_total",
                "Requests that got no answer in time.",
                self.timeouts.load(Relaxed),
            ),
            (
                "link_connection_lost_total",
                "Requests whose connection dropped before the answer.",
                self.connection_lost.load(Relaxed),
            ),
            (
                "link_reversals_acknowledged_total",
                "Reversals the network acknowledged (0410/0430).",
                self.reversals_acknowledged.load(Relaxed),
            ),
            (
                "link_reversals_held_total",
                "Reversal sends put off because the card store could not look up their card.",
                self.reversals_held.load(Relaxed),
            ),
            (
                "link_late_responses_total",
                "Responses that arrived after their request was given up (logged, ignored).",
                self.late_responses.load(Relaxed),
            ),
            (
                "link_malformed_responses_total",
                "Frames from the network that did not decode.",
                self.malformed_responses.load(Relaxed),
            ),
        ] {
            writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}")?;
        }
        writeln!(
            o,
            "# HELP link_reversals_pending Reversals in store-and-forward, not yet acknowledged."
        )?;
        writeln!(o, "# TYPE link_reversals_pending gauge")?;
        writeln!(
            o,
            "link_reversals_pending {}",
            self.reversals_pending.load(Relaxed)
        )?;
        writeln!(
            o,
            "# HELP link_connection_state 0 down, 1 connecting, 2 signing on, 3 up."
        )?;
        writeln!(o, "# TYPE link_connection_state gauge")?;
        for (i, s) in self.slots.iter().enumerate() {
            let ep = usize::try_from(s.endpoint.load(Relaxed))
                .ok()
                .and_then(|e| self.endpoints.get(e));
            let ep = ep.map_or("", String::as_str);
            writeln!(
                o,
                "link_connection_state{{slot=\"{i}\",endpoint=\"{ep}\"}} {}",
                s.state.load(Relaxed)
            )?;
        }
        writeln!(o, "# TYPE link_connects_total counter")?;
        for (i, s) in self.slots.iter().enumerate() {
            writeln!(
                o,
                "link_connects_total{{slot=\"{i}\"}} {}",
                s.connects.load(Relaxed)
            )?;
        }
        writeln!(o, "# TYPE link_disconnects_total counter")?;
        for (i, s) in self.slots.iter().enumerate() {
            writeln!(
                o,
                "link_disconnects_total{{slot=\"{i}\"}} {}",
                s.disconnects.load(Relaxed)
            )?;
        }
        writeln!(
            o,
            "# HELP link_latency_seconds Request to matched response."
        )?;
        writeln!(o, "# TYPE link_latency_seconds histogram")?;
        let mut cumulative = 0;
        for (le, c) in BUCKETS_US.iter().zip(&self.latency) {
            cumulative += c.load(Relaxed);
            writeln!(
                o,
                "link_latency_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *le as f64 / 1e6
            )?;
        }
        cumulative += self.latency[BUCKETS_US.len()].load(Relaxed);
        writeln!(o, "link_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}")?;
        writeln!(
            o,
            "link_latency_seconds_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        )?;
        writeln!(o, "link_latency_seconds_count {cumulative}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = LinkMetrics::new(vec!["127.0.0.1:8583".into()], 1);
        m.record_sent(Mti::AUTH_REQUEST);
        m.record_response(Some(ResponseCode::APPROVED), Duration::from_micros(300));
        m.record_response(
            Some(ResponseCode::INSUFFICIENT_FUNDS),
            Duration::from_millis(3),
        );
        m.record_response(ResponseCode::from_ascii(b"ZZ"), Duration::from_secs(60));
        m.set_state(0, ConnectionState::Up);
        let text = m.render();
        assert!(
            text.contains("link_requests_sent_total{mti=\"0100\"} 1"),
            "{text}"
        );
        assert!(text.contains("link_responses_total{code=\"51\"} 1"));
        assert!(text.contains("link_responses_total{code=\"other\"} 1"));
        assert!(text.contains("link_latency_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("link_latency_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("link_latency_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("link_connection_state{slot=\"0\",endpoint=\"127.0.0.1:8583\"} 3"));
        assert_eq!(m.responses(ResponseCode::APPROVED), 1);
    }
}
