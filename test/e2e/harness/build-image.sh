#!/bin/bash
# build-image.sh - build the debian-12-lab guest image, or reuse a verified one.
# Layout: ${LAB_CACHE_DIR:-/var/cache/lab/images}/debian-12-lab/
#   {disk.qcow2, vmlinuz, initrd.img, manifest.json, packages.txt}
# Reuse needs manifest.json and every file it lists to match its sha256
# (a crash mid-build never leaves a manifest: build.sh moves the whole dir at the end).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
DIR=${LAB_CACHE_DIR:-/var/cache/lab/images}/debian-12-lab
MANIFEST=$DIR/manifest.json

# verify: every "file": "hex" pair of the manifest's sha256 map matches the file.
verify() {
  local pairs name sum n=0
  [ -f "$MANIFEST" ] || return 1
  # Lines look like `    "disk.qcow2": "<64 hex>"` (build.sh writes them one per line).
  pairs=$(sed -nE 's/^[[:space:]]*"([^"]+)":[[:space:]]*"([0-9a-f]{64})".*/\1 \2/p' "$MANIFEST")
  grep -q '^disk.qcow2 ' <<<"$pairs" || return 1
  while read -r name sum; do
    [ -f "$DIR/$name" ] || { echo "build-image: $name missing" >&2; return 1; }
    [ "$(sha256sum "$DIR/$name" | cut -d' ' -f1)" = "$sum" ] \
      || { echo "build-image: $name does not match its sha256" >&2; return 1; }
    n=$((n + 1))
  done <<<"$pairs"
  [ "$n" -ge 1 ]
}

if verify; then
  # The base is shared by every overlay: read-only for everyone, lab included (S13).
  chmod 0444 "$DIR/disk.qcow2"
  echo "build-image: reusing $DIR (built $(sed -nE 's/.*"built": "([^"]+)".*/\1/p' "$MANIFEST"))"
  exit 0
fi
echo "build-image: building $DIR" >&2
bash "$REPO/vm-templates/debian-12-lab/build.sh" "$DIR" </dev/null
chmod 0444 "$DIR/disk.qcow2"
