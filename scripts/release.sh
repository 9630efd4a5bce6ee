#!/usr/bin/env bash
# Builds fleetbox's release artefacts on an x86_64 Debian machine:
#
#   target/<triple>/release/fleetbox   static, stripped binaries for
#                                      x86_64-unknown-linux-musl, aarch64-unknown-linux-musl
#                                      and armv7-unknown-linux-musleabihf
#   target/debian/fleetbox_<version>_<arch>.deb   for amd64, arm64 and armhf
#
#   scripts/release.sh                  everything
#   scripts/release.sh --targets "aarch64-unknown-linux-musl"   a subset
#   scripts/release.sh --no-deb         binaries only
#
# Why cargo-zigbuild with the `ziglang` wheel from PyPI: the binaries bundle C code (SQLite,
# zstd, xz, ring's assembly) that needs a C cross compiler and a musl libc for each target.
# Zig ships both for every target in one ~50 MB download, from a registry this kind of machine
# reaches, and cargo-zigbuild makes it cargo's linker and C compiler; Debian's cross toolchains
# would be three apt packages of glibc compilers plus a separately built musl for each.
# Both install as prebuilt wheels in seconds.
#
# armv7: this toolchain's registry mirror has no prebuilt standard library for
# armv7-unknown-linux-musleabihf, so it is compiled from the rust-src component with
# `-Z build-std`, which a stable compiler accepts only with RUSTC_BOOTSTRAP=1 (the same
# compiler and the same source, so the result is what the prebuilt library would give). Where the
# prebuilt one installs (`rustup target add` succeeds), it is used instead.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf"
DEB=1
ZIG_VERSION=0.15.2
ZIGBUILD_VERSION=0.24.1
DEB_VERSION=3.8.0

while [ $# -gt 0 ]; do
    case "$1" in
        --targets) TARGETS=$2; shift 2 ;;
        --no-deb) DEB=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "release.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

log() { printf '==> %s\n' "$*"; }

# ---------------------------------------------------------------- tools
# zig and cargo-zigbuild both come as PyPI wheels (prebuilt), into one venv under target/.
TOOLS=$TARGET_DIR/tools/zig-venv
if [ ! -x "$TOOLS/bin/cargo-zigbuild" ] ||
    ! "$TOOLS/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIG_VERSION"; then
    log "Installing zig $ZIG_VERSION and cargo-zigbuild $ZIGBUILD_VERSION (PyPI) into $TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION"
fi
# cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH.
export PATH=$TOOLS/bin:$HOME/.cargo/bin:$PATH

if [ "$DEB" = 1 ] && ! command -v cargo-deb >/dev/null; then
    log "Installing cargo-deb $DEB_VERSION from crates.io"
    cargo install --locked cargo-deb --version "$DEB_VERSION"
fi

# ---------------------------------------------------------------- binaries
for t in $TARGETS; do
    build_std=()
    if ! rustup target list --installed | grep -qx "$t"; then
        if ! rustup target add "$t" >/dev/null 2>&1; then
            log "No prebuilt standard library for $t: building it from rust-src"
            rustup component add rust-src >/dev/null
            build_std=(-Z "build-std=std,panic_abort")
        fi
    fi
    log "Building $t"
    if [ ${#build_std[@]} -gt 0 ]; then
        # A standard library built from source comes without the C runtime start files
        # (crt1.o, …) that rustc links itself: zig's musl provides them instead.
        flags_var=CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
        env "$flags_var=-C link-self-contained=no" RUSTC_BOOTSTRAP=1 \
            cargo zigbuild --release --locked --bin fleetbox --target "$t" "${build_std[@]}"
    else
        cargo zigbuild --release --locked --bin fleetbox --target "$t"
    fi
    bin=$TARGET_DIR/$t/release/fleetbox
    desc=$(file -b "$bin")
    case "$desc" in
        *"statically linked"*|*"static-pie linked"*) ;;
        *) echo "release.sh: $bin is not statically linked: $desc" >&2; exit 1 ;;
    esac
    case "$desc" in
        *", stripped"*) ;;
        *) echo "release.sh: $bin is not stripped: $desc" >&2; exit 1 ;;
    esac
    printf '    %s: %s bytes; %s\n' "$bin" "$(stat -c %s "$bin")" "$desc"
done

# ---------------------------------------------------------------- Debian packages
if [ "$DEB" = 1 ]; then
    "$ROOT/packaging/debian/stage.sh" "$TARGET_DIR/debian-staging"
    mkdir -p "$TARGET_DIR/debian"
    for t in $TARGETS; do
        log "Packaging $t"
        cargo deb --no-build --no-strip --target "$t" --output "$TARGET_DIR/debian/"
    done
    ls -l "$TARGET_DIR/debian/"*.deb
fi
