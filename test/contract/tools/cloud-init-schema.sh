#!/usr/bin/env bash
# cloud-init-schema.sh FILE — `cloud-init schema --config-file FILE` without installing
# cloud-init on the host (its package adds boot-time units). The distribution's cloud-init
# (22.4 on Debian 12) and its Python dependencies are unpacked once with `apt-get download`
# + `dpkg -x` into ${LAB_TOOLS_DIR:-/var/cache/lab/tools}/cloud-init and run with the
# host's /usr/bin/python3 (FINDINGS §4 (b)). Later runs reuse the cache.
set -euo pipefail
die() { echo "cloud-init-schema.sh: $*" >&2; exit 127; }
[ $# -eq 1 ] || die "usage: cloud-init-schema.sh FILE"
DIR=${LAB_TOOLS_DIR:-/var/cache/lab/tools}/cloud-init
PKGS=(cloud-init python3-jsonschema python3-attr python3-pyrsistent python3-jinja2 python3-markupsafe
  python3-configobj python3-jsonpatch python3-json-pointer python3-requests python3-urllib3 python3-idna
  python3-certifi python3-chardet python3-charset-normalizer python3-six python3-yaml python3-netifaces)
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 not found (the distribution's python3 runs cloud-init)"

if [ ! -x "$DIR/x/usr/bin/cloud-init" ]; then
  for t in apt-get dpkg flock; do
    command -v "$t" >/dev/null || die "$t not found: fetching cloud-init needs a Debian or Ubuntu host"
  done
  mkdir -p "${DIR%/*}" || die "cannot create ${DIR%/*}: set LAB_TOOLS_DIR to a writable directory"
  # Parallel test workers: one fetches, the others wait for it.
  exec 9>"$DIR.lock"
  flock 9
  if [ ! -x "$DIR/x/usr/bin/cloud-init" ]; then
    tmp=$(mktemp -d "$DIR.XXXXXX")
    chmod 0755 "$tmp" # apt's _apt user downloads into it
    fetch() { (cd "$tmp" && apt-get download -q "${PKGS[@]}" >/dev/null); }
    fetch || { apt-get update -q >/dev/null && fetch; } ||
      { rm -rf "$tmp"; die "apt-get download of ${PKGS[*]} failed (no network or no apt sources?)"; }
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
    rm -f "$tmp"/*.deb
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
  fi
  exec 9>&-
fi
exec env PYTHONPATH="$DIR/x/usr/lib/python3/dist-packages" /usr/bin/python3 "$DIR/x/usr/bin/cloud-init" \
  schema --config-file "$1"
