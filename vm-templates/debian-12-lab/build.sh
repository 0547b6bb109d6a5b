#!/bin/bash
# build.sh OUTDIR - build the debian-12-lab guest image from Debian packages.
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

PKGS=(
  systemd systemd-sysv udev dbus            # init; hostnamectl needs dbus
  linux-image-cloud-amd64 initramfs-tools   # virtio drivers are modules: initrd needed
  e2fsprogs openssh-server sudo
  cloud-init                                # NoCloud / ConfigDrive seeds
  etcd-server etcd-client docker.io
  apparmor          # the cloud kernel enables AppArmor; dockerd then needs apparmor_parser
  iproute2 iputils-ping procps netbase
  qemu-guest-agent
  busybox-static    # source of the registry-free docker image (customize.sh)
)

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
T0=$(now); t=$T0
# step NAME: print how long the step that just finished took.
step() { local n; n=$(now); log "$(printf '%-18s %6.1f s' "$1" "$(echo "$n - $t" | bc)")"; t=$n; }

# Build beside OUTDIR (same filesystem, so the final mv is a rename) and move
# into place only when complete: a half-built image is never at OUTDIR.
PARENT=$(dirname "$OUT")
mkdir -p "$PARENT"
WORK=$(mktemp -d "$PARENT/.$(basename "$OUT").build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# mktemp makes it 0700; apt's _apt user must reach rootfs/var/lib/apt/lists.
chmod 0755 "$WORK"
ROOT=$WORK/rootfs
IMG=$WORK/image
mkdir "$IMG"

log "mmdebstrap $SUITE (${#PKGS[@]} packages asked) into $ROOT"
# Mirrors are explicit arguments and stdin is /dev/null: with neither, mmdebstrap
# reads sources.list from stdin, which hangs or misreads in CI.
# Recommends are not installed; man/info/locale/doc are dropped.
LAB_CUSTOMIZE=$HERE/customize.sh mmdebstrap --mode=root --format=directory \
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
mkfs.ext4 -q -F -L labroot -d "$ROOT" \
  -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/base.raw" "$RAW_SIZE"
rm -rf "$ROOT"
step "mkfs.ext4 $RAW_SIZE"

qemu-img convert -O qcow2 "$WORK/base.raw" "$IMG/disk.qcow2"
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
