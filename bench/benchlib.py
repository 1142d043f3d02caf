"""Shared plumbing of the libvirt benchmarks (bench/libvirt_bench.py): the same environment as the
e2e tier and scripts/demo.sh -- libvirtd started only when none runs (pid file shared with them),
a dir pool in a temp dir, an isolated network without <ip> (NETWORK RULE: no host address, no
dnsmasq, nothing leaves the host), IPv6 off on new devices -- and a `cpi` caller that reports
the wall time and the peak RSS of the child (wait4). The caller holds the host lock
/tmp/bosh-libvirt-cpi-e2e.lock (bench/run-all.sh takes it with flock)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from libvirt_env import (IPV6_DEFAULT, URI, Daemon, no_ipv6_on, read,  # noqa: E402
                         remove_objects, virsh, write)

ROOT_PREFIX = "cpibench-"


class Environment:
    """Daemons, pool, network, CPI config; everything removed by close()."""

    def __init__(self, cpi):
        self.cpi_bin = cpi
        self.old_ipv6 = read(IPV6_DEFAULT)
        if self.old_ipv6 and self.old_ipv6 != "1":
            write(IPV6_DEFAULT, "1")  # the bridge and every tap come up without IPv6
        os.makedirs("/var/log/libvirt", exist_ok=True)
        self.daemons = [Daemon("virtlogd"), Daemon("libvirtd")]
        for d in self.daemons:
            d.ensure()
        self.started_libvirtd = self.daemons[1].pid != 0
        remove_objects(ROOT_PREFIX)  # runs that died; we hold the host lock
        self.prefix = ROOT_PREFIX + uuid.uuid4().hex[:8] + "-"
        self.root = tempfile.mkdtemp(prefix=self.prefix)
        os.chmod(self.root, 0o711)
        self.pool_dir = os.path.join(self.root, "pool")
        self.tmp = os.path.join(self.root, "tmp")
        os.makedirs(self.tmp)
        self.pool, self.net = self.prefix + "pool", self.prefix + "net"
        virsh("pool-define-as", self.pool, "dir", "--target", self.pool_dir)
        virsh("pool-build", self.pool)
        virsh("pool-start", self.pool)
        xml = os.path.join(self.root, "net.xml")
        write(xml, f"<network><name>{self.net}</name><bridge stp='off' delay='0'/></network>")
        virsh("net-create", xml)  # isolated: no <forward>, no <ip>
        bridge = virsh("net-info", self.net)
        for line in bridge.splitlines():
            if line.startswith("Bridge:"):
                no_ipv6_on(line.split()[1])
        self.domain_type = os.environ.get("CPI_E2E_DOMAIN_TYPE", "qemu")
        self.config = os.path.join(self.root, "cpi.json")
        write(self.config, json.dumps({
            "libvirt": {"uri": URI, "storage_pool": self.pool, "store_dir": self.pool_dir,
                        "network": self.net, "domain_type": self.domain_type,
                        "name_prefix": self.prefix},
            "agent": {"mbus": "https://mbus:bench-pw@0.0.0.0:6868", "ntp": ["10.244.0.3"]},
            "log_level": "info"}))
        os.chmod(self.config, 0o600)  # it holds the (made-up) mbus password

    def close(self):
        try:
            remove_objects(self.prefix)
            virsh("pool-destroy", self.pool, check=False)
            virsh("pool-undefine", self.pool, check=False)
            virsh("net-destroy", self.net, check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            for d in reversed(self.daemons):
                d.stop()
            if self.old_ipv6 and self.old_ipv6 != "1":
                write(IPV6_DEFAULT, self.old_ipv6)

    def call(self, method, arguments, args=None):
        """One CPI call like the director: returns (result, seconds, peak RSS in KiB)."""
        request = json.dumps({"method": method, "arguments": arguments, "api_version": 2,
                              "context": {"director_uuid": "bench"}}, separators=(",", ":"))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TMPDIR": self.tmp}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.Popen([self.cpi_bin, "--config", self.config] + (args or []),
                                 stdin=subprocess.PIPE, stdout=out, stderr=err, env=env)
            p.stdin.write(request.encode())
            p.stdin.close()
            _, status, usage = os.wait4(p.pid, 0)
            seconds = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            text, log = out.read(), err.read().decode(errors="replace")
        response = json.loads(text)
        if p.returncode != 0 or response["error"] is not None:
            raise RuntimeError(f"{method} failed: {response['error']}\n{log[-3000:]}")
        return response["result"], seconds, usage.ru_maxrss

    def silence_taps(self, domain):
        for line in virsh("domiflist", domain, check=False).splitlines():
            if line.split() and line.split()[0].startswith("vnet"):
                no_ipv6_on(line.split()[0])


def sample_load(path, period=1.0):
    """Appends one line a second to `path` until killed: the 1-minute load average, the tasks
    running right now, and the share of all CPUs busy (any process) since the last line."""
    def cpu():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle
    last = cpu()
    while True:
        time.sleep(period)
        now = cpu()
        total, idle = now[0] - last[0], now[1] - last[1]
        last = now
        busy = 100.0 * (total - idle) / total if total else 0.0
        load = read("/proc/loadavg").split()
        with open(path, "a") as f:
            f.write(f"{load[0]} {load[3].split('/')[0]} {busy:.1f}\n")


def load_summary(path):
    """min / median / max of what sample_load wrote, as one sentence (markdown)."""
    try:
        with open(path) as f:
            samples = [line.split() for line in f if len(line.split()) == 3]
    except OSError:
        samples = []
    if not samples:
        return "no load samples were taken"

    def stats(i, fmt):
        values = sorted(float(s[i]) for s in samples)
        return "/".join(fmt.format(v) for v in (values[0], median(values), values[-1]))
    return (f"{len(samples)} samples, one a second, min/median/max: 1-minute load average "
            f"{stats(0, '{:.2f}')}, tasks running {stats(1, '{:.0f}')}, CPU busy (all processes, "
            f"{os.cpu_count()} CPUs) {stats(2, '{:.0f}')} %")


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def row(what, measured, baseline, ratio, target, met):
    return f"| {what} | {measured} | {baseline} | {ratio} | {target} | {'yes' if met else 'no'} |"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sample-load":  # bench/run-all.sh, in the background
        sample_load(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "load-summary":
        print(load_summary(sys.argv[2]))
    else:
        sys.exit("usage: benchlib.py sample-load FILE | load-summary FILE")
