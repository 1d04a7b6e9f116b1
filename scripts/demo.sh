#!/usr/bin/env bash
# The main job in one command: install what is needed, build, and run the pieces end to end on
# this machine with the dev defaults of ARCHITECTURE.md: the real simulator and vault processes,
# the authorizer's link, and a One Click walkthrough through them (data under var/demo/).
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
