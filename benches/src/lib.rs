//! Criterion benches and the soak load test; the library part holds what they share: the
//! merchant's side of the API ([`merchant`]) and the soak's parts ([`soak`]).

pub mod merchant;
pub mod soak;
