#!/usr/bin/env bash
# Release checks that need no bosh CLI: release layout lint, ops files applied
# to bosh-deployment's bosh.yml (fixture), and the libvirt_cpi job templates
# rendered as BOSH renders them. With CPI_BIN set to a built cpi binary, every
# rendered cpi.json and every config/cpi-*.json is also fed to it:
#   CPI_BIN=build/cpi tests/release/run.sh
# Needs ruby (Debian: apt-get install -y ruby). KEEP_RENDERED=1 keeps the
# rendered jobs under $TMPDIR/bosh-libvirt-cpi-rendered. The last line is
# "N passed, M failed[, K skipped]"; the exit status is non-zero on failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v ruby >/dev/null 2>&1; then
  echo "FAIL  ruby is not installed (apt-get install -y ruby)"
  echo "0 passed, 1 failed"
  exit 1
fi
exec ruby "${here}/run.rb" "$@"
