#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every crate's tests (unit, property, end-to-end
# against real SoftHSM2, real sockets and real processes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all --check
# Supply chain (deny.toml): banned crates, licenses, sources. Reaches crates.io only (for the
# packages' manifests on a fresh machine; --offline fails before they are downloaded). The
# advisory database is on GitHub, which CI cannot reach: README "Supply chain".
cargo deny --locked check bans licenses sources
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
