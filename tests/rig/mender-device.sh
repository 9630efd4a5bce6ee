#!/usr/bin/env bash
# mender-device.sh -- run the real Debian mender-client 3.4 (`mender`) and,
# optionally, mender-connect as a fake device against a server under test.
#
# Every device lives in one rig directory DIR. The client has a few paths it
# cannot be told to move (/etc/mender/artifact_info, /usr/share/mender/
# identity, inventory and modules), so each client process runs in a private
# mount namespace in which DIR/etc is bind-mounted over /etc/mender and
# DIR/share over /usr/share/mender. Nothing outside DIR is written.
#
# Run `mender-device.sh help` for the subcommands. Needs root (unshare/mount).
set -euo pipefail

PROG=${0##*/}
RIG_TIMEOUT=${MENDER_RIG_TIMEOUT:-60}

usage() {
  cat <<'EOF'
usage: mender-device.sh SUBCOMMAND DIR [options]

Drives the real mender-client 3.4 as a device whose whole state lives in DIR.
Client processes run in a private mount namespace where DIR/etc is seen as
/etc/mender and DIR/share as /usr/share/mender (so the device path
/usr/share/mender/rig-dest/... is DIR/share/rig-dest/... on the host).

  init DIR --server URL [options]   lay out a new device in DIR
      --cert PEM            trust this server certificate (ServerCertificate)
      --skip-verify         do not verify the server certificate (SkipVerify)
      --tenant-token T      TenantToken
      --key TYPE            rsa (default; the client makes an RSA-3072 key on
                            first use) | ed25519 | ecdsa-p256 | ecdsa-p384
                            (pre-generated, set as Security.AuthPrivateKey)
      --key-file PEM        use this private key (copied; AuthPrivateKey)
      --mac MAC             identity mac  (default: derived from DIR)
      --serial S            identity serial (default: derived from DIR)
      --id-attr K=V         extra identity attribute (repeatable)
      --inv K=V             extra inventory attribute (repeatable; a key given
                            twice is sent as a list)
      --device-type T       default rig-device
      --artifact-name N     artifact_name before the first install
                            (default rig-initial)
      --poll SECONDS        update/inventory/retry poll intervals (default 5)
      --verify-key PEM      ArtifactVerifyKey (only signed artifacts install)
      --dbus                enable the client's D-Bus API (needed by
                            mender-connect); `daemon` then starts a private
                            system bus for DIR
      --log-level L         client log level (default debug)
  bootstrap DIR [--force]   one authentication round (`mender bootstrap`);
                            exit 0 iff the server answered 200 with a token
  daemon DIR                start `mender daemon` in the background
                            (pid in DIR/daemon.pid, log DIR/logs/daemon.log)
  connect DIR               start mender-connect next to the running daemon
                            (needs init --dbus; log DIR/logs/connect.log)
  check-update DIR          `mender check-update`: make the daemon poll now
  send-inventory DIR        `mender send-inventory`: make the daemon send now
  stop DIR                  stop everything the rig started for DIR
  status DIR                show what runs; exit 0 iff the daemon runs
  pubkey DIR                print the device public key (SPKI PEM)
  identity DIR              print the identity JSON as sent in id_data
  run DIR ARGS...           run `mender ARGS...` inside the rig, e.g.
                            show-artifact, show-provides, install FILE, commit
  states DIR                print the daemon's state transitions so far
  wait-log DIR REGEX [SECS] wait until REGEX (ERE) appears in the daemon log
                            (default 60 s); exit 1 on timeout
  help                      this text

Exit codes: 0 ok; 1 the operation failed (bootstrap rejected, daemon did not
start, timeout ...); 2 usage error or DIR is not an initialised rig;
bootstrap passes the client's exit code through (124 when it was killed
after MENDER_RIG_TIMEOUT seconds, default 60).
Logs: DIR/logs/{bootstrap,daemon,connect,dbus,check-update,send-inventory,run}.log
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
fail() { echo "$PROG: $*" >&2; exit 1; }
note() { echo "$PROG: $*" >&2; }

# ---------------------------------------------------------------- helpers

# json_str VALUE -> VALUE as a JSON string literal. Escapes like Go's
# encoding/json does by default (including <, > and & as \u00XX).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=${s//</\\u003c}
  s=${s//>/\\u003e}
  s=${s//&/\\u0026}
  printf '"%s"' "$s"
}

# abs_dir DIR -> absolute path (DIR need not exist yet)
abs_dir() {
  case $1 in
    /*) printf '%s\n' "${1%/}" ;;
    *) printf '%s/%s\n' "$(pwd)" "${1%/}" ;;
  esac
}

# load_rig DIR: sets D (absolute) and the settings written by init
load_rig() {
  [ -n "${1:-}" ] || die "missing DIR (see: $PROG help)"
  D=$(abs_dir "$1")
  if [ ! -f "$D/rig.env" ] || [ ! -f "$D/etc/mender.conf" ]; then
    die "$D is not a rig directory (run: $PROG init $1 --server URL)"
  fi
  RIG_DBUS=0
  RIG_LOG_LEVEL=debug
  local k v
  while IFS='=' read -r k v; do
    case $k in
      RIG_DBUS) RIG_DBUS=$v ;;
      RIG_LOG_LEVEL) RIG_LOG_LEVEL=$v ;;
    esac
  done <"$D/rig.env"
  mkdir -p "$D/logs"
}

# Commands run inside the namespace get these mounts; when RIG_PIDFILE is set
# the PID is written before exec, so it is the PID of the final program.
# shellcheck disable=SC2016  # expanded by the inner shell
NS_SCRIPT='
set -e
mount --bind "$RIG_DIR/etc" /etc/mender
mount --bind "$RIG_DIR/share" /usr/share/mender
if [ "$RIG_DBUS" = 1 ] && [ -d /run/dbus ]; then
  mount --bind "$RIG_DIR/dbus" /run/dbus
fi
if [ -n "$RIG_PIDFILE" ]; then echo "$$" >"$RIG_PIDFILE"; fi
unset RIG_PIDFILE RIG_DIR
exec "$@"'

# ns_cmd [PIDFILE] -> fills the array NS (prefix that runs a command in DIR's
# mount namespace). Needs D and RIG_DBUS.
ns_cmd() {
  local pidfile=${1:-}
  local path=$D/bin:${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}
  NS=(env "RIG_DIR=$D" "RIG_DBUS=$RIG_DBUS" "RIG_PIDFILE=$pidfile" "PATH=$path")
  if [ "$RIG_DBUS" = 1 ]; then
    NS+=("DBUS_SYSTEM_BUS_ADDRESS=unix:path=$D/dbus/system_bus_socket")
  fi
  NS+=(unshare --mount --propagation private -- /bin/bash -c "$NS_SCRIPT" rig-ns)
}

# mender_args SUBCOMMAND... -> fills MENDER (the client command line)
mender_args() {
  MENDER=(mender --config "$D/etc/mender.conf"
    --fallback-config "$D/etc/mender-fallback.conf"
    --data "$D/data" --no-syslog --log-level "$RIG_LOG_LEVEL" "$@")
}

# pid_of NAME -> PID from DIR/NAME.pid if that process is alive and belongs
# to this rig (its command line mentions DIR); empty otherwise.
pid_of() {
  local f=$D/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  case $pid in '' | *[!0-9]*) return 0 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$D/"; then
    echo "$pid"
  fi
}

# stop_one NAME: TERM the process from NAME.pid, KILL after 5 s
stop_one() {
  local pid i
  pid=$(pid_of "$1")
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      note "$1 (pid $pid) ignored SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    note "stopped $1 (pid $pid)"
  fi
  rm -f "$D/$1.pid"
}

# wait_started NAME COMM LOG LAUNCHER_PID: wait until NAME.pid names a live
# process called COMM (max 10 s)
wait_started() {
  local name=$1 comm=$2 log=$3 launcher=$4 i pid grace=10
  for i in $(seq 100); do
    pid=$(pid_of "$name")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
      return 0
    fi
    # the launcher execs into the program; once it is gone and nothing
    # took its place for a second, the start failed
    if ! kill -0 "$launcher" 2>/dev/null; then
      grace=$((grace - 1))
      [ "$grace" -gt 0 ] || break
    fi
    sleep 0.1
  done
  rm -f "$D/$name.pid"
  note "$name did not start; last lines of $log:"
  tail -n 15 "$log" >&2 || true
  return 1
}

# log_header LOG TEXT...: a separator line before each run in LOG
log_header() {
  local log=$1
  shift
  printf '=== %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log"
}

# ---------------------------------------------------------------- init

cmd_init() {
  [ $# -ge 1 ] || die "init: missing DIR"
  local dir=$1
  shift
  local server='' cert='' skip=0 tenant='' key=rsa keyfile='' mac='' serial=''
  local dtype=rig-device aname=rig-initial poll=5 verify='' dbus=0 level=debug
  local -a idattrs=() invattrs=()
  while [ $# -gt 0 ]; do
    case $1 in
      --server) server=${2:?--server needs a URL}; shift 2 ;;
      --cert) cert=${2:?--cert needs a file}; shift 2 ;;
      --skip-verify) skip=1; shift ;;
      --tenant-token) tenant=${2?--tenant-token needs a value}; shift 2 ;;
      --key) key=${2:?--key needs a type}; shift 2 ;;
      --key-file) keyfile=${2:?--key-file needs a file}; shift 2 ;;
      --mac) mac=${2:?--mac needs a value}; shift 2 ;;
      --serial) serial=${2:?--serial needs a value}; shift 2 ;;
      --id-attr) idattrs+=("${2:?--id-attr needs K=V}"); shift 2 ;;
      --inv) invattrs+=("${2:?--inv needs K=V}"); shift 2 ;;
      --device-type) dtype=${2:?--device-type needs a value}; shift 2 ;;
      --artifact-name) aname=${2:?--artifact-name needs a value}; shift 2 ;;
      --poll) poll=${2:?--poll needs seconds}; shift 2 ;;
      --verify-key) verify=${2:?--verify-key needs a file}; shift 2 ;;
      --dbus) dbus=1; shift ;;
      --log-level) level=${2:?--log-level needs a value}; shift 2 ;;
      *) die "init: unknown option $1" ;;
    esac
  done
  [ -n "$server" ] || die "init: --server URL is required"
  case $server in http://* | https://*) ;; *) die "init: --server must be http:// or https://" ;; esac
  server=${server%/}
  case $poll in '' | *[!0-9]*) die "init: --poll must be a whole number of seconds" ;; esac
  case $key in rsa | ed25519 | ecdsa-p256 | ecdsa-p384) ;; *) die "init: unknown --key $key" ;; esac
  [ -z "$cert" ] || [ -f "$cert" ] || die "init: no such file: $cert"
  [ -z "$keyfile" ] || [ -f "$keyfile" ] || die "init: no such file: $keyfile"
  [ -z "$verify" ] || [ -f "$verify" ] || die "init: no such file: $verify"
  local a
  for a in ${idattrs[@]+"${idattrs[@]}"} ${invattrs[@]+"${invattrs[@]}"}; do
    case $a in [A-Za-z_]*=*) ;; *) die "init: attribute must look like KEY=VALUE: $a" ;; esac
    case $a in *$'\n'* | *"'"*) die "init: newlines and single quotes are not supported: $a" ;; esac
  done
  for a in ${idattrs[@]+"${idattrs[@]}"}; do
    case ${a%%=*} in mac | serial) die "init: use --mac/--serial instead of --id-attr ${a%%=*}=" ;; esac
  done
  local f
  for f in /etc/mender /usr/share/mender /usr/share/mender/modules/v3; do
    [ -d "$f" ] || fail "$f is missing: install the Debian package mender-client"
  done
  command -v mender >/dev/null || fail "mender not found: install the Debian package mender-client"

  D=$(abs_dir "$dir")
  [ ! -e "$D/rig.env" ] || die "init: $D is already a rig (use a new DIR)"
  if [ "$dbus" = 1 ] && [ ${#D} -gt 85 ]; then
    die "init: DIR path too long for a unix socket path ($D)"
  fi
  mkdir -p "$D"/{etc,share/identity,share/inventory,share/modules/v3,data,bin,dbus,logs}
  chmod 700 "$D/data"

  # defaults derived from the directory, so parallel rigs differ
  local h
  h=$(printf '%s' "$D" | sha256sum)
  [ -n "$mac" ] || mac="02:${h:0:2}:${h:2:2}:${h:4:2}:${h:6:2}:${h:8:2}"
  [ -n "$serial" ] || serial="rig-${h:10:10}"

  # --- device key
  local keyconf=''
  case $key in
    ed25519) openssl genpkey -algorithm ed25519 -out "$D/data/mender-agent.pem" 2>/dev/null ;;
    ecdsa-p256) openssl ecparam -name prime256v1 -genkey -noout -out "$D/data/mender-agent.pem" 2>/dev/null ;;
    ecdsa-p384) openssl ecparam -name secp384r1 -genkey -noout -out "$D/data/mender-agent.pem" 2>/dev/null ;;
  esac
  if [ -n "$keyfile" ]; then
    cp "$keyfile" "$D/data/mender-agent.pem"
  fi
  if [ -f "$D/data/mender-agent.pem" ]; then
    chmod 600 "$D/data/mender-agent.pem"
    keyconf="\"Security\": {\"AuthPrivateKey\": $(json_str "$D/data/mender-agent.pem")}"
  fi

  # --- mender.conf
  local -a conf=()
  conf+=("\"ServerURL\": $(json_str "$server")")
  if [ -n "$cert" ]; then
    cp "$cert" "$D/etc/server.crt"
    conf+=("\"ServerCertificate\": $(json_str "$D/etc/server.crt")")
  fi
  if [ "$skip" = 1 ]; then conf+=("\"SkipVerify\": true"); fi
  conf+=("\"TenantToken\": $(json_str "$tenant")")
  conf+=("\"UpdatePollIntervalSeconds\": $poll")
  conf+=("\"InventoryPollIntervalSeconds\": $poll")
  conf+=("\"RetryPollIntervalSeconds\": $poll")
  conf+=("\"DeviceTypeFile\": $(json_str "$D/data/device_type")")
  if [ -n "$verify" ]; then
    cp "$verify" "$D/etc/artifact-verify-key.pem"
    conf+=("\"ArtifactVerifyKey\": $(json_str "$D/etc/artifact-verify-key.pem")")
  fi
  if [ -n "$keyconf" ]; then conf+=("$keyconf"); fi
  if [ "$dbus" = 1 ]; then
    conf+=("\"DBus\": {\"Enabled\": true}")
  else
    conf+=("\"DBus\": {\"Enabled\": false}")
  fi
  {
    echo "{"
    local i last=$((${#conf[@]} - 1))
    for i in "${!conf[@]}"; do
      if [ "$i" -lt "$last" ]; then echo "  ${conf[$i]},"; else echo "  ${conf[$i]}"; fi
    done
    echo "}"
  } >"$D/etc/mender.conf"

  echo "artifact_name=$aname" >"$D/etc/artifact_info"
  echo "device_type=$dtype" >"$D/data/device_type"

  # --- identity: key=value lines; the client turns them into the id_data JSON
  {
    echo "#!/bin/sh"
    echo "# device identity for the test rig (mender-client runs this)"
    echo "echo 'mac=$mac'"
    echo "echo 'serial=$serial'"
    for a in ${idattrs[@]+"${idattrs[@]}"}; do echo "echo '$a'"; done
  } >"$D/share/identity/mender-device-identity"

  # --- inventory: every mender-inventory-* script is run, key=value lines
  {
    echo "#!/bin/sh"
    echo "# inventory for the test rig; a key printed twice is sent as a list"
    echo "echo 'rig_inventory_probe=ok'"
    echo "echo \"hostname=\$(uname -n)\""
    echo "echo 'rig_serial=$serial'"
    for a in ${invattrs[@]+"${invattrs[@]}"}; do echo "echo '$a'"; done
  } >"$D/share/inventory/mender-inventory-rig"
  chmod 755 "$D/share/identity/mender-device-identity" "$D/share/inventory/mender-inventory-rig"

  # --- the shipped update modules (single-file, directory, script, ...)
  cp -a /usr/share/mender/modules/v3/. "$D/share/modules/v3/"

  # --- `mender check-update|send-inventory` find the daemon through
  # `systemctl show -p MainPID mender-client`; answer that from daemon.pid.
  cat >"$D/bin/systemctl" <<EOF
#!/bin/sh
# systemd stand-in for the test rig: only answers the daemon PID lookup
case "\$*" in
  *MainPID*) echo "MainPID=\$(cat '$D/daemon.pid' 2>/dev/null || echo 0)"; exit 0 ;;
esac
echo "rig systemctl stand-in: not supported: \$*" >&2
exit 1
EOF
  chmod 755 "$D/bin/systemctl"

  # --- mender-connect (used by `connect`)
  cat >"$D/etc/mender-connect.conf" <<'EOF'
{
  "ShellCommand": "/bin/sh",
  "ShellArguments": ["-i"],
  "User": "nobody",
  "Terminal": {"Width": 80, "Height": 24},
  "ReconnectIntervalSeconds": 5,
  "Sessions": {"StopExpired": false}
}
EOF

  # --- private system bus (used by `daemon` when --dbus)
  cat >"$D/dbus/system.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$D/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF

  printf 'RIG_DBUS=%s\nRIG_LOG_LEVEL=%s\n' "$dbus" "$level" >"$D/rig.env"
  echo "$D"
}

# ---------------------------------------------------------------- commands

cmd_bootstrap() {
  load_rig "${1:-}"
  shift
  local -a extra=()
  while [ $# -gt 0 ]; do
    case $1 in
      --force) extra+=(--forcebootstrap); shift ;;
      *) die "bootstrap: unknown option $1" ;;
    esac
  done
  ns_cmd
  mender_args bootstrap ${extra[@]+"${extra[@]}"}
  local log=$D/logs/bootstrap.log rc=0
  log_header "$log" "${MENDER[*]}"
  timeout -k 5 "$RIG_TIMEOUT" "${NS[@]}" "${MENDER[@]}" </dev/null >>"$log" 2>&1 || rc=$?
  echo "=== exit $rc" >>"$log"
  if [ "$rc" = 0 ]; then
    note "bootstrap: accepted (log $log)"
  elif [ "$rc" = 124 ]; then
    note "bootstrap: timed out after ${RIG_TIMEOUT}s (log $log)"
  else
    local why
    why=$(grep -E 'level=(error|fatal)' "$log" | grep -E 'Failed to authorize|level=fatal' | tail -n 1 \
      | sed -E 's/.* msg="(([^"\\]|\\.)*)".*/\1/')
    note "bootstrap: exit $rc (log $log)${why:+: $why}"
  fi
  return "$rc"
}

start_dbus() {
  [ -z "$(pid_of dbus)" ] || return 0
  rm -f "$D/dbus/system_bus_socket"
  local log=$D/logs/dbus.log
  log_header "$log" "dbus-daemon"
  # shellcheck disable=SC2016
  setsid /bin/bash -c 'echo "$$" >"$1"; shift; exec "$@"' rig-dbus "$D/dbus.pid" \
    dbus-daemon --config-file="$D/dbus/system.conf" --nofork --nopidfile \
    </dev/null >>"$log" 2>&1 &
  local launcher=$! i
  wait_started dbus dbus-daemon "$log" "$launcher" || fail "could not start dbus-daemon"
  for i in $(seq 50); do
    [ -S "$D/dbus/system_bus_socket" ] && return 0
    sleep 0.1
  done
  fail "dbus-daemon did not create $D/dbus/system_bus_socket"
}

cmd_daemon() {
  load_rig "${1:-}"
  local pid
  pid=$(pid_of daemon)
  [ -z "$pid" ] || fail "daemon already running for $D (pid $pid)"
  if [ "$RIG_DBUS" = 1 ]; then
    command -v dbus-daemon >/dev/null || fail "dbus-daemon not found: install the Debian package dbus"
    start_dbus
  fi
  local log=$D/logs/daemon.log
  ns_cmd "$D/daemon.pid"
  mender_args daemon
  log_header "$log" "${MENDER[*]}"
  setsid "${NS[@]}" "${MENDER[@]}" </dev/null >>"$log" 2>&1 &
  wait_started daemon mender "$log" $! || fail "mender daemon did not start"
  # configuration errors make it exit right after start
  sleep 0.5
  if [ -z "$(pid_of daemon)" ]; then
    tail -n 15 "$log" >&2 || true
    fail "mender daemon exited right after start"
  fi
  note "mender daemon running, pid $(pid_of daemon) (log $log)"
}

cmd_connect() {
  load_rig "${1:-}"
  [ "$RIG_DBUS" = 1 ] || die "connect: mender-connect needs D-Bus; init the rig with --dbus"
  [ -n "$(pid_of daemon)" ] || fail "connect: start the daemon first ($PROG daemon $D)"
  command -v mender-connect >/dev/null || fail "mender-connect not found: install the Debian package mender-connect"
  local pid
  pid=$(pid_of connect)
  [ -z "$pid" ] || fail "mender-connect already running for $D (pid $pid)"
  local log=$D/logs/connect.log
  ns_cmd "$D/connect.pid"
  local -a cmd=(mender-connect --config "$D/etc/mender-connect.conf"
    --fallback-config "$D/etc/mender-connect-fallback.conf" --debug daemon)
  log_header "$log" "${cmd[*]}"
  setsid "${NS[@]}" "${cmd[@]}" </dev/null >>"$log" 2>&1 &
  wait_started connect mender-connect "$log" $! || fail "mender-connect did not start"
  note "mender-connect running, pid $(pid_of connect) (log $log)"
}

# signal_cmd check-update|send-inventory DIR
cmd_signal() {
  local what=$1
  load_rig "${2:-}"
  [ -n "$(pid_of daemon)" ] || fail "$what: the daemon is not running for $D"
  local log=$D/logs/$what.log rc=0
  ns_cmd
  mender_args "$what"
  log_header "$log" "${MENDER[*]}"
  timeout -k 5 "$RIG_TIMEOUT" "${NS[@]}" "${MENDER[@]}" </dev/null >>"$log" 2>&1 || rc=$?
  echo "=== exit $rc" >>"$log"
  [ "$rc" = 0 ] || note "$what: exit $rc (log $log)"
  return "$rc"
}

cmd_run() {
  load_rig "${1:-}"
  shift
  [ $# -gt 0 ] || die "run: missing mender arguments"
  local log=$D/logs/run.log rc=0
  ns_cmd
  mender_args "$@"
  log_header "$log" "${MENDER[*]}"
  # stdout goes to the caller (e.g. show-artifact); stderr (the log) to run.log
  timeout -k 5 "$RIG_TIMEOUT" "${NS[@]}" "${MENDER[@]}" </dev/null 2>>"$log" || rc=$?
  echo "=== exit $rc" >>"$log"
  return "$rc"
}

cmd_stop() {
  load_rig "${1:-}"
  stop_one connect
  stop_one daemon
  stop_one dbus
  rm -f "$D/dbus/system_bus_socket"
}

cmd_status() {
  load_rig "${1:-}"
  local n pid rc=1
  for n in daemon connect dbus; do
    pid=$(pid_of "$n")
    if [ -n "$pid" ]; then
      echo "$n: running (pid $pid)"
      [ "$n" != daemon ] || rc=0
    else
      echo "$n: not running"
    fi
  done
  if [ -f "$D/data/mender-agent.pem" ]; then echo "key: $D/data/mender-agent.pem"; else echo "key: none yet"; fi
  return "$rc"
}

cmd_pubkey() {
  load_rig "${1:-}"
  [ -s "$D/data/mender-agent.pem" ] || fail "pubkey: no device key yet (run bootstrap or daemon first)"
  openssl pkey -in "$D/data/mender-agent.pem" -pubout
}

cmd_identity() {
  load_rig "${1:-}"
  local out line k v
  out=$(sh "$D/share/identity/mender-device-identity")
  # group values by key (a repeated key becomes a list), keys in byte order
  local -A vals=() count=()
  while IFS= read -r line; do
    case $line in *=*) ;; *) continue ;; esac
    k=${line%%=*}
    v=${line#*=}
    if [ -n "${count[$k]:-}" ]; then
      vals[$k]="${vals[$k]},$(json_str "$v")"
      count[$k]=$((count[$k] + 1))
    else
      vals[$k]=$(json_str "$v")
      count[$k]=1
    fi
  done <<<"$out"
  local json='{' first=1
  while IFS= read -r k; do
    [ -n "$k" ] || continue
    [ "$first" = 1 ] || json+=','
    first=0
    if [ "${count[$k]}" -gt 1 ]; then
      json+="$(json_str "$k"):[${vals[$k]}]"
    else
      json+="$(json_str "$k"):${vals[$k]}"
    fi
  done < <(printf '%s\n' "${!vals[@]}" | LC_ALL=C sort)
  json+='}'
  printf '%s\n' "$json"
}

cmd_states() {
  load_rig "${1:-}"
  [ -f "$D/logs/daemon.log" ] || return 0
  sed -nE 's/.*msg="State transition: ([^"]*)".*/\1/p' "$D/logs/daemon.log"
}

cmd_wait_log() {
  load_rig "${1:-}"
  local re=${2:?wait-log: missing REGEX} secs=${3:-60} i
  case $secs in '' | *[!0-9]*) die "wait-log: SECS must be a number" ;; esac
  for i in $(seq $((secs * 10))); do
    if grep -qE -- "$re" "$D/logs/daemon.log" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  note "wait-log: '$re' not seen in $D/logs/daemon.log within ${secs}s"
  return 1
}

# ---------------------------------------------------------------- main

[ $# -gt 0 ] || { usage >&2; exit 2; }
sub=$1
shift
case $sub in
  help | -h | --help) usage ;;
  init) cmd_init "$@" ;;
  bootstrap) cmd_bootstrap "$@" ;;
  daemon) cmd_daemon "$@" ;;
  connect) cmd_connect "$@" ;;
  check-update | send-inventory) cmd_signal "$sub" "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  pubkey) cmd_pubkey "$@" ;;
  identity) cmd_identity "$@" ;;
  run) cmd_run "$@" ;;
  states) cmd_states "$@" ;;
  wait-log) cmd_wait_log "$@" ;;
  *) echo "$PROG: unknown subcommand '$sub'" >&2; usage >&2; exit 2 ;;
esac
