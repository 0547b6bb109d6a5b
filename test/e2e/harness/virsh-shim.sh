#!/bin/sh
# test/e2e/harness/virsh-shim.sh — installed as `virsh` first on PATH by the partial-failure
# e2e test: it refuses one call, as a libvirtd that rejects a definition or cannot start a
# guest would, and hands every other call to the real virsh unchanged.
#   VIRSH_SHIM_FAIL_START=DOMAIN   refuse `start --domain DOMAIN`
#   VIRSH_SHIM_FAIL_DEFINE=DOMAIN  refuse `define --file F` when F defines <name>DOMAIN</name>
# A refusal prints one line on stderr and exits 1, as virsh does.
set -eu
REAL=${VIRSH_SHIM_REAL:-/usr/bin/virsh}
verb='' prev='' file='' domain=''
for a in "$@"; do
  case $prev in
    --file) file=$a ;;
    --domain) domain=$a ;;
  esac
  case $a in
    start | define) [ -n "$verb" ] || verb=$a ;;
  esac
  prev=$a
done
if [ "$verb" = start ] && [ -n "${VIRSH_SHIM_FAIL_START:-}" ] && [ "$domain" = "$VIRSH_SHIM_FAIL_START" ]; then
  echo "error: injected: start of $domain refused" >&2
  exit 1
fi
if [ "$verb" = define ] && [ -n "${VIRSH_SHIM_FAIL_DEFINE:-}" ] && [ -n "$file" ] &&
  grep -qF "<name>$VIRSH_SHIM_FAIL_DEFINE</name>" "$file"; then
  echo "error: injected: define of $VIRSH_SHIM_FAIL_DEFINE refused" >&2
  exit 1
fi
exec "$REAL" "$@"
