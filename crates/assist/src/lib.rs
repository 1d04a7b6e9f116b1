//! The Assist merchant wire protocol of `spec/assist-api.md`: case-insensitive parameters
//! validated into typed requests, checkvalue and signatures, answers rendered in Formats 1, 3, 4
//! and 5.
//!
//! Pure: no I/O, no clock, no HTTP types. The facade hands in a service, the query or body it
//! received and gets a typed [`requests::Request`] or a [`codes::Fault`]; after the engine has
//! acted it builds an [`answer::Answer`] and asks [`render::render`] for the bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod codes;
#[doc(hidden)]
pub mod fuzzing;
pub mod integrity;
pub mod notification;
pub mod params;
pub mod render;
pub mod requests;
pub mod values;
