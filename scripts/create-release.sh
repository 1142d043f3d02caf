#!/usr/bin/env bash
# Makes the BOSH release tarball with the real bosh CLI (`bosh create-release`).
#
# Usage: scripts/create-release.sh [--tarball FILE] [--working-tree]
#                                  [--blobs DIR] [--bosh BOSH] [--version V]
#
#   --tarball FILE  where the release tarball goes
#                   (default: build-release/bosh-libvirt-cpi-dev.tgz)
#   --working-tree  package the C++ sources as they are in the working tree
#                   (tracked and untracked, not ignored); default: HEAD
#   --blobs DIR     the source tarballs of config/blobs.yml (default: blobs/).
#                   A blob missing there is taken from the download cache
#                   $BOSH_LIBVIRT_CPI_CACHE/sources (default cache:
#                   /var/cache/bosh-libvirt-cpi, or ~/.cache/bosh-libvirt-cpi when
#                   that is not writable), which is filled first with
#                   scripts/fetch-debian-sources.sh when it lacks a blob.
#   --bosh BOSH     the bosh CLI (default: bosh on PATH, else ../shared/tools/bosh)
#   --version V     release version (default: bosh's next dev version)
#
# Why a release directory of its own: a BOSH package's `files` are looked up
# in the release's src/ and blobs/ only, and this repository keeps
# CMakeLists.txt, cmake/ and include/ next to src/. The script assembles
# a fresh build-release/dir.XXXXXX/ (ignored by git, removed after): jobs/,
# packages/, config/{final,blobs}.yml copied from the repository,
# src/bosh-libvirt-cpi/ = the C++ tree, blobs/ = hard links (or copies) of the
# blobs. Nothing in it is an input create-release can delete: every
# blob is listed in config/blobs.yml, and the sources are release sources.
# The same sources and blobs give the same package fingerprints on every run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tarball="${repo}/build-release/bosh-libvirt-cpi-dev.tgz"
mode=head
blobs="${repo}/blobs"
bosh=
version=

while [ "$#" -gt 0 ]; do
  case "$1" in
    --tarball) tarball=$2; shift ;;
    --tarball=*) tarball=${1#--tarball=} ;;
    --working-tree) mode=worktree ;;
    --blobs) blobs=$2; shift ;;
    --bosh) bosh=$2; shift ;;
    --version) version=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "create-release: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$bosh" ]; then
  if command -v bosh >/dev/null 2>&1; then bosh=$(command -v bosh)
  elif [ -x "${repo}/../shared/tools/bosh" ]; then bosh="${repo}/../shared/tools/bosh"
  else echo "create-release: no bosh CLI (install it or pass --bosh)" >&2; exit 1
  fi
fi
command -v ruby >/dev/null || { echo "create-release: ruby is needed to read config/blobs.yml" >&2; exit 1; }

# A release directory of its own for every run: the dev-build index the CLI keeps in it
# (.dev_builds, dev_releases) names blobs in that user's ~/.bosh cache, so a directory left by
# another run (or another HOME) would make create-release look for blobs it does not have.
mkdir -p "${repo}/build-release" "$(dirname "$tarball")"
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
dir=$(mktemp -d "${repo}/build-release/dir.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "${dir}/config" "${dir}/src/bosh-libvirt-cpi" "${dir}/blobs"
cp -a "${repo}/jobs" "${repo}/packages" "$dir/"
cp "${repo}/config/final.yml" "${repo}/config/blobs.yml" "${dir}/config/"

# The C++ tree (reproducible tarball of HEAD or the working tree), unpacked.
src_tgz="${repo}/build-release/bosh-libvirt-cpi-src.tgz"
if [ "$mode" = worktree ]; then
  "${repo}/scripts/make-cpi-source-tarball.sh" --working-tree --output "$src_tgz" >/dev/null
else
  "${repo}/scripts/make-cpi-source-tarball.sh" --output "$src_tgz" >/dev/null
fi
(umask 022 && tar -xzf "$src_tgz" -C "${dir}/src/bosh-libvirt-cpi" --no-same-owner)

blob_list=$(ruby -ryaml -e 'YAML.safe_load(File.read(ARGV[0])).sort.each { |p, e| puts [p, e["size"], e["sha"]].join(" ") }' \
  "${repo}/config/blobs.yml")

# Blobs missing from blobs/: copy them from the download cache (by sha256),
# downloading into it first when it lacks one.
cache_sources="${BOSH_LIBVIRT_CPI_CACHE:-/var/cache/bosh-libvirt-cpi}/sources"
if ! mkdir -p "$cache_sources" 2>/dev/null || [ ! -w "$cache_sources" ]; then
  cache_sources="${HOME}/.cache/bosh-libvirt-cpi/sources"
fi
fill_from_cache() {
  local path size sha file
  declare -A by_sha=()
  if [ -d "$cache_sources" ]; then
    while IFS= read -r -d '' file; do
      by_sha["sha256:$(sha256sum "$file" | cut -d' ' -f1)"]=$file
    done < <(find "$cache_sources" -maxdepth 1 -type f -name '*.tar.*' ! -name '*.asc' -print0)
  fi
  local lacking=0
  while IFS=' ' read -r path size sha; do
    [ -f "${blobs}/${path}" ] && continue
    if [ -n "${by_sha[$sha]:-}" ]; then
      mkdir -p "${blobs}/$(dirname "$path")"
      cp "${by_sha[$sha]}" "${blobs}/${path}"
    else
      lacking=1
    fi
  done <<<"$blob_list"
  return "$lacking"
}
if ! fill_from_cache; then
  echo "== fetching the blobs' source tarballs into ${cache_sources}"
  "${repo}/scripts/fetch-debian-sources.sh" "$cache_sources"
  fill_from_cache || true
fi

# Every blob config/blobs.yml lists, checked against its size and sha256.
missing=0
while IFS=' ' read -r path size sha; do
  src="${blobs}/${path}"
  if [ ! -f "$src" ]; then
    echo "create-release: blob ${path} is missing from ${blobs} (see docs/deploying.md, step 3)" >&2
    missing=1
    continue
  fi
  actual_size=$(stat -c %s "$src")
  actual_sha=$(sha256sum "$src" | cut -d' ' -f1)
  if [ "$actual_size" != "$size" ] || [ "sha256:${actual_sha}" != "$sha" ]; then
    echo "create-release: ${src} is not the blob config/blobs.yml lists (size ${actual_size}, sha256:${actual_sha})" >&2
    missing=1
    continue
  fi
  mkdir -p "${dir}/blobs/$(dirname "$path")"
  ln "$src" "${dir}/blobs/${path}" 2>/dev/null || cp "$src" "${dir}/blobs/${path}"
done <<<"$blob_list"
[ "$missing" -eq 0 ] || exit 1

args=(create-release --dir "$dir" --force --tarball "$tarball")
[ -z "$version" ] || args+=(--version "$version")
"$bosh" "${args[@]}"
echo "release tarball: ${tarball}"
