#!/usr/bin/env bash
# Adds source tarballs to the release the way `bosh add-blob` does, for every
# tarball that a package spec's `files` glob asks for:
#   - copies it to blobs/<dir>/<name>, removing an older file the same glob matched;
#   - records {size, sha: sha256:<hex>} for it in config/blobs.yml, dropping the
#     entry of the file it replaces (object_id is kept when the file is unchanged).
# After that, `bosh upload-blobs` (with a blobstore in config/final.yml and
# credentials in config/private.yml) adds the object_ids.
#
# Usage: scripts/add-blobs.sh DIR [--dry-run]
#
# DIR holds tarballs named either as the upstream release (libvirt-9.0.0.tar.xz)
# or as Debian source packages' originals (libvirt_9.0.0.orig.tar.xz,
# glib2.0_2.74.6.orig.tar.xz, gmp_6.2.1+dfsg1.orig.tar.xz); the latter are
# renamed to <upstream-name>-<version>.tar.<ext>. Other files (.dsc, .asc,
# debian.tar.*) are ignored. scripts/fetch-debian-sources.sh fills such a DIR.
set -euo pipefail

if [ "$#" -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
src_dir=$(cd "$1" && pwd)
dry_run=${2:-}

command -v ruby >/dev/null || { echo "add-blobs: ruby is needed (apt-get install ruby)" >&2; exit 1; }

exec ruby - "$repo" "$src_dir" "$dry_run" <<'RUBY'
require 'yaml'
require 'digest'
require 'fileutils'

repo, src_dir, dry_run = ARGV
dry_run = dry_run == '--dry-run'
blobs_yml = File.join(repo, 'config', 'blobs.yml')

# Debian source package name => upstream project name used in blob names.
DEBIAN_NAMES = {
  'glib2.0' => 'glib', 'gnutls28' => 'gnutls', 'ninja-build' => 'ninja',
  'nlohmann-json3' => 'nlohmann-json', 'fmtlib' => 'fmt', 'cli11' => 'CLI11',
}.freeze

HEADER = <<~TEXT
  # Source tarballs of the release (one entry per blob, as `bosh add-blob` writes them).
  # Do not edit by hand: scripts/add-blobs.sh DIR copies tarballs into blobs/ and
  # rewrites this file with each file's size and sha256; `bosh upload-blobs` then
  # adds object_id. The versions are the ones Debian 12 (bookworm) ships (libtirpc:
  # trixie's 1.3.6, as bookworm's .orig is gone from the mirror), and the files are
  # Debian's original tarballs (scripts/fetch-debian-sources.sh), which for most
  # of them are the upstream release tarballs byte for byte. The CPI's own sources
  # are no blob: scripts/create-release.sh puts them into the release's src/.
TEXT

def normalized_name(file)
  base = File.basename(file)
  if (m = base.match(/\A([^_]+)_(.+)\.orig\.(tar\.(?:gz|xz|bz2))\z/))
    name = DEBIAN_NAMES.fetch(m[1], m[1])
    "#{name}-#{m[2]}.#{m[3]}"
  elsif base =~ /\.(tar\.(gz|xz|bz2)|tgz)\z/ && base !~ /\.debian\.tar\./
    base
  end
end

# Every `files` glob of every package, except generated inputs that are no blobs.
globs = Dir[File.join(repo, 'packages', '*', 'spec')].sort.flat_map do |spec|
  (YAML.safe_load(File.read(spec))['files'] || [])
end.uniq.reject { |g| g.start_with?('bosh-libvirt-cpi/') }

blobs = File.exist?(blobs_yml) ? (YAML.safe_load(File.read(blobs_yml)) || {}) : {}
flags = File::FNM_PATHNAME
added = 0

Dir[File.join(src_dir, '*')].sort.each do |file|
  next unless File.file?(file)
  name = normalized_name(file)
  next unless name
  glob = globs.find { |g| File.fnmatch(File.basename(g), name, flags) }
  unless glob
    warn "skip   #{File.basename(file)} (no package spec asks for #{name})"
    next
  end
  path = File.join(File.dirname(glob), name)
  sha = "sha256:#{Digest::SHA256.file(file).hexdigest}"
  size = File.size(file)

  # Drop what the same glob matched before (an older version, a placeholder).
  blobs.keys.select { |k| k != path && File.fnmatch(glob, k, flags) }.each do |old|
    puts "remove #{old}"
    blobs.delete(old)
    FileUtils.rm_f(File.join(repo, 'blobs', old)) unless dry_run
  end
  entry = { 'size' => size, 'sha' => sha }
  previous = blobs[path]
  entry['object_id'] = previous['object_id'] if previous && previous['sha'] == sha && previous['object_id']
  blobs[path] = entry
  puts "add    #{path} (#{size} bytes, #{sha})"
  added += 1
  next if dry_run

  target = File.join(repo, 'blobs', path)
  FileUtils.mkdir_p(File.dirname(target))
  FileUtils.cp(file, target)
end

missing = globs.reject { |g| blobs.keys.any? { |k| File.fnmatch(g, k, flags) } }
missing.each { |g| warn "missing: nothing for #{g} yet" }

unless dry_run
  body = blobs.keys.sort.each_with_object({}) { |k, h| h[k] = blobs[k] }
  File.write(blobs_yml, HEADER + body.to_yaml.sub(/\A---\n/, "---\n"))
end
puts "#{added} blob(s) #{dry_run ? 'would be ' : ''}added#{dry_run ? '' : ' to ' + blobs_yml}"
RUBY
