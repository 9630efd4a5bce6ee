#!/usr/bin/env bash
# OTA figures over HTTP on this machine: fleetbox's memory while a 1 GB artifact is uploaded, and
# artifact download speed through a pre-signed link next to nginx serving the same file with
# sendfile. Installs nginx, curl and mender-artifact if missing (Debian). Prints a summary.
#   bench/ota.sh [SIZE_MB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-1024}
WORK=$(mktemp -d /tmp/fleetbox-ota-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers must read the served file
PORT=18680
NGINX_PORT=18681
cleanup() {
  [ -n "${FB_PID:-}" ] && kill "$FB_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need=()
for c in nginx curl mender-artifact; do command -v "$c" >/dev/null || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx curl mender-artifact >/dev/null
fi
cargo build --release --locked -q
BIN=target/release/fleetbox

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

echo "== making a ${SIZE_MB} MB artifact (uncompressed payload)"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/payload.bin"
mender-artifact write module-image -T single-file -n "bench-${SIZE_MB}" -t bench-device \
  -f "$WORK/payload.bin" -o "$WORK/big.mender" --compression none >/dev/null
rm -f "$WORK/payload.bin"
ART_BYTES=$(stat -c %s "$WORK/big.mender")

FLEETBOX_ADMIN_EMAIL=bench@example.com FLEETBOX_ADMIN_PASSWORD=bench-password-1 \
  "$BIN" --data-dir "$WORK/data" --log-level warn serve --listen none --http "127.0.0.1:$PORT" &
FB_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
sleep 1
IDLE_RSS=$(rss_kb "$FB_PID")
TOKEN=$(curl -sf -X POST -u bench@example.com:bench-password-1 "http://127.0.0.1:$PORT/api/management/v1/useradm/auth/login")

echo "== uploading ${ART_BYTES} bytes"
START=$(date +%s.%N)
LOCATION=$(curl -sf -D - -o /dev/null -H "Authorization: Bearer $TOKEN" \
  -F "artifact=@$WORK/big.mender" "http://127.0.0.1:$PORT/api/management/v1/deployments/artifacts" |
  awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
END=$(date +%s.%N)
PEAK_RSS=$(hwm_kb "$FB_PID")
ID=${LOCATION##*/}
UPLOAD_S=$(echo "$END - $START" | bc)

URI=$(curl -sf -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/api/management/v1/deployments/artifacts/$ID/download" |
  sed -E 's/.*"uri":"([^"]*)".*/\1/')
FB_SPEED=0
for _ in 1 2 3; do
  s=$(curl -s -o /dev/null -w '%{speed_download}' "$URI")
  FB_SPEED=$(echo "if ($s > $FB_SPEED) $s else $FB_SPEED" | bc)
done

mkdir -p "$WORK/www"
cp "$WORK/data/artifacts/$ID.mender" "$WORK/www/big.mender"
chmod -R a+rX "$WORK/www"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx.conf"
sleep 0.5
NG_SPEED=0
for _ in 1 2 3; do
  s=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$NGINX_PORT/big.mender")
  NG_SPEED=$(echo "if ($s > $NG_SPEED) $s else $NG_SPEED" | bc)
done

echo
echo "artifact size:                 $ART_BYTES bytes"
echo "fleetbox idle RSS:             $((IDLE_RSS / 1024)) MB"
echo "fleetbox peak RSS (upload):    $((PEAK_RSS / 1024)) MB"
echo "upload + validation time:      ${UPLOAD_S} s"
echo "download, fleetbox link:       $(echo "$FB_SPEED / 1048576" | bc) MB/s"
echo "download, nginx sendfile:      $(echo "$NG_SPEED / 1048576" | bc) MB/s"
