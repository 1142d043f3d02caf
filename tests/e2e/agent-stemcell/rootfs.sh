#!/usr/bin/env bash
# Prints the path of a cached Debian 12 minbase root (a tar) holding the packages in packages.txt,
# building it with debootstrap when no root for the same inputs (package list, suite, mirror, this
# script) is cached yet. Usage: rootfs.sh <cache-dir>. Needs root (debootstrap chroots).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: rootfs.sh <cache-dir>}
suite=bookworm
mirror=${AGENT_STEMCELL_MIRROR:-}
if [ -z "$mirror" ]; then
  # The mirror apt is configured with (deb822 sources first, then the one-line format).
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -n1 || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
packages=$(grep -v '^#' "$here/packages.txt" | grep -v '^$' | sort | paste -sd, -)
key=$(printf '%s\n' "$suite" "$mirror" "$packages" | cat - "$0" | sha256sum | cut -c1-16)
out="$cache/agent-rootfs-$key.tar"
if [ -s "$out" ]; then echo "$out"; exit 0; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/rootfs-work.XXXXXX")
cleanup() {
  # debootstrap mounts /proc and /sys inside the target; never leave them mounted.
  for m in "$work/root/proc" "$work/root/sys" "$work/root/dev/pts" "$work/root/dev"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
echo "rootfs: debootstrap $suite from $mirror (once; cached as $out)" >&2
nice -n 10 debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }
chroot "$work/root" apt-get clean
rm -rf "$work/root/var/lib/apt/lists/"*
for m in "$work/root/proc" "$work/root/sys"; do mountpoint -q "$m" && umount -l "$m" || true; done
tar -C "$work/root" --numeric-owner -cf "$out.part" .
mv "$out.part" "$out"
echo "$out"
