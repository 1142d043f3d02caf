#!/usr/bin/env bash
# Quick release checks: release layout lint; ops files applied to
# bosh-deployment's bosh.yml (fixture) by the real `bosh int`; the libvirt_cpi
# job templates rendered as BOSH renders them; docs/deploying.md's bosh int
# steps walked with the real CLI. With CPI_BIN set to a built cpi binary, every
# rendered cpi.json and every examples/cpi-*.json is also fed to it:
#   CPI_BIN=build/cpi tests/release/run.sh
# Needs ruby (Debian: apt-get install -y ruby) and the bosh CLI v7.1.2 at
# $BOSH_TOOLS/bosh or <repo>/../shared/tools/bosh (without it the checks that
# use it fail; none is skipped). KEEP_RENDERED=1 keeps the
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
