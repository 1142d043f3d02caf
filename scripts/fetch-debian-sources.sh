#!/usr/bin/env bash
# Downloads the original source tarballs of the release's blobs from Debian 12
# (bookworm) with `apt-get source --download-only`, into DIR. Then run
#   scripts/add-blobs.sh DIR
# to copy them into blobs/ and record them in config/blobs.yml.
#
# Usage: scripts/fetch-debian-sources.sh DIR
#
# Needs a deb-src line for bookworm in the apt sources, for example
# /etc/apt/sources.list.d/debian-src.sources with
#   Types: deb-src
#   URIs: http://deb.debian.org/debian
#   Suites: bookworm bookworm-updates
#   Components: main
#   Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
# followed by `apt-get update`. Only the .orig tarballs are used: Debian's own
# patches (including security backports) are not part of the blobs.
set -euo pipefail

if [ "$#" -ne 1 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p "$1"
cd "$1"

# Debian source package => the upstream version the release pins. apt-get
# fetches the bookworm revision of that version that the archive has.
sources=(
  pkgconf:1.8.1 meson:1.0.1 ninja-build:1.11.1 libxml2:2.9.14 libxslt:1.1.35
  libffi:3.4.4 pcre2:10.42 glib2.0:2.74.6 gmp:6.2.1 nettle:3.8.1 gnutls28:3.7.9
  libtirpc:1.3.3 libssh:0.10.6 libvirt:9.0.0 libarchive:3.6.2
  fmtlib:9.1.0 spdlog:1.10.0 nlohmann-json3:3.11.2 pugixml:1.13 cli11:2.1.2
)

failed=()
for item in "${sources[@]}"; do
  package=${item%%:*}
  version=${item#*:}
  echo "== ${package} (${version})"
  if ! apt-get source --download-only "$package" >"${package}.log" 2>&1; then
    # The .debian.tar of an old revision may be gone while the .orig is still
    # there; only the .orig matters, so judge by that file.
    :
  fi
  if ! compgen -G "${package}_${version}*.orig.tar.*" >/dev/null; then
    echo "   no ${package}_${version}*.orig.tar.* downloaded (see ${PWD}/${package}.log)" >&2
    failed+=("$package")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "Could not fetch: ${failed[*]}. Get those tarballs from the upstream project instead" >&2
  echo "(name them <project>-<version>.tar.<ext>) and put them into ${PWD}." >&2
  exit 1
fi
echo "All sources are in ${PWD}; next: scripts/add-blobs.sh ${PWD}"
