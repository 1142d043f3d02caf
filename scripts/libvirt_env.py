"""Host plumbing shared by scripts/demo.sh and the libvirt benchmarks (bench/benchlib.py): the
same environment the e2e tier uses. libvirt daemons are started only when none runs, and their
pid files are the e2e tier's, so each adopts a daemon another one left behind. Objects are named
with a prefix so that leftovers of a run that died can be removed."""

import os
import signal
import subprocess
import time

URI = "qemu:///system"
LOCK = "/tmp/bosh-libvirt-cpi-e2e.lock"  # shared with the e2e tests: never two runs at once
CONSOLE_DIR = "/var/log/libvirt/qemu"
IPV6_DEFAULT = "/proc/sys/net/ipv6/conf/default/disable_ipv6"


def quiet(_text=""):
    pass


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def write(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def alive(pid):
    stat = read(f"/proc/{pid}/stat")
    return bool(stat) and stat[stat.rfind(")") + 2] not in "ZX"


def pids(name):
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and read(f"/proc/{p}/comm") == name and alive(int(p))]


def virsh(*args, check=True):
    r = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Daemon:
    """A libvirt daemon (virtlogd, libvirtd), started with -d only when none runs; stop() stops
    only one this object started or adopted. `log` receives one line per change."""

    def __init__(self, name, log=quiet):
        self.name, self.pid, self.log = name, 0, log
        self.pid_file = f"{LOCK}.{name}.pid"

    def ensure(self):
        earlier = int(read(self.pid_file) or 0)
        if earlier and alive(earlier) and read(f"/proc/{earlier}/comm") == self.name:
            self.pid = earlier
            return
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        if pids(self.name):
            self.log(f"{self.name}: already running")
            return
        subprocess.run([self.name, "-d"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        for _ in range(100):
            if pids(self.name):
                break
            time.sleep(0.05)
        if not pids(self.name):
            raise RuntimeError(f"'{self.name} -d' did not start a {self.name}")
        self.pid = pids(self.name)[0]
        write(self.pid_file, f"{self.pid}\n")
        self.log(f"{self.name}: started (pid {self.pid})")

    def stop(self):
        if not self.pid:
            return
        os.kill(self.pid, signal.SIGTERM)
        for _ in range(300):
            if not alive(self.pid):
                break
            time.sleep(0.05)
        if alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        self.pid = 0
        self.log(f"{self.name}: stopped")


def no_ipv6_on(device):
    knob = f"/proc/sys/net/ipv6/conf/{device}/disable_ipv6"
    if os.path.exists(knob):
        write(knob, "1")


def remove_objects(prefix, log=quiet):
    """Every domain, volume, pool and network named with `prefix`, and their console logs."""
    for dom in virsh("list", "--all", "--name", check=False).split():
        if dom.startswith(prefix):
            virsh("destroy", dom, check=False)
            virsh("undefine", dom, check=False)
            log(f"removed domain {dom}")
    for pool in virsh("pool-list", "--all", "--name", check=False).split():
        for line in virsh("vol-list", pool, check=False).splitlines():
            vol = line.split()[0] if line.split() else ""
            if vol.startswith(prefix):
                virsh("vol-delete", vol, "--pool", pool, check=False)
                log(f"removed volume {vol}")
        if pool.startswith(prefix):
            virsh("pool-destroy", pool, check=False)
            virsh("pool-undefine", pool, check=False)
            log(f"removed pool {pool}")
    for net in virsh("net-list", "--all", "--name", check=False).split():
        if net.startswith(prefix):
            virsh("net-destroy", net, check=False)
            virsh("net-undefine", net, check=False)
            log(f"removed network {net}")
    if os.path.isdir(CONSOLE_DIR):
        for name in os.listdir(CONSOLE_DIR):
            if name.startswith(prefix):
                os.unlink(os.path.join(CONSOLE_DIR, name))


def run_with_daemons(command):
    """Runs `command` with a virtlogd and a libvirtd, starting each only when none runs and
    stopping only those it started; /dev/kvm is opened to the kvm group first, as the e2e
    tier does. Returns the command's exit status."""
    if os.path.exists("/dev/kvm"):
        subprocess.run(["chgrp", "kvm", "/dev/kvm"], check=False, stderr=subprocess.DEVNULL)
        subprocess.run(["chmod", "660", "/dev/kvm"], check=False, stderr=subprocess.DEVNULL)
    say = lambda text: print(f"[libvirt] {text}", flush=True)  # noqa: E731
    daemons = [Daemon("virtlogd", log=say), Daemon("libvirtd", log=say)]
    try:
        for daemon in daemons:
            daemon.ensure()
        for _ in range(100):  # the socket appears a moment after the daemon forks
            if subprocess.run(["virsh", "-q", "-c", URI, "version"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        return subprocess.run(command).returncode
    finally:
        for daemon in reversed(daemons):
            daemon.stop()


if __name__ == "__main__":
    import sys
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--":
        sys.exit("usage: python3 scripts/libvirt_env.py -- COMMAND [ARG ...]\n"
                 "  runs COMMAND with a libvirtd (and virtlogd), started only when none runs")
    sys.exit(run_with_daemons(args[1:]))
