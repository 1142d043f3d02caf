#!/usr/bin/env bash
# The CPI end to end on this machine, driven the way BOSH drives it: one `cpi` process per call,
# the request JSON on stdin. Installs what is missing, builds, starts libvirtd when none runs,
# makes a storage pool and an isolated network (no <ip>: the guest can reach nothing), then runs
# a short lifecycle on a tiny test stemcell whose guest prints what it sees on its serial console:
#   info, create_stemcell, create_vm, the guest's report, create_disk, attach_disk, the guest
#   sees the disk, delete_vm, delete_disk, delete_stemcell.
# Every call, its result and the guest's report lines are printed; everything the demo made is
# removed at the end (also on failure or Ctrl-C), and daemons it started are stopped.
# Run as root. BUILD_DIR (default build/) is where it builds; CPI_E2E_DOMAIN_TYPE=kvm|qemu
# skips the KVM probe.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh starts libvirtd and boots a VM: run it as root (sudo $0)" >&2
  exit 1
fi
start=$(date +%s)
step() { printf '\n== %s\n' "$*"; }

step "dependencies (scripts/install-deps.sh)"
"$root/scripts/install-deps.sh"
step "build (scripts/build.sh into $build; a few minutes the first time)"
BUILD_DIR=$build "$root/scripts/build.sh" 2>&1 | grep --line-buffered -E 'error|Built target'
step "test stemcell (tests/e2e/stemcell/build.sh)"
"$root/tests/e2e/stemcell/build.sh" "$build/e2e-stemcell"
echo "setup took $(( $(date +%s) - start )) s"

exec python3 - "$build/cpi" "$build/e2e-stemcell" "$root/scripts" <<'PY'
import base64, fcntl, json, os, signal, subprocess, sys, tempfile, time, uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, sys.argv[3])
import libvirt_env
from libvirt_env import CONSOLE_DIR, IPV6_DEFAULT, LOCK, URI, no_ipv6_on, read, virsh

CPI, STEMCELLS = sys.argv[1], sys.argv[2]
PREFIX = "cpidemo-" + uuid.uuid4().hex[:8] + "-"
T0 = time.monotonic()


def say(text=""):
    print(text, flush=True)


def step(text):
    say(f"\n== {text}")


def Daemon(name):
    return libvirt_env.Daemon(name, log=say)


def remove_objects(prefix):
    libvirt_env.remove_objects(prefix, log=say)


class Ipv6Off:
    """New network devices (the bridge, the VM's tap) get no IPv6 while this is active, so
    nothing sends router solicitations; the host's default comes back afterwards."""

    def __enter__(self):
        self.old = read(IPV6_DEFAULT)
        if self.old and self.old != "1":
            with open(IPV6_DEFAULT, "w") as f:
                f.write("1")

    def __exit__(self, *exc):
        if self.old and self.old != "1":
            with open(IPV6_DEFAULT, "w") as f:
                f.write(self.old)


def domain_type():
    """kvm only when a KVM guest really starts here (nested KVM may fail with "failed to set
    MSR"); the answer is cached per host boot, shared with the e2e tests."""
    forced = os.environ.get("CPI_E2E_DOMAIN_TYPE")
    if forced:
        return forced, "CPI_E2E_DOMAIN_TYPE"
    if not os.path.exists("/dev/kvm"):
        return "qemu", "no /dev/kvm"
    cache, boot = "/tmp/bosh-libvirt-cpi-e2e.kvm-boot-probe", read("/proc/sys/kernel/random/boot_id")
    cached = read(cache)
    if cached.startswith(boot + " "):
        kind, _, why = cached[len(boot) + 1:].partition(" ")
        return kind, "cached probe: " + why
    # As the e2e tier probes: the test stemcell's disk booted under KVM must speak on its serial
    # console within 30 s (nested KVM can run the firmware and hang in the boot loader).
    name = PREFIX + "kvm-probe"
    probe_dir = tempfile.mkdtemp(prefix=PREFIX)
    os.chmod(probe_dir, 0o755)
    disk, log = os.path.join(probe_dir, "root.img"), os.path.join(probe_dir, "console.log")
    subprocess.run(["tar", "-xzf", os.path.join(STEMCELLS, "raw", "image"), "-C", probe_dir,
                    "root.img"], check=True)
    os.chmod(disk, 0o644)
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>256</memory>"
                "<vcpu>1</vcpu><cpu mode='host-passthrough' check='none'/><os>"
                "<type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><devices>"
                f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='{disk}'/><target dev='vda' bus='virtio'/><readonly/></disk>"
                f"<serial type='pty'><log file='{log}' append='off'/><target port='0'/></serial>"
                "</devices></domain>")
        f.flush()
        r = subprocess.run(["virsh", "-c", URI, "create", f.name], capture_output=True, text=True)
    if r.returncode == 0:
        spoke = False
        for _ in range(60):
            time.sleep(0.5)
            if read(log):
                spoke = True
                break
        virsh("destroy", name, check=False)
        kind, why = (("kvm", "a KVM guest booted the test stemcell") if spoke else
                     ("qemu", "a KVM guest did not boot the test stemcell in 30 s"))
    else:
        err = r.stderr.strip()
        at = err.find("failed to set MSR")
        kind, why = "qemu", "KVM probe failed: " + (err[at:].splitlines()[0] if at >= 0 else err.splitlines()[-1])
    subprocess.run(["rm", "-rf", probe_dir], check=False)
    with open(cache, "w") as f:
        f.write(f"{boot} {kind} {why}\n")
    return kind, why


def compact(value, limit=400):
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class Demo:
    def __init__(self, config, tmpdir):
        self.config, self.tmpdir, self.times = config, tmpdir, []

    def cpi(self, method, arguments, vm_context=None):
        context = {"director_uuid": "demo-director", "request_id": "cpi-000001"}
        if vm_context:
            context["vm"] = vm_context
        request = json.dumps({"method": method, "arguments": arguments, "context": context,
                              "api_version": 2}, separators=(",", ":"))
        say(f"\n> {method} {compact(arguments)}")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TMPDIR": self.tmpdir}
        t = time.monotonic()
        r = subprocess.run([CPI, "--config", self.config], input=request.encode(),
                           capture_output=True, env=env)
        took = time.monotonic() - t
        response = json.loads(r.stdout)
        say(f"< {compact(response['result'])}   ({took:.2f} s, exit {r.returncode})")
        self.times.append((method, took))
        if r.returncode != 0 or response["error"] is not None:
            sys.stderr.write(r.stderr.decode(errors="replace"))
            raise RuntimeError(f"{method} failed: {response['error']}")
        return response["result"]


class Console:
    """Follows the guest's serial console log and prints its BOSHTEST records."""

    def __init__(self, path):
        self.path, self.seen = path, 0

    def records(self):
        try:
            with open(self.path, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        lines = text.split("\n")[:-1]  # complete lines only
        return [l[l.find("BOSHTEST ") + 9:].rstrip("\r ") for l in lines if "BOSHTEST " in l]

    def wait(self, done, timeout, show=lambda r: True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.records()
            for record in records[self.seen:]:
                if show(record):
                    self.print(record)
            self.seen = len(records)
            hit = next((r for r in records if done(r)), None)
            if hit:
                return hit
            time.sleep(0.1)
        raise RuntimeError(f"the guest did not report in {timeout} s (log {self.path})")

    @staticmethod
    def print(record):
        if record.startswith("file "):
            fields = dict(w.split("=", 1) for w in record.split()[1:])
            content = base64.b64decode(fields.get("b64", "")).decode(errors="replace")
            say(f"  guest: file {fields['path']}")
            if fields["path"] == "ec2/latest/user-data":
                for line in json.dumps(json.loads(content), indent=2).splitlines():
                    say(f"           {line}")
            return
        say(f"  guest: {record}")


def main():
    lock = open(LOCK, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say(f"waiting for {LOCK} (an e2e test run or another demo holds it)")
        fcntl.flock(lock, fcntl.LOCK_EX)
    step("libvirt environment")
    if os.path.exists("/dev/kvm"):
        subprocess.run(["chgrp", "kvm", "/dev/kvm"], check=False)
        os.chmod("/dev/kvm", 0o660)  # else libvirtd re-probes qemu on every call
    os.makedirs("/var/log/libvirt", exist_ok=True)
    daemons = [Daemon("virtlogd"), Daemon("libvirtd")]
    tmp = None
    try:
        for d in daemons:
            d.ensure()
        for _ in range(300):
            if subprocess.run(["virsh", "-c", URI, "version"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        remove_objects("cpidemo-")  # left by a demo that was killed
        kind, why = domain_type()
        say(f"domain type: {kind} ({why})")
        tmp = tempfile.mkdtemp(prefix=PREFIX)
        os.chmod(tmp, 0o711)  # qemu runs as another user and must reach the pool inside
        os.mkdir(f"{tmp}/tmp")
        pool, net = PREFIX + "pool", PREFIX + "net"
        virsh("pool-define-as", pool, "dir", "--target", f"{tmp}/pool")
        virsh("pool-build", pool)
        virsh("pool-start", pool)
        say(f"storage pool {pool} at {tmp}/pool")
        with Ipv6Off():
            with open(f"{tmp}/net.xml", "w") as f:
                f.write(f"<network><name>{net}</name><bridge stp='off' delay='0'/></network>")
            virsh("net-create", f"{tmp}/net.xml")
        bridge = ET.fromstring(virsh("net-dumpxml", net)).find("bridge").get("name")
        no_ipv6_on(bridge)
        say(f"isolated network {net} on bridge {bridge}: no <forward>, no <ip>, IPv6 off")
        config = f"{tmp}/cpi.json"
        with open(config, "w") as f:
            json.dump({"libvirt": {"uri": URI, "storage_pool": pool, "store_dir": f"{tmp}/pool",
                                   "network": net, "domain_type": kind, "name_prefix": PREFIX},
                       "agent": {"mbus": "nats://nats:demo-secret@10.0.0.1:4222"}}, f)
        say(f"CPI config {config}:\n{open(config).read()}")
        lifecycle(Demo(config, f"{tmp}/tmp"), net)
    finally:
        step("cleanup")
        try:
            remove_objects(PREFIX)
        except Exception as e:  # keep going: daemons and the lock still need releasing
            say(f"cleanup: {e}")
        if tmp:
            subprocess.run(["rm", "-rf", tmp])
        for d in reversed(daemons):
            d.stop()
        say(f"demo finished in {time.monotonic() - T0:.1f} s")


def lifecycle(demo, net):
    step("lifecycle, one cpi process per call")
    demo.cpi("info", [])
    with open(f"{STEMCELLS}/qcow2/cloud_properties.json") as f:
        props = json.load(f)
    stemcell = demo.cpi("create_stemcell", [f"{STEMCELLS}/qcow2/image", props])
    networks = {"default": {"type": "manual", "ip": "10.0.0.10", "netmask": "255.255.255.0",
                            "gateway": "10.0.0.1", "default": ["dns", "gateway"],
                            "cloud_properties": {"name": net}}}
    vm_context = {"stemcell": {"api_version": 2}}
    booted = time.monotonic()
    with Ipv6Off():  # the VM's tap is made while it starts
        vm, _ = demo.cpi("create_vm", ["agent-demo", stemcell, {"cpu": 1, "ram": 256, "ephemeral_disk": 64},
                                       networks, [], {"bosh": {"password": "*"}}], vm_context)
    domain = ET.fromstring(virsh("dumpxml", PREFIX + vm))
    for tap in domain.findall("devices/interface/target"):
        no_ipv6_on(tap.get("dev"))
    console = Console(domain.find("devices/serial/log").get("file"))
    say(f"\n  domain {PREFIX + vm}, MAC {domain.find('devices/interface/mac').get('address')}")
    say(f"  the guest's report ({console.path}):")
    console.wait(lambda r: r.startswith("end "), 180, show=lambda r: not r.startswith("tick="))
    say(f"  (booted and reported in {time.monotonic() - booted:.1f} s)")
    disk = demo.cpi("create_disk", [64, {}, vm])
    attached = time.monotonic()
    demo.cpi("attach_disk", [vm, disk], vm_context)
    say("  waiting for the guest to see it:")
    console.wait(lambda r: r.startswith("tick=") and f":{disk}:" in r, 60,
                 show=lambda r: r.startswith("tick=") and f":{disk}:" in r)
    say(f"  (the guest saw the disk {time.monotonic() - attached:.1f} s after attach_disk began)")
    demo.cpi("delete_vm", [vm], vm_context)
    demo.cpi("delete_disk", [disk])
    demo.cpi("delete_stemcell", [stemcell])
    say("\n  calls: " + ", ".join(f"{m} {t:.2f} s" for m, t in demo.times))


signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup on kill too
try:
    main()
except KeyboardInterrupt:
    sys.exit(130)
except Exception as e:
    say(f"\ndemo failed: {e}")
    sys.exit(1)
PY
