#!/usr/bin/env bash
# The tour through the real merchant API and payment pages: the real simulator, vault and
# authorizer processes (a temp directory, removed at the end), the dev merchant 452739 notifying
# the tour's shop server, and a shopper without scripts: first payment with 3-D Secure that saves
# a card, One Click, Token Pay, recurring MIT, two-stage and charge, partial cancel, refund after
# the cut-off, token list and removal, notifications, reconciliation with the simulator's ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"
RUST_LOG="${RUST_LOG:-error}" "$bin/tour"
