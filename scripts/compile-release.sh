#!/usr/bin/env bash
# Compiles every package of a BOSH release tarball the way a compilation VM's
# agent does: the release tarball is unpacked, then each package's tarball
# into /var/vcap/data/compile/<pkg>, and its `packaging` runs there with
# `bash -x`, in dependency order (the packages of one dependency level side by
# side), each on a /var/vcap of its own that holds only its dependencies'
# compiled packages, with BOSH_COMPILE_TARGET, BOSH_INSTALL_TARGET
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

# Packages by dependency level: "level name fingerprint dep1,dep2" per line.
order=$(ruby -ryaml -e '
  mf = YAML.safe_load(File.read(ARGV[0]))
  pkgs = mf["packages"].to_h { |p| [p["name"], p] }
  level = {}
  visit = lambda do |n, path|
    raise "dependency cycle: #{(path + [n]).join(" -> ")}" if path.include?(n)
    level[n] ||= ((pkgs.fetch(n)["dependencies"] || []).map { |d| visit.call(d, path + [n]) + 1 }.max || 0)
  end
  pkgs.keys.each { |n| visit.call(n, []) }
  pkgs.keys.sort_by { |n| [level[n], n] }.each do |n|
    puts [level[n], n, pkgs[n]["fingerprint"], (pkgs[n]["dependencies"] || []).join(",")].join(" ")
  end
' "${work}/release/release.MF")

# compile_one PKG FP DEPS CACHED: compiles PKG on a "VM" of its own: a /var/vcap
# (WORK/vms/PKG) that holds only PKG's dependencies, as the agent provides them.
compile_one() {
  local pkg=$1 fp=$2 deps=$3 cached=$4 vm="${work}/vms/$1" d dfp start
  rm -rf "$vm"
  mkdir -p "${vm}/data/compile/${pkg}" "${vm}/data/packages/${pkg}/${fp}" "${vm}/packages"
  for d in ${deps//,/ }; do
    dfp=$(basename "$(readlink "${work}/vcap/packages/${d}")")
    mkdir -p "${vm}/data/packages/${d}"
    cp -al "${work}/vcap/data/packages/${d}/${dfp}" "${vm}/data/packages/${d}/"
    ln -s "/var/vcap/data/packages/${d}/${dfp}" "${vm}/packages/${d}"
  done
  ln -s "/var/vcap/data/packages/${pkg}/${fp}" "${vm}/packages/${pkg}"
  tar -xzf "${work}/release/packages/${pkg}.tgz" -C "${vm}/data/compile/${pkg}"
  start=$(date +%s)
  if ! "${repo}/scripts/in-stemcell-chroot.sh" "$root" "$vm" "/var/vcap/data/compile/${pkg}" -- /usr/bin/env \
       BOSH_COMPILE_TARGET="/var/vcap/data/compile/${pkg}" \
       BOSH_INSTALL_TARGET="/var/vcap/packages/${pkg}" \
       BOSH_PACKAGES_DIR=/var/vcap/packages \
       BOSH_PACKAGE_NAME="$pkg" BOSH_PACKAGE_VERSION="$fp" \
       nice -n 10 bash -x packaging >"${work}/logs/${pkg}.log" 2>&1; then
    echo "${pkg}: packaging FAILED after $(( $(date +%s) - start ))s; last lines of ${work}/logs/${pkg}.log:" >&2
    tail -n 40 "${work}/logs/${pkg}.log" >&2
    return 1
  fi
  tar -czf "${cached}.tmp" -C "${vm}/data/packages/${pkg}/${fp}" . && mv "${cached}.tmp" "$cached"
  echo "${pkg}: compiled in $(( $(date +%s) - start ))s"
}

# Level by level; the packages of one level compile side by side.
declare -A key_of=()
for level in $(cut -d' ' -f1 <<<"$order" | sort -un); do
  pids=()
  while read -r _ pkg fp deps; do
    dep_keys=
    for d in ${deps//,/ }; do dep_keys+="${d}:${key_of[$d]} "; done
    key=$(printf '%s %s %s %s\n' "$pkg" "$fp" "$chroot_id" "$dep_keys" | sha256sum | cut -c1-16)
    key_of[$pkg]=$key
    cached="${cache}/${pkg}-${fp}-${key}.tgz"
    ln -sfn "/var/vcap/data/packages/${pkg}/${fp}" "${work}/vcap/packages/${pkg}"
    if [ "$use_cache" -eq 1 ] && [ -f "$cached" ]; then
      echo "${pkg}: cached (${cached})"
    else
      compile_one "$pkg" "$fp" "$deps" "$cached" &
      pids+=($!)
    fi
  done < <(awk -v l="$level" '$1 == l' <<<"$order")
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  [ "$status" -eq 0 ] || exit 1
  while read -r _ pkg fp deps; do
    mkdir -p "${work}/vcap/data/packages/${pkg}/${fp}"
    tar -xzf "${cache}/${pkg}-${fp}-${key_of[$pkg]}.tgz" -C "${work}/vcap/data/packages/${pkg}/${fp}"
  done < <(awk -v l="$level" '$1 == l' <<<"$order")
done
rm -rf "${work}/vms"
echo "compiled packages: ${work}/vcap/packages (chroot ${root})"
