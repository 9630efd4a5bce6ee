#!/usr/bin/env bash
# mender-cli.sh -- run the real mender-cli (Debian package mender-cli, 1.9)
# against a server under test without touching the caller's home directory.
#
#   mender-cli.sh --server URL [--cert PEM | --skip-verify] [--home DIR] \
#                 [--] <mender-cli arguments...>
#
# Examples:
#   mender-cli.sh --server https://localhost:8443 --cert server.crt --home H \
#       login --username admin@example.com --password secret
#   mender-cli.sh --server https://localhost:8443 --cert server.crt --home H \
#       artifacts upload --no-progress some.mender
#   mender-cli.sh --server http://127.0.0.1:8080 --home H devices list --raw
#
# What mender-cli 1.9 needs to know about / does:
# * The login token is the raw body of the login response, saved to
#   $HOME/.cache/mender/authtoken (or $XDG_CACHE_HOME/mender/authtoken).
#   Every other command reads the token only from that default place or from
#   --token-value; `--token FILE` only changes where `login` writes it. So
#   login and later commands must share the same HOME: pass the same --home
#   (default: a directory derived from the server URL under ${TMPDIR:-/tmp}).
#   XDG_CACHE_HOME is removed from the environment so HOME decides.
# * TLS is Go's crypto/tls: -k/--skip-verify skips verification; there is no
#   CA-file flag, but Go reads SSL_CERT_FILE, which --cert sets (the
#   certificate must then match the host name in URL: use a SAN).
#   http:// URLs work as they are; a URL without a scheme means https.
# * Without a .mender-clirc (searched in /etc/mender-cli/, $HOME and the
#   current directory) it prints "Configuration file not found. Continuing."
#   on stderr; that is harmless.
# * `terminal` needs a real TTY (it switches the terminal to raw mode): run
#   this wrapper inside e.g. `tmux new-session -d ...` for terminal tests.
#   Ctrl-] leaves the remote terminal.
#
# The exit code is mender-cli's own (0 ok, non-zero on any failure, e.g. a
# status the client did not expect).
set -euo pipefail

PROG=${0##*/}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

server='' cert='' skip=0 home=''
while [ $# -gt 0 ]; do
  case $1 in
    --server) server=${2:?--server needs a URL}; shift 2 ;;
    --cert) cert=${2:?--cert needs a file}; shift 2 ;;
    --skip-verify | -k) skip=1; shift ;;
    --home) home=${2:?--home needs a directory}; shift 2 ;;
    -h | --help | help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ -n "$server" ] || { echo "$PROG: --server URL is required" >&2; exit 2; }
[ $# -gt 0 ] || { echo "$PROG: missing mender-cli arguments" >&2; exit 2; }
command -v mender-cli >/dev/null || { echo "$PROG: mender-cli not found: install the Debian package mender-cli" >&2; exit 2; }

if [ -z "$home" ]; then
  home=${TMPDIR:-/tmp}/rig-mender-cli.$(printf '%s' "$server" | sha256sum | cut -c1-12)
fi
mkdir -p "$home"
chmod 700 "$home"
home=$(cd "$home" && pwd)

env_args=(-u XDG_CACHE_HOME "HOME=$home")
if [ -n "$cert" ]; then
  [ -f "$cert" ] || { echo "$PROG: no such file: $cert" >&2; exit 2; }
  env_args+=("SSL_CERT_FILE=$(cd "$(dirname -- "$cert")" && pwd)/$(basename -- "$cert")")
fi
global=(--server "$server")
if [ "$skip" = 1 ]; then global+=(--skip-verify); fi

exec env "${env_args[@]}" mender-cli "${global[@]}" "$@"
