#!/usr/bin/env bash
# Build a tiny bootable BOSH test stemcell for the bosh-libvirt-cpi e2e tests.
#
#   tests/e2e/stemcell/build.sh OUTDIR
#
# Produces, packaged like BOSH OpenStack stemcells:
#   OUTDIR/qcow2/stemcell.tgz   (stemcell.MF + image; image = tgz of root.img, qcow2 compat=0.10)
#   OUTDIR/raw/stemcell.tgz     (same, root.img raw)
#   OUTDIR/{qcow2,raw}/image    extracted image tarballs (what create_stemcell receives)
#   OUTDIR/{qcow2,raw}/stemcell.MF, cloud_properties.json
#   OUTDIR/stemcell.env         KEY=value lines (bash-sourceable) naming the above
#
# The root disk is a 64 MiB MBR disk: syslinux mbr.bin, one bootable FAT16
# partition holding syslinux, the Debian cloud kernel and a busybox initramfs
# whose /init is tests/e2e/stemcell/init.  Built without loop mounts.
#
# Installs what it needs with apt-get (only when missing), caches downloaded
# .debs under OUTDIR/cache and skips the build when the outputs are newer than
# this script and the init file (FORCE=1 rebuilds anyway).
set -euo pipefail

usage() {
	echo "usage: $0 OUTDIR" >&2
	exit 2
}
[[ $# -eq 1 && -n $1 ]] || usage

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT=$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")
INIT=$SCRIPT_DIR/init
LXC_INIT=$SCRIPT_DIR/lxc-init
OUTDIR=$(realpath -m "$1")
CACHE=$OUTDIR/cache
WORK=$OUTDIR/work

NAME=bosh-libvirt-test-kvm-busybox-go_agent
VERSION=${STEMCELL_VERSION:-0.0.1}
DISK_MIB=64          # raw root disk size
PART_START=2048      # first partition at 1 MiB (512-byte sectors)
CLOUD_DISK_MB=256    # cloud_properties.disk
CMDLINE="console=ttyS0,115200 quiet"
# Modules for the initramfs; their dependencies are added, built-ins skipped.
MODULES=(virtio_pci virtio_blk virtio_scsi virtio_net ata_piix sr_mod sd_mod cdrom isofs button evdev)
# Nice to have, not fatal when the kernel lacks them (the cloud kernel has no AHCI).
OPTIONAL_MODULES=(ahci)

export LC_ALL=C
export MTOOLS_SKIP_CHECK=1

log() { echo "build.sh: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

[[ -r $INIT ]] || die "missing $INIT"
[[ -r $LXC_INIT ]] || die "missing $LXC_INIT"

OUTPUTS=(
	"$OUTDIR/qcow2/stemcell.tgz" "$OUTDIR/qcow2/image"
	"$OUTDIR/raw/stemcell.tgz" "$OUTDIR/raw/image"
	"$OUTDIR/raw-sparse/stemcell.tgz" "$OUTDIR/raw-sparse/image"
	"$OUTDIR/rootfs/stemcell.tgz" "$OUTDIR/rootfs/image"
	"$OUTDIR/stemcell.env"
)

up_to_date() {
	local f
	for f in "${OUTPUTS[@]}"; do
		[[ -f $f && $f -nt $SCRIPT && $f -nt $INIT && $f -nt $LXC_INIT ]] || return 1
	done
	grep -qx "STEMCELL_VERSION=$VERSION" "$OUTDIR/stemcell.env" || return 1
}

mkdir -p "$OUTDIR" "$CACHE" "$WORK"

# one build per OUTDIR at a time
exec 9>"$OUTDIR/.lock"
flock 9

if [[ ${FORCE:-0} != 1 ]] && up_to_date; then
	log "up to date: $OUTDIR/stemcell.env"
	exit 0
fi

T0=$SECONDS

# ---------------------------------------------------------------- apt helpers
pkg_installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# apt-get with waiting for a busy dpkg/apt lock (another apt may be running)
apt_retry() {
	local i out rc
	for i in $(seq 1 40); do
		rc=0
		out=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 \
			-o APT::Sandbox::User=root "$@" 2>&1) || rc=$?
		if [[ $rc -eq 0 ]]; then
			return 0
		fi
		if grep -qiE 'could not get lock|unable to acquire|is another process using it|lock-frontend' <<<"$out"; then
			log "apt lock busy, retrying in 5s ($i)"
			sleep 5
			continue
		fi
		echo "$out" >&2
		return "$rc"
	done
	die "apt lock stayed busy"
}

LISTS_CHECKED=0
ensure_lists() {
	[[ $LISTS_CHECKED == 1 ]] && return 0
	LISTS_CHECKED=1
	local pol
	pol=$(apt-cache policy busybox-static 2>/dev/null || true)
	if [[ ! $pol =~ Candidate:\ [^\(] ]]; then
		log "apt lists empty, running apt-get update"
		apt_retry update
	fi
}

ensure_tools() {
	local need=() p
	for p in syslinux syslinux-common mtools dosfstools fdisk qemu-utils kmod cpio gzip tar coreutils util-linux; do
		pkg_installed "$p" || need+=("$p")
	done
	if [[ ${#need[@]} -gt 0 ]]; then
		ensure_lists
		log "installing ${need[*]}"
		apt_retry install -y --no-install-recommends "${need[@]}"
	fi
}

# newest cached .deb of a package, downloading it into $CACHE when missing
fetch_deb() {
	local pkg=$1 f
	f=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n1)
	if [[ -z $f ]]; then
		ensure_lists
		log "downloading $pkg"
		(cd "$CACHE" && apt_retry download "$pkg")
		f=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n1)
	fi
	[[ -n $f ]] || die "could not download $pkg"
	echo "$f"
}

# the versioned kernel package linux-image-cloud-amd64 depends on
kernel_pkg() {
	local p
	p=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9].*-cloud-amd64/ && !x {print $2; x=1}' || true)
	if [[ -z $p ]]; then
		ensure_lists
		p=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9].*-cloud-amd64/ && !x {print $2; x=1}' || true)
	fi
	if [[ -z $p ]]; then
		# offline: newest cached one
		p=$(find "$CACHE" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' -printf '%f\n' |
			sort -V | tail -n1 | sed 's/_.*//')
	fi
	[[ -n $p ]] || die "cannot resolve the linux-image-cloud-amd64 kernel package"
	echo "$p"
}

# ---------------------------------------------------------------- inputs
ensure_tools

MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
[[ -r $MBR_BIN ]] || die "missing $MBR_BIN (syslinux-common)"

# kernel
KPKG=$(kernel_pkg)
KVER=${KPKG#linux-image-}
KDEB=$(fetch_deb "$KPKG")
KROOT=$WORK/kernel-$KVER
if [[ ! -f $KROOT/.ready || $KROOT/.ready -ot $KDEB ]]; then
	log "extracting $(basename "$KDEB")"
	rm -rf "$KROOT"
	mkdir -p "$KROOT"
	dpkg-deb -x "$KDEB" "$KROOT"
	depmod -b "$KROOT" "$KVER"
	touch "$KROOT/.ready"
fi
VMLINUZ=$KROOT/boot/vmlinuz-$KVER
[[ -r $VMLINUZ ]] || die "no $VMLINUZ in $KDEB"
find "$WORK" -maxdepth 1 -name 'kernel-*' ! -name "kernel-$KVER" -exec rm -rf {} +

# busybox-static: extracted from its .deb (installing it would conflict with
# the "busybox" package other tools on the host may depend on)
# (applet lists are captured first: `grep -q` quitting early would fail the pipe under pipefail)
if pkg_installed busybox-static && [[ -x /bin/busybox ]] && grep -qx acpid <<<"$(/bin/busybox --list)"; then
	BUSYBOX=/bin/busybox
else
	BBDEB=$(fetch_deb busybox-static)
	BBROOT=$WORK/busybox
	if [[ ! -f $BBROOT/.ready || $BBROOT/.ready -ot $BBDEB ]]; then
		rm -rf "$BBROOT"
		mkdir -p "$BBROOT"
		dpkg-deb -x "$BBDEB" "$BBROOT"
		touch "$BBROOT/.ready"
	fi
	BUSYBOX=$BBROOT/bin/busybox
fi
[[ -x $BUSYBOX ]] || die "no busybox binary"
APPLETS=$("$BUSYBOX" --list)
for a in sh acpid findfs base64 insmod mount poweroff find sort sed tr dd od; do
	grep -qx "$a" <<<"$APPLETS" || die "busybox lacks the $a applet"
done

# ---------------------------------------------------------------- initramfs
STAGE=$WORK/initramfs
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,run,mnt/config,etc/acpi/PWRF,lib/modules,var/log,var/run,usr}
ln -s bin "$STAGE/sbin"
ln -s ../bin "$STAGE/usr/bin"
ln -s ../bin "$STAGE/usr/sbin"
cp "$BUSYBOX" "$STAGE/bin/busybox"
for a in $("$BUSYBOX" --list); do
	[[ $a == busybox ]] || ln -s busybox "$STAGE/bin/$a"
done
install -m 0755 "$INIT" "$STAGE/init"
# the kernel opens /dev/console before running /init
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || log "warning: cannot mknod dev/console"
mknod -m 666 "$STAGE/dev/null" c 1 3 2>/dev/null || true

cat >"$STAGE/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# busybox acpid: ACPI power button (button/power PWRF 00000080) -> power off
echo "BOSHTEST acpi event=power-button action=poweroff" >/dev/console
sync
poweroff -f
EOF
chmod 0755 "$STAGE/etc/acpi/PWRF/00000080"

declare -A SEEN=()
: >"$STAGE/etc/modules.list"
add_module() {
	local m=$1 optional=$2 out kind path
	if ! out=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>&1); then
		[[ $optional == 1 ]] && {
			log "optional module $m not available, skipped"
			return 0
		}
		die "module $m: $out"
	fi
	while read -r kind path _; do
		case $kind in
		insmod)
			[[ -n ${SEEN[$path]:-} ]] && continue
			SEEN[$path]=1
			local base
			base=$(basename "$path")
			case $base in
			*.ko) cp "$path" "$STAGE/lib/modules/$base" ;;
			*.ko.xz) xz -dc "$path" >"$STAGE/lib/modules/${base%.xz}"; base=${base%.xz} ;;
			*.ko.gz) gzip -dc "$path" >"$STAGE/lib/modules/${base%.gz}"; base=${base%.gz} ;;
			*.ko.zst) zstd -qdc "$path" >"$STAGE/lib/modules/${base%.zst}"; base=${base%.zst} ;;
			*) die "unexpected module file $path" ;;
			esac
			echo "$base" >>"$STAGE/etc/modules.list"
			;;
		builtin) ;;
		esac
	done <<<"$out"
}
for m in "${MODULES[@]}"; do add_module "$m" 0; done
for m in "${OPTIONAL_MODULES[@]}"; do add_module "$m" 1; done
log "modules: $(tr '\n' ' ' <"$STAGE/etc/modules.list")"

INITRD=$WORK/initrd.gz
(cd "$STAGE" && find . -mindepth 1 -print0 | sort -z |
	cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$INITRD"

# ---------------------------------------------------------------- boot FAT + disk
PART_SECTORS=$((DISK_MIB * 2048 - PART_START))
FAT=$WORK/fat.img
rm -f "$FAT"
# -h: hidden sectors = partition offset, so the syslinux VBR finds ldlinux.sys
mkfs.vfat -C -F 16 -n BOSHTEST -h "$PART_START" "$FAT" $((PART_SECTORS / 2)) >/dev/null
syslinux --install "$FAT"
cat >"$WORK/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND $CMDLINE
EOF
mcopy -o -i "$FAT" "$WORK/syslinux.cfg" ::/syslinux.cfg
mcopy -o -i "$FAT" "$VMLINUZ" ::/vmlinuz
mcopy -o -i "$FAT" "$INITRD" ::/initrd.gz

RAW=$WORK/disk.raw
rm -f "$RAW"
truncate -s "${DISK_MIB}M" "$RAW"
printf 'label: dos\nstart=%d, size=%d, type=e, bootable\n' "$PART_START" "$PART_SECTORS" |
	sfdisk --quiet --no-reread --no-tell-kernel "$RAW" >/dev/null
dd if="$MBR_BIN" of="$RAW" bs=440 count=1 conv=notrunc status=none
dd if="$FAT" of="$RAW" bs=512 seek="$PART_START" conv=notrunc,sparse status=none
rm -f "$FAT"

# ---------------------------------------------------------------- stemcells
write_manifest() {
	# $1 = file, $2 = name, $3 = disk_format, $4 = stemcell format, $5 = sha1
	cat >"$1" <<EOF
---
name: $2
version: '$VERSION'
bosh_protocol: '1'
api_version: 2
sha1: $5
operating_system: busybox
stemcell_formats:
- $4
cloud_properties:
  name: $2
  version: '$VERSION'
  infrastructure: openstack
  hypervisor: kvm
  disk: $CLOUD_DISK_MB
  disk_format: $3
  container_format: bare
  os_type: linux
  architecture: x86_64
EOF
}

write_cloud_properties_json() {
	# $1 = file, $2 = name, $3 = disk_format
	cat >"$1" <<EOF
{"name":"$2","version":"$VERSION","infrastructure":"openstack","hypervisor":"kvm","disk":$CLOUD_DISK_MB,"disk_format":"$3","container_format":"bare","os_type":"linux","architecture":"x86_64"}
EOF
}

TAR_OPTS=(--owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu)

# Packs stemcell.MF and image in $1 into stemcell.tgz and moves the lot to OUTDIR/$2.
publish() {
	local pkg=$1 variant=$2 f
	tar -C "$pkg" "${TAR_OPTS[@]}" -cf - stemcell.MF image | gzip -1n >"$pkg/stemcell.tgz"
	mkdir -p "$OUTDIR/$variant"
	for f in image stemcell.MF cloud_properties.json stemcell.tgz; do
		mv -f "$pkg/$f" "$OUTDIR/$variant/$f"
	done
	rmdir "$pkg"
}

build_variant() {
	local variant=$1 name fmt sfmt pkg sha1
	case $variant in
	qcow2) name=$NAME fmt=qcow2 sfmt=openstack-qcow2 ;;
	raw) name=$NAME-raw fmt=raw sfmt=openstack-raw ;;
	raw-sparse) name=$NAME-raw-sparse fmt=raw sfmt=openstack-raw ;;
	esac
	pkg=$WORK/pkg-$variant
	rm -rf "$pkg"
	mkdir -p "$pkg"
	if [[ $variant == qcow2 ]]; then
		qemu-img convert -f raw -O qcow2 -o compat=0.10 "$RAW" "$pkg/root.img"
	else
		cp --sparse=always "$RAW" "$pkg/root.img"
	fi
	local sparse=()
	[[ $variant == raw-sparse ]] && sparse=(--sparse)  # GNU sparse members: holes not stored
	tar -C "$pkg" "${TAR_OPTS[@]}" "${sparse[@]}" -cf - root.img | gzip -6n >"$pkg/image"
	rm -f "$pkg/root.img"
	sha1=$(sha1sum "$pkg/image" | cut -d' ' -f1)
	write_manifest "$pkg/stemcell.MF" "$name" "$fmt" "$sfmt" "$sha1"
	write_cloud_properties_json "$pkg/cloud_properties.json" "$name" "$fmt"
	publish "$pkg" "$variant"
}
build_variant qcow2
build_variant raw
build_variant raw-sparse

# The root filesystem stemcell for the lxc hypervisor (stemcell_formats warden-tar): `image` is
# a gzip tar of the root filesystem, busybox and tests/e2e/stemcell/lxc-init as /sbin/init.
build_rootfs() {
	local pkg=$WORK/pkg-rootfs tree=$WORK/rootfs name=$NAME-rootfs sha1
	[[ -n $WORK ]] || die "WORK is not set"
	rm -rf "$pkg" "$tree"
	mkdir -p "$pkg" "$tree"/{bin,sbin,dev,proc,sys,tmp,run,etc,var/vcap/bosh,var/vcap/data,warden-cpi-dev}
	cp "$BUSYBOX" "$tree/bin/busybox"
	for a in $("$BUSYBOX" --list); do
		[[ $a == busybox ]] || ln -s busybox "$tree/bin/$a"
	done
	install -m 0755 "$LXC_INIT" "$tree/sbin/init"
	echo "root:x:0:0:root:/:/bin/sh" >"$tree/etc/passwd"
	tar -C "$tree" "${TAR_OPTS[@]}" -cf - . | gzip -6n >"$pkg/image"
	rm -rf "$tree"
	sha1=$(sha1sum "$pkg/image" | cut -d' ' -f1)
	printf -- '---\nname: %s\nversion: %s\nbosh_protocol: 1\napi_version: 2\nsha1: %s\noperating_system: busybox\nstemcell_formats:\n- warden-tar\ncloud_properties: {}\n' \
		"$name" "'$VERSION'" "$sha1" >"$pkg/stemcell.MF"
	echo '{}' >"$pkg/cloud_properties.json"
	publish "$pkg" rootfs
}
build_rootfs

ENV_TMP=$OUTDIR/stemcell.env.tmp
{
	echo "# generated by tests/e2e/stemcell/build.sh"
	printf '%s=%q\n' \
		STEMCELL_NAME "$NAME" \
		STEMCELL_RAW_NAME "$NAME-raw" \
		STEMCELL_VERSION "$VERSION" \
		STEMCELL_KERNEL "$KVER" \
		STEMCELL_QCOW2_TGZ "$OUTDIR/qcow2/stemcell.tgz" \
		STEMCELL_QCOW2_IMAGE "$OUTDIR/qcow2/image" \
		STEMCELL_QCOW2_MF "$OUTDIR/qcow2/stemcell.MF" \
		STEMCELL_QCOW2_CLOUD_PROPERTIES "$OUTDIR/qcow2/cloud_properties.json" \
		STEMCELL_RAW_TGZ "$OUTDIR/raw/stemcell.tgz" \
		STEMCELL_RAW_IMAGE "$OUTDIR/raw/image" \
		STEMCELL_RAW_MF "$OUTDIR/raw/stemcell.MF" \
		STEMCELL_RAW_CLOUD_PROPERTIES "$OUTDIR/raw/cloud_properties.json" \
		STEMCELL_RAW_SPARSE_IMAGE "$OUTDIR/raw-sparse/image" \
		STEMCELL_ROOTFS_NAME "$NAME-rootfs" \
		STEMCELL_ROOTFS_TGZ "$OUTDIR/rootfs/stemcell.tgz" \
		STEMCELL_ROOTFS_IMAGE "$OUTDIR/rootfs/image" \
		STEMCELL_ROOTFS_MF "$OUTDIR/rootfs/stemcell.MF"
} >"$ENV_TMP"
mv -f "$ENV_TMP" "$OUTDIR/stemcell.env"

log "built in $((SECONDS - T0))s: $OUTDIR/stemcell.env"
