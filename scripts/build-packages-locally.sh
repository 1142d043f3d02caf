#!/usr/bin/env bash
# Builds the release tarball from the working tree and compiles every package
# from it as a BOSH compilation VM does (scripts/create-release.sh, then
# scripts/compile-release.sh in the stemcell-like chroot). Needs root.
#
# Usage: scripts/build-packages-locally.sh [--no-cache]
#
# The compiled packages land in build-release/compile/vcap/packages; compiled
# packages are cached by fingerprint in /var/cache/bosh-libvirt-cpi/compiled.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
"${repo}/scripts/create-release.sh" --working-tree --tarball "${repo}/build-release/bosh-libvirt-cpi-dev.tgz"
exec "${repo}/scripts/compile-release.sh" "${repo}/build-release/bosh-libvirt-cpi-dev.tgz" "$@"
