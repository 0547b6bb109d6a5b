#!/bin/bash
# labns.sh up|down|env|status - the e2e harness's private world.
#
# Network: netns $NS holds bridge $BR ($BR_CIDR) and nothing else. There is no
# veth to the root namespace, so guest traffic cannot leave it; ssh/etcdctl to
# guests run via `ip netns exec $NS ...`.
# libvirt: a private libvirtd + virtlogd run inside the netns (their taps land
# on $BR) and inside the mount namespace `ip netns exec` creates, where
# /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and
# /etc/libvirt are bind mounts of $STATE/{run,lib,cache,log,etc}. Clients in
# the root netns use the socket path (AF_UNIX ignores network namespaces):
#   eval "$(labns.sh env)"; virsh list --all
# Env: NS (labtest), BR (labbr0), BR_CIDR (10.77.0.1/24),
#      STATE (/var/tmp/lab-e2e/libvirt), WAIT_S (60: bound on every wait).
set -euo pipefail
NS=${NS:-labtest}
BR=${BR:-labbr0}
BR_CIDR=${BR_CIDR:-10.77.0.1/24}
STATE=${STATE:-/var/tmp/lab-e2e/libvirt}
WAIT_S=${WAIT_S:-60}
SOCK=$STATE/run/libvirt-sock
URI="qemu:///system?socket=$SOCK"
DAEMONS="libvirtd virtlogd"

log() { printf 'labns: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
v() { virsh -q -c "$URI" "$@" </dev/null; }
has_ns() { [ -e "/run/netns/$NS" ]; }

# pid_of NAME: the live PID from STATE/NAME.pid, only if it is still that
# daemon (a recycled PID must never be signalled). Zombies count as gone: a
# daemon started with -d is reparented to PID 1, which may reap it late.
pid_of() {
  local f=$STATE/$1.pid p
  # The daemon deletes its pid file as it exits: tolerate it vanishing here.
  p=$(cat "$f" 2>/dev/null) && [ -n "$p" ] || return 1
  [ -r "/proc/$p/stat" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] || return 1
  [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || return 1
  echo "$p"
}

# A usable world: netns, bridge, both daemons and an answering socket.
is_up() {
  has_ns && ip -n "$NS" link show "$BR" >/dev/null 2>&1 \
    && pid_of libvirtd >/dev/null && pid_of virtlogd >/dev/null \
    && [ -S "$SOCK" ] && v uri >/dev/null 2>&1
}

up() {
  local t0; t0=$(now)
  [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
  if is_up; then log "already up (netns $NS, $URI)"; return 0; fi
  if has_ns || pid_of libvirtd >/dev/null || pid_of virtlogd >/dev/null; then
    log "partial state found; tearing it down first"
    down
  fi

  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip -n "$NS" link add "$BR" type bridge stp_state 0 forward_delay 0
  ip -n "$NS" addr add "$BR_CIDR" dev "$BR"
  ip -n "$NS" link set "$BR" up

  # Fresh config and runtime state each time; the capability cache is kept
  # (libvirt revalidates it against the QEMU binary) to skip a ~4 s probe.
  mkdir -p "$STATE"
  rm -rf "$STATE/run" "$STATE/lib" "$STATE/etc"
  mkdir -p "$STATE"/{run,lib,cache,log,etc}
  chmod 0755 "$STATE" "$STATE/lib"
  cp -a /etc/libvirt/. "$STATE/etc/"
  # No host domains, networks, pools or autostart links in the private daemon.
  rm -rf "$STATE"/etc/qemu/*.xml "$STATE"/etc/qemu/autostart \
         "$STATE"/etc/qemu/networks "$STATE"/etc/storage
  mkdir -p "$STATE/etc/qemu/networks/autostart"
  # /dev/kvm here is crw------- root: libvirt's probe (CAP_DAC_OVERRIDE) sees
  # KVM, its check as libvirt-qemu does not, so capabilities are re-probed on
  # every call (define ~60 s). Hiding /dev/kvm behind an unreadable empty file
  # makes both agree on "no KVM"; the per-domain /dev namespace would then fail
  # to move that file into place at start, so turn namespaces off
  # (FINDINGS.md section 4). Only this daemon's mount namespace is affected.
  sed -i '/^[[:space:]]*namespaces[[:space:]]*=/d' "$STATE/etc/qemu.conf"
  echo 'namespaces = [ ]' >> "$STATE/etc/qemu.conf"
  rm -f "$STATE/nokvm"; : > "$STATE/nokvm"; chmod 000 "$STATE/nokvm"
  rm -f "$STATE/libvirtd.pid" "$STATE/virtlogd.pid"
  mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt

  # `ip netns exec` unshares a mount namespace (slave to the host's), so these
  # mounts are seen by the daemons started below and never by the host.
  ip netns exec "$NS" /bin/sh -ec '
    S=$1
    mount --bind "$S/run"   /run/libvirt
    mount --bind "$S/lib"   /var/lib/libvirt
    mount --bind "$S/cache" /var/cache/libvirt
    mount --bind "$S/log"   /var/log/libvirt
    mount --bind "$S/etc"   /etc/libvirt
    if [ -e /dev/kvm ]; then mount --bind "$S/nokvm" /dev/kvm; fi
    # -p: the default /run/libvirtd.pid would clash with a host libvirtd.
    virtlogd -d -p "$S/virtlogd.pid"
    libvirtd -d -p "$S/libvirtd.pid"
  ' labns "$STATE" </dev/null >>"$STATE/log/daemons.log" 2>&1 \
    || { log "starting the daemons failed; see $STATE/log/daemons.log"; exit 1; }

  local deadline; deadline=$(( $(date +%s) + WAIT_S ))
  until [ -S "$SOCK" ] && v uri >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "libvirtd did not answer on $SOCK within ${WAIT_S}s; see $STATE/log"
      exit 1
    fi
    sleep 0.2
  done
  log "up in $(since "$t0") s: netns $NS, bridge $BR $BR_CIDR, libvirtd pid $(pid_of libvirtd)"
  log "use: eval \"\$($0 env)\""
}

# wait_gone NAME PID: bounded wait for a signalled daemon to exit.
wait_gone() {
  local i
  for (( i = 0; i < WAIT_S * 5; i++ )); do
    pid_of "$1" >/dev/null || return 0
    sleep 0.2
  done
  return 1
}

down() {
  local t0 d p; t0=$(now)
  [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
  if [ -S "$SOCK" ] && pid_of libvirtd >/dev/null; then
    for d in $(v list --all --name 2>/dev/null); do
      v destroy "$d" >/dev/null 2>&1 || true
      v undefine --nvram "$d" >/dev/null 2>&1 || v undefine "$d" >/dev/null 2>&1 || true
      log "removed domain $d"
    done
    for d in $(v net-list --all --name 2>/dev/null); do
      v net-destroy "$d" >/dev/null 2>&1 || true
      v net-undefine "$d" >/dev/null 2>&1 || true
      log "removed network $d"
    done
  fi
  # End only the daemons this script started, by the PIDs they recorded.
  for d in $DAEMONS; do
    p=$(pid_of "$d") || continue
    kill -TERM "$p" 2>/dev/null || true
    if ! wait_gone "$d"; then
      log "$d (pid $p) ignored SIGTERM for ${WAIT_S}s; sending SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
      wait_gone "$d" || { log "$d (pid $p) still running"; exit 1; }
    fi
  done
  rm -f "$STATE/libvirtd.pid" "$STATE/virtlogd.pid"
  if has_ns; then
    # A guest whose libvirtd died would keep the netns alive: end the QEMUs
    # that live in this private netns (nothing else runs QEMU in it).
    for p in $(ip netns pids "$NS" 2>/dev/null); do
      case $(cat "/proc/$p/comm" 2>/dev/null) in
        qemu-system-*) log "killing leftover QEMU pid $p"; kill -KILL "$p" 2>/dev/null || true ;;
        *)
          # lab's connection agent (lab __agent), left by a test that failed before lab down.
          if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' __agent '; then
            log "ending lab's connection agent pid $p"; kill -TERM "$p" 2>/dev/null || true
          else
            log "note: pid $p ($(cat "/proc/$p/comm" 2>/dev/null)) still in netns $NS"
          fi ;;
      esac
    done
    ip netns del "$NS"
    log "down in $(since "$t0") s"
  else
    log "nothing up (no netns $NS)"
  fi
}

env_() {
  printf "export LIBVIRT_DEFAULT_URI='%s'\n" "$URI"
  printf "export LAB_NETNS='%s'\n" "$NS"
}

status() {
  if has_ns; then echo "netns $NS: present"; else echo "netns $NS: absent"; fi
  for d in $DAEMONS; do
    if p=$(pid_of "$d"); then echo "$d: pid $p"; else echo "$d: not running"; fi
  done
  if is_up; then v list --all; fi
}

# stop-libvirtd / start-libvirtd / restart-libvirtd: end this harness's libvirtd (by its
# PID) and start it again in the same private world, as a host update or a crash would.
# Domains keep running (QEMU is not libvirtd's child to kill) and the new daemon
# reconnects to them. stop and start apart let a test call libvirt while it is away.
stop_libvirtd() {
  local p
  p=$(pid_of libvirtd) || { log "libvirtd is not running"; exit 1; }
  kill -TERM "$p"
  wait_gone libvirtd || { log "libvirtd $p did not exit within ${WAIT_S}s"; exit 1; }
  log "libvirtd $p stopped"
}
start_libvirtd() {
  local t0; t0=$(now)
  ! pid_of libvirtd >/dev/null || { log "libvirtd is already running"; exit 1; }
  ip netns exec "$NS" /bin/sh -ec '
    S=$1
    mount --bind "$S/run"   /run/libvirt
    mount --bind "$S/lib"   /var/lib/libvirt
    mount --bind "$S/cache" /var/cache/libvirt
    mount --bind "$S/log"   /var/log/libvirt
    mount --bind "$S/etc"   /etc/libvirt
    if [ -e /dev/kvm ]; then mount --bind "$S/nokvm" /dev/kvm; fi
    libvirtd -d -p "$S/libvirtd.pid"
  ' labns "$STATE" </dev/null >>"$STATE/log/daemons.log" 2>&1
  local deadline; deadline=$(( $(date +%s) + WAIT_S ))
  until [ -S "$SOCK" ] && v uri >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "libvirtd did not come back within ${WAIT_S}s"; exit 1; }
    sleep 0.2
  done
  log "libvirtd started in $(since "$t0") s: pid $(pid_of libvirtd)"
}
restart_libvirtd() {
  local t0; t0=$(now)
  stop_libvirtd
  start_libvirtd
  log "libvirtd restarted in $(since "$t0") s"
}

case ${1:-} in
  up) up ;;
  restart-libvirtd) restart_libvirtd ;;
  stop-libvirtd) stop_libvirtd ;;
  start-libvirtd) start_libvirtd ;;
  down) down ;;
  env) env_ ;;
  status) status ;;
  *) echo "usage: $0 up|down|env|status|restart-libvirtd|stop-libvirtd|start-libvirtd" >&2; exit 2 ;;
esac
