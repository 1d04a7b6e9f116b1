//! End-to-end tests that start the real processes; the library part holds the harness: the child
//! processes ([`processes`]), the One Click walkthrough ([`walkthrough`]) and what it reports
//! ([`summary`]). The `walkthrough` binary runs the same walkthrough for the demo.

pub mod processes;
pub mod summary;
pub mod walkthrough;

pub use summary::{Outcome, StepName, Summary};
pub use walkthrough::{WalkthroughConfig, WalkthroughError, run};
