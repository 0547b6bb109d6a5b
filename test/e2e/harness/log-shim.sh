#!/bin/sh
# test/e2e/harness/log-shim.sh — installed (as a symlink named qemu-img, xorriso or
# genisoimage) in a folder first on PATH: appends "NAME ARGS" to $VIRSH_SHIM_LOG, the
# same log the virsh shim writes, then runs the real program (PATH without this folder);
# LAB_SHIM_PAUSE=TOOL:WORD holds the call first (shim-pause.sh).
# What lab made on disk, seen from outside lab.
set -eu
name=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${VIRSH_SHIM_LOG:-}" ]; then
  printf '%s %s\n' "$name" "$*" >>"$VIRSH_SHIM_LOG"
fi
. "$(dirname "$(readlink -f "$0")")/shim-pause.sh"
shim_pause "$name" "$@"
rest=''
IFS=:
for d in $PATH; do
  [ "$d" = "$here" ] || rest=${rest:+$rest:}$d
done
unset IFS
PATH=$rest exec "$name" "$@"
