#!/usr/bin/env bash
# Runs a command in the stemcell-like chroot (scripts/stemcell-chroot.sh) the
# way a BOSH VM would run it: in a private mount namespace with the chroot
# read-only, VCAP_DIR bound at /var/vcap, empty tmpfs at /tmp, /root and /run, /proc
# and /dev, and an environment of only PATH=/usr/sbin:/usr/bin:/sbin:/bin,
# HOME=/root, TMPDIR=/tmp and LANG=C.UTF-8. Nothing is left mounted afterwards.
#
# Usage: scripts/in-stemcell-chroot.sh ROOT VCAP_DIR CWD [--bind HOST_DIR:CHROOT_DIR]... -- CMD [ARG]...
#
# --bind makes a host directory visible inside (for example /run/libvirt, so
# that the CPI reaches the host's libvirtd); CHROOT_DIR must exist in ROOT or
# lie under /run or /tmp (tmpfs). Needs root.
set -euo pipefail

[ "$#" -ge 5 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
root=$1 vcap=$2 cwd=$3
shift 3
binds=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --bind) binds+=("$2"); shift 2 ;;
    *) echo "in-stemcell-chroot: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ "${1:-}" = "--" ] || { echo "in-stemcell-chroot: missing -- before the command" >&2; exit 2; }
shift

exec unshare --mount --propagation private -- /bin/bash -euc '
  root=$1 vcap=$2 cwd=$3 binds=$4
  shift 4
  mount --bind "$root" "$root"
  mount -o remount,bind,ro "$root"
  mount --bind "$vcap" "$root/var/vcap"
  mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
  mount -t tmpfs -o mode=0700 tmpfs "$root/root"
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  for b in $binds; do
    src=${b%%:*} dst=${b#*:}
    if ! mkdir -p "$root$dst" 2>/dev/null && [ ! -d "$root$dst" ]; then
      echo "in-stemcell-chroot: cannot bind $src at $dst (not under /run or /tmp, and not in the chroot)" >&2
      exit 1
    fi
    mount --bind "$src" "$root$dst"
  done
  exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    TMPDIR=/tmp LANG=C.UTF-8 /bin/bash -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
' in-stemcell-chroot "$root" "$vcap" "$cwd" "${binds[*]:-}" "$@"
