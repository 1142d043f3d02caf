#!/usr/bin/env bash
# Downloads the original source tarballs of the release's blobs from Debian's
# apt mirror with `apt-get source --download-only`, into DIR. Then run
#   scripts/add-blobs.sh DIR
# to copy them into blobs/ and record them in config/blobs.yml.
#
# Usage: scripts/fetch-debian-sources.sh DIR
#
# The host's apt configuration is not changed: the script writes its own
# deb-src list (the mirror the host's /etc/apt/sources.list* name, or
# $DEBIAN_MIRROR / $DEBIAN_SECURITY_MIRROR) and apt state under
# $APT_SRC_DIR (default /var/cache/bosh-libvirt-cpi/apt-src, or
# ~/.cache/bosh-libvirt-cpi/apt-src when that is not writable).
# For each pinned upstream version it tries every Debian revision of that
# version the mirror's Sources indices list (bookworm, its updates and
# security suites, then trixie and sid), newest first, until one's .orig
# tarball downloads: a mirror often lacks the pool files of superseded
# security revisions. apt-get checks every file against the signed index.
# Only the .orig tarballs are used: Debian's patches are not part of the blobs.
set -euo pipefail

if [ "$#" -ne 1 ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)

# Debian source package => the upstream version the release pins (the one in
# bookworm, except libtirpc: bookworm's 1.3.3+ds.orig is not on the mirror, so
# the release uses trixie's 1.3.6).
sources=(
  pkgconf:1.8.1 meson:1.0.1 ninja-build:1.11.1 libxml2:2.9.14 libxslt:1.1.35
  libffi:3.4.4 pcre2:10.42 glib2.0:2.74.6 gmp:6.2.1 nettle:3.8.1 gnutls28:3.7.9
  libtirpc:1.3.6 libssh:0.10.6 libvirt:9.0.0 libarchive:3.6.2
  fmtlib:9.1.0 spdlog:1.10.0 nlohmann-json3:3.11.2 pugixml:1.13 cli11:2.1.2
)

state=${APT_SRC_DIR:-/var/cache/bosh-libvirt-cpi/apt-src}
if ! mkdir -p "$state" 2>/dev/null || [ ! -w "$state" ]; then
  state="${HOME}/.cache/bosh-libvirt-cpi/apt-src"
  mkdir -p "$state"
fi
mkdir -p "${state}/lists/partial" "${state}/cache/archives/partial"

# The mirror URIs the host's apt sources use for the debian and
# debian-security archives (one-line and deb822 formats).
configured_uri() {
  local archive=$1
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE "https?://[^ ]+/${archive}/?( |$)" | sed 's:/* *$::' | head -n 1 || true
}
mirror=${DEBIAN_MIRROR:-$(configured_uri debian)}
security=${DEBIAN_SECURITY_MIRROR:-$(configured_uri debian-security)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
  for suite in bookworm bookworm-updates trixie sid; do
    echo "deb-src [signed-by=${keyring}] ${mirror} ${suite} main"
  done
  echo "deb-src [signed-by=${keyring}] ${security} bookworm-security main"
} > "${state}/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=${state}/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=${state}/lists" -o "Dir::Cache=${state}/cache"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root
)
echo "== apt-get update (deb-src from ${mirror} and ${security}; state in ${state})"
apt-get "${apt_opts[@]}" update >"${out}/apt-update.log" 2>&1 ||
  { cat "${out}/apt-update.log" >&2; exit 1; }

# candidates PACKAGE UPSTREAM: the source versions of PACKAGE whose upstream
# part is UPSTREAM (optionally with a +ds/+dfsg repack suffix), newest first.
candidates() {
  apt-cache "${apt_opts[@]}" showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -u |
    while read -r v; do
      local up=${v#*:}
      up=${up%-*}
      case "$up" in "$2" | "$2"+*) printf '%s\n' "$v" ;; esac
    done | sort -r -V
}

have_orig() {
  compgen -G "${out}/${1}_${2}*.orig.tar.[gbx]z*" | grep -qv '\.asc$'
}

failed=()
cd "$out"
for item in "${sources[@]}"; do
  package=${item%%:*}
  version=${item#*:}
  echo "== ${package} (${version})"
  if have_orig "$package" "$version"; then
    echo "   already here"
    continue
  fi
  mapfile -t versions < <(candidates "$package" "$version")
  for v in "${versions[@]}"; do
    # A revision's .dsc or .debian.tar may be gone while its .orig is still
    # there; only the .orig matters, so judge by that file.
    apt-get "${apt_opts[@]}" source --download-only "${package}=${v}" >>"${package}.log" 2>&1 || true
    if have_orig "$package" "$version"; then
      echo "   from source package ${package} ${v}"
      break
    fi
    echo "   ${package} ${v}: its .orig is not on the mirror"
  done
  if ! have_orig "$package" "$version"; then
    echo "   no ${package}_${version}*.orig.tar.* (revisions tried: ${versions[*]:-none}; see ${out}/${package}.log)" >&2
    failed+=("$package")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "Could not fetch: ${failed[*]}. Get those tarballs from the upstream project instead" >&2
  echo "(name them <project>-<version>.tar.<ext>) and put them into ${out}." >&2
  exit 1
fi
echo "All sources are in ${out}; next: scripts/add-blobs.sh ${out}"
