//! Criterion benches and the soak load test; the library part holds what they share: the
//! merchant's side of the API ([`merchant`]), an open-loop schedule ([`pace`]) and the soak's
//! parts ([`soak`]).

pub mod merchant;
pub mod pace;
pub mod soak;
