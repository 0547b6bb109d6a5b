#!/bin/sh
# customize.sh ROOT - mmdebstrap --customize-hook for the debian-12-lab image.
# Makes the chroot a neutral, cloneable guest: every per-node fact (hostname,
# IP, keys, etcd cluster) comes later from the first-boot config (the cloud-init
# seed, or Ignition's config with LAB_IMAGE_VARIANT=ignition), never from here.
# Runs on the build host with the finished chroot at $1 (see build.sh).
set -eu
R=${1:?usage: customize.sh ROOTDIR}
[ -d "$R/etc" ] || { echo "customize.sh: $R is not a root filesystem" >&2; exit 1; }
VARIANT=${LAB_IMAGE_VARIANT:-lab}
HERE=$(cd "$(dirname "$0")" && pwd)

# The disk is one unpartitioned ext4 (mkfs -L labroot); the label also fits a
# partitioned layout, unlike /dev/vda.
printf 'LABEL=labroot / ext4 defaults,errors=remount-ro 0 1\n' > "$R/etc/fstab"

# mmdebstrap copies the build host's hostname, hosts and resolv.conf: reset them.
echo localhost > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
: > "$R/etc/resolv.conf"

# Identity is per clone. An empty (not missing) machine-id makes systemd derive
# it at first boot from the SMBIOS UUID, i.e. the libvirt <uuid>; dbus's copy
# would pin one id on every clone.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
# openssh-server's postinst made host keys in the chroot; cloud-init writes the
# injected (or freshly generated) ones.
rm -f "$R"/etc/ssh/ssh_host_*_key "$R"/etc/ssh/ssh_host_*_key.pub
# Key-only SSH baked in: `ssh_pwauth` in user-data would make cloud-init
# restart sshd (~2.5 s under TCG).
mkdir -p "$R/etc/ssh/sshd_config.d"
echo 'PasswordAuthentication no' > "$R/etc/ssh/sshd_config.d/10-lab.conf"

if [ "$VARIANT" = lab ]; then
# cloud-init: only NoCloud (label cidata) and ConfigDrive (config-2), never a
# metadata service; networkd renderer (no ifupdown/netplan in the image);
# C.UTF-8 because the default en_US.UTF-8 fails without `locales` (status
# becomes "error"). Module lists are Debian's minus apt/grub/snap/vendor
# modules, which cost 1-3 s of Python each under TCG or fail offline.
mkdir -p "$R/etc/cloud/cloud.cfg.d"
cat > "$R/etc/cloud/cloud.cfg.d/90_lab.cfg" <<'CFG'
datasource_list: [ NoCloud, ConfigDrive, None ]
locale: C.UTF-8
system_info:
  network:
    renderers: [ networkd ]
cloud_init_modules: [ migrator, seed_random, bootcmd, write-files, growpart,
  resizefs, disk_setup, mounts, set_hostname, update_hostname,
  update_etc_hosts, ca-certs, users-groups, ssh ]
cloud_config_modules: [ locale, set-passwords, ntp, timezone, runcmd ]
cloud_final_modules: [ write-files-deferred, scripts-vendor, scripts-per-once,
  scripts-per-boot, scripts-per-instance, scripts-user,
  ssh-authkey-fingerprints, keys-to-console, phone-home, final-message,
  power-state-change ]
CFG

# cloud-init renders network-config into /etc/systemd/network/10-cloud-init-ethN.network.
# A lab bridge has no IPv6 router: without IPv6AcceptRA=no networkd waits ~12 s
# for router solicitations, and wait-online, cloud-init and sshd wait with it.
# cloud-init 22.4 ignores v2 `accept-ra` on static links, hence drop-ins.
for i in 0 1 2 3; do
  d="$R/etc/systemd/network/10-cloud-init-eth$i.network.d"
  mkdir -p "$d"
  printf '[Network]\nIPv6AcceptRA=no\n' > "$d/10-lab.conf"
done
fi
# The static address is a networkd file (cloud-init's, or the one Ignition writes).
chroot "$R" systemctl enable systemd-networkd.service

# etcd, docker and containerd start at boot only once their config is written
# (by cloud-init's write_files before sysinit.target, by Ignition in the initramfs,
# or, for etcd's membership, by lab over SSH): no
# runcmd `systemctl enable` (~15 s per unit under TCG via update-rc.d), no race.
# An etcd started on Debian's defaults would bootstrap a lone 1-member cluster
# in /var/lib/etcd/default that can never join the lab's static cluster.
for u in etcd docker containerd; do mkdir -p "$R/etc/systemd/system/$u.service.d"; done
cat > "$R/etc/systemd/system/etcd.service.d/10-lab.conf" <<'UNIT'
[Unit]
ConditionPathExists=/etc/default/etcd
# Listen URLs are on the static IP: wait until networkd has configured it.
After=network-online.target
Wants=network-online.target
[Service]
# Debian ships Restart=on-abnormal: no restart after an error exit (peer not up yet).
Restart=on-failure
RestartSec=3
UNIT
for u in docker containerd; do
  printf '[Unit]\nConditionPathExists=/etc/docker/daemon.json\n' \
    > "$R/etc/systemd/system/$u.service.d/10-lab.conf"
done
chroot "$R" systemctl enable etcd.service docker.service docker.socket containerd.service
rm -f "$R/etc/default/etcd"
rm -rf "$R/var/lib/etcd/default"

# etcdctl 3.4 already speaks v3; say so explicitly for login shells and
# `ssh host cmd` alike (pam_env reads /etc/environment for both).
grep -qs '^ETCDCTL_API=' "$R/etc/environment" || echo 'ETCDCTL_API=3' >> "$R/etc/environment"

# Periodic maintenance is useless in a short-lived guest and costs boot time
# (e2scrub_reap alone took 24 s of a TCG first boot).
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
         e2scrub_reap.service fstrim.timer; do
  chroot "$R" systemctl disable "$u" 2>/dev/null || true
done

# A docker image that needs no registry (the guest has no DNS and no route
# out): a busybox rootfs tar, imported on the guest with
#   docker import /usr/share/lab/busybox-rootfs.tar lab/busybox:local
# busybox-static is a static binary, so the host can run it for --list.
bb="$R/bin/busybox"
[ -x "$bb" ] || { echo "customize.sh: $bb missing (add busybox-static)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/etc" "$stage/root" "$stage/tmp"
chmod 0755 "$stage"          # mktemp's 0700 would become the container's /
chmod 1777 "$stage/tmp"
cp "$bb" "$stage/bin/busybox"
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -s busybox "$stage/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$stage/etc/passwd"
printf 'root:x:0:\n' > "$stage/etc/group"
mkdir -p "$R/usr/share/lab"
# Fixed owner, order and mtime: the same busybox gives the same tar.
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@$(stat -c %Y "$bb")" -cf "$R/usr/share/lab/busybox-rootfs.tar" .
chmod 0644 "$R/usr/share/lab/busybox-rootfs.tar"

if [ "$VARIANT" = ignition ]; then
  sh "$HERE/ignition.sh" "$R"
fi

# apt's binary caches are rebuilt on demand; no need to ship them.
rm -f "$R"/var/cache/apt/*.bin
