#!/usr/bin/env bash
# The fleetbox performance baseline, in one run, next to nginx on the same machine:
#   1. device poll (`next`, token check + database read, 10,000 devices known): req/s and p99
#      at 100 and at 1,000 connections (wrk), next to nginx answering the same empty 204, and
#      the ratio; the server runs with the default configuration (default log level);
#   2. artifact download through the pre-signed link (256 MB), next to nginx with sendfile;
#   3. memory: idle RSS, RSS with 10,000 simulated devices, peak RSS during a 1 GB upload;
#   4. cold start time and binary sizes (release; static musl unless SKIP_MUSL=1);
#   5. a steady fleet of 10,000 devices for STEADY_SECS (default 300) with zero errors.
# Installs what it needs (Debian: nginx, wrk, curl, bc, mender-artifact, musl-tools).
# Usage: bench/run.sh            (results on stdout and in bench/results/LAST.txt)
# Env:   DEVICES (10000) CONNECTIONS ("100 1000") POLL_SECS (30) STEADY_SECS (300) SKIP_MUSL (0)
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEVICES:-10000}
CONNECTIONS=${CONNECTIONS:-100 1000}
POLL_SECS=${POLL_SECS:-30}
STEADY_SECS=${STEADY_SECS:-300}
SKIP_MUSL=${SKIP_MUSL:-0}
PORT=18690
NGINX_PORT=18691
WORK=$(mktemp -d /tmp/fleetbox-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers read the served files
ADMIN=bench@example.com
PASSWORD=bench-password-1
URL=http://127.0.0.1:$PORT

cleanup() {
  if [ -n "${FB_PID:-}" ]; then kill "$FB_PID" 2>/dev/null || true; fi
  if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need=()
for c in nginx wrk curl bc mender-artifact; do command -v "$c" >/dev/null || need+=("$c"); done
if [ "$SKIP_MUSL" != 1 ] && ! command -v musl-gcc >/dev/null; then need+=(musl-tools); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== building (release)" >&2
cargo build --release --locked -q --bin fleetbox --bin fleetbox-sim
BIN=target/release/fleetbox
SIM=target/release/fleetbox-sim

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
mb() { echo "scale=1; $1 / 1024" | bc; }
now_ns() { date +%s%N; }

# start_server: fleetbox on $PORT with data in $WORK/data; sets FB_PID and START_MS (exec to
# first accepted TCP connection).
start_server() {
  local t0 t1
  t0=$(now_ns)
  FLEETBOX_ADMIN_EMAIL=$ADMIN FLEETBOX_ADMIN_PASSWORD=$PASSWORD \
    FLEETBOX_DOWNLOAD_LINK_TTL_SECS=3600 \
    "$BIN" --data-dir "$WORK/data" serve --listen none --http "127.0.0.1:$PORT" \
    2>>"$WORK/fleetbox.log" &
  FB_PID=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do :; done
  t1=$(now_ns)
  START_MS=$(echo "scale=1; ($t1 - $t0) / 1000000" | bc)
}
stop_server() {
  kill "$FB_PID"
  wait "$FB_PID" 2>/dev/null || true
  FB_PID=
}
login() {
  curl -sf -X POST -u "$ADMIN:$PASSWORD" "$URL/api/management/v1/useradm/auth/login"
}

# ---------------------------------------------------------------- 4. cold start, sizes
echo "== cold start" >&2
start_server # first start creates the database, keys and the admin
sleep 1
IDLE_RSS=$(rss_kb "$FB_PID")
stop_server
COLD=()
for _ in 1 2 3 4 5; do
  start_server
  COLD+=("$START_MS")
  stop_server
done
COLD_MS=$(printf '%s\n' "${COLD[@]}" | sort -n | sed -n 3p) # median of 5
SIZE_RELEASE=$(stat -c %s "$BIN")
SIZE_MUSL=skipped
if [ "$SKIP_MUSL" != 1 ]; then
  echo "== static musl build" >&2
  rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl >/dev/null
  cargo build --release --locked -q --bin fleetbox --target x86_64-unknown-linux-musl
  SIZE_MUSL=$(stat -c %s target/x86_64-unknown-linux-musl/release/fleetbox)
fi

# ---------------------------------------------------------------- fleet
start_server
sleep 1
echo "== enrolling $DEVICES simulated devices" >&2
"$SIM" --server "$URL" --admin-user "$ADMIN" --admin-password "$PASSWORD" --admit preauth \
  --devices "$DEVICES" --run-id bench --quiet --tokens-out "$WORK/tokens.txt" \
  max --endpoint next --concurrency 8 --duration 1s >/dev/null
FLEET_RSS=$(rss_kb "$FB_PID")

# ---------------------------------------------------------------- 5. steady fleet (+ RSS)
# Before the 1,000-connection runs, so its RSS is the fleet's own, not what the allocator kept
# from those connections. Its devices authenticate again, so it writes the tokens wrk uses.
echo "== steady fleet: $DEVICES devices, poll ${POLL_SECS}s, ${STEADY_SECS}s" >&2
"$SIM" --server "$URL" --admin-user "$ADMIN" --admin-password "$PASSWORD" --admit preauth \
  --devices "$DEVICES" --run-id bench --quiet --json --tokens-out "$WORK/tokens.txt" \
  steady --poll-interval "${POLL_SECS}s" --inventory-interval 300s --duration "${STEADY_SECS}s" \
  >"$WORK/steady.json" &
SIM_PID=$!
PEAK_FLEET_RSS=$FLEET_RSS
while kill -0 "$SIM_PID" 2>/dev/null; do
  r=$(rss_kb "$FB_PID")
  [ "$r" -gt "$PEAK_FLEET_RSS" ] && PEAK_FLEET_RSS=$r
  sleep 1
done
wait "$SIM_PID" || true
STEADY=$(python3 - "$WORK/steady.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["run"]
e = r["endpoints"]
lat = lambda k: e.get(k, {}).get("latency_ms", {})
print(f"{r['requests']} requests in {r['seconds']} s ({r['rate_per_sec']} req/s), "
      f"errors {r['errors']['total']} {json.dumps(r['errors']['by_kind'])}; "
      f"next p50 {lat('next').get('p50')} / p99 {lat('next').get('p99')} / max {lat('next').get('max')} ms; "
      f"inventory p99 {lat('inventory').get('p99')} ms")
PY
)

# ---------------------------------------------------------------- 1. poll
cat >"$WORK/next.lua" <<'LUA'
-- Each request is a device poll with the next device's token (mender-client's v2 `next`).
local tokens = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
end
function request()
  i = i % #tokens + 1
  return wrk.format("POST", "/api/devices/v2/deployments/device/deployments/next",
    {["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json"},
    '{"device_provides":{"device_type":"sim-device","artifact_name":"sim-initial"}}')
end
LUA
mkdir -p "$WORK/www"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    location /api/devices/v2/deployments/device/deployments/next { return 204; }
  }
}
CONF
nginx -c "$WORK/nginx.conf"
sleep 0.5
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# wrk_run CONNS URL -> "req/s p99_ms errors"
wrk_run() {
  local out
  out=$(wrk -t2 -c"$1" -d30s --timeout 10s --latency -s "$WORK/next.lua" "$2" -- "$WORK/tokens.txt")
  echo "$out" >>"$WORK/wrk.log"
  local rps p99 errs
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  echo "$rps|$p99|${errs:-none}"
}
# best_of A B -> whichever "req/s|..." line has more req/s
best_of() { if [ "$(echo "${1%%|*} >= ${2%%|*}" | bc)" = 1 ]; then echo "$1"; else echo "$2"; fi; }
POLL_REPORT=""
for conns in $CONNECTIONS; do
  echo "== poll: wrk, $conns connections, 30 s: fleetbox and nginx, alternately, best of 2" >&2
  wrk_run "$conns" "$URL" >/dev/null # warm-up (token cache, connections)
  FB_POLL=$(wrk_run "$conns" "$URL")
  NG_POLL=$(wrk_run "$conns" "http://127.0.0.1:$NGINX_PORT")
  FB_POLL=$(best_of "$FB_POLL" "$(wrk_run "$conns" "$URL")")
  NG_POLL=$(best_of "$NG_POLL" "$(wrk_run "$conns" "http://127.0.0.1:$NGINX_PORT")")
  IFS='|' read -r FB_RPS FB_P99 FB_ERR <<<"$FB_POLL"
  IFS='|' read -r NG_RPS NG_P99 NG_ERR <<<"$NG_POLL"
  POLL_REPORT+="   $conns connections: fleetbox $FB_RPS req/s, p99 $FB_P99, errors: $FB_ERR
   $conns connections: nginx    $NG_RPS req/s, p99 $NG_P99, errors: $NG_ERR
   $conns connections: ratio    $(echo "scale=2; $FB_RPS / $NG_RPS" | bc) (target >= 0.8, p99 <= 2x nginx's)
"
done

# ---------------------------------------------------------------- 2. download, 3. upload RSS
echo "== artifacts: 256 MB and 1 GB" >&2
TOKEN=$(login)
make_artifact() { # NAME SIZE_MB OUT
  head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$WORK/payload.bin"
  mender-artifact write module-image -T single-file -n "$1" -t sim-device \
    -f "$WORK/payload.bin" -o "$3" --compression none >/dev/null
  rm -f "$WORK/payload.bin"
}
upload() { # FILE -> artifact id
  curl -sf -D - -o /dev/null -H "Authorization: Bearer $TOKEN" -F "artifact=@$1" \
    "$URL/api/management/v1/deployments/artifacts" |
    awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r' | sed 's|.*/||'
}
make_artifact bench-1g 1024 "$WORK/big.mender"
# VmHWM is the peak since start and the runs above have set it; writing 5 to clear_refs
# resets it to the current RSS, so the mark after the upload is the upload's own peak.
echo 5 >"/proc/$FB_PID/clear_refs"
BEFORE_UPLOAD=$(rss_kb "$FB_PID")
upload "$WORK/big.mender" >/dev/null
HWM_AFTER=$(hwm_kb "$FB_PID")
rm -f "$WORK/big.mender"
make_artifact bench-256 256 "$WORK/a256.mender"
ID=$(upload "$WORK/a256.mender")
LINK=$(curl -sf -H "Authorization: Bearer $TOKEN" \
  "$URL/api/management/v1/deployments/artifacts/$ID/download" | sed -E 's/.*"uri":"([^"]*)".*/\1/')
cp "$WORK/a256.mender" "$WORK/www/a256.mender"
chmod -R a+rX "$WORK/www"
best_speed() { # URL -> best of 5, MB/s
  local best=0 s
  for _ in 1 2 3 4 5; do
    s=$(curl -s -o /dev/null -w '%{speed_download}' "$1")
    best=$(echo "if ($s > $best) $s else $best" | bc)
  done
  echo "scale=0; $best / 1048576" | bc
}
FB_DL=$(best_speed "$LINK")
NG_DL=$(best_speed "http://127.0.0.1:$NGINX_PORT/a256.mender")

# ---------------------------------------------------------------- report
mkdir -p bench/results
{
  echo "fleetbox benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MB RAM"
  echo "fleetbox $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nginx -v 2>&1), $(wrk -v 2>&1 | head -1)"
  echo
  echo "1. poll (next), $DEVICES devices, 30 s each (best of 2), default configuration"
  printf '%s' "$POLL_REPORT"
  echo "2. download, 256 MB artifact (best of 5, curl)"
  echo "   fleetbox link: $FB_DL MB/s; nginx sendfile: $NG_DL MB/s; ratio $(echo "scale=2; $FB_DL / $NG_DL" | bc)"
  echo "3. memory"
  echo "   idle RSS: $(mb "$IDLE_RSS") MB"
  echo "   RSS with $DEVICES devices enrolled: $(mb "$FLEET_RSS") MB; peak during the steady run: $(mb "$PEAK_FLEET_RSS") MB"
  echo "   1 GB upload: RSS before $(mb "$BEFORE_UPLOAD") MB, peak during it $(mb "$HWM_AFTER") MB (+$(mb $((HWM_AFTER - BEFORE_UPLOAD))) MB)"
  echo "4. cold start (exec to accepting connections, median of 5): $COLD_MS ms"
  echo "   binary: release $(mb "$((SIZE_RELEASE / 1024))") MB; static musl: $([ "$SIZE_MUSL" = skipped ] && echo skipped || echo "$(mb "$((SIZE_MUSL / 1024))") MB")"
  echo "5. steady fleet: $DEVICES devices, poll ${POLL_SECS}s, ${STEADY_SECS}s"
  echo "   $STEADY"
} | tee bench/results/LAST.txt
