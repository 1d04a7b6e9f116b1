//! The vault: the only process that stores card numbers, and the client library other processes
//! use to reach it.
//!
//! With the default `server` feature: card records on the `store` crate, envelope encryption under
//! HSM keys (`hsm` crate), One Click rules, the hash-chained audit log and the protocol server.
//! With only the `client` feature: the domain types, the protocol and [`client::VaultClient`],
//! without the HSM or the store. Nothing here may log or return a PAN except detokenize's answer
//! to the authorizer role.
#![forbid(unsafe_code)]

pub mod client;
pub mod model;
pub mod private;
pub mod protocol;
mod ready;
pub mod secret;
pub mod tls;
mod wipe;
mod wire;

#[cfg(feature = "server")]
pub mod admission;
#[cfg(feature = "server")]
pub mod audit;
#[cfg(feature = "server")]
mod bins;
#[cfg(feature = "server")]
pub mod checkpoint;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod fingerprint;
#[cfg(feature = "server")]
mod keyring;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod peer;
#[cfg(feature = "server")]
pub mod record;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod startup;

pub use client::{ClientError, ClientOptions, Credentials, VaultClient, VaultEndpoint};
pub use model::*;
pub use ready::Ready;
pub use secret::{SecretError, SecretSource};
pub use wire::DecodeError;
