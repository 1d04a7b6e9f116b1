//! The authorizer process: the composition of the link, saved cards through the vault, and the
//! admin endpoint, with its configuration (ARCHITECTURE.md); `secrets` is the order engine's
//! way to the vault. The engine's wiring and the facade join it in later rounds.
//!
//! Owns the wiring, nothing of the ISO 8583 client itself (that is the `link` crate). It must
//! never start serving before the configuration and the store are known good.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cards;
pub mod config;
pub mod ready;
pub mod run;
pub mod secrets;
mod vault_conn;

pub use ready::Ready;
