//! The authorizer: facade, order engine and the ISO 8583 link (ARCHITECTURE.md). So far the link,
//! saved cards through the vault, and the process around them (configuration, admin metrics
//! endpoint).
#![forbid(unsafe_code)]

pub mod admin;
pub mod cards;
pub mod config;
pub mod link;
pub mod server;
