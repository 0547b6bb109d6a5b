# test/e2e/harness/shim-pause.sh — sourced by the shims (virsh-shim.sh, log-shim.sh):
# LAB_SHIM_PAUSE=TOOL:WORD (virsh:define, qemu-img:create, xorriso:) holds that call
# before it runs: it makes the file $LAB_SHIM_PAUSE_MARK, then waits (up to 120 s) for
# $LAB_SHIM_PAUSE_MARK.go, so that a test can signal lab while lab waits for this child.
# shim_pause TOOL ARGS...
shim_pause() {
  [ -n "${LAB_SHIM_PAUSE:-}" ] && [ -n "${LAB_SHIM_PAUSE_MARK:-}" ] || return 0
  tool=$1
  shift
  [ "$tool" = "${LAB_SHIM_PAUSE%%:*}" ] || return 0
  word=${LAB_SHIM_PAUSE#*:}
  if [ -n "$word" ]; then
    hit=''
    for a in "$@"; do [ "$a" = "$word" ] && hit=1; done
    [ -n "$hit" ] || return 0
  fi
  : >"$LAB_SHIM_PAUSE_MARK"
  i=0
  while [ ! -e "$LAB_SHIM_PAUSE_MARK.go" ] && [ "$i" -lt 1200 ]; do
    sleep 0.1
    i=$((i + 1))
  done
}
