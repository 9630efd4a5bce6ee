#!/usr/bin/env bash
# Installs, upgrades and purges the amd64 package on this machine (root; CI runs it):
#
#   packaging/debian/test-install.sh OLD.deb NEW.deb
#
# OLD and NEW are two versions of the package. Checks: the system user, the data directory and
# the configuration's owner and mode; `systemd-analyze verify` on the unit; the installed
# binary serving as the service user with the installed configuration; an upgrade keeping an
# edited configuration and the database; a purge removing binary, configuration and data.
set -euo pipefail

old=$1
new=$2
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
ok() { echo "    ok: $*"; }
[ "$(id -u)" = 0 ] || fail "needs root"
if dpkg -s fleetbox >/dev/null 2>&1; then fail "fleetbox is already installed here"; fi

# Starts the installed binary as the service would run it (user, configuration, data dir) on a
# loopback port, waits for /healthz, and stops it.
serve_once() {
    local port log pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    log=$(mktemp)
    runuser -u fleetbox -- env FLEETBOX_DATA_DIR=/var/lib/fleetbox FLEETBOX_LISTEN=none \
        FLEETBOX_HTTP="127.0.0.1:$port" FLEETBOX_ADMIN_EMAIL=admin@example.com \
        FLEETBOX_ADMIN_PASSWORD=correct-horse-battery \
        /usr/bin/fleetbox serve --config /etc/fleetbox/fleetbox.toml >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            kill -TERM "$pid"
            wait "$pid" || true
            rm -f "$log"
            return 0
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    cat "$log" >&2
    fail "the installed server did not answer /healthz"
}

echo "==> dpkg -i $old"
dpkg -i "$old"
getent passwd fleetbox >/dev/null || fail "no fleetbox user"
[ "$(stat -c '%a %U:%G' /var/lib/fleetbox)" = "750 fleetbox:fleetbox" ] ||
    fail "/var/lib/fleetbox is $(stat -c '%a %U:%G' /var/lib/fleetbox)"
[ "$(stat -c '%a %U:%G' /etc/fleetbox/fleetbox.toml)" = "640 root:fleetbox" ] ||
    fail "/etc/fleetbox/fleetbox.toml is $(stat -c '%a %U:%G' /etc/fleetbox/fleetbox.toml)"
ok "user, data directory and configuration"
/usr/bin/fleetbox --version | grep -q '^fleetbox ' || fail "fleetbox --version"
unit=/usr/lib/systemd/system/fleetbox.service
grep -q '^ExecStart=/usr/bin/fleetbox serve --config /etc/fleetbox/fleetbox.toml$' "$unit" ||
    fail "the unit does not start /usr/bin/fleetbox"
if out=$(systemd-analyze verify "$unit" 2>&1); then
    ok "systemd-analyze verify"
else
    echo "$out" >&2
    fail "systemd-analyze verify $unit"
fi
wants=/etc/systemd/system/multi-user.target.wants/fleetbox.service
[ -L "$wants" ] || fail "the service is not enabled ($wants missing)"
serve_once
[ -f /var/lib/fleetbox/fleetbox.db ] || fail "no database after the first start"
ok "the installed server ran as fleetbox and made its database"

echo "==> upgrade to $new"
echo '# edited by the administrator' >>/etc/fleetbox/fleetbox.toml
dpkg -i "$new"
want=$(dpkg-deb -f "$new" Version)
[ "$(dpkg-query -W -f='${Version}' fleetbox)" = "$want" ] || fail "not upgraded to $want"
grep -q '^# edited by the administrator$' /etc/fleetbox/fleetbox.toml || fail "the upgrade lost the edited configuration"
[ -f /var/lib/fleetbox/fleetbox.db ] || fail "the upgrade lost the database"
serve_once
ok "upgraded to $want with configuration and data kept"

echo "==> dpkg --purge fleetbox"
dpkg --purge fleetbox
for gone in /usr/bin/fleetbox /etc/fleetbox /var/lib/fleetbox "$unit" "$wants"; do
    [ ! -e "$gone" ] || fail "$gone is still there after the purge"
done
ok "purged"
