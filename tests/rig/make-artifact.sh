#!/usr/bin/env bash
# make-artifact.sh -- build small .mender artifacts for tests with the real
# mender-artifact (Debian package mender-artifact, 3.9).
#
# The payloads install only below DEST (default /usr/share/mender/rig-dest/
# <kind>). mender-device.sh runs the client with DIR/share mounted over
# /usr/share/mender, so on the host the files appear in
# DIR/share/rig-dest/<kind>/ of the device that installed them.
set -euo pipefail

PROG=${0##*/}
DEST_ROOT=/usr/share/mender/rig-dest

usage() {
  cat <<'EOF'
usage: make-artifact.sh KIND ...

  single-file NAME DEVICE_TYPE OUT.mender [common options]
      [--file-name F]    name of the installed file (default payload.txt)
      [--content TEXT]   its content (default "artifact NAME\n")
      [--size BYTES]     instead: BYTES of random data (for big downloads)
      installs DEST/F with the shipped single-file update module
  script NAME DEVICE_TYPE OUT.mender [--fail] [--exit-code N] [common options]
      script update module: the script writes DEST/NAME.ran; with --fail it
      prints an error on stderr and exits N (default 3), so the client
      reports "failure" and uploads the deployment log
  directory NAME DEVICE_TYPE OUT.mender [common options]
      directory update module: DEST is replaced by a small tree
      (a.txt containing NAME, sub/b.txt)
  signed NAME DEVICE_TYPE OUT.mender KEYDIR [single-file options]
      a single-file artifact signed with KEYDIR/artifact-sign.key; the key
      pair (and KEYDIR/artifact-verify.pub.pem) is generated if missing
  keygen PRIVATE.pem PUBLIC.pem
      RSA-3072 signing key in the PKCS#1 form mender-artifact wants, and its
      public key (SPKI PEM) for the client's ArtifactVerifyKey
      (mender-device.sh init --verify-key PUBLIC.pem)
  help

common options:
  --dest DIR          device-side destination (default
                      /usr/share/mender/rig-dest/<kind>)
  --sign KEY.pem      sign with this key (see keygen)
  --compression C     none | gzip (default) | lzma
  -- ARGS...          extra mender-artifact arguments, e.g.
                      -- --provides rig.version:2 --depends rig.base:1

DEVICE_TYPE may be a comma-separated list (artifact compatible with each).
Prints OUT.mender's path. Exits 0 on success, 1 on failure, 2 on usage error.
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
fail() { echo "$PROG: $*" >&2; exit 1; }

cmd_keygen() {
  [ $# -eq 2 ] || die "keygen: need PRIVATE.pem PUBLIC.pem"
  # mender-artifact only parses PKCS#1 RSA keys ("BEGIN RSA PRIVATE KEY");
  # a PKCS#8 key gives "x509: failed to parse private key"
  openssl genrsa -traditional -out "$1" 3072 2>/dev/null || fail "keygen: openssl failed"
  chmod 600 "$1"
  openssl pkey -in "$1" -pubout -out "$2" || fail "keygen: openssl failed"
  echo "$1"
  echo "$2"
}

build() {
  local kind=$1
  shift
  [ $# -ge 3 ] || die "$kind: need NAME DEVICE_TYPE OUT.mender"
  local name=$1 dtypes=$2 out=$3
  shift 3
  local dest=$DEST_ROOT/$kind sign='' compression='' fname=payload.txt
  local content='' size='' failing=0 code=3
  local -a extra=()
  while [ $# -gt 0 ]; do
    case $1 in
      --dest) dest=${2:?--dest needs a path}; shift 2 ;;
      --sign) sign=${2:?--sign needs a key}; shift 2 ;;
      --compression) compression=${2:?--compression needs a value}; shift 2 ;;
      --file-name) fname=${2:?--file-name needs a name}; shift 2 ;;
      --content) content=${2?--content needs text}; shift 2 ;;
      --size) size=${2:?--size needs bytes}; shift 2 ;;
      --fail) failing=1; shift ;;
      --exit-code) code=${2:?--exit-code needs a number}; failing=1; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) die "$kind: unknown option $1" ;;
    esac
  done
  case $out in '' | */) die "$kind: OUT.mender must be a file name" ;; esac
  [ ! -d "$out" ] || die "$kind: $out is a directory"
  case $dest in /*) ;; *) die "--dest must be an absolute device path" ;; esac
  [ "$dest" != / ] || die "--dest / is not allowed"
  [ -z "$sign" ] || [ -f "$sign" ] || die "no such key: $sign"
  case $size in '' | [0-9]*) ;; *) die "--size must be a number" ;; esac
  case $fname in */* | '') die "--file-name must be a plain file name" ;; esac
  command -v mender-artifact >/dev/null || fail "mender-artifact not found: install the Debian package mender-artifact"

  local outdir
  outdir=$(dirname -- "$out")
  mkdir -p "$outdir"
  out=$(cd "$outdir" && pwd)/$(basename -- "$out")
  if [ -n "$sign" ]; then
    sign=$(cd "$(dirname -- "$sign")" && pwd)/$(basename -- "$sign")
  fi

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/rig-artifact.XXXXXX")
  # shellcheck disable=SC2064  # expand now: the variable is local
  trap "rm -rf '$work'" EXIT
  local -a args=(write module-image -T "$kind" -n "$name" -o "$out")
  local t
  local -a types=()
  IFS=',' read -r -a types <<<"$dtypes"
  for t in "${types[@]}"; do
    [ -n "$t" ] && args+=(-t "$t")
  done

  case $kind in
    single-file)
      # the three control files are what single-file-artifact-gen writes
      printf '%s\n' "$dest" >"$work/dest_dir"
      printf '%s\n' "$fname" >"$work/filename"
      printf '644\n' >"$work/permissions"
      if [ -n "$size" ]; then
        head -c "$size" /dev/urandom >"$work/$fname"
      elif [ -n "$content" ]; then
        printf '%s' "$content" >"$work/$fname"
      else
        printf 'artifact %s\n' "$name" >"$work/$fname"
      fi
      args+=(-f "$work/dest_dir" -f "$work/filename" -f "$work/permissions" -f "$work/$fname")
      ;;
    script)
      {
        echo "#!/bin/sh"
        echo "# install step of test artifact $name"
        echo "mkdir -p '$dest'"
        echo "date -u +%Y-%m-%dT%H:%M:%SZ > '$dest/$name.ran'"
        if [ "$failing" = 1 ]; then
          echo "echo 'rig test artifact $name fails on purpose (exit $code)' >&2"
          echo "exit $code"
        fi
      } >"$work/install.sh"
      chmod 755 "$work/install.sh"
      args+=(-f "$work/install.sh")
      ;;
    directory)
      mkdir -p "$work/tree/sub"
      printf '%s\n' "$name" >"$work/tree/a.txt"
      printf 'b\n' >"$work/tree/sub/b.txt"
      tar -cf "$work/update.tar" -C "$work/tree" .
      printf '%s\n' "$dest" >"$work/dest_dir"
      args+=(-f "$work/update.tar" -f "$work/dest_dir")
      ;;
  esac
  [ -z "$sign" ] || args+=(-k "$sign")
  [ -z "$compression" ] || args+=(--compression "$compression")
  args+=(${extra[@]+"${extra[@]}"})

  rm -f "$out"
  local log=$work/mender-artifact.log
  if ! mender-artifact "${args[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$kind: mender-artifact failed"
  fi
  local bytes
  bytes=$(stat -c %s "$out")
  # the client refuses to download artifacts shorter than 4096 bytes
  [ "$bytes" -ge 4096 ] || echo "$PROG: warning: $out is only $bytes bytes; the client refuses < 4096" >&2
  echo "$out"
}

cmd_signed() {
  [ $# -ge 4 ] || die "signed: need NAME DEVICE_TYPE OUT.mender KEYDIR"
  local name=$1 dtypes=$2 out=$3 keydir=$4
  shift 4
  mkdir -p "$keydir"
  if [ ! -f "$keydir/artifact-sign.key" ]; then
    cmd_keygen "$keydir/artifact-sign.key" "$keydir/artifact-verify.pub.pem" >/dev/null
  fi
  build single-file "$name" "$dtypes" "$out" --sign "$keydir/artifact-sign.key" "$@"
}

[ $# -gt 0 ] || { usage >&2; exit 2; }
sub=$1
shift
case $sub in
  help | -h | --help) usage ;;
  keygen) cmd_keygen "$@" ;;
  signed) cmd_signed "$@" ;;
  single-file | script | directory) build "$sub" "$@" ;;
  *) echo "$PROG: unknown kind '$sub'" >&2; usage >&2; exit 2 ;;
esac
