#!/usr/bin/env bash
# Identity over HTTP with 10,000 users and 10,000 API keys, default configuration:
#   - an API-key-authenticated request (`GET /v3/api-keys/me`): one key, and keys rotating
#     over all 10,000 (each new key is checked in full once, then answered from memory);
#   - `GET /v3/users` pages of 50 (first page, a page after the 5,000th user, with the count).
# wrk runs on the same machine as the server (they share its cores).
# Installs what it needs (Debian: wrk, curl). Usage: bench/identity.sh   Env: CONNECTIONS (64)
# SECS (15)
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-64}
SECS=${SECS:-15}
PORT=18692
WORK=$(mktemp -d /tmp/fleetbox-identity.XXXXXX)
ADMIN=bench@example.com
PASSWORD=bench-password-1
URL=http://127.0.0.1:$PORT

cleanup() {
  if [ -n "${FB_PID:-}" ]; then kill "$FB_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need=()
for c in wrk curl python3; do command -v "$c" >/dev/null || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== building (release)" >&2
cargo build --release --locked -q --bin fleetbox
BIN=target/release/fleetbox

start_server() {
  FLEETBOX_ADMIN_EMAIL=$ADMIN FLEETBOX_ADMIN_PASSWORD=$PASSWORD \
    "$BIN" --data-dir "$WORK/data" serve --listen none --http "127.0.0.1:$PORT" \
    2>>"$WORK/fleetbox.log" &
  FB_PID=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done
}
stop_server() {
  kill "$FB_PID"
  wait "$FB_PID" 2>/dev/null || true
  FB_PID=
}

echo "== 10,000 users (written straight into the database: 10,000 argon2 hashes would take minutes)" >&2
start_server
stop_server
python3 - "$WORK/data/fleetbox.db" <<'PY'
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1])
tenant = db.execute("SELECT tenant_id FROM users LIMIT 1").fetchone()[0]
db.executemany(
    "INSERT INTO users (id, tenant_id, email, full_name, created_ts, updated_ts) VALUES (?, ?, ?, ?, ?, ?)",
    [(str(uuid.uuid4()), tenant, "user%05d@example.com" % i, "User %d" % i, 1700000000000 + i, 1700000000000 + i)
     for i in range(9999)])
db.commit()
PY
start_server
KEY=$("$BIN" --data-dir "$WORK/data" api-key add --email "$ADMIN" --name bench)

echo "== 10,000 API keys (POST /v3/api-keys)" >&2
python3 - "$URL" "$KEY" "$WORK/keys.txt" <<'PY'
import http.client, json, sys, urllib.parse
url, key, out = sys.argv[1:]
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port)
keys = []
for i in range(9999):
    c.request("POST", "/v3/api-keys", json.dumps({"name": "key %d" % i}),
              {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 201, body
    keys.append(body["key"])
open(out, "w").write("\n".join(keys) + "\n")
PY
MIDDLE=$(python3 - "$URL" "$KEY" <<'PY'
import http.client, json, sys, urllib.parse
url, key = sys.argv[1:]
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port)
after = ""
for _ in range(5):  # five pages of 1,000: the 5,000th user
    c.request("GET", "/v3/users?limit=1000" + after, headers={"Authorization": "Bearer " + key})
    page = json.loads(c.getresponse().read())
    after = "&after=" + page["data"][-1]["id"]
print(page["data"][-1]["id"])
PY
)

cat >"$WORK/rotate.lua" <<LUA
local keys = {}
for line in io.lines("$WORK/keys.txt") do keys[#keys + 1] = line end
local i = 0
request = function()
  i = i % #keys + 1
  return wrk.format("GET", "/v3/api-keys/me", { ["Authorization"] = "Bearer " .. keys[i] })
end
LUA

run() { # label, wrk args...
  local label=$1
  shift
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" --latency "$@")
  printf '%-58s %10s req/s   p99 %s\n' "$label" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
  if grep -q "Non-2xx" <<<"$out"; then echo "  (non-2xx answers: $(grep Non-2xx <<<"$out"))"; fi
}

echo "== measuring: $CONNECTIONS connections, ${SECS}s each, $(date -u +%F)" >&2
run "GET /v3/api-keys/me, one key" -H "Authorization: Bearer $KEY" "$URL/v3/api-keys/me"
run "GET /v3/api-keys/me, 10,000 keys rotating" -s "$WORK/rotate.lua" "$URL"
run "GET /v3/users?limit=50 (first page)" -H "Authorization: Bearer $KEY" "$URL/v3/users?limit=50"
run "GET /v3/users?limit=50&after=<5,000th user>" -H "Authorization: Bearer $KEY" \
  "$URL/v3/users?limit=50&after=$MIDDLE"
run "GET /v3/users?limit=50&include=total_count" -H "Authorization: Bearer $KEY" \
  "$URL/v3/users?limit=50&include=total_count"
echo "fleetbox RSS after the runs: $(awk '/^VmRSS/ {print $2}' "/proc/$FB_PID/status") kB"
echo "log lines written at the default level: $(wc -l <"$WORK/fleetbox.log")"
