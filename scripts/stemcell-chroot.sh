#!/usr/bin/env bash
# Makes (once) and prints the root of a chroot that has what a BOSH stemcell's
# compilation VM has for building packages, and nothing else: Debian 12
# minbase plus the build tools the Ubuntu stemcells install
# (bosh-linux-stemcell-builder's base_ubuntu_build_essential and
# base_ubuntu_packages stages: build-essential, clang, cmake, bison, flex,
# debhelper (autoconf, automake, libtool), libssl/libxml2/libxslt/zlib/... -dev,
# python3, curl, wget ...). Like a stemcell it has no pkg-config, meson, ninja,
# xmllint, xsltproc, glib or gnutls headers, and no libvirt.
#
# Usage: scripts/stemcell-chroot.sh        prints the chroot's root directory
#
# The chroot is made with debootstrap from the apt mirror the host's
# /etc/apt/sources.list* name (or $DEBIAN_MIRROR) and cached by the hash of
# its package list, suite and mirror under
# $BOSH_LIBVIRT_CPI_CACHE/chroot/<hash>/root (default cache
# /var/cache/bosh-libvirt-cpi). It is never written to afterwards: callers
# bind their scratch directories over it (scripts/compile-release.sh). Needs
# root and debootstrap (installed with apt-get when missing); takes 5-10
# minutes once.
set -euo pipefail

packages=(
  build-essential clang cmake bison flex debhelper
  libssl-dev libxml2-dev libxslt1-dev zlib1g-dev libbz2-dev libreadline-dev
  libncurses-dev libcap-dev uuid-dev libgcrypt20-dev libcurl4-openssl-dev
  libtirpc-dev rpcsvc-proto python3 curl wget zip unzip rsync ca-certificates
  xz-utils bzip2 file
)
suite=bookworm

configured_uri() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE "https?://[^ ]+/debian/?( |$)" | sed 's:/* *$::' | head -n 1 || true
}
mirror=${DEBIAN_MIRROR:-$(configured_uri)}
mirror=${mirror:-http://deb.debian.org/debian}

cache=${BOSH_LIBVIRT_CPI_CACHE:-/var/cache/bosh-libvirt-cpi}
id=$(printf '%s\n' "minbase" "$suite" "$mirror" "${packages[@]}" | sha256sum | cut -c1-16)
dir="${cache}/chroot/${id}"
if [ -f "${dir}/complete" ]; then
  echo "${dir}/root"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "stemcell-chroot: needs root" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
    { echo "stemcell-chroot: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
fi
mkdir -p "${cache}/chroot"
tmp=$(mktemp -d "${cache}/chroot/.new-${id}.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
list=$(IFS=,; echo "${packages[*]}")
echo "stemcell-chroot: debootstrap ${suite} from ${mirror} into ${dir} (log: ${tmp}/debootstrap.log)" >&2
if ! nice -n 10 debootstrap --variant=minbase --include="$list" "$suite" "${tmp}/root" "$mirror" \
     >"${tmp}/debootstrap.log" 2>&1; then
  tail -n 20 "${tmp}/debootstrap.log" >&2
  exit 1
fi
# What a compilation VM has besides: the /var/vcap tree the agent compiles in.
mkdir -p "${tmp}/root/var/vcap/data/compile" "${tmp}/root/var/vcap/data/packages" \
  "${tmp}/root/var/vcap/packages" "${tmp}/root/var/vcap/jobs"
rm -rf "${tmp}/root/var/cache/apt/archives/"*.deb "${tmp}/root/var/lib/apt/lists/"*
printf '%s\n' "${packages[@]}" > "${tmp}/packages"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
touch "${dir}/complete"
echo "${dir}/root"
