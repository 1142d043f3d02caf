#!/usr/bin/env bash
# Compiles every package of a BOSH release tarball the way a compilation VM's
# agent does: the release tarball is unpacked, then each package's tarball
# into /var/vcap/data/compile/<pkg>, and its `packaging` runs there with
# `bash -x`, in dependency order, with BOSH_COMPILE_TARGET, BOSH_INSTALL_TARGET
# (/var/vcap/packages/<pkg>, a link to /var/vcap/data/packages/<pkg>/<fp>),
# BOSH_PACKAGES_DIR=/var/vcap/packages, BOSH_PACKAGE_NAME and
# BOSH_PACKAGE_VERSION set and nothing else but PATH=/usr/sbin:/usr/bin:/sbin:/bin.
# It runs in the stemcell-like chroot of scripts/stemcell-chroot.sh, which
# stays read-only: /var/vcap is WORK/vcap, /tmp and /root are empty tmpfs.
#
# Usage: scripts/compile-release.sh RELEASE_TGZ [--work DIR] [--no-cache]
#
#   --work DIR   scratch (default: build-release/compile). Afterwards
#                DIR/vcap/packages/<pkg> holds every compiled package (as
#                /var/vcap/packages/<pkg> inside the chroot), DIR/logs/<pkg>.log
#                each packaging log.
#   --no-cache   compile everything, ignoring (and refreshing) the cache.
#
# Compiled packages are cached as
#   $BOSH_LIBVIRT_CPI_CACHE/compiled/<pkg>-<fingerprint>-<key>.tgz
# (default cache /var/cache/bosh-libvirt-cpi), where <key> hashes the chroot
# and the keys of the package's dependencies: a change to a package's spec,
# packaging or files changes its fingerprint, and so recompiles it and every
# package that depends on it. Prints one line per package: compiled (seconds)
# or cached.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
release=
work="${repo}/build-release/compile"
use_cache=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift ;;
    --no-cache) use_cache=0 ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compile-release: unknown argument '$1'" >&2; exit 2 ;;
    *) release=$1 ;;
  esac
  shift
done
[ -n "$release" ] && [ -f "$release" ] || { echo "usage: scripts/compile-release.sh RELEASE_TGZ [--work DIR] [--no-cache]" >&2; exit 2; }
release=$(cd "$(dirname "$release")" && pwd)/$(basename "$release")
[ "$(id -u)" -eq 0 ] || { echo "compile-release: needs root (chroot)" >&2; exit 1; }

root=$("${repo}/scripts/stemcell-chroot.sh")
chroot_id=$(basename "$(dirname "$root")")
cache="${BOSH_LIBVIRT_CPI_CACHE:-/var/cache/bosh-libvirt-cpi}/compiled"
mkdir -p "$cache"

rm -rf "$work"
mkdir -p "${work}/release" "${work}/vcap/data/compile" "${work}/vcap/data/packages" \
  "${work}/vcap/packages" "${work}/logs"
work=$(cd "$work" && pwd)
tar -xzf "$release" -C "${work}/release"

# in_chroot DIR CMD...: runs CMD in the chroot with cwd DIR (see in-stemcell-chroot.sh).
in_chroot() {
  local cwd=$1
  shift
  "${repo}/scripts/in-stemcell-chroot.sh" "$root" "${work}/vcap" "$cwd" -- "$@"
}

# name fingerprint dep1,dep2 per line, dependencies first.
order=$(ruby -ryaml -e '
  mf = YAML.safe_load(File.read(ARGV[0]))
  pkgs = mf["packages"].to_h { |p| [p["name"], p] }
  done = []
  visit = lambda do |n, path|
    raise "dependency cycle: #{(path + [n]).join(" -> ")}" if path.include?(n)
    next if done.include?(n)
    (pkgs.fetch(n)["dependencies"] || []).each { |d| visit.call(d, path + [n]) }
    done << n
  end
  pkgs.keys.sort.each { |n| visit.call(n, []) }
  done.each { |n| puts [n, pkgs[n]["fingerprint"], (pkgs[n]["dependencies"] || []).join(",")].join(" ") }
' "${work}/release/release.MF")

declare -A key_of=()
while read -r pkg fp deps; do
  dep_keys=
  for d in ${deps//,/ }; do dep_keys+="${d}:${key_of[$d]} "; done
  key=$(printf '%s %s %s %s\n' "$pkg" "$fp" "$chroot_id" "$dep_keys" | sha256sum | cut -c1-16)
  key_of[$pkg]=$key
  cached="${cache}/${pkg}-${fp}-${key}.tgz"
  install="${work}/vcap/data/packages/${pkg}/${fp}"
  mkdir -p "$install"
  ln -sfn "/var/vcap/data/packages/${pkg}/${fp}" "${work}/vcap/packages/${pkg}"
  if [ "$use_cache" -eq 1 ] && [ -f "$cached" ]; then
    tar -xzf "$cached" -C "$install"
    echo "${pkg}: cached (${cached})"
    continue
  fi
  compile="${work}/vcap/data/compile/${pkg}"
  mkdir -p "$compile"
  tar -xzf "${work}/release/packages/${pkg}.tgz" -C "$compile"
  start=$(date +%s)
  if ! in_chroot "/var/vcap/data/compile/${pkg}" /usr/bin/env \
       BOSH_COMPILE_TARGET="/var/vcap/data/compile/${pkg}" \
       BOSH_INSTALL_TARGET="/var/vcap/packages/${pkg}" \
       BOSH_PACKAGES_DIR=/var/vcap/packages \
       BOSH_PACKAGE_NAME="$pkg" BOSH_PACKAGE_VERSION="$fp" \
       nice -n 10 bash -x packaging >"${work}/logs/${pkg}.log" 2>&1; then
    echo "${pkg}: packaging FAILED after $(( $(date +%s) - start ))s; last lines of ${work}/logs/${pkg}.log:" >&2
    tail -n 40 "${work}/logs/${pkg}.log" >&2
    exit 1
  fi
  tar -czf "${cached}.tmp" -C "$install" . && mv "${cached}.tmp" "$cached"
  rm -rf "$compile"
  echo "${pkg}: compiled in $(( $(date +%s) - start ))s"
done <<<"$order"
echo "compiled packages: ${work}/vcap/packages (chroot ${root})"
