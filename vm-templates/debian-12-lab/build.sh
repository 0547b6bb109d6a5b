#!/bin/bash
# build.sh OUTDIR - build the debian-12-lab guest image from Debian packages.
#
# LAB_IMAGE_VARIANT picks what provisions the guest at first boot:
#   lab (default)  cloud-init, from a NoCloud/ConfigDrive seed; initramfs-tools
#   ignition       upstream Ignition in a dracut initramfs, from QEMU fw_cfg
#                  (debian-12-ignition: vm-templates/debian-12-ignition/build.sh)
#
#   mmdebstrap (directory) -> mkfs.ext4 -d (no loop device, no mount) -> qcow2
#
# OUTDIR gets: disk.qcow2 (unpartitioned ext4, label labroot, the guest's
# /dev/vda), vmlinuz + initrd.img (direct kernel boot), packages.txt and
# manifest.json {"built", "sha256": {file: hex}}. Boot with
#   root=/dev/vda ro console=ttyS0 net.ifnames=0 apparmor=0
# Env: MIRROR, SECMIRROR (apt mirrors), RAW_SIZE (e.g. 2G; default: used*1.25+384M).
# Needs root (mkfs -d keeps ownership and setuid bits only as root), mmdebstrap,
# e2fsprogs >= 1.43, qemu-utils.
set -euo pipefail
umask 022

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] && [ -n "$1" ] || usage
[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root" >&2; exit 1; }
for c in mmdebstrap mkfs.ext4 qemu-img dpkg-query sha256sum; do
  command -v "$c" >/dev/null || { echo "build.sh: $c not found" >&2; exit 1; }
done

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "$1")
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${SECMIRROR:-http://deb.debian.org/debian-security}
RAW_SIZE=${RAW_SIZE:-}
VARIANT=${LAB_IMAGE_VARIANT:-lab}

PKGS=(
  systemd systemd-sysv udev dbus            # init; hostnamectl needs dbus
  linux-image-cloud-amd64                   # virtio drivers are modules: initrd needed
  e2fsprogs openssh-server sudo
  etcd-server etcd-client docker.io
  apparmor          # the cloud kernel enables AppArmor; dockerd then needs apparmor_parser
  iproute2 iputils-ping procps netbase
  qemu-guest-agent
  busybox-static    # source of the registry-free docker image (customize.sh)
)
case "$VARIANT" in
  lab) PKGS+=(initramfs-tools cloud-init) ;; # cloud-init: NoCloud / ConfigDrive seeds
  # 30ignition needs dracut's url-lib and network modules (dracut-network); url-lib
  # installs only when curl is there. dracut conflicts with initramfs-tools.
  ignition) PKGS+=(dracut dracut-network curl ignition) ;;
  *) echo "build.sh: LAB_IMAGE_VARIANT must be lab or ignition, not $VARIANT" >&2; exit 2 ;;
esac
export LAB_IMAGE_VARIANT=$VARIANT

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
T0=$(now); t=$T0
# step NAME: print how long the step that just finished took.
step() { local n; n=$(now); log "$(printf '%-18s %6.1f s' "$1" "$(echo "$n - $t" | bc)")"; t=$n; }

# Build beside OUTDIR (same filesystem, so the final mv is a rename) and move
# into place only when complete: a half-built image is never at OUTDIR.
PARENT=$(dirname "$OUT")
mkdir -p "$PARENT"
# A build that ends in any way but SIGKILL leaves nothing of itself: the EXIT trap
# removes the work folder. bash runs no EXIT trap when a signal ends it, and it handles
# a signal only after its foreground command returns (mmdebstrap: minutes), so the
# signals have traps of their own, and each long step runs in the background in a
# process group of its own (set -m), ended as a group (mmdebstrap's apt and dpkg too)
# before the folder goes. Mounts a cut mmdebstrap left under it are undone first.
WORK=
step_pgid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  end_step
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system -- "$WORK"
  fi
  exit "$rc"
}
# end_step: TERM to the running step's whole group, then KILL after 20 s.
end_step() {
  [ -n "$step_pgid" ] || return 0
  kill -TERM -- "-$step_pgid" 2>/dev/null || true
  local i=0
  while kill -0 -- "-$step_pgid" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 200 ] || { kill -KILL -- "-$step_pgid" 2>/dev/null || true; break; }
    sleep 0.1
  done
  wait "$step_pgid" 2>/dev/null || true
  step_pgid=
}
on_signal() {
  log "build.sh: $1: stopping, removing ${WORK:-nothing}"
  exit "$2" # runs cleanup (EXIT)
}
trap cleanup EXIT
trap 'on_signal SIGINT 130' INT
trap 'on_signal SIGTERM 143' TERM
trap 'on_signal SIGHUP 129' HUP
# run CMD...: a long step, in a process group of its own, waited for so that a signal
# is handled at once. Its exit status is the step's.
run() {
  set -m
  "$@" &
  step_pgid=$!
  set +m
  local rc=0
  wait "$step_pgid" || rc=$?
  step_pgid=
  return "$rc"
}
WORK=$(mktemp -d "$PARENT/.$(basename "$OUT").build.XXXXXX")
# mktemp makes it 0700; apt's _apt user must reach rootfs/var/lib/apt/lists.
chmod 0755 "$WORK"
ROOT=$WORK/rootfs
IMG=$WORK/image
mkdir "$IMG"

log "mmdebstrap $SUITE, variant $VARIANT (${#PKGS[@]} packages asked) into $ROOT"
# Mirrors are explicit arguments and stdin is /dev/null: with neither, mmdebstrap
# reads sources.list from stdin, which hangs or misreads in CI.
# Recommends are not installed; man/info/locale/doc are dropped.
export LAB_CUSTOMIZE=$HERE/customize.sh
run mmdebstrap --mode=root --format=directory \
  --variant=minbase --include="$(IFS=,; echo "${PKGS[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='sh "$LAB_CUSTOMIZE" "$1"' \
  "$SUITE" "$ROOT" \
  "deb $MIRROR $SUITE main" \
  "deb $MIRROR $SUITE-updates main" \
  "deb $SECMIRROR $SUITE-security main" </dev/null
step mmdebstrap

# Kernel and initrd live outside the disk too: libvirt boots them directly.
kernel=$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "build.sh: no kernel in $ROOT/boot" >&2; exit 1; }
kver=${kernel##*/vmlinuz-}
[ -f "$ROOT/boot/initrd.img-$kver" ] || { echo "build.sh: no initrd for $kver" >&2; exit 1; }
cp "$kernel" "$IMG/vmlinuz"
cp "$ROOT/boot/initrd.img-$kver" "$IMG/initrd.img"
dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Package} ${Version}\n' \
  | sort > "$IMG/packages.txt"
step "kernel+packages"

used_mib=$(du -sxm "$ROOT" | cut -f1)
[ -n "$RAW_SIZE" ] || RAW_SIZE="$(( used_mib * 125 / 100 + 384 ))M"
# lazy_*_init=0: zero inode tables and journal now, not in every guest's
# ext4lazyinit thread at first boot (CPU time and overlay growth under TCG).
run mkfs.ext4 -q -F -L labroot -d "$ROOT" \
  -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/base.raw" "$RAW_SIZE"
rm -rf "$ROOT"
step "mkfs.ext4 $RAW_SIZE"

run qemu-img convert -O qcow2 "$WORK/base.raw" "$IMG/disk.qcow2"
rm -f "$WORK/base.raw"
step "qemu-img convert"

{
  printf '{\n  "built": "%s",\n  "sha256": {\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  sep=''
  for f in disk.qcow2 vmlinuz initrd.img; do
    printf '%s    "%s": "%s"' "$sep" "$f" "$(sha256sum "$IMG/$f" | cut -d' ' -f1)"
    sep=$',\n'
  done
  printf '\n  }\n}\n'
} > "$IMG/manifest.json"
step sha256

# libvirt runs QEMU as libvirt-qemu: it must read the files and traverse dirs.
chmod 0755 "$IMG"
chmod 0644 "$IMG"/*
chmod 0444 "$IMG/disk.qcow2" # the base every overlay shares: read-only for everyone
if [ -e "$OUT" ]; then
  mv -T "$OUT" "$WORK/old"
fi
mv -T "$IMG" "$OUT"
t=$T0; step total

# Every ancestor needs o+x for libvirt-qemu; say so rather than chmod system dirs.
d=$OUT
while [ "$d" != / ]; do
  d=$(dirname "$d")
  [ "$(( 0$(stat -c %a "$d") & 1 ))" = 1 ] || log "warning: $d lacks o+x; libvirt-qemu cannot reach $OUT"
done
log "rootfs ${used_mib} MiB; $(du -m --apparent-size "$OUT/disk.qcow2" | cut -f1) MiB disk.qcow2 in $OUT"
