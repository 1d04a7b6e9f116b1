#!/usr/bin/env bash
# The main job in one command: install what is needed, build, and run the pieces end to end on
# this machine with the dev defaults of ARCHITECTURE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked -p iso8583

echo "== the reference first-use COF authorization (0100), decoded and masked =="
target/release/iso8583 decode < crates/iso8583/testdata/reference_0100.hex
