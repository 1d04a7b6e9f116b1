#!/usr/bin/env bash
# Installs what building, testing and running need on a fresh Debian machine with Rust.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

# chromium and chromium-driver: the page tests drive a real headless browser (testkit::browser).
# gcc and make: jemalloc, the servers' allocator, is built from its C sources (tikv-jemalloc-sys).
apt_packages=(softhsm2 opensc chromium chromium-driver gcc make)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# pyiso8583 is the independent implementation the codec's interoperability test and bench use.
if ! python3 -c "import iso8583" 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check pyiso8583 >&2
fi

rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

# cargo-deny, pinned: the supply-chain checks of scripts/test.sh (deny.toml). Built from crates.io
# (a few minutes, once per machine).
cargo_deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $cargo_deny_version" ]; then
    echo "installing cargo-deny $cargo_deny_version" >&2
    cargo install --locked --quiet cargo-deny --version "$cargo_deny_version" >&2
fi
