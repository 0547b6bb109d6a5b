#!/bin/sh
# ignition.sh ROOT - the ignition variant's part of customize.sh: the guest is
# provisioned at first boot by upstream Ignition (Debian's `ignition` 2.14 and its
# dracut module 30ignition), reading its config from QEMU fw_cfg
# (opt/com.coreos/config, platform id qemu), as Fedora CoreOS is.
set -eu
R=${1:?usage: ignition.sh ROOTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)

# Ignition 2.14 writes a user's keys to ~/.ssh/authorized_keys.d/ignition, which
# Debian's sshd does not read. Only the ed25519 host key exists (the one lab
# injects through Ignition): no errors for the other types at each start.
cat > "$R/etc/ssh/sshd_config.d/20-lab-ignition.conf" <<'CONF'
AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/ignition
HostKey /etc/ssh/ssh_host_ed25519_key
CONF

# Ignition runs once per disk: 99lab-ignition skips every stage when this
# disk's first boot is done; and this guest has no SELinux (see its module-setup.sh).
mkdir -p "$R/etc/selinux"
printf 'SELINUX=disabled\nSELINUXTYPE=default\n' > "$R/etc/selinux/config"
cp -R "$HERE/dracut/99lab-ignition" "$R/usr/lib/dracut/modules.d/"
chmod 0755 "$R/usr/lib/dracut/modules.d/99lab-ignition"/*.sh
# hostonly=no: the initramfs is built in a chroot for any QEMU guest, not for
# the build host. 30ignition has no check(): when a dependency is missing dracut
# only logs it and writes an initramfs without Ignition, hence the check below.
cat > "$R/etc/dracut.conf.d/90-lab.conf" <<'CONF'
hostonly="no"
add_dracutmodules+=" ignition lab-ignition "
CONF

kernel=$(find "$R/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "ignition.sh: no kernel in $R/boot" >&2; exit 1; }
kver=${kernel##*/vmlinuz-}
chroot "$R" dracut --force --kver "$kver" "/boot/initrd.img-$kver"
listing=$(chroot "$R" lsinitrd "/boot/initrd.img-$kver")
# Each: an extended regular expression matched at the end of an lsinitrd line.
for f in '/bin/ignition' '/system-generators/ignition-generator' \
         '/ignition-files\.service' '/lab-ignition-once\.service' \
         '/ignition-files\.service\.d/10-lab-once\.conf' '/qemu_fw_cfg\.ko(\.[a-z]+)?' \
         '/sbin/setfiles'; do
  printf '%s\n' "$listing" | grep -Eq "$f\$" || {
    echo "ignition.sh: the initramfs lacks $f (lsinitrd)" >&2
    exit 1
  }
done
echo "ignition.sh: initramfs for $kver has Ignition $(chroot "$R" ignition-validate --version 2>&1 | sed 's/^Ignition //')"
