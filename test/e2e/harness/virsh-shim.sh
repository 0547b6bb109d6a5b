#!/bin/sh
# test/e2e/harness/virsh-shim.sh — installed as `virsh` first on PATH by the partial-failure
# e2e test: it refuses one call, as a libvirtd that rejects a definition or cannot start a
# guest would, or restarts the harness's libvirtd around one call, and hands every other
# call to the real virsh unchanged.
#   VIRSH_SHIM_FAIL_START=DOMAIN     refuse `start --domain DOMAIN`
#   VIRSH_SHIM_FAIL_DEFINE=DOMAIN    refuse `define --file F` when F defines <name>DOMAIN</name>
#   VIRSH_SHIM_RESTART_BEFORE_DEFINE=DOMAIN
#                                    stop libvirtd, make that define with the real virsh
#                                    (it finds no libvirt and says so), start libvirtd
#                                    again in the background; exit as virsh did
#   VIRSH_SHIM_RESTART_AFTER_START=DOMAIN
#                                    make `start --domain DOMAIN` for real, then stop
#                                    libvirtd (started again in the background) and lose
#                                    the reply: print libvirt's words for a dropped
#                                    connection and exit 1
#   VIRSH_SHIM_RESTART_AFTER=VERB:DOMAIN
#                                    make that call (snapshot-create, snapshot-revert, …)
#                                    for real, then as RESTART_AFTER_START: libvirtd
#                                    stopped and started again, the reply lost
#   VIRSH_SHIM_MARKS=DIR             each restart happens once: a mark file in DIR says done
#   VIRSH_SHIM_LOG=FILE              append every call's arguments to FILE, one call a line:
#                                    what lab asked of libvirt, seen from outside lab
#   LAB_SHIM_PAUSE=virsh:VERB        hold that call before it runs (shim-pause.sh)
# A refusal prints one line on stderr and exits 1, as virsh does.
set -eu
REAL=${VIRSH_SHIM_REAL:-/usr/bin/virsh}
LABNS=$(dirname "$(readlink -f "$0")")/labns.sh
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

# libvirtd_away: the harness stops its own libvirtd (by the PID it recorded) and starts it
# again in the background, so that whatever runs next finds no libvirt for a moment.
libvirtd_away() {
  bash "$LABNS" stop-libvirtd >>"$STATE/log/shim-restarts.log" 2>&1
  setsid bash "$LABNS" start-libvirtd </dev/null >>"$STATE/log/shim-restarts.log" 2>&1 &
}
# once NAME: true the first time only (the mark is made then).
once() {
  [ -n "${VIRSH_SHIM_MARKS:-}" ] || return 0
  [ ! -e "$VIRSH_SHIM_MARKS/$1" ] || return 1
  : >"$VIRSH_SHIM_MARKS/$1"
}

if [ -n "${VIRSH_SHIM_LOG:-}" ]; then
  printf '%s\n' "$*" >>"$VIRSH_SHIM_LOG"
fi
. "$(dirname "$(readlink -f "$0")")/shim-pause.sh"
shim_pause virsh "$@"
if [ "$verb" = start ] && [ -n "${VIRSH_SHIM_FAIL_START:-}" ] && [ "$domain" = "$VIRSH_SHIM_FAIL_START" ]; then
  echo "error: injected: start of $domain refused" >&2
  exit 1
fi
if [ "$verb" = define ] && [ -n "${VIRSH_SHIM_FAIL_DEFINE:-}" ] && [ -n "$file" ] &&
  grep -qF "<name>$VIRSH_SHIM_FAIL_DEFINE</name>" "$file"; then
  echo "error: injected: define of $VIRSH_SHIM_FAIL_DEFINE refused" >&2
  exit 1
fi
if [ "$verb" = define ] && [ -n "${VIRSH_SHIM_RESTART_BEFORE_DEFINE:-}" ] && [ -n "$file" ] &&
  grep -qF "<name>$VIRSH_SHIM_RESTART_BEFORE_DEFINE</name>" "$file" && once restart-before-define; then
  # The real virsh, while libvirtd is surely stopped: its own words for that.
  bash "$LABNS" stop-libvirtd >>"$STATE/log/shim-restarts.log" 2>&1
  rc=0
  "$REAL" "$@" || rc=$?
  setsid bash "$LABNS" start-libvirtd </dev/null >>"$STATE/log/shim-restarts.log" 2>&1 &
  exit "$rc"
fi
if [ "$verb" = start ] && [ -n "${VIRSH_SHIM_RESTART_AFTER_START:-}" ] &&
  [ "$domain" = "$VIRSH_SHIM_RESTART_AFTER_START" ] && once restart-after-start; then
  "$REAL" "$@"
  libvirtd_away
  echo "error: End of file while reading data: Input/output error" >&2
  exit 1
fi
if [ -n "${VIRSH_SHIM_RESTART_AFTER:-}" ] && [ "$domain" = "${VIRSH_SHIM_RESTART_AFTER#*:}" ]; then
  want=${VIRSH_SHIM_RESTART_AFTER%%:*}
  for a in "$@"; do
    if [ "$a" = "$want" ] && once "restart-after-$want"; then
      "$REAL" "$@"
      libvirtd_away
      echo "error: End of file while reading data: Input/output error" >&2
      exit 1
    fi
  done
fi
exec "$REAL" "$@"
