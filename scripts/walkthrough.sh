#!/usr/bin/env bash
# The One Click walkthrough of the pieces below the merchant API: the real simulator and vault
# processes, the authorizer's link in process, a saved card through first use, One Click,
# recurring MIT and declines, reconciled against the simulator's ledger (data under var/demo/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"

echo "== the reference first-use COF authorization (0100), decoded and masked =="
"$bin/iso8583" decode < crates/iso8583/testdata/reference_0100.hex

echo
echo "== One Click: save a card, 3-D Secure, first use, listing, One Click, recurring MIT, declines =="
echo "   (simulator and vault as real processes, the link over mutual TLS; data in var/demo/)"
RUST_LOG="${RUST_LOG:-error}" "$bin/walkthrough"
