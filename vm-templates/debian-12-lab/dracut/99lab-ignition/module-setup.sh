#!/bin/bash
# 99lab-ignition: upstream Ignition, as this Debian guest needs it around it.
#
# 1. Ignition runs on a disk's first boot only.
# Fedora CoreOS gates Ignition with a stamp in /boot that its bootloader turns into
# the `ignition.firstboot` kernel argument. lab boots this guest's kernel directly:
# the argument is in the domain's command line, which an in-guest reboot keeps. So
# the gate is here instead: lab-ignition-once.service looks at the root disk
# (read-only, before fsck and sysroot.mount) and, when the stamp that
# lab-ignition-done.service wrote after a successful files stage is there, every
# Ignition stage is skipped (ConditionPathExists in a drop-in). Upstream's units and
# generator are unchanged.
#
# 2. No SELinux. Debian's Ignition relabels what it wrote with `setfiles` and fails
# without it; this guest has no SELinux policy, so the initramfs gets a setfiles that
# relabels nothing (setfiles-none.sh), and the image an /etc/selinux/config saying
# SELinux is disabled (Ignition reads its SELINUXTYPE).

check() { return 255; }   # only when asked for (dracut.conf.d/90-lab.conf)
depends() { echo ignition; }

install() {
    inst_multiple mount umount mkdir touch sync
    inst_script "$moddir/lab-ignition-once.sh" /usr/sbin/lab-ignition-once
    inst_script "$moddir/setfiles-none.sh" /usr/sbin/setfiles
    inst_simple "$moddir/lab-ignition-once.service" "$systemdsystemunitdir/lab-ignition-once.service"
    inst_simple "$moddir/lab-ignition-done.service" "$systemdsystemunitdir/lab-ignition-done.service"
    mkdir -p "$initdir/$systemdsystemunitdir/ignition-complete.target.requires"
    ln_r "$systemdsystemunitdir/lab-ignition-once.service" \
        "$systemdsystemunitdir/ignition-complete.target.requires/lab-ignition-once.service"
    ln_r "$systemdsystemunitdir/lab-ignition-done.service" \
        "$systemdsystemunitdir/ignition-complete.target.requires/lab-ignition-done.service"
    local u
    for u in ignition-fetch-offline ignition-fetch ignition-kargs ignition-disks \
             ignition-mount ignition-files ignition-remount-sysroot; do
        inst_simple "$moddir/10-lab-once.conf" "$systemdsystemunitdir/$u.service.d/10-lab-once.conf"
    done
}
