//! What the soak asks of the system, and in what proportions: the kinds of operation and the
//! weighted mix of them (`--mix tokenpay=80,oneclick=5,…`).
//!
//! Owns the kind vocabulary and the choice of the kind of operation number `n`. The choice is a
//! pure function of `n` (a weighted round robin), so two runs with the same mix ask the same
//! things in the same order, whatever the timing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One kind of operation the soak drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A first payment on the payment page: a new card typed and remembered, 3-D Secure at the
    /// ACS, back to the shop; it starts a recurring agreement that MITs then use.
    First,
    /// One Click on the payment page: a saved card and its CVC.
    Oneclick,
    /// Token Pay (`tokenpay.cfm`), one-stage: the figure the README quotes.
    Tokenpay,
    /// An MIT (`rp.cfm`) on the agreement of an earlier first payment.
    Mit,
    /// Token Pay two-stage (Delayed), then `charge.cfm` in full.
    Twostage,
    /// Token Pay one-stage, then `cancel.cfm`: the reversal.
    Cancel,
    /// One Click's `token.cfm` list, and now and then `rem_token.cfm` of a card saved for it.
    Tokens,
    /// `orderstate.cfm` of an order paid earlier in the run.
    Orderstate,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Kind; 8] = [
        Kind::Tokenpay,
        Kind::Oneclick,
        Kind::First,
        Kind::Mit,
        Kind::Twostage,
        Kind::Cancel,
        Kind::Tokens,
        Kind::Orderstate,
    ];

    /// Its name in `--mix` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::First => "first",
            Kind::Oneclick => "oneclick",
            Kind::Tokenpay => "tokenpay",
            Kind::Mit => "mit",
            Kind::Twostage => "twostage",
            Kind::Cancel => "cancel",
            Kind::Tokens => "tokens",
            Kind::Orderstate => "orderstate",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Kind, MixError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| MixError::UnknownKind(s.to_owned()))
    }
}

/// Why a `--mix` was refused.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    /// A name that is no [`Kind`].
    #[error(
        "unknown kind {0:?} (known: first, oneclick, tokenpay, mit, twostage, cancel, tokens, orderstate)"
    )]
    UnknownKind(String),
    /// Not `kind=weight`.
    #[error("{0:?} is not kind=weight (a whole number)")]
    Syntax(String),
    /// Every weight is zero.
    #[error("the mix asks for nothing: every weight is 0")]
    Empty,
}

/// The weight of each kind; the share of kind `k` is its weight over the sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    /// Kinds with a weight above 0, in [`Kind::ALL`] order.
    pub weights: Vec<(Kind, u32)>,
    /// The order in which one round of `sum(weights)` operations takes its kinds, spread so that
    /// a kind of weight 5 in 100 comes every 20th operation, not five in a row.
    #[serde(skip)]
    round: Vec<Kind>,
}

impl Mix {
    /// The default mix of the issue: mostly Token Pay, a little of everything else.
    pub const DEFAULT: &'static str =
        "tokenpay=80,oneclick=5,first=2,mit=5,twostage=3,cancel=3,tokens=1,orderstate=1";

    /// From `kind=weight` pairs; kinds left out weigh 0.
    pub fn new(weights: impl IntoIterator<Item = (Kind, u32)>) -> Result<Mix, MixError> {
        let mut all: Vec<(Kind, u32)> = Kind::ALL.iter().map(|&k| (k, 0)).collect();
        for (kind, weight) in weights {
            if let Some(slot) = all.iter_mut().find(|(k, _)| *k == kind) {
                slot.1 = weight;
            }
        }
        all.retain(|&(_, w)| w > 0);
        if all.is_empty() {
            return Err(MixError::Empty);
        }
        let round = spread(&all);
        Ok(Mix {
            weights: all,
            round,
        })
    }

    /// The kind of operation number `n`.
    pub fn kind(&self, n: u64) -> Kind {
        self.round[(n % self.round.len() as u64) as usize]
    }

    /// Whether the mix asks for `kind` at all.
    pub fn has(&self, kind: Kind) -> bool {
        self.weights.iter().any(|&(k, _)| k == kind)
    }

    /// The same weights with `kind` left out (when what it needs is not there), or `None` when
    /// nothing would be left.
    pub fn without(&self, kind: Kind) -> Option<Mix> {
        Mix::new(self.weights.iter().copied().filter(|&(k, _)| k != kind)).ok()
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(k, w)| format!("{k}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Mix, MixError> {
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| MixError::Syntax(part.to_owned()))?;
            let weight = weight
                .trim()
                .parse()
                .map_err(|_| MixError::Syntax(part.to_owned()))?;
            weights.push((name.trim().parse()?, weight));
        }
        Mix::new(weights)
    }
}

/// One round: each kind placed at its evenly spaced positions (a smooth weighted round robin:
/// each step every kind gains its weight and the richest is taken and pays the total).
fn spread(weights: &[(Kind, u32)]) -> Vec<Kind> {
    let total: i64 = weights.iter().map(|&(_, w)| i64::from(w)).sum();
    let mut credit = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, &(_, w)) in credit.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let (i, _) = credit
                .iter()
                .enumerate()
                .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
                .expect("weights are not empty");
            credit[i] -= total;
            weights[i].0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_mix_takes_each_kind_in_its_share_spread_out() {
        let mix: Mix = Mix::DEFAULT.parse().unwrap();
        assert_eq!(
            mix.to_string(),
            "tokenpay=80,oneclick=5,first=2,mit=5,twostage=3,cancel=3,tokens=1,orderstate=1"
        );
        let kinds: Vec<Kind> = (0..100).map(|n| mix.kind(n)).collect();
        for &(kind, weight) in &mix.weights {
            assert_eq!(
                kinds.iter().filter(|&&k| k == kind).count(),
                weight as usize,
                "{kind}"
            );
        }
        let runs = kinds
            .windows(2)
            .filter(|w| w[0] == w[1] && w[0] != Kind::Tokenpay)
            .count();
        assert_eq!(runs, 0, "no kind but Token Pay twice in a row: {kinds:?}");
        assert_eq!(mix.kind(7), mix.kind(107));
    }

    #[test]
    fn bad_mixes_say_why() {
        assert!(matches!(
            "tokenpay=1,bogus=2".parse::<Mix>(),
            Err(MixError::UnknownKind(_))
        ));
        assert!(matches!(
            "tokenpay".parse::<Mix>(),
            Err(MixError::Syntax(_))
        ));
        assert!(matches!("tokenpay=0".parse::<Mix>(), Err(MixError::Empty)));
        let only: Mix = "tokenpay=1".parse().unwrap();
        assert!(only.has(Kind::Tokenpay) && !only.has(Kind::Mit));
        assert!(only.without(Kind::Tokenpay).is_none());
    }
}
