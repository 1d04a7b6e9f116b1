//! What tests, end-to-end tests and benches share, so that each is written once: the real
//! processes and their readiness lines ([`processes`]), the in-process simulator and link
//! ([`network`]), the vault in a temp directory for the vault's own integration tests and the
//! config and command line every vault here runs with ([`vault`]), a plain ISO 8583 acquirer and
//! message builders ([`iso`]), the named test cards ([`cards`]), polling ([`eventually`]),
//! metrics scraping ([`metrics`]), plain HTTP clients ([`http`]), the merchant's notification
//! server and API calls ([`shop`]), a shopper without scripts on the payment pages over plain
//! HTTP ([`shopper`]) and
//! replayable fault seeds ([`faults`]), a headless Chromium for the pages ([`browser`]), and the whole system for an end-to-end test
//! ([`stack`]).
//!
//! Dev-only: production crates never depend on it (ARCHITECTURE.md). Its helpers panic on
//! set-up failures, which is what a test wants, except where the demo's `walkthrough` binary
//! uses them ([`processes`], [`network::link_config`]): those return errors. It must never sleep
//! to wait for something that can be awaited or polled, and never pass a PAN to a child process.

pub mod browser;
pub mod cards;
pub mod faults;
pub mod http;
pub mod iso;
pub mod metrics;
pub mod network;
pub mod processes;
pub mod shop;
pub mod shopper;
pub mod stack;
pub mod vault;
mod wait;

pub use wait::{GUARD, eventually, within};
