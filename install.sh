#!/usr/bin/env bash
# Install (or uninstall) the fleetbox server as a systemd service.
#
#   ./install.sh                      build from source and install, start the service
#   ./install.sh --binary ./fleetbox  install a prebuilt binary
#   ./install.sh --prefix /tmp/root   stage everything under /tmp/root (no root needed)
#   ./install.sh --uninstall [--purge]
#
# Running it again is safe: an existing /etc/fleetbox/fleetbox.toml is never overwritten.
set -euo pipefail

# Real (target-system) paths. In prefix/DESTDIR mode files are written below the
# prefix, but every path that ends up *inside* a file stays the real one.
BIN_PATH=/usr/local/bin/fleetbox
CONF_DIR=/etc/fleetbox
CONF_PATH=$CONF_DIR/fleetbox.toml
DATA_DIR=/var/lib/fleetbox
UNIT_PATH=/etc/systemd/system/fleetbox.service
SERVICE=fleetbox
SVC_USER=fleetbox
SVC_GROUP=fleetbox

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

Install the fleetbox server: binary, default configuration, data directory,
system user and systemd unit.

Options:
  --binary PATH   install this prebuilt binary instead of building one
                  (default: cargo build --release --locked in $SCRIPT_DIR)
  --prefix DIR    install everything below DIR instead of / (staging; does not
                  create users, change ownership or call systemctl, and does not
                  need root). The environment variable DESTDIR works the same way.
  --uninstall     remove the binary and the systemd unit; keeps $CONF_DIR
                  and $DATA_DIR
  --purge         with --uninstall: also remove $CONF_DIR, $DATA_DIR and the
                  $SVC_USER system user
  --no-start      do not enable/start the service
  -h, --help      show this help

Installed files:
  $BIN_PATH
  $CONF_PATH   (only written if it does not exist yet)
  $DATA_DIR/               (database, artifacts, TLS certificate)
  $UNIT_PATH
EOF
}

log() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
# In prefix mode, commands that would change the real machine are only printed.
would() { printf '    [prefix mode] would run: %s\n' "$*"; }

# ---------------------------------------------------------------- arguments
BINARY=""
PREFIX_SET=0
PREFIX=""
UNINSTALL=0
PURGE=0
NO_START=0

while [ $# -gt 0 ]; do
    case "$1" in
        --binary)    [ $# -ge 2 ] || die "--binary needs a path"; BINARY=$2; shift 2 ;;
        --binary=*)  BINARY=${1#*=}; shift ;;
        --prefix)    [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; PREFIX_SET=1; shift 2 ;;
        --prefix=*)  PREFIX=${1#*=}; PREFIX_SET=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge)     PURGE=1; shift ;;
        --no-start)  NO_START=1; shift ;;
        -h|--help)   usage; exit 0 ;;
        *)           usage >&2; die "unknown option: $1" ;;
    esac
done

if [ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ]; then
    die "--purge only makes sense together with --uninstall"
fi

# --prefix wins over DESTDIR; an empty value means "install into the real system".
if [ "$PREFIX_SET" = 0 ]; then
    PREFIX=${DESTDIR:-}
fi
if [ -n "$PREFIX" ]; then
    mkdir -p -- "$PREFIX"
    PREFIX=$(cd -- "$PREFIX" && pwd)
    [ "$PREFIX" = / ] && PREFIX=""
fi
STAGED=0
[ -n "$PREFIX" ] && STAGED=1

if [ "$STAGED" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "installing into the system needs root (run with sudo), or use --prefix DIR / DESTDIR to stage"
fi

systemd_running() { [ "$STAGED" = 0 ] && [ -d /run/systemd/system ]; }

# Destination (on-disk) paths.
D_BIN=$PREFIX$BIN_PATH
D_CONF_DIR=$PREFIX$CONF_DIR
D_CONF=$PREFIX$CONF_PATH
D_DATA=$PREFIX$DATA_DIR
D_UNIT=$PREFIX$UNIT_PATH

TMPFILES=()
cleanup() {
    if [ ${#TMPFILES[@]} -gt 0 ]; then
        rm -f -- "${TMPFILES[@]}"
    fi
}
trap cleanup EXIT

# Make a temporary file next to $1 (so that the final mv is an atomic rename)
# and store its name in $tmp. (Not via $(...): the subshell would lose TMPFILES.)
tmp=""
tmp_beside() {
    tmp=$(mktemp "$(dirname -- "$1")/.$(basename -- "$1").XXXXXX")
    TMPFILES+=("$tmp")
}

# ---------------------------------------------------------------- uninstall
if [ "$UNINSTALL" = 1 ]; then
    log "Uninstalling fleetbox${PREFIX:+ from $PREFIX}"
    if systemd_running; then
        systemctl disable --now "$SERVICE" >/dev/null 2>&1 || true
    elif [ "$STAGED" = 1 ]; then
        would "systemctl disable --now $SERVICE"
    fi
    rm -f -- "$D_UNIT" "$D_BIN"
    note "removed $D_BIN"
    note "removed $D_UNIT"
    if systemd_running; then
        systemctl daemon-reload
    elif [ "$STAGED" = 1 ]; then
        would "systemctl daemon-reload"
    fi

    if [ "$PURGE" = 1 ]; then
        rm -rf -- "$D_CONF_DIR" "$D_DATA"
        note "removed $D_CONF_DIR"
        note "removed $D_DATA"
        if [ "$STAGED" = 1 ]; then
            would "userdel $SVC_USER"
        else
            if getent passwd "$SVC_USER" >/dev/null; then
                userdel "$SVC_USER"
                note "removed system user $SVC_USER"
            fi
            if getent group "$SVC_GROUP" >/dev/null; then
                groupdel "$SVC_GROUP"
            fi
        fi
    else
        note "kept configuration $D_CONF_DIR and data $D_DATA (use --uninstall --purge to remove them)"
    fi
    log "Done."
    exit 0
fi

# ---------------------------------------------------------------- binary
if [ -n "$BINARY" ]; then
    [ -f "$BINARY" ] || die "binary not found: $BINARY"
    [ -x "$BINARY" ] || die "binary is not executable: $BINARY"
else
    command -v cargo >/dev/null || die "cargo not found; install Rust or pass --binary PATH"
    log "Building fleetbox (cargo build --release --locked)"
    (cd "$SCRIPT_DIR" && cargo build --release --locked)
    target_dir=${CARGO_TARGET_DIR:-target}
    case "$target_dir" in
        /*) ;;
        *) target_dir=$SCRIPT_DIR/$target_dir ;;
    esac
    BINARY=$target_dir/release/fleetbox
    [ -x "$BINARY" ] || die "build finished but $BINARY is missing"
fi

log "Installing fleetbox${PREFIX:+ into $PREFIX}"

# ---------------------------------------------------------------- user
NOLOGIN=/usr/sbin/nologin
for candidate in /usr/sbin/nologin /sbin/nologin /bin/false; do
    if [ -x "$candidate" ]; then NOLOGIN=$candidate; break; fi
done

if [ "$STAGED" = 1 ]; then
    would "groupadd --system $SVC_GROUP (if missing)"
    would "useradd --system --gid $SVC_GROUP --home $DATA_DIR --shell $NOLOGIN $SVC_USER (if missing)"
else
    if ! getent group "$SVC_GROUP" >/dev/null; then
        groupadd --system "$SVC_GROUP"
        note "created system group $SVC_GROUP"
    fi
    if ! getent passwd "$SVC_USER" >/dev/null; then
        useradd --system --gid "$SVC_GROUP" --home "$DATA_DIR" --shell "$NOLOGIN" \
            --comment "fleetbox server" "$SVC_USER"
        note "created system user $SVC_USER"
    fi
fi

# ---------------------------------------------------------------- data dir
install -d -m 0755 -- "$(dirname -- "$D_DATA")"
install -d -m 0750 -- "$D_DATA"
chmod 0750 -- "$D_DATA"
if [ "$STAGED" = 1 ]; then
    would "chown $SVC_USER:$SVC_GROUP $DATA_DIR"
else
    chown "$SVC_USER:$SVC_GROUP" -- "$D_DATA"
fi
note "data directory $D_DATA"

# ---------------------------------------------------------------- binary
CHANGED=0
install -d -m 0755 -- "$(dirname -- "$D_BIN")"
if [ -e "$D_BIN" ] && [ "$BINARY" -ef "$D_BIN" ]; then
    note "binary $D_BIN is already the requested file"
elif [ -f "$D_BIN" ] && cmp -s -- "$BINARY" "$D_BIN"; then
    chmod 0755 -- "$D_BIN"
    note "binary $D_BIN is up to date"
else
    # Copy beside the destination and rename: works even while the old binary runs.
    tmp_beside "$D_BIN"
    cp -- "$BINARY" "$tmp"
    chmod 0755 -- "$tmp"
    mv -f -- "$tmp" "$D_BIN"
    CHANGED=1
    note "installed binary $D_BIN"
fi

# ---------------------------------------------------------------- config
install -d -m 0755 -- "$D_CONF_DIR"
if [ -e "$D_CONF" ]; then
    note "keeping existing configuration $D_CONF"
else
    tmp_beside "$D_CONF"
    cp -- "$SCRIPT_DIR/packaging/fleetbox.toml" "$tmp"
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$D_CONF"
    CHANGED=1
    note "wrote default configuration $D_CONF"
fi

# ---------------------------------------------------------------- systemd unit
install -d -m 0755 -- "$(dirname -- "$D_UNIT")"
tmp_beside "$D_UNIT"
# The one unit, shared with the Debian package; only the binary's path differs.
sed "s|@BIN_PATH@|$BIN_PATH|g" "$SCRIPT_DIR/packaging/fleetbox.service" >"$tmp"
chmod 0644 -- "$tmp"
if [ -f "$D_UNIT" ] && cmp -s -- "$tmp" "$D_UNIT"; then
    note "systemd unit $D_UNIT is up to date"
else
    mv -f -- "$tmp" "$D_UNIT"
    CHANGED=1
    note "installed systemd unit $D_UNIT"
fi

# ---------------------------------------------------------------- service
MANUAL_START="sudo -u $SVC_USER FLEETBOX_DATA_DIR=$DATA_DIR $BIN_PATH serve --config $CONF_PATH"
STARTED=0
if [ "$STAGED" = 1 ]; then
    would "systemctl daemon-reload"
    if [ "$NO_START" = 0 ]; then
        would "systemctl enable --now $SERVICE"
    fi
elif systemd_running; then
    systemctl daemon-reload
    if [ "$NO_START" = 0 ]; then
        was_active=0
        systemctl is-active --quiet "$SERVICE" && was_active=1
        systemctl enable --now "$SERVICE"
        if [ "$was_active" = 1 ] && [ "$CHANGED" = 1 ]; then
            systemctl restart "$SERVICE"
            note "restarted $SERVICE (binary or unit changed)"
        fi
        STARTED=1
        note "service $SERVICE enabled and started"
    fi
fi

# ---------------------------------------------------------------- summary
cat <<EOF

fleetbox is installed${PREFIX:+ below $PREFIX}.

  binary        $D_BIN
  configuration $D_CONF
  data          $D_DATA
  systemd unit  $D_UNIT

EOF

if [ "$STARTED" = 1 ]; then
    cat <<EOF
The service is running:   systemctl status $SERVICE    journalctl -u $SERVICE -f
EOF
elif [ "$STAGED" = 0 ] && systemd_running; then
    cat <<EOF
Start the service with:   systemctl enable --now $SERVICE
EOF
else
    cat <<EOF
Start the service with:   systemctl enable --now $SERVICE   (on a systemd machine)
or by hand:
  $MANUAL_START
EOF
fi

cat <<EOF

Create the first admin user:
  sudo -u $SVC_USER fleetbox user add --data-dir $DATA_DIR --email admin@example.com --password '…' --role admin
or set FLEETBOX_ADMIN_EMAIL and FLEETBOX_ADMIN_PASSWORD in the environment of the first start
(e.g. with 'systemctl edit $SERVICE').

TLS certificate (self-signed, generated on first start unless tls_cert/tls_key are set):
  $DATA_DIR/tls/cert.pem
  fleetbox cert --data-dir $DATA_DIR     prints its SHA-256 fingerprint for device configuration
EOF
