//! The authorizer process: the composition of the link, saved cards through the vault, the
//! merchant API (the `facade` crate), the order engine (`orders`, reaching the vault through
//! `secrets`) and the admin endpoint, with its configuration (ARCHITECTURE.md).
//!
//! Owns the wiring, nothing of the ISO 8583 client itself (that is the `link` crate). It must
//! never start serving before the configuration and the store are known good.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cabinet_settings;
pub mod cards;
pub mod config;
pub mod operator;
pub mod ready;
pub mod run;
pub mod saved_cards;
pub mod secrets;
pub mod vault_client;

pub use ready::Ready;
