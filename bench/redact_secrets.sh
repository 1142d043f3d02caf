#!/usr/bin/env bash
# Many secrets: `info` with N distinct strings under context.password (each one is registered
# with the redactor and every log line is scanned for all of them), process start to response,
# for N = 1,000 ... 100,000, against the floor of issue 17 (100,000 secrets in under 1 s; the
# quadratic redactor took 82 s for 20,000). Prints a markdown table (with ROW_ONLY=1 only the
# rows, as bench/run-all.sh collects them). CPI_BIN: the binary (default build/cpi).
# COUNTS: the secret counts to run (default "1000 10000 20000 100000").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cpi=${CPI_BIN:-$root/build/cpi}
config=$root/examples/cpi-test.json

python3 - "$cpi" "$config" "${COUNTS:-1000 10000 20000 100000}" "${ROW_ONLY:-0}" <<'PY'
import json, subprocess, sys, time
cpi, config, counts, row_only = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4] == "1"
if not row_only:
    print("| what | measured | floor/baseline | ratio | target | met |")
    print("|---|---|---|---|---|---|")
for count in map(int, counts):
    secrets = ["s3cr3t-%d-%x" % (i, i * 2654435761 % 2**32) for i in range(count)]
    request = json.dumps({"method": "info", "arguments": [],
                          "context": {"director_uuid": "bench", "password": secrets}}).encode()
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        p = subprocess.run([cpi, "--config", config], input=request, capture_output=True,
                           timeout=600, env={"PATH": "/usr/bin:/bin", "CPI_LOG_LEVEL": "debug"})
        elapsed = time.perf_counter() - t0
        assert p.returncode == 0 and b'"error":null' in p.stdout, p.stdout[:300]
        best = elapsed if best is None else min(best, elapsed)
    target = "< 1 s" if count == 100000 else "—"
    met = ("yes" if best < 1 else "no") if count == 100000 else "—"
    print(f"| info with {count:,} secrets in the context (best of 3) | {best * 1000:.0f} ms "
          f"| 82 s at 20,000 (quadratic redactor) | — | {target} | {met} |")
PY
