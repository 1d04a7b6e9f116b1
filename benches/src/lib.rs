//! Criterion benches and the soak load test; the library part holds what they share: the
//! merchant's side of the API ([`merchant`]), an open-loop schedule ([`pace`]), latency
//! percentiles ([`latency`]) and the soak's parts ([`soak`]).

pub mod latency;
pub mod merchant;
pub mod pace;
pub mod soak;
