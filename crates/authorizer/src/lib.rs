//! The authorizer: facade, order engine and the ISO 8583 link (ARCHITECTURE.md). So far the link
//! and the process around it (configuration, admin metrics endpoint).
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod link;
pub mod server;
