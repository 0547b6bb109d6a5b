#!/usr/bin/env bash
# cloud-init-schema.sh FILE — `cloud-init schema --config-file FILE` without installing
# cloud-init on the host (its package adds boot-time units): Debian's cloud-init 22.4 and
# its Python dependencies are unpacked once with `apt-get download` + `dpkg -x` into
# ${LAB_TOOLS_DIR:-/var/cache/lab/tools}/cloud-init and run with the host's python3.
set -euo pipefail
DIR=${LAB_TOOLS_DIR:-/var/cache/lab/tools}/cloud-init
PKGS=(cloud-init python3-jsonschema python3-attr python3-pyrsistent python3-jinja2 python3-markupsafe
  python3-configobj python3-jsonpatch python3-json-pointer python3-requests python3-urllib3 python3-idna
  python3-certifi python3-chardet python3-charset-normalizer python3-six python3-yaml python3-netifaces)
if [ ! -x "$DIR/x/usr/bin/cloud-init" ]; then
  tmp=$(mktemp -d "${DIR%/*}/.cloud-init.XXXXXX" 2>/dev/null || { mkdir -p "${DIR%/*}"; mktemp -d "${DIR%/*}/.cloud-init.XXXXXX"; })
  chmod 0755 "$tmp"   # apt's _apt user downloads into it
  (cd "$tmp" && apt-get download -q "${PKGS[@]}" >/dev/null) || { apt-get update -q >/dev/null && (cd "$tmp" && apt-get download -q "${PKGS[@]}" >/dev/null); }
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
  rm -f "$tmp"/*.deb
  rm -rf "$DIR"; mv "$tmp" "$DIR"
fi
exec env PYTHONPATH="$DIR/x/usr/lib/python3/dist-packages" /usr/bin/python3 "$DIR/x/usr/bin/cloud-init" schema --config-file "$1"
