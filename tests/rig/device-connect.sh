#!/usr/bin/env bash
# device-connect.sh -- a remote-access device in one go: `mender-device.sh init
# --dbus`, `daemon`, wait until the daemon holds a token, `connect`, and wait
# until mender-connect has its websocket to the server.
#
# Run `device-connect.sh help` for the options. Needs what mender-device.sh
# needs, plus the Debian packages mender-connect and dbus.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname -- "$0")" && pwd)
RIG=$HERE/mender-device.sh

usage() {
  cat <<'EOF'
usage: device-connect.sh DIR --server URL [options] [-- init options...]

Starts a device whose mender-connect reaches the server (mender-connect has
no server settings of its own: it gets the device token and a local proxy URL
from the mender daemon over the rig's private D-Bus).

  1. `mender-device.sh init DIR --server URL --dbus [init options]`
     (skipped when DIR already is a rig; then --server may be left out)
  2. `mender-device.sh daemon DIR` (unless it already runs)
  3. waits until the daemon has a token: the device must be accepted or
     preauthorized on the server (the identity and key are printed while
     it waits: `mender-device.sh identity DIR`, `pubkey DIR`; every 5 s it
     makes the daemon try again with `mender-device.sh check-update`)
  4. `mender-device.sh connect DIR`, then waits for mender-connect's
     "Connection established" (it connects ~10 s after it starts)

  --server URL        server URL for init
  --cert PEM          trust this certificate (init --cert)
  --skip-verify       do not verify the server certificate (init --skip-verify)
  --poll SECONDS      the daemon's poll intervals (default 300: only
                      triggers and 401s make it talk to the server)
  --auth-wait SECS    how long to wait for the token (default 120)
  --connect-wait SECS how long to wait for mender-connect (default 60)
  -- ARGS...          further `mender-device.sh init` options (--key,
                      --tenant-token, --inv, ...)
  help                this text

Stop everything with `mender-device.sh stop DIR`. Logs: DIR/logs/.
Exit codes: 0 connected; 1 a step failed or timed out; 2 usage error.
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
fail() { echo "$PROG: $*" >&2; exit 1; }
note() { echo "$PROG: $*" >&2; }

[ $# -gt 0 ] || { usage >&2; exit 2; }
case $1 in help | -h | --help) usage; exit 0 ;; esac
dir=$1
shift
server='' poll=300 auth_wait=120 connect_wait=60
init=()
while [ $# -gt 0 ]; do
  case $1 in
    --server) server=${2:?--server needs a URL}; shift 2 ;;
    --cert) init+=(--cert "${2:?--cert needs a file}"); shift 2 ;;
    --skip-verify) init+=(--skip-verify); shift ;;
    --poll) poll=${2:?--poll needs seconds}; shift 2 ;;
    --auth-wait) auth_wait=${2:?--auth-wait needs seconds}; shift 2 ;;
    --connect-wait) connect_wait=${2:?--connect-wait needs seconds}; shift 2 ;;
    --) shift; init+=("$@"); break ;;
    *) die "unknown option $1 (see: $PROG help)" ;;
  esac
done
for n in "$poll" "$auth_wait" "$connect_wait"; do
  case $n in '' | *[!0-9]*) die "not a whole number of seconds: $n" ;; esac
done

if [ -f "$dir/rig.env" ]; then
  grep -qx 'RIG_DBUS=1' "$dir/rig.env" || die "$dir is a rig without --dbus; use a new DIR"
  note "$dir is already a rig; not initialising it again"
else
  [ -n "$server" ] || die "--server URL is required for a new rig"
  bash "$RIG" init "$dir" --server "$server" --dbus --poll "$poll" ${init[@]+"${init[@]}"} >/dev/null
fi

authorized() {
  bash "$RIG" wait-log "$dir" 'successfully received new authorization data' "$1" 2>/dev/null
}
if bash "$RIG" status "$dir" >/dev/null; then
  note "the daemon already runs for $dir"
else
  bash "$RIG" daemon "$dir"
fi
if ! authorized 2; then
  note "waiting up to ${auth_wait}s for the server to accept the device; identity and key:"
  bash "$RIG" identity "$dir" >&2
  bash "$RIG" pubkey "$dir" >&2 || true
  # The daemon retries only every --poll seconds; an update check makes it try at once.
  waited=0
  until authorized 5; do
    waited=$((waited + 5))
    [ "$waited" -lt "$auth_wait" ] \
      || fail "the daemon got no token (is the device accepted?); log: $dir/logs/daemon.log"
    MENDER_RIG_TIMEOUT=10 bash "$RIG" check-update "$dir" 2>/dev/null || true
  done
fi

log=$dir/logs/connect.log
before=$(grep -c 'Connection established' "$log" 2>/dev/null || true)
bash "$RIG" connect "$dir"
for _ in $(seq $((connect_wait * 10))); do
  now=$(grep -c 'Connection established' "$log" 2>/dev/null || true)
  if [ "${now:-0}" -gt "${before:-0}" ]; then
    note "mender-connect is connected (log $log)"
    exit 0
  fi
  sleep 0.1
done
tail -n 15 "$log" >&2 || true
fail "mender-connect did not connect within ${connect_wait}s (log $log)"
