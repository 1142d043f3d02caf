#!/usr/bin/env bash
# Prints the path of a cached monit 5.2.5 binary (the version real stemcells ship), built from the
# source tarball given, when none for the same tarball and flags is cached yet.
# Usage: monit.sh <monit-5.2.5.tar.gz> <cache-dir>. Needs gcc, make, flex and bison.
set -euo pipefail

src=${1:?usage: monit.sh <monit-5.2.5.tar.gz> <cache-dir>}
cache=${2:?usage: monit.sh <monit-5.2.5.tar.gz> <cache-dir>}
flags=(--prefix=/var/vcap/bosh --without-ssl)
key=$(printf '%s\n' "${flags[*]}" | cat - "$src" "$0" | sha256sum | cut -c1-16)
out="$cache/monit-$key"
if [ -x "$out" ]; then echo "$out"; exit 0; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/monit-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$src"
dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
echo "monit: building $(basename "$dir") (once; cached as $out)" >&2
(cd "$dir" && nice -n 10 ./configure "${flags[@]}" CFLAGS=-fcommon >"$work/configure.log" 2>&1 &&
  nice -n 10 make -j2 >"$work/make.log" 2>&1) ||
  { tail -n 30 "$work"/*.log >&2; exit 1; }
install -m 0755 "$dir/monit" "$out.part"
mv "$out.part" "$out"
echo "$out"
