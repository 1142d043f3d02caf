#!/usr/bin/env bash
# Makes the source tarball the libvirt_cpi package builds from: the C++ tree
# (CMakeLists.txt, cmake/, src/, include/, third_party/ and the licence files,
# whichever exist) as of HEAD, or as in the working tree with --working-tree.
#
# Usage: scripts/make-cpi-source-tarball.sh [--working-tree] [--output FILE]
#
# The default output is build-release/bosh-libvirt-cpi-src.tgz.
# scripts/create-release.sh unpacks it at src/bosh-libvirt-cpi/ of the release
# directory, where packages/libvirt_cpi/spec's `files` find it. The tarball is
# reproducible: the same tree gives the same bytes.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
output="${repo}/build-release/bosh-libvirt-cpi-src.tgz"
mode="head"

while [ "$#" -gt 0 ]; do
  case "$1" in
    --working-tree) mode=worktree ;;
    --output) output=$2; shift ;;
    --output=*) output=${1#--output=} ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-cpi-source-tarball: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

# Read by tests/release/test_release_lint.rb: the release sources of packages/libvirt_cpi.
candidates=(CMakeLists.txt cmake src include third_party LICENSE NOTICE COPYING)
cd "$repo"
if [ "$mode" = head ] && ! git rev-parse --verify -q HEAD >/dev/null; then
  echo "make-cpi-source-tarball: the repository has no commit yet; use --working-tree" >&2
  exit 1
fi
mkdir -p "$(dirname "$output")"
tmp=$(mktemp "${output}.XXXXXX")
trap 'rm -f "$tmp"' EXIT

if [ "$mode" = head ]; then
  paths=()
  for p in "${candidates[@]}"; do
    if git cat-file -e "HEAD:${p}" 2>/dev/null; then paths+=("$p"); fi
  done
  [ "${#paths[@]}" -gt 0 ] || { echo "make-cpi-source-tarball: HEAD has none of ${candidates[*]}" >&2; exit 1; }
  # git archive stamps every entry with the commit time: same commit, same bytes.
  git archive --format=tar HEAD -- "${paths[@]}" | gzip -n -9 > "$tmp"
  what="HEAD ($(git rev-parse --short HEAD))"
else
  # Tracked and untracked-but-not-ignored files, so build trees stay out.
  list=$(mktemp)
  trap 'rm -f "$tmp" "$list"' EXIT
  existing=()
  for p in "${candidates[@]}"; do [ -e "$p" ] && existing+=("$p"); done
  [ "${#existing[@]}" -gt 0 ] || { echo "make-cpi-source-tarball: none of ${candidates[*]} exist" >&2; exit 1; }
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard -- "${existing[@]}" |
      while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
      sort -z -u > "$list"
  else
    find "${existing[@]}" -type f -print0 | sort -z > "$list"
  fi
  tar --null --files-from="$list" --sort=name --mtime='@0' --owner=0 --group=0 \
    --numeric-owner --mode='u+rw,go+r,go-w' --format=gnu -cf - | gzip -n -9 > "$tmp"
  what="the working tree"
fi

mv "$tmp" "$output"
trap - EXIT
[ -z "${list:-}" ] || rm -f "$list"
echo "wrote ${output} from ${what} ($(wc -c < "$output") bytes)"
