#!/usr/bin/env bash
# Runs release binaries (scripts/release.sh builds them) through a smoke subset of the
# black-box tests, ARM ones under Debian's qemu-user-static on this x86 machine:
#
#   scripts/smoke-emulated.sh aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
#
# For each: the binary is static; it starts on a fresh data dir, makes its certificate and
# serves HTTPS; the real (x86) mender-client enrols against it and installs a deployment;
# server start-up, restarts, signals, configuration and database upgrades behave; the Mender
# device and deviceconnect basics pass, and a real Prometheus scrapes its metrics. It prints the
# server's RSS idle and after a 500-device simulated fleet (under qemu-user that is the
# emulator process's RSS, the emulator's own memory included: an upper bound of what the
# binary needs on the real board).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

# The tests that make up the smoke subset (libtest name filters).
SMOKE=(
    real_client_devauth::ed25519_and_ecdsa_keys_over_https_and_plain_http
    real_client_deployments::the_real_client_installs_reports_and_fails_as_expected
    server_lifecycle::
    metrics::
    devauth::
    deployments::
    deviceconnect::relays_sessions_both_ways_and_closes_them
)

log() { printf '==> %s\n' "$*"; }
rss_mb() { awk -v f="$2" '$1 == f":" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

[ $# -gt 0 ] || { sed -n '2,6p' "$0"; exit 2; }
cargo build --locked -q --bin fleetbox-sim
SIM=$TARGET_DIR/debug/fleetbox-sim

for t in "$@"; do
    bin=$TARGET_DIR/$t/release/fleetbox
    [ -x "$bin" ] || { echo "smoke: $bin missing: run scripts/release.sh first" >&2; exit 1; }
    case "$t" in
        aarch64-*) runner=qemu-aarch64-static ;;
        armv7-*|arm-*) runner=qemu-arm-static ;;
        x86_64-*) runner="" ;;
        *) echo "smoke: no emulator known for $t" >&2; exit 1 ;;
    esac
    if [ -n "$runner" ] && ! command -v "$runner" >/dev/null; then
        echo "smoke: $runner not found (apt-get install qemu-user-static)" >&2
        exit 1
    fi
    log "$t: $(file -b "$bin")"
    file -b "$bin" | grep -Eq "statically linked|static-pie linked" || { echo "smoke: not static" >&2; exit 1; }
    ${runner:+$runner} "$bin" --version

    log "$t: RSS"
    data=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    FLEETBOX_ADMIN_EMAIL=admin@example.com FLEETBOX_ADMIN_PASSWORD=correct-horse-battery \
        FLEETBOX_LOG_LEVEL=warn \
        ${runner:+$runner} "$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" --http none &
    pid=$!
    for _ in $(seq 300); do
        [ -f "$data/tls/cert.pem" ] && curl -fsS --cacert "$data/tls/cert.pem" \
            "https://localhost:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    sleep 2
    idle=$(rss_mb "$pid" VmRSS)
    "$SIM" --server "https://localhost:$port" --ca-cert "$data/tls/cert.pem" --devices 500 \
        --admin-user admin@example.com --admin-password correct-horse-battery --quiet \
        steady --duration 30s --poll-interval 5s --inventory-interval 10s >/dev/null
    after=$(rss_mb "$pid" VmRSS)
    peak=$(rss_mb "$pid" VmHWM)
    kill -TERM "$pid"
    wait "$pid" || { echo "smoke: the server did not exit cleanly" >&2; exit 1; }
    rm -rf "$data"
    echo "    RSS $t${runner:+ (under $runner)}: idle ${idle} MB; after 500 devices enrolled and polling for 30 s ${after} MB (peak ${peak} MB)"

    log "$t: black-box smoke tests"
    FLEETBOX_TEST_BINARY=$bin FLEETBOX_TEST_RUNNER=$runner FLEETBOX_REQUIRE_REAL_CLIENTS=1 \
        cargo test --locked --test real_clients --test server --test mender -- "${SMOKE[@]}"
done
