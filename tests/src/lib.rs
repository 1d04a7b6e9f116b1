//! End-to-end tests that start the real processes; the library part holds the harness.
