#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier (unit, driver, e2e) with CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
rm -f e2e-phases.txt
status=0
ctest --output-on-failure -j"$(nproc)" "$@" || status=$?
if [ -s e2e-phases.txt ]; then
  echo
  echo "e2e phase times (test, phase, seconds):"
  sort -u e2e-phases.txt
fi
exit "$status"
