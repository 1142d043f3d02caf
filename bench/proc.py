#!/usr/bin/env python3
"""One process run as the director runs the CPI, timed from spawn to exit (bench/lookups_bench.py),
and a server of such runs for a process that cannot spawn them itself: in the stemcell-like
chroot (scripts/in-stemcell-chroot.sh), `python3 proc.py serve` reads one JSON request a line
({"argv", "stdin", "env"}, stdin in base64) and answers one JSON line ({"seconds", "cpu", "code",
"stdout", "stderr"}, the outputs in base64), so the runs of the release's build are timed the
same way, inside the chroot, as the host's. Needs only the Python standard library (the chroot
has python3 and nothing else of the bench)."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time


def spawn(argv, stdin=b"", env=None):
    """Runs argv with stdin, stdout and stderr as files, like the director runs the CPI:
    returns (seconds from spawn to exit, exit status, stdout, stderr, CPU seconds (user +
    system) of the process)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env)
        p.stdin.write(stdin)
        p.stdin.close()
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return (seconds, os.waitstatus_to_exitcode(status), out.read(), err.read(),
                usage.ru_utime + usage.ru_stime)


def serve():
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            seconds, code, out, err, cpu = spawn(request["argv"],
                                                 base64.b64decode(request.get("stdin", "")),
                                                 request.get("env"))
        except OSError as e:  # not found, not executable: an answer all the same
            seconds, code, out, err, cpu = 0.0, 127, b"", str(e).encode(), 0.0
        answer = {"seconds": seconds, "cpu": cpu, "code": code,
                  "stdout": base64.b64encode(out).decode(),
                  "stderr": base64.b64encode(err).decode()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class Server:
    """The client side of `proc.py serve` started by `argv` (for instance in the chroot):
    run() has spawn()'s signature and answer."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, argv, stdin=b"", env=None):
        request = {"argv": list(argv), "stdin": base64.b64encode(stdin).decode(), "env": env}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the process server ({self.proc.args[0]}) has exited")
        a = json.loads(line)
        return (a["seconds"], a["code"], base64.b64decode(a["stdout"]),
                base64.b64decode(a["stderr"]), a["cpu"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        sys.exit("usage: proc.py serve")
