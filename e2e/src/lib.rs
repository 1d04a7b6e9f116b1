//! End-to-end tests that start the real processes and drive them as a merchant, a shopper and
//! the network would. The library part holds the One Click walkthrough ([`walkthrough`]) and what
//! it reports ([`summary`]), and the tour through the merchant API and the pages ([`tour`]); the
//! processes themselves are started by `testkit::processes`. The `walkthrough` and `tour`
//! binaries run them for the demo.

pub mod summary;
pub mod tour;
pub mod walkthrough;

pub use summary::{Outcome, StepName, Summary};
pub use walkthrough::{WalkthroughConfig, WalkthroughError, run};
