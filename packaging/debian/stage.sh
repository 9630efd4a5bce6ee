#!/usr/bin/env bash
# Renders the files the Debian package takes from packaging/ into packaging/debian/generated/
# (ignored by git), where Cargo.toml's [package.metadata.deb] finds them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/generated
rm -rf "$out"
mkdir -p "$out"
sed "s|@BIN_PATH@|/usr/bin/fleetbox|g" "$here/../fleetbox.service" >"$out/fleetbox.service"
cp "$here/../fleetbox.toml" "$out/fleetbox.toml"
