//! Fault injection: what the network does wrong on purpose, chosen per message (by MTI, amount
//! or card) or per connection (refused handshake).
//!
//! Owns the fault vocabulary, the magic-amount table and the choice of a fault for one message.
//! Every random choice is drawn from [`Dice`] seeded by [`Faults::seed`] and the message's own
//! identity (MTI, STAN, amount), so a run's faults can be replayed from its seed whatever order
//! the messages arrive in. It never decides an issuer outcome: a faulted authorization is still decided and booked by the
//! issuer rules first (a lost response to an approval is exactly what makes reversals
//! necessary), and only its delivery is disturbed.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Added latency before a response is written. Responses with different latencies overtake
/// each other on the same connection.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Latency {
    /// No added latency: the response is written as soon as it is decided.
    #[default]
    None,
    /// The same latency for every response.
    Fixed {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Uniformly distributed in `min_ms..=max_ms`.
    Uniform {
        /// Shortest wait in milliseconds.
        min_ms: u64,
        /// Longest wait in milliseconds.
        max_ms: u64,
    },
}

impl Latency {
    /// How long to hold this response, drawn from `dice` so that a replay waits the same.
    pub fn sample(self, dice: &mut Dice) -> Duration {
        match self {
            Latency::None => Duration::ZERO,
            Latency::Fixed { ms } => Duration::from_millis(ms),
            Latency::Uniform { min_ms, max_ms } => {
                let (lo, hi) = (min_ms.min(max_ms), min_ms.max(max_ms));
                Duration::from_millis(dice.0.gen_range(lo..=hi))
            }
        }
    }
}

/// What goes wrong with the delivery of one response.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The response is written after this latency instead of the configured one.
    Delay {
        /// The latency that replaces the configured one.
        latency: Latency,
    },
    /// The request is processed, the response is never written.
    NoResponse,
    /// The response is written after [`Faults::late_delay`], i.e. after the acquirer gave up.
    Late,
    /// Half a response frame is written, then the connection is closed.
    DropConnection,
    /// A frame whose body is not a valid ISO 8583 message is written instead of the response.
    Malformed,
}

/// Which messages a [`FaultRule`] applies to. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultMatch {
    /// MTI as a number, e.g. `400` for 0400.
    #[serde(default)]
    pub mti: Option<u16>,
    /// DE 4 in minor units.
    #[serde(default)]
    pub amount: Option<u64>,
    /// The full test card number (test cards only: this is configuration, not cardholder data).
    #[serde(default)]
    pub card: Option<String>,
}

/// A fault applied to matching messages with the given probability (1.0 = always).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Which messages the rule applies to; `when` in the config file, and matches all if empty.
    #[serde(default, rename = "when")]
    pub matches: FaultMatch,
    /// What goes wrong with a matching message's response.
    pub fault: Fault,
    /// The chance, 0.0 to 1.0, that a matching message gets the fault; 1.0 unless configured.
    #[serde(default = "always")]
    pub probability: f64,
}

fn always() -> f64 {
    1.0
}

/// The fault settings of a running simulator; replaceable at run time
/// (`SimulatorHandle::set_faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Latency added to every response that no rule delays otherwise.
    pub latency: Latency,
    /// Close every new connection before the TLS handshake completes.
    pub refuse_handshake: bool,
    /// How long a [`Fault::Late`] response waits: longer than the acquirer's time-out.
    #[serde(with = "millis", rename = "late_delay_ms")]
    pub late_delay: Duration,
    /// Whether the documented magic amounts (README) trigger their faults.
    pub magic_amounts: bool,
    /// Checked in order; the first rule that matches (and wins its probability draw) applies.
    pub rules: Vec<FaultRule>,
    /// Seeds every probability draw and latency sample (with the message's identity), so a
    /// failing run can be replayed. Random unless configured.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            latency: Latency::None,
            refuse_handshake: false,
            late_delay: Duration::from_secs(3),
            magic_amounts: true,
            rules: Vec::new(),
            seed: rand::random(),
        }
    }
}

// Magic amounts (minor units) of authorizations and purchases that trigger a delivery fault.
/// The amount whose response is never written ([`Fault::NoResponse`]).
pub const MAGIC_NO_RESPONSE: u64 = 9901;
/// The amount whose response comes after the acquirer's time-out ([`Fault::Late`]).
pub const MAGIC_LATE: u64 = 9902;
/// The amount whose response is cut in half by a closed connection ([`Fault::DropConnection`]).
pub const MAGIC_DROP_CONNECTION: u64 = 9903;
/// The amount whose response is replaced by an undecodable frame ([`Fault::Malformed`]).
pub const MAGIC_MALFORMED: u64 = 9904;
/// The amount whose response waits [`MAGIC_SLOW_LATENCY`], within the acquirer's time-out.
pub const MAGIC_SLOW: u64 = 9905;
/// The latency of [`MAGIC_SLOW`].
pub const MAGIC_SLOW_LATENCY: Duration = Duration::from_millis(200);

/// The facts of one request that faults can match on.
#[derive(Debug, Clone, Copy)]
pub struct FaultSubject<'a> {
    /// The request's MTI as a number, e.g. `100` for 0100.
    pub mti: u16,
    /// DE 11, when present: part of the message's identity for [`Dice`].
    pub stan: Option<u32>,
    /// DE 4 in minor units, when present.
    pub amount: Option<u64>,
    /// DE 2, when present, compared with a rule's test card number; never logged.
    pub pan: Option<&'a [u8]>,
}

/// The random source of one message's fault choice and latency: a function of the run's seed
/// and the message's identity only.
#[derive(Debug)]
pub struct Dice(StdRng);

impl Dice {
    fn draw(&mut self, probability: f64) -> bool {
        probability >= 1.0 || (probability > 0.0 && self.0.gen_bool(probability))
    }
}

impl Faults {
    /// The dice for one message (see [`Dice`]).
    pub fn dice(&self, subject: FaultSubject<'_>) -> Dice {
        let identity = [
            u64::from(subject.mti),
            subject.stan.map_or(u64::MAX, u64::from),
            subject.amount.unwrap_or(u64::MAX),
        ];
        let mixed = identity
            .iter()
            .fold(splitmix(self.seed), |acc, part| splitmix(acc ^ part));
        Dice(StdRng::seed_from_u64(mixed))
    }

    /// The fault for one message, if any. Configured rules come first, then magic amounts (only
    /// on 0100 and 0200, so that the reversal of a lost authorization is not lost as well).
    pub fn choose(&self, subject: FaultSubject<'_>, dice: &mut Dice) -> Option<Fault> {
        for rule in &self.rules {
            if rule.matches.matches(subject) && dice.draw(rule.probability) {
                return Some(rule.fault);
            }
        }
        if self.magic_amounts && matches!(subject.mti, 100 | 200) {
            let fault = match subject.amount? {
                MAGIC_NO_RESPONSE => Fault::NoResponse,
                MAGIC_LATE => Fault::Late,
                MAGIC_DROP_CONNECTION => Fault::DropConnection,
                MAGIC_MALFORMED => Fault::Malformed,
                MAGIC_SLOW => Fault::Delay {
                    latency: Latency::Fixed {
                        ms: duration_ms(MAGIC_SLOW_LATENCY),
                    },
                },
                _ => return None,
            };
            return Some(fault);
        }
        None
    }
}

impl FaultMatch {
    fn matches(&self, subject: FaultSubject<'_>) -> bool {
        self.mti.is_none_or(|mti| mti == subject.mti)
            && self
                .amount
                .is_none_or(|amount| Some(amount) == subject.amount)
            && self
                .card
                .as_deref()
                .is_none_or(|card| Some(card.as_bytes()) == subject.pan)
    }
}

/// SplitMix64's finalizer: spreads neighbouring STANs over unrelated seeds.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Durations in config files are whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::duration_ms(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(mti: u16, amount: u64) -> FaultSubject<'static> {
        FaultSubject {
            mti,
            stan: Some(1),
            amount: Some(amount),
            pan: Some(b"4111111111111111"),
        }
    }

    fn choose(faults: &Faults, subject: FaultSubject<'_>) -> Option<Fault> {
        faults.choose(subject, &mut faults.dice(subject))
    }

    #[test]
    fn magic_amounts_fault_authorizations_but_not_their_reversals() {
        let faults = Faults::default();
        assert_eq!(
            choose(&faults, subject(100, MAGIC_NO_RESPONSE)),
            Some(Fault::NoResponse)
        );
        assert_eq!(
            choose(&faults, subject(200, MAGIC_MALFORMED)),
            Some(Fault::Malformed)
        );
        assert_eq!(choose(&faults, subject(400, MAGIC_NO_RESPONSE)), None);
        assert_eq!(choose(&faults, subject(100, 1000)), None);
        let off = Faults {
            magic_amounts: false,
            ..Faults::default()
        };
        assert_eq!(choose(&off, subject(100, MAGIC_NO_RESPONSE)), None);
    }

    #[test]
    fn configured_rules_match_on_every_field_set_and_come_first() {
        let faults = Faults {
            rules: vec![FaultRule {
                matches: FaultMatch {
                    mti: Some(400),
                    card: Some("4111111111111111".into()),
                    ..FaultMatch::default()
                },
                fault: Fault::DropConnection,
                probability: 1.0,
            }],
            ..Faults::default()
        };
        assert_eq!(
            choose(&faults, subject(400, 5)),
            Some(Fault::DropConnection)
        );
        assert_eq!(choose(&faults, subject(100, 5)), None);
        let other_card = FaultSubject {
            pan: Some(b"5555555555554444"),
            ..subject(400, 5)
        };
        assert_eq!(choose(&faults, other_card), None);
    }

    #[test]
    fn zero_probability_never_fires_and_uniform_latency_stays_in_range() {
        let rule = FaultRule {
            matches: FaultMatch::default(),
            fault: Fault::Late,
            probability: 0.0,
        };
        let faults = Faults {
            rules: vec![rule],
            ..Faults::default()
        };
        assert!((0..100).all(|_| choose(&faults, subject(100, 1)).is_none()));
        let latency = Latency::Uniform {
            min_ms: 3,
            max_ms: 7,
        };
        let mut dice = faults.dice(subject(100, 1));
        assert!((0..100).all(|_| {
            let d = latency.sample(&mut dice);
            d >= Duration::from_millis(3) && d <= Duration::from_millis(7)
        }));
    }

    #[test]
    fn the_same_seed_gives_a_message_the_same_fault_whatever_came_before() {
        let coin = |seed| Faults {
            rules: vec![FaultRule {
                matches: FaultMatch::default(),
                fault: Fault::NoResponse,
                probability: 0.5,
            }],
            seed,
            ..Faults::default()
        };
        let stans = |faults: &Faults, order: &mut dyn Iterator<Item = u32>| {
            let mut hit: Vec<u32> = order
                .filter(|&stan| {
                    let s = FaultSubject {
                        stan: Some(stan),
                        ..subject(200, 100)
                    };
                    choose(faults, s).is_some()
                })
                .collect();
            hit.sort_unstable();
            hit
        };
        let forward = stans(&coin(7), &mut (1..=200));
        assert_eq!(forward, stans(&coin(7), &mut (1..=200).rev()));
        assert!((60..140).contains(&forward.len()), "{}", forward.len());
        assert_ne!(forward, stans(&coin(8), &mut (1..=200)));
    }

    #[test]
    fn faults_parse_from_toml() {
        let faults: Faults = toml::from_str(
            r#"
            late_delay_ms = 1500
            latency = { kind = "uniform", min_ms = 1, max_ms = 4 }
            [[rules]]
            when = { mti = 400 }
            fault = { kind = "no_response" }
            probability = 0.5
            "#,
        )
        .unwrap();
        assert_eq!(faults.late_delay, Duration::from_millis(1500));
        let seeded: Faults = toml::from_str("seed = 42").unwrap();
        assert_eq!(seeded.seed, 42);
        assert_eq!(faults.rules[0].fault, Fault::NoResponse);
        assert!(faults.magic_amounts);
    }
}
