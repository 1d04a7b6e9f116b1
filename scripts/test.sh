#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every crate's tests (unit, property, end-to-end
# against real SoftHSM2, real sockets and real processes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
