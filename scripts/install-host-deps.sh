#!/usr/bin/env bash
# Debian/Ubuntu packages lab and its tests use: libvirt + QEMU, qemu-img, an ISO tool,
# mmdebstrap (to build the debian-12-lab guest), the XML validator, gpgv (checks the
# OpenPGP signature of downloaded images) and gnupg (the tests make throwaway keys with
# gpg), ignition (for ignition-validate: `lab validate` and the contract tests check
# rendered Ignition configs with upstream's own validator; it needs only libc and
# libblkid), and tools the harness and the tests use (strace, pgrep). Idempotent; needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libxml2-utils xorriso
  mmdebstrap e2fsprogs iproute2 dnsmasq-base iptables bc tmux openssh-client python3 xz-utils bzip2
  ca-certificates gpgv gnupg strace procps ignition)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "all host packages present"
fi
