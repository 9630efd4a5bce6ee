#!/usr/bin/env bash
# gen-cert.sh OUT_DIR -- self-signed TLS certificate for a server on the
# loopback interface: OUT_DIR/server.crt and OUT_DIR/server.key.
# The subject alternative names (DNS:localhost, IP:127.0.0.1) matter: the
# mender client (OpenSSL) and mender-cli (Go) both check the host name
# against the SAN, not the CN. Pass server.crt to
# `mender-device.sh init --cert` and `mender-cli.sh --cert`.
set -euo pipefail
out=${1:?usage: gen-cert.sh OUT_DIR}
mkdir -p "$out"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$out/server.key" -out "$out/server.crt" 2>/dev/null
chmod 600 "$out/server.key"
echo "$out/server.crt"
echo "$out/server.key"
