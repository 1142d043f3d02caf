"""Host plumbing shared by scripts/demo.sh and the libvirt benchmarks (bench/benchlib.py): the
same environment the e2e tier uses. libvirt daemons are started only when none answers on its
socket, and their pid files are the e2e tier's, so each adopts a daemon another one left behind;
no daemon is found or signalled by name. Objects are named with a prefix so that leftovers of a
run that died can be removed."""

import os
import signal
import socket
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


def socket_answers(path):
    """Whether something accepts connections on the unix socket `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
            return True
        except OSError:
            return False


def virsh(*args, check=True):
    r = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Daemon:
    """A libvirt daemon of the host (virtlogd, libvirtd), started with -d only when none answers
    on its socket. A daemon started here gets its own pid file (-p, next to the e2e lock, shared
    with the e2e tier), so the daemon itself writes its pid; stop() signals only that pid, of a
    daemon this object started or adopted. A daemon is adopted only when the pid in the file runs
    with that very pid file on its command line: no daemon is ever found or signalled by name, so
    a system daemon or a test's private one is never touched. `log` receives one line per change."""

    def __init__(self, name, log=quiet):
        self.name, self.pid, self.log = name, 0, log
        self.pid_file = f"{LOCK}.{name}.pid"
        sock = "libvirt-sock" if name == "libvirtd" else f"{name}-sock"
        self.socket = f"/run/libvirt/{sock}"

    def started_by_a_run(self):
        """The pid in the pid file when that process was started with -p <pid file>, else 0."""
        pid = int(read(self.pid_file) or 0)
        if not pid or not alive(pid):
            return 0
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            return 0
        for flag, value in zip(args, args[1:]):
            if flag in ("-p", "--pid-file") and value == self.pid_file:
                return pid
        return 0

    def ensure(self):
        earlier = self.started_by_a_run()
        if earlier:
            self.pid = earlier
            self.log(f"{self.name}: adopted (pid {earlier}, started by an earlier run)")
            return
        if socket_answers(self.socket):
            self.log(f"{self.name}: already running")
            return
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        subprocess.run([self.name, "-d", "-p", self.pid_file], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.started_by_a_run() and socket_answers(self.socket):
                break
            time.sleep(0.05)
        self.pid = self.started_by_a_run()
        if not self.pid or not socket_answers(self.socket):
            raise RuntimeError(f"'{self.name} -d -p {self.pid_file}' started no {self.name} "
                               f"that answers on {self.socket}")
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
