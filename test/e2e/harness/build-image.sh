#!/bin/bash
# build-image.sh [NAME...] - build the project's guest images, or reuse verified ones
# (default: debian-12-lab and debian-12-ignition, the two templates the e2e suite boots).
# Layout: ${LAB_CACHE_DIR:-/var/cache/lab/images}/NAME/
#   {disk.qcow2, vmlinuz, initrd.img, manifest.json, packages.txt}
# Reuse needs manifest.json and every file it lists to match its sha256
# (a crash mid-build never leaves a manifest: build.sh moves the whole dir at the end).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
[ $# -gt 0 ] || set -- debian-12-lab debian-12-ignition

# verify DIR: every "file": "hex" pair of DIR's manifest sha256 map matches the file.
verify() {
  local dir=$1 pairs name sum n=0
  [ -f "$dir/manifest.json" ] || return 1
  # Lines look like `    "disk.qcow2": "<64 hex>"` (build.sh writes them one per line).
  pairs=$(sed -nE 's/^[[:space:]]*"([^"]+)":[[:space:]]*"([0-9a-f]{64})".*/\1 \2/p' "$dir/manifest.json")
  grep -q '^disk.qcow2 ' <<<"$pairs" || return 1
  while read -r name sum; do
    [ -f "$dir/$name" ] || { echo "build-image: $dir/$name missing" >&2; return 1; }
    [ "$(sha256sum "$dir/$name" | cut -d' ' -f1)" = "$sum" ] \
      || { echo "build-image: $dir/$name does not match its sha256" >&2; return 1; }
    n=$((n + 1))
  done <<<"$pairs"
  [ "$n" -ge 1 ]
}

for name in "$@"; do
  dir=${LAB_CACHE_DIR:-/var/cache/lab/images}/$name
  if verify "$dir"; then
    # The base is shared by every overlay: read-only for everyone, lab included (S13).
    chmod 0444 "$dir/disk.qcow2"
    echo "build-image: reusing $dir (built $(sed -nE 's/.*"built": "([^"]+)".*/\1/p' "$dir/manifest.json"))"
    continue
  fi
  echo "build-image: building $dir" >&2
  bash "$REPO/vm-templates/$name/build.sh" "$dir" </dev/null
  chmod 0444 "$dir/disk.qcow2"
done
