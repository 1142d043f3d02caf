#!/usr/bin/env bash
# Builds the CPI and drives it the way BOSH does (one process per call, JSON on stdin) against
# libvirt's embedded test:///default hypervisor, printing each request and response.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" >/dev/null
"$root/scripts/build.sh" >/dev/null
cpi="${BUILD_DIR:-$root/build}/cpi"
config="$root/config/cpi-test.json"

call() {
  local request=$1
  echo "> $request"
  echo -n "$request" | "$cpi" --config "$config" 2>/dev/null
}

call '{"method":"info","arguments":[],"context":{"director_uuid":"demo"}}'
call '{"method":"has_vm","arguments":["vm-00000000-0000-4000-8000-000000000000"],"context":{"director_uuid":"demo","request_id":"cpi-000001"},"api_version":2}'
call '{"method":"create_disk","arguments":[1024,{},null],"context":{"director_uuid":"demo"},"api_version":2}'
call '{"method":"calculate_vm_cloud_properties","arguments":[{"cpu":2,"ram":2048,"ephemeral_disk_size":10240}],"context":{"director_uuid":"demo"},"api_version":2}'
call '{"method":"no_such_method","arguments":[],"context":{"director_uuid":"demo"}}'
