#!/usr/bin/env bash
# Lets libvirt's LXC driver start containers on a host that mounts cgroup v1 controllers and,
# beside them, an empty cgroup2 hierarchy at /sys/fs/cgroup/unified ("hybrid" mode without
# systemd, as on the CI machines). libvirt 9.0 cannot start a container there:
#
#   internal error: Timed out while reading log output: Failure in libvirt_lxc startup:
#   Unable to create directory /sys/fs/cgroup/unified: No such file or directory
#
# (it bind-mounts the cgroup2 hierarchy into the container before it mounts the tmpfs that
# would hold its mount point). With no controllers in the cgroup2 hierarchy nothing uses it, so
# this script detaches it (umount -l) and libvirt then runs containers on the v1 controllers.
# It changes nothing on pure cgroup v1 or pure cgroup v2 hosts. Needs root; run it before
# libvirtd starts (or restart libvirtd after it).
#
#   scripts/lxc-host.sh          # prepare the host
#   scripts/lxc-host.sh check    # say whether the host is affected, change nothing
set -euo pipefail

unified=/sys/fs/cgroup/unified
mode=${1:-prepare}

hybrid() {
  findmnt -n -t cgroup2 "$unified" >/dev/null 2>&1 && findmnt -n -t cgroup >/dev/null 2>&1
}

if ! hybrid; then
  echo "lxc-host: cgroups are not hybrid here (no cgroup2 at $unified beside v1 controllers): nothing to do"
  exit 0
fi
controllers=$(cat "$unified/cgroup.controllers" 2>/dev/null || true)
if [ "$mode" = check ]; then
  echo "lxc-host: hybrid cgroups (cgroup2 at $unified, controllers: '${controllers}'): libvirt's LXC driver cannot start containers; run $0 as root"
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "lxc-host: must run as root" >&2
  exit 2
fi
# Leftover cgroups of ended domains (empty directories) are removed first; a hierarchy that
# still holds processes is left alone.
find "$unified" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
if [ -s "$unified/cgroup.procs" ] && [ "$(wc -l <"$unified/cgroup.procs")" -gt 0 ] &&
  [ -n "$(find "$unified" -mindepth 1 -type d -print -quit)" ]; then
  echo "lxc-host: $unified still has cgroups with processes; not touching it" >&2
  exit 1
fi
umount -l "$unified"
rmdir "$unified" 2>/dev/null || true
echo "lxc-host: detached the cgroup2 hierarchy at $unified (controllers were: '${controllers}')"
