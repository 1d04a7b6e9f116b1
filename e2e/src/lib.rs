//! End-to-end tests that start the real processes and drive them as a merchant, a shopper and
//! the network would. The library part holds the One Click walkthrough ([`walkthrough`]) and what
//! it reports ([`summary`]); the processes themselves are started by `testkit::processes`. The
//! `walkthrough` binary runs the same walkthrough for the demo.

pub mod summary;
pub mod walkthrough;

pub use summary::{Outcome, StepName, Summary};
pub use walkthrough::{WalkthroughConfig, WalkthroughError, run};
