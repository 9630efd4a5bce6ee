#!/usr/bin/env bash
# The memory ceiling: fleetbox (the static x86_64 release binary, default configuration) in a
# memory cgroup capped at LIMIT_MB (64) with swap off, while fleetbox-sim (outside the cgroup)
# drives DEVICES (10,000) devices through enrolment, a steady poll of STEADY_SECS (300) and then
# a rollout to DEVICES more. Prints the server's peak RSS, the cgroup's peak charge (page cache
# included) and its OOM and limit-hit counts, and exits 1 if the server died or the fleet saw
# errors.
#
# Usage (root; cgroup v1 or v2): bench/memory-ceiling.sh
# Env: BIN (target/x86_64-unknown-linux-musl/release/fleetbox, from scripts/release.sh),
#      LIMIT_MB DEVICES STEADY_SECS POLL_SECS (60)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/x86_64-unknown-linux-musl/release/fleetbox}
LIMIT_MB=${LIMIT_MB:-64}
DEVICES=${DEVICES:-10000}
STEADY_SECS=${STEADY_SECS:-300}
POLL_SECS=${POLL_SECS:-60}
PORT=18692
URL=http://127.0.0.1:$PORT
ADMIN=ceiling@example.com
PASSWORD=ceiling-password-1
WORK=$(mktemp -d /tmp/fleetbox-ceiling.XXXXXX)

[ -x "$BIN" ] || { echo "no $BIN: run scripts/release.sh --targets x86_64-unknown-linux-musl --no-deb" >&2; exit 1; }
cargo build --release --locked -q --bin fleetbox-sim
SIM=target/release/fleetbox-sim

# ---------------------------------------------------------------- the cgroup
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CG=/sys/fs/cgroup/fleetbox-ceiling
    mkdir -p "$CG"
    echo "${LIMIT_MB}M" >"$CG/memory.max"
    echo 0 >"$CG/memory.swap.max" 2>/dev/null || true
    peak() { cat "$CG/memory.peak" 2>/dev/null || echo 0; }
    ooms() { awk '$1 == "oom_kill" {print $2}' "$CG/memory.events"; }
    hits() { awk '$1 == "max" {print $2}' "$CG/memory.events"; }
else
    CG=/sys/fs/cgroup/memory/fleetbox-ceiling
    mkdir -p "$CG"
    echo $((LIMIT_MB * 1024 * 1024)) >"$CG/memory.limit_in_bytes"
    # Swap off for the group: the limit then bounds RAM plus swap.
    echo $((LIMIT_MB * 1024 * 1024)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null || true
    echo 0 >"$CG/memory.max_usage_in_bytes"
    echo 0 >"$CG/memory.failcnt"
    peak() { cat "$CG/memory.max_usage_in_bytes"; }
    ooms() { awk '$1 == "oom_kill" {print $2}' "$CG/memory.oom_control"; }
    hits() { cat "$CG/memory.failcnt"; }
fi
FB_PID=""
cleanup() {
    if [ -n "$FB_PID" ]; then kill "$FB_PID" 2>/dev/null || true; fi
    sleep 1
    rmdir "$CG" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
OOM_BEFORE=$(ooms)

# ---------------------------------------------------------------- the server, in the cgroup
# `sh` joins the group and then becomes fleetbox, so only fleetbox is charged.
FLEETBOX_ADMIN_EMAIL=$ADMIN FLEETBOX_ADMIN_PASSWORD=$PASSWORD \
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$CG" \
    "$BIN" --data-dir "$WORK/data" serve --listen none --http "127.0.0.1:$PORT" \
    >"$WORK/server.log" 2>&1 &
FB_PID=$!
for _ in $(seq 100); do curl -fsS "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
hwm() { awk '$1 == "VmHWM:" {printf "%.1f", $2 / 1024}' "/proc/$FB_PID/status"; }
rss() { awk '$1 == "VmRSS:" {printf "%.1f", $2 / 1024}' "/proc/$FB_PID/status"; }
alive() { kill -0 "$FB_PID" 2>/dev/null || { echo "the server died:" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }; }
IDLE=$(rss)

sim() { "$SIM" --server "$URL" --admin-user "$ADMIN" --admin-password "$PASSWORD" --quiet --json "$@"; }
summary() {
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
run = r.get("run", r)
errs = run.get("errors", {}).get("total", "?")
print(f"errors {errs}; " + ", ".join(f"{k} {v}" for k, v in run.items()
      if k in ("requests", "seconds", "rate_per_sec", "outcomes", "devices")))
PY
}

echo "== steady: $DEVICES devices enrol, then poll every ${POLL_SECS}s for ${STEADY_SECS}s" >&2
sim --devices "$DEVICES" --run-id ceiling-steady steady --poll-interval "${POLL_SECS}s" \
    --inventory-interval 30m --duration "${STEADY_SECS}s" >"$WORK/steady.json"
alive
STEADY_HWM=$(hwm)
STEADY=$(summary "$WORK/steady.json")

echo "== rollout: $DEVICES more devices enrol and install an update" >&2
head -c 65536 /dev/urandom >"$WORK/payload"
mender-artifact write module-image -T single-file -n ceiling-update -t sim-device \
    -f "$WORK/payload" -o "$WORK/update.mender" >/dev/null
sim --devices "$DEVICES" --run-id ceiling-rollout rollout --artifact-file "$WORK/update.mender" \
    --poll-interval 5s >"$WORK/rollout.json"
alive
ROLLOUT=$(summary "$WORK/rollout.json")

OOMS=$(( $(ooms) - OOM_BEFORE ))
cat <<EOF
memory ceiling $(date -u +%F), $(nproc) cores, $BIN (default configuration), cgroup limit ${LIMIT_MB} MB, swap off
  RSS idle after start:                     $IDLE MB
  peak RSS after enrolment + steady run:    $STEADY_HWM MB   ($STEADY)
  peak RSS after the rollout:               $(hwm) MB   ($ROLLOUT)
  cgroup peak charge (page cache included): $(( $(peak) / 1024 / 1024 )) MB; limit reached $(hits) times (reclaim); OOM kills $OOMS
EOF
[ "$OOMS" = 0 ]
