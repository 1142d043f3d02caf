#!/usr/bin/env bash
# Builds the real-agent test stemcell: a Debian 12 root (debootstrap, packages.txt) with the real
# bosh-agent and monit 5.2.5, booted by GRUB from one ext4 partition, packaged like a BOSH
# OpenStack stemcell.
#
#   tests/e2e/agent-stemcell/build.sh OUTDIR
#
# Writes OUTDIR/stemcell.tgz (stemcell.MF with api_version 2 and stemcell_formats
# [openstack-qcow2]; `image` a gzip tar holding root.img as qcow2), OUTDIR/image (that tar),
# OUTDIR/stemcell.MF, OUTDIR/cloud_properties.json (the manifest's, as JSON) and OUTDIR/stemcell.env (bash-sourceable AGENT_STEMCELL_* names).
#
# Everything is cached by the hashes of its inputs under AGENT_STEMCELL_CACHE (default
# /var/cache/bosh-libvirt-cpi): the debootstrap root (~10 min once), monit, and the finished
# stemcell; a run whose inputs did not change only copies the cached stemcell. The bosh-agent
# binary and the monit source come from BOSH_TOOLS (default ../shared/tools of the checkout).
# No loop mounts: the partition is made with `mke2fs -d`, the disk with sfdisk and dd, the boot
# loader with grub-mkimage. Runs as root (debootstrap and chroot).
#
# The guest never sends a packet on its own: no DHCP client, no NTP, no HTTP metadata source (the
# agent reads config-2 only); its NIC gets the address the agent's settings give it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=$(realpath -m "${1:?usage: build.sh OUTDIR}")
cache=${AGENT_STEMCELL_CACHE:-/var/cache/bosh-libvirt-cpi}
tools=${BOSH_TOOLS:-$repo/../shared/tools}
agent_bin=$tools/bosh-agent
monit_src=$tools/src/monit-5.2.5.tar.gz
name=bosh-libvirt-e2e-debian-bookworm-go_agent
version=${AGENT_STEMCELL_VERSION:-0.0.1}
disk_mib=2048 # root disk (sparse); the root filesystem uses ~40%
export LC_ALL=C

log() { echo "agent-stemcell: $*" >&2; }
for f in "$agent_bin" "$monit_src"; do [ -r "$f" ] || { log "missing $f (BOSH_TOOLS)"; exit 1; }; done
mkdir -p "$out" "$cache"
exec 9>"$cache/agent-stemcell.lock"
flock 9

start=$SECONDS
rootfs=$("$here/rootfs.sh" "$cache")
monit=$("$here/monit.sh" "$monit_src" "$cache")
# Contents only (not where the checkout or the tools lie), so every checkout shares the cache.
key=$( { echo "$name $version $disk_mib $(basename "$rootfs")"; cat "$agent_bin" "$monit" | sha256sum;
  (cd "$here" && find build.sh files -type f | sort | xargs sha256sum); } | sha256sum | cut -c1-16)
cached=$cache/agent-stemcell-$key

publish() {
  for f in stemcell.tgz image stemcell.MF cloud_properties.json; do
    [ "$cached/$f" -ef "$out/$f" ] || cp "$cached/$f" "$out/$f"
  done
  printf 'AGENT_STEMCELL_%s=%q\n' NAME "$name" VERSION "$version" TGZ "$out/stemcell.tgz" \
    IMAGE "$out/image" MF "$out/stemcell.MF" CLOUD_PROPERTIES "$out/cloud_properties.json" \
    KEY "$key" >"$out/stemcell.env"
  log "stemcell $name/$version ($key) in $out ($((SECONDS - start)) s)"
}
if [ -s "$cached/stemcell.tgz" ]; then publish; exit 0; fi

work=$(mktemp -d "$cache/stemcell-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
tar -C "$root" --numeric-owner -xpf "$rootfs"

# --- the agent's layout
install -d "$root"/var/vcap/{bosh/{bin,etc,log},monit/job,data,store,micro_bosh/data/cache,sys/log}
install -m 0755 "$agent_bin" "$root/var/vcap/bosh/bin/bosh-agent"
install -m 0755 "$monit" "$root/var/vcap/bosh/bin/monit"
install -m 0644 "$here/files/agent.json" "$root/var/vcap/bosh/agent.json"
install -m 0700 "$here/files/monitrc" "$root/var/vcap/bosh/etc/monitrc"
install -m 0644 "$here/files/alerts.monitrc" "$root/var/vcap/monit/alerts.monitrc"
: >"$root/var/vcap/monit/empty.monitrc"
for f in "$here"/files/bin/*; do
  install -m 0755 "$f" "$root/var/vcap/bosh/bin/$(basename "$f")"
  ln -sf "/var/vcap/bosh/bin/$(basename "$f")" "$root/usr/local/bin/$(basename "$f")"
done
install -d "$root/etc/systemd/network" "$root/run/resolvconf" "$root/etc/resolvconf/resolv.conf.d"
ln -sf /run/resolvconf/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /bin/sh -ec '
  for g in admin bosh_sshers bosh_sudoers syslog; do getent group $g >/dev/null || groupadd --system $g; done
  id vcap >/dev/null 2>&1 || useradd -m -u 1000 -s /bin/bash -G admin,bosh_sshers,bosh_sudoers,utmp vcap
  passwd -l root >/dev/null'

# --- runit services (agent, monit, syslog, the test probe). /etc/service is a link to an absolute
# path (it would resolve on the build host), so the service links go into the runsvdir itself.
svdir=$root/etc/runit/runsvdir/default
[ -d "$svdir" ] && [ ! -L "$svdir" ] || { log "no runit runsvdir in the root"; exit 1; }
# No gettys and no default syslog: the serial console is the agent's log.
rm -f "$svdir"/getty-* "$svdir"/default-syslog
for sv in "$here"/files/sv/*; do
  s=$(basename "$sv")
  install -d "$root/etc/sv/$s"
  install -m 0755 "$sv/run" "$root/etc/sv/$s/run"
  ln -sfn "/etc/sv/$s" "$svdir/$s"
done
touch "$root/etc/sv/monit/down"
install -d "$root/etc/acpi/PWRF"
install -m 0755 "$here/files/acpi/PWRF/00000080" "$root/etc/acpi/PWRF/00000080"
# Stage 1 (sysv rcS emulation): only what the agent needs (/proc, /sys, udev, /dev/pts, the
# fstab mounts, sysctl), for a short boot under TCG.
for l in "$root"/etc/rcS.d/S*; do
  case $(basename "$l") in
  S??mountkernfs.sh | S??udev | S??mountdevsubfs.sh | S??mountall.sh | S??procps) ;;
  *) rm -f "$l" ;;
  esac
done
for f in hostname hosts fstab; do rm -f "$root/etc/$f"; done
echo e2e-agent-stemcell >"$root/etc/hostname"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
printf '/dev/vda1 / ext4 defaults 0 0\n' >"$root/etc/fstab"

# --- disk: MBR, GRUB in the gap before partition 1, ext4 root in partition 1 (1 MiB onwards)
kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$root/boot/$initrd" ] || { log "no $initrd in the root"; exit 1; }
cat >"$work/grub.cfg" <<CFG
set root=(hd0,msdos1)
linux /boot/$kernel root=/dev/vda1 rw console=ttyS0,115200 net.ifnames=0 biosdevname=0 ipv6.disable=1 quiet
initrd /boot/$initrd
boot
CFG
grub-mkimage -O i386-pc -o "$work/core.img" -c "$work/grub.cfg" -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 linux normal boot
part_mib=$((disk_mib - 1))
rm -rf "$root/var/cache/apt/"*.bin "$root/tmp/"*
mke2fs -q -t ext4 -L cloudimg-rootfs -d "$root" "$work/part.img" "${part_mib}M"
truncate -s "${disk_mib}M" "$work/disk.img"
echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.img"
dd if=/usr/lib/grub/i386-pc/boot.img of="$work/disk.img" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$work/disk.img" bs=512 seek=1 conv=notrunc status=none
dd if="$work/part.img" of="$work/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$work/part.img"
qemu-img convert -f raw -O qcow2 -o compat=0.10 "$work/disk.img" "$work/root.img"
rm -f "$work/disk.img"
tar -C "$work" --owner=0 --group=0 -cf - root.img | gzip -1n >"$work/image"
sha1=$(sha1sum "$work/image" | cut -d' ' -f1)
cat >"$work/stemcell.MF" <<MF
---
name: $name
version: '$version'
bosh_protocol: '1'
api_version: 2
sha1: $sha1
operating_system: ubuntu-bookworm
stemcell_formats:
- openstack-qcow2
cloud_properties:
  name: $name
  version: '$version'
  infrastructure: openstack
  hypervisor: kvm
  disk: $disk_mib
  disk_format: qcow2
  container_format: bare
  os_type: linux
  os_distro: debian
  architecture: x86_64
MF
printf '{"name":"%s","version":"%s","infrastructure":"openstack","hypervisor":"kvm","disk":%s,"disk_format":"qcow2","container_format":"bare","os_type":"linux","os_distro":"debian","architecture":"x86_64"}\n' \
  "$name" "$version" "$disk_mib" >"$work/cloud_properties.json"
tar -C "$work" --owner=0 --group=0 -cf - stemcell.MF image | gzip -1n >"$work/stemcell.tgz"
mkdir -p "$cached.part"
mv "$work/stemcell.tgz" "$work/image" "$work/stemcell.MF" "$work/cloud_properties.json" "$cached.part/"
rm -rf "$cached"
mv "$cached.part" "$cached"
# Older stemcells of this script are of no use any more.
find "$cache" -maxdepth 1 -name 'agent-stemcell-*' ! -name "agent-stemcell-$key" -exec rm -rf {} +
publish
