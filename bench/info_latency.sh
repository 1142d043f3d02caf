#!/usr/bin/env bash
# `info` latency: process start to response, median (and p90) of N runs, against the target
# of design.md (< 3 ms, no libvirt connection). Prints a markdown table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cpi=${CPI_BIN:-$root/build/cpi}
config=$root/config/cpi-test.json
runs=${RUNS:-200}
request='{"method":"info","arguments":[],"context":{"director_uuid":"bench"}}'

python3 - "$cpi" "$config" "$runs" "$request" <<'PY'
import subprocess, sys, time, statistics
cpi, config, runs, request = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
samples = []
for _ in range(runs):
    t0 = time.perf_counter()
    p = subprocess.run([cpi, "--config", config], input=request, capture_output=True)
    samples.append((time.perf_counter() - t0) * 1000)
    assert p.returncode == 0 and b'"error":null' in p.stdout, p.stdout
samples.sort()
median = statistics.median(samples)
p90 = samples[int(len(samples) * 0.9) - 1]
print("| benchmark | runs | median | p90 | target | met |")
print("|---|---|---|---|---|---|")
print(f"| info, process start to response | {runs} | {median:.2f} ms | {p90:.2f} ms | < 3 ms | {'yes' if median < 3 else 'no'} |")
PY
