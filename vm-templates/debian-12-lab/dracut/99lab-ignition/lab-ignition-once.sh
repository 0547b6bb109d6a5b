#!/bin/sh
# lab-ignition-once: when the root disk carries the first-boot stamp, say so in
# /run/lab-ignition-once/done; the Ignition stages' drop-ins then skip them.
# The disk is looked at read-only without replaying its journal (noload): nothing
# is written before fsck. A disk that cannot be read is a first boot.
set -u
dev=/dev/disk/by-label/labroot
peek=/run/lab-ignition-once/root
mkdir -p "$peek"
if mount -t ext4 -o ro,noload "$dev" "$peek"; then
    if [ -e "$peek/var/lib/lab/ignition-firstboot.done" ]; then
        : > /run/lab-ignition-once/done
        echo "lab-ignition-once: $dev had its first boot: Ignition does not run"
    else
        echo "lab-ignition-once: first boot of $dev: Ignition runs"
    fi
    umount "$peek"
else
    echo "lab-ignition-once: cannot read $dev: Ignition runs"
fi
exit 0
