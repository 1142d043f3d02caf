#!/usr/bin/env bash
# Runs the release's packaging scripts on this machine, the way bosh create-env
# compiles them, to prove the chain builds without libvirt-dev and friends.
# Not part of CI: the whole chain takes 15-30 minutes on 2 cores.
#
# Usage: scripts/build-packages-locally.sh [--work DIR] [--sources DIR]
#                                          [--only PKG]...
#
#   --work DIR     scratch prefix (default: /tmp/bosh-libvirt-cpi-build). Gets
#                  compile/<pkg> (BOSH_COMPILE_TARGET), packages/<pkg>
#                  (BOSH_INSTALL_TARGET; BOSH_PACKAGES_DIR=packages) and logs/.
#   --sources DIR  add the tarballs in DIR first (scripts/add-blobs.sh DIR).
#   --only PKG     build only PKG (repeatable); its dependencies must already
#                  be in DIR/packages from an earlier run.
#
# The CPI source tarball is made from the working tree when blobs/ lacks it.
# Each packaging script runs under `env -i` with a plain PATH, so nothing from
# the caller's environment (PKG_CONFIG_PATH, CMAKE_PREFIX_PATH ...) leaks in.
# Build machine needs: gcc g++ make m4 cmake perl python3 rpcgen (rpcsvc-proto),
# zlib1g-dev, libssl-dev, xz-utils, bzip2, ruby (to read the specs).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=/tmp/bosh-libvirt-cpi-build
sources=
only=()

while [ "$#" -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift ;;
    --sources) sources=$2; shift ;;
    --only) only+=("$2"); shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-packages-locally: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

for tool in gcc g++ make m4 cmake perl python3 rpcgen ruby tar xz bzip2; do
  command -v "$tool" >/dev/null || { echo "build-packages-locally: '$tool' is missing" >&2; exit 1; }
done

if [ -n "$sources" ]; then
  "${repo}/scripts/add-blobs.sh" "$sources"
fi
wanted() { [ "${#only[@]}" -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }
if wanted libvirt_cpi && [ ! -f "${repo}/blobs/libvirt_cpi/bosh-libvirt-cpi-src.tgz" ]; then
  "${repo}/scripts/make-cpi-source-tarball.sh" --working-tree
fi

mkdir -p "${work}/compile" "${work}/packages" "${work}/logs"
work=$(cd "$work" && pwd)

# Package names in dependency order, then each package's files (one per line).
order=$(ruby -ryaml -e '
  dir = ARGV[0]
  specs = Dir["#{dir}/packages/*/spec"].to_h { |f| s = YAML.safe_load(File.read(f)); [s["name"], s] }
  done = []
  visit = lambda do |n, path|
    raise "dependency cycle: #{(path + [n]).join(" -> ")}" if path.include?(n)
    raise "unknown package #{n}" unless specs[n]
    next if done.include?(n)
    (specs[n]["dependencies"] || []).each { |d| visit.call(d, path + [n]) }
    done << n
  end
  specs.keys.sort.each { |n| visit.call(n, []) }
  puts done' "$repo")

files_of() {
  ruby -ryaml -e 'puts (YAML.safe_load(File.read(ARGV[0]))["files"] || [])' "${repo}/packages/$1/spec"
}

built=0
for pkg in $order; do
  wanted "$pkg" || continue
  compile="${work}/compile/${pkg}"
  install="${work}/packages/${pkg}"
  log="${work}/logs/${pkg}.log"
  rm -rf "$compile" "$install"
  mkdir -p "$compile" "$install"

  # Stage the spec's files as bosh does: relative paths kept, from src/ or blobs/.
  while IFS= read -r glob; do
    matched=0
    for base in "${repo}/src" "${repo}/blobs"; do
      [ -d "$base" ] || continue
      while IFS= read -r -d '' f; do
        rel=${f#"${base}/"}
        mkdir -p "${compile}/$(dirname "$rel")"
        cp -p "$f" "${compile}/${rel}"
        matched=1
      done < <(cd "$base" && for m in $glob; do [ -f "$m" ] && printf '%s\0' "${base}/${m}"; done)
    done
    if [ "$matched" -eq 0 ]; then
      echo "build-packages-locally: ${pkg}: nothing matches '${glob}' in blobs/ (see scripts/add-blobs.sh)" >&2
      exit 1
    fi
  done < <(files_of "$pkg")

  echo "== ${pkg} (log: ${log})"
  start=$(date +%s)
  if ! (cd "$compile" && env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="${HOME:-/root}" TMPDIR="${TMPDIR:-/tmp}" LANG=C.UTF-8 \
        BOSH_COMPILE_TARGET="$compile" BOSH_INSTALL_TARGET="$install" \
        BOSH_PACKAGES_DIR="${work}/packages" BOSH_PACKAGE_NAME="$pkg" \
        BOSH_PACKAGE_VERSION=local \
        bash -x "${repo}/packages/${pkg}/packaging") >"$log" 2>&1; then
    echo "   FAILED after $(( $(date +%s) - start ))s; last lines of ${log}:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  echo "   ok in $(( $(date +%s) - start ))s"
  built=$((built + 1))
done

cpi="${work}/packages/libvirt_cpi/bin/cpi"
if [ -x "$cpi" ]; then
  echo "== checks on the libvirt_cpi package"
  # libvirt may be linked by bin/cpi itself or by the driver module it loads.
  linked=0
  while IFS= read -r -d '' object; do
    echo "   ${object#"${work}/packages/"}: $(readelf -d "$object" | grep -oE 'R(UN)?PATH.*' || echo 'no RPATH')"
    deps=$(env -i PATH=/usr/bin:/bin ldd "$object")
    if grep -q 'not found' <<<"$deps"; then
      echo "   unresolved libraries in ${object}:" >&2
      grep 'not found' <<<"$deps" >&2
      exit 1
    fi
    if grep -q 'libvirt.so.0 =>' <<<"$deps"; then
      if grep -q "libvirt.so.0 => ${work}/packages/libvirt-client/lib/" <<<"$deps"; then
        linked=1
      else
        echo "   ${object} takes libvirt.so.0 from outside libvirt-client:" >&2
        grep 'libvirt.so.0' <<<"$deps" >&2
        exit 1
      fi
    fi
  done < <(find "${work}/packages/libvirt_cpi" -type f \( -name cpi -o -name '*.so' \) -print0)
  if [ "$linked" -eq 1 ]; then
    echo "   libvirt.so.0 resolves inside libvirt-client"
  else
    echo "   nothing in the package links libvirt.so.0" >&2
    exit 1
  fi
  # info (no libvirt needed) and a call that loads the driver and connects to
  # libvirt's in-process test driver, both under an empty environment.
  for method in info has_vm; do
    case "$method" in
      info) request='{"method":"info","arguments":[],"context":{"director_uuid":"x"},"api_version":1}' ;;
      has_vm) request='{"method":"has_vm","arguments":["vm-00000000-0000-4000-8000-000000000000"],"context":{"director_uuid":"x"},"api_version":2}' ;;
    esac
    response=$(printf '%s' "$request" | env -i PATH=/usr/bin:/bin "$cpi" --config "${repo}/config/cpi-test.json" 2>"${work}/logs/cpi-${method}.stderr")
    echo "   ${method}: ${response}"
    case "$response" in *'"error":null'*) ;; *) echo "   ${method} failed (stderr: ${work}/logs/cpi-${method}.stderr)" >&2; exit 1 ;; esac
  done
fi
echo "built ${built} package(s) under ${work}/packages"
