#!/usr/bin/env bash
# The main job in one command: install what is needed, build, and run the whole system on this
# machine with the dev defaults of ARCHITECTURE.md — the simulator (ISO 8583 on 8583, ACS on
# 8584), the vault (Unix socket under var/vault/) and the authorizer (merchant API on 8080,
# admin on 9090) — until Ctrl-C. Data stays under var/ between runs. The One Click walkthrough
# of the layers below the API is `bash scripts/walkthrough.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"

var=var
mkdir -p "$var/log" "$var/secrets" "$var/vault" "$var/simulator"
chmod 700 "$var/secrets" "$var/vault"

# Secrets made once, kept 0600 under var/: the HSM user PIN (the token needs the same one on
# every run) and the two vault clients' secrets.
secret() {
    [ -s "$1" ] || (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1")
}
secret "$var/vault/hsm-user.pin"
secret "$var/secrets/vault-facade.secret"
secret "$var/secrets/vault-authorizer.secret"
export SOFTHSM2_CONF="$PWD/$var/vault/softhsm2.conf"
export VAULT_SECRET_FACADE="$(cat "$var/secrets/vault-facade.secret")"
export VAULT_SECRET_AUTHORIZER="$(cat "$var/secrets/vault-authorizer.secret")"
export RUST_LOG="${RUST_LOG:-warn}"

pids=()
stop() {
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        echo
        echo "stopping authorizer, vault, simulator"
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
            kill -TERM "${pids[i]}" 2>/dev/null || true
            wait "${pids[i]}" 2>/dev/null || true
        done
    fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# start NAME PATTERN COMMAND...: runs COMMAND in the background (stdout to var/log/NAME.out,
# stderr to var/log/NAME.log) and waits until its stdout has a line matching PATTERN. Each child
# runs in a session of its own, so that Ctrl-C reaches only this script, which then stops them
# in order: the authorizer first, the vault and the simulator after it.
start() {
    local name=$1 pattern=$2
    shift 2
    : > "$var/log/$name.out"
    setsid "$@" > "$var/log/$name.out" 2> "$var/log/$name.log" &
    pids+=("$!")
    for _ in $(seq 300); do
        grep -q "$pattern" "$var/log/$name.out" && return 0
        kill -0 "$!" 2>/dev/null || { echo "$name stopped; see $var/log/$name.log" >&2; tail -5 "$var/log/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "$name did not get ready in 30 s; see $var/log/$name.log" >&2
    exit 1
}

start simulator '^READY' "$bin/simulator" serve --certs "$var/certs" --ledger "$var/simulator/ledger.jsonl"
VAULT_HSM_SO_PIN="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$bin/vault" --config config/vault.dev.toml init --dev > "$var/log/vault-init.out"
start vault '^vault listening' "$bin/vault" --config config/vault.dev.toml serve
start authorizer '^READY' "$bin/authorizer" --config config/authorizer.dev.toml

api=http://127.0.0.1:8080
code=$(curl -s -o /dev/null -w '%{http_code}' "$api/pay/oneclick/v1/token.cfm" || true)
[ "$code" = 405 ] || { echo "the merchant API does not answer on $api (HTTP $code)" >&2; exit 1; }

# A shop's checkout form, as a merchant's site would render it: order.cfm with the checkvalue
# over Merchant_ID;OrderNumber;OrderAmount;OrderCurrency;CustomerNumber and the dev salt
# (spec/assist-api.md).
md5() { printf %s "$1" | md5sum | cut -c1-32 | tr a-f A-F; }
order="demo-$(date +%s)"
checkvalue=$(md5 "$(md5 demosalt)$(md5 "452739;$order;10.00;RUB;1234")")
form="<form method=\"post\" action=\"$api/pay/order.cfm\">
  <input type=\"hidden\" name=\"Merchant_ID\" value=\"452739\">
  <input type=\"hidden\" name=\"OrderNumber\" value=\"$order\">
  <input type=\"hidden\" name=\"OrderAmount\" value=\"10.00\">
  <input type=\"hidden\" name=\"OrderCurrency\" value=\"RUB\">
  <input type=\"hidden\" name=\"OrderComment\" value=\"Demo order\">
  <input type=\"hidden\" name=\"CustomerNumber\" value=\"1234\">
  <input type=\"hidden\" name=\"Lastname\" value=\"Ivanov\">
  <input type=\"hidden\" name=\"Firstname\" value=\"Ivan\">
  <input type=\"hidden\" name=\"Email\" value=\"ivan@example.com\">
  <input type=\"hidden\" name=\"checkvalue\" value=\"$checkvalue\">
  <button>Pay 10.00 RUB</button>
</form>"
printf '<!doctype html><meta charset="utf-8"><title>Demo shop</title>\n%s\n' "$form" > "$var/demo-shop.html"

cat <<INFO

== running (dev defaults of ARCHITECTURE.md) ==
  merchant API    $api   (Assist services; dev merchants 452739 demo_login / 452740 demo_login2, password Demopass2026)
  payment pages   $api/pay/page/<billnumber>   (order.cfm sends the shopper there; test cards in README)
  cabinet         $api/cabinet/   (log in as demo_login / Demopass2026)
  3-D Secure ACS  http://127.0.0.1:8584/   (challenge code 1234)
  ledger          http://127.0.0.1:8584/ledger
  metrics         http://127.0.0.1:9090/metrics   health http://127.0.0.1:9090/health   ready http://127.0.0.1:9090/ready
  simulator       ISO 8583 127.0.0.1:8583 (mutual TLS)
  vault           $PWD/$var/vault/vault.sock
  data            $PWD/$var   (logs in $var/log/)

A shop's checkout (open file://$PWD/$var/demo-shop.html in a browser, or paste this form into a page;
each run makes a new OrderNumber):
$form

A saved card's list, as seed 001 asks for it:
  curl -s -X POST $api/pay/oneclick/v1/token.cfm \\
    -d '{"merchant":{"merchant_id":"452739", "login":"demo_login", "password":"Demopass2026"}, "customernumber":"1234", "language":"RU"}'

Ctrl-C stops everything.
INFO
wait -n "${pids[@]}" || true
echo "a process stopped by itself; see $var/log/" >&2
exit 1
