#!/usr/bin/env bash
# `info` latency: process start to response, median of RUNS runs (default 200), against the
# target (< 3 ms: info opens no libvirt connection). Prints a markdown table (with ROW_ONLY=1
# only its row, as bench/run-all.sh collects it). CPI_BIN: the binary (default build/cpi).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cpi=${CPI_BIN:-$root/build/cpi}
config=$root/examples/cpi-test.json
runs=${RUNS:-200}
request='{"method":"info","arguments":[],"context":{"director_uuid":"bench"}}'

python3 - "$cpi" "$config" "$runs" "$request" "${ROW_ONLY:-0}" <<'PY'
import subprocess, sys, time, statistics
cpi, config, request = sys.argv[1], sys.argv[2], sys.argv[4].encode()
runs, row_only = int(sys.argv[3]), sys.argv[5] == "1"
samples = []
for _ in range(runs):
    t0 = time.perf_counter()
    p = subprocess.run([cpi, "--config", config], input=request, capture_output=True)
    samples.append((time.perf_counter() - t0) * 1000)
    assert p.returncode == 0 and b'"error":null' in p.stdout, p.stdout
samples.sort()
median = statistics.median(samples)
p90 = samples[int(len(samples) * 0.9) - 1]
if not row_only:
    print("| what | measured | floor/baseline | ratio | target | met |")
    print("|---|---|---|---|---|---|")
met = "yes" if median < 3 else "no"
print(f"| info, process start to response (median of {runs}) | {median:.2f} ms "
      f"(p90 {p90:.2f} ms) | — | — | < 3 ms | {met} |")
PY
