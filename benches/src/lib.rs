//! Criterion benches and the soak load test; the library part holds what they share.
