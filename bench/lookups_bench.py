#!/usr/bin/env python3
"""The small calls as BOSH makes them: each a real `cpi` process on a real libvirtd, with 10 and
then 500 defined (not started) domains of the CPI on the host, side by side with the floor: a
minimal C program (bench/floor.c, compiled here with `cc` against the system libvirt) that opens
the same URI and makes the same requests, and nothing else. Both are started the same way and
timed from spawn to exit; their runs alternate, so load on the machine hits both alike. Before
the timed runs, one run of each is logged by libvirt (LIBVIRT_LOG_FILTERS=1:rpc) and the row
says whether both sent the same requests.

Then where the milliseconds of one has_vm go (profile()). Prints markdown table rows (what |
measured | floor/baseline | ratio | target | met), then a line `PROFILE` and the profile's
tables. Run by bench/run-all.sh under the e2e host lock; alone:
    flock /tmp/bosh-libvirt-cpi-e2e.lock bench/lookups_bench.py CPI_BIN STEMCELL_DIR BUILD_DIR
STEMCELL_DIR is the output of tests/e2e/stemcell/build.sh; the floor is built into BUILD_DIR.
LOOKUP_RUNS (default 21) sets the runs of each call and of its floor, per host size."""

import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

import proc
from benchlib import URI, Environment, median, row, virsh

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = int(os.environ.get("LOOKUP_RUNS", "21"))
NS = "https://github.com/bosh-libvirt-cpi/xmlns/vm/1"
MIB = 1 << 20
SIZES = tuple(int(n) for n in os.environ.get("LOOKUP_SIZES", "10,500").split(","))
SIZES_DONE = []  # the host sizes measured: the number of domains of ours (ours() after cloning)


def log(text):
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def build_floor(build_dir):
    out = os.path.join(build_dir, "bench-floor")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libvirt"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", out, os.path.join(HERE, "floor.c")]
                   + flags, check=True)
    return out


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last process spawn() ran


def spawn(argv, stdin=b"", env=None, runner=proc.spawn):
    """Runs argv like the director runs the CPI (stdin, stdout and stderr to files), on this
    host or through a process server (proc.Server.run): returns (seconds from spawn to exit, exit
    status, stdout, stderr); its CPU time goes to LAST_CPU."""
    seconds, code, out, err, cpu = runner(argv, stdin, env)
    LAST_CPU[0] = cpu
    return seconds, code, out, err


class Build:
    """One build of the CPI and the floor linked against the same libvirt, and where their
    processes run: `runner` spawns them (proc.spawn on this host, a proc.Server in the chroot),
    with `env` added to every run."""

    def __init__(self, label, cpi, floor, runner=proc.spawn, env=None, libvirt=""):
        self.label, self.cpi, self.floor, self.runner = label, cpi, floor, runner
        self.env, self.libvirt = env or {}, libvirt


class Host:
    """The CPI's environment (benchlib.Environment) plus the floor and the bench's domains."""

    def __init__(self, env, floor):
        self.env, self.floor = env, floor
        self.build = Build("`cpi` process", env.cpi_bin, floor, libvirt="the system libvirt")
        self.base_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                         "TMPDIR": env.tmp}
        self.clones = []

    def request(self, method, arguments):
        return json.dumps({"method": method, "arguments": arguments, "api_version": 2,
                           "context": {"director_uuid": "bench"}}, separators=(",", ":")).encode()

    def cpi(self, method, arguments, extra_env=None, argv_prefix=(), build=None):
        build = build or self.build
        env = dict(self.base_env, **build.env, **(extra_env or {}))
        argv = list(argv_prefix) + [build.cpi, "--config", self.env.config]
        seconds, code, out, err = spawn(argv, self.request(method, arguments), env, build.runner)
        response = json.loads(out) if out.strip() else {"error": err.decode(errors="replace")}
        if code != 0 or response.get("error") is not None:
            raise RuntimeError(f"{method} failed: {response.get('error')}\n"
                               f"{err.decode(errors='replace')[-3000:]}")
        return response["result"], seconds

    def run_floor(self, steps, extra_env=None, argv_prefix=(), build=None):
        build = build or self.build
        env = dict(self.base_env, **build.env, **(extra_env or {}))
        seconds, code, _, err = spawn(list(argv_prefix) + [build.floor, URI] + steps, b"", env,
                                      build.runner)
        if code != 0:
            raise RuntimeError(f"floor {' '.join(steps)}: {err.decode(errors='replace')}")
        return seconds

    def name(self, cid):
        return self.env.prefix + cid

    # --- domains of ours, defined and not started
    def clone_domains(self, template_vm, count):
        """`count` more domains of the CPI: the inactive definition of `template_vm` (made by
        create_vm) under new vm CIDs (the naming module's vm-<uuid>), our metadata kept, their
        volume names the new CID's. Defined in one virsh process."""
        xml = virsh("dumpxml", "--inactive", self.name(template_vm))
        xml = "\n".join(l for l in xml.splitlines()
                        if "<uuid>" not in l and "<mac address" not in l)
        commands = []
        for _ in range(count):
            cid = f"vm-{uuid.uuid4()}"
            path = os.path.join(self.env.root, cid + ".xml")
            with open(path, "w") as f:
                f.write(xml.replace(template_vm, cid))
            commands.append(f"define {path}")
            self.clones.append(cid)
        for i in range(0, len(commands), 100):
            virsh(" ; ".join(commands[i:i + 100]))

    def remove_clones(self):
        commands = [f"undefine {self.name(cid)}" for cid in self.clones]
        for i in range(0, len(commands), 100):
            virsh(" ; ".join(commands[i:i + 100]), check=False)
        self.clones = []

    def ours(self):
        return [d for d in virsh("list", "--all", "--name").split()
                if d.startswith(self.env.prefix + "vm-")]


def rpc_procs(host, run):
    """The (program, procedure) numbers of the requests one run sends, from libvirt's log (a
    file in the bench's TMPDIR, which the chroot sees at the same path)."""
    with tempfile.NamedTemporaryFile(suffix=".log", dir=host.env.tmp) as f:
        run({"LIBVIRT_LOG_FILTERS": "1:rpc.netclient", "LIBVIRT_LOG_OUTPUTS": f"1:file:{f.name}"})
        text = open(f.name, errors="replace").read()
    return re.findall(r"RPC_CLIENT_MSG_TX_QUEUE:.*?prog=(\d+) vers=\d+ proc=(\d+)", text)


def objects_loaded(host, run):
    """The shared objects one run loads, the dlopen()ed ones included (LD_DEBUG=files; the
    output in the bench's TMPDIR)."""
    with tempfile.TemporaryDirectory(dir=host.env.tmp) as d:
        run({"LD_DEBUG": "files", "LD_DEBUG_OUTPUT": os.path.join(d, "ld")})
        text = "".join(open(os.path.join(d, f), errors="replace").read() for f in os.listdir(d))
    return len(re.findall(r"file=\S+ \[\d+\];\s+generating link map", text))


class Method:
    """One CPI call and its floor: `prepare(i)` (untimed) returns (cpi arguments, floor steps);
    `after(i)` (untimed) undoes what the run left."""

    def __init__(self, name, target, prepare, after=None):
        self.name, self.target, self.prepare, self.after = name, target, prepare, after


def methods(host, vm, disk, facts):
    env = host.env
    dom = f"dom={host.name(vm)}"
    made = []  # volumes the runs create, removed at the end

    def create_disk(i):
        floor_volume = f"{env.prefix}floor-disk-{uuid.uuid4().hex[:12]}"
        made.append(floor_volume)
        return ([16, {}, vm],
                [dom, "xml", f"pool={env.pool}", "pool-xml",
                 f"vol-create={floor_volume}:{16 * MIB}:qcow2"])

    def set_vm_metadata(i):
        metadata = {"deployment": "bench", "job": "worker", "index": str(i), "director": "bench",
                    "id": str(uuid.uuid4())}
        facts["metadata"] = metadata
        element = f"<vm xmlns='{NS}'><facts>{json.dumps(facts)}</facts></vm>"
        return ([vm, metadata],
                [dom, "meta", f"set-meta={element}", f"set-title=bench/worker/{i}"])

    attach = {}
    meta_bytes = 64 << 10  # a .meta volume (cloud/meta_record.hpp)

    def attach_prepare(i):
        attach["disk"] = host.cpi("create_disk", [16, {}, vm])[0]
        d = attach["floor"] = f"{env.prefix}floor-att-{uuid.uuid4().hex[:12]}"
        virsh("vol-create-as", env.pool, d, str(16 * MIB), "--format", "qcow2")
        device = (f"<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
                  f"<source pool='{env.pool}' volume='{d}'/>"
                  f"<target dev='vdz' bus='virtio'/><serial>floor</serial></disk>")
        m = d + ".meta"
        # attach_disk's requests for a new disk and a VM that is not running
        # (tests/driver/cloud/requests_test.cpp, AttachDiskToAStoppedVm...), the scan of every
        # domain on the host for one that holds the disk included.
        return ([vm, attach["disk"]],
                [dom, "meta", f"pool={env.pool}", f"vol={d}", f"vol-path={d}", f"vol={m}",
                 f"scan={d}", "xml",
                 f"vol-xml={d}", "active", f"vol={m}", f"vol-create={m}:{meta_bytes}:raw",
                 f"upload={m}:{meta_bytes}", f"attach={device}", f"vol={m}",
                 f"download={m}:{meta_bytes}", f"upload={m}:{meta_bytes}"])

    def attach_after(i):
        try:
            host.cpi("detach_disk", [vm, attach["disk"]])
        except RuntimeError as e:  # a run of the floor alone: the CPI's disk was never attached
            if "DiskNotAttached" not in str(e):
                raise
        host.cpi("delete_disk", [attach["disk"]])
        virsh("detach-disk", host.name(vm), "vdz", "--config", check=False)
        d = attach["floor"]
        virsh(f"vol-delete --pool {env.pool} {d} ; vol-delete --pool {env.pool} {d}.meta",
              check=False)

    return made, [
        Method("has_vm", 1.1, lambda i: ([vm], [dom, "meta"])),
        Method("has_disk", 1.1, lambda i: ([disk], [f"pool={env.pool}", f"vol={host.name(disk)}"])),
        Method("get_disks", 1.1, lambda i: ([vm], [dom, "xml"])),
        Method("create_disk next to a vm", 1.1, create_disk),
        Method("set_vm_metadata", 1.1, set_vm_metadata),
        Method("attach_disk", None, attach_prepare, attach_after),
    ]


def measure(host, method, build):
    """Alternating runs of the call and its floor, both of `build`. Returns the medians of the
    call's and the floor's wall times, the median of the ratios of the pairs (each call over the
    floor run next to it: drift in the machine's load cancels), the median CPU ratio of the
    pairs, whether both sent the same requests and how many, and the shared objects each
    loads."""
    name = method.name.split()[0]

    def untimed(run):
        args, steps = method.prepare(0)
        try:
            return run(args, steps)
        finally:
            if method.after:
                method.after(0)
    cpi_procs = untimed(lambda a, s: rpc_procs(host, lambda e: host.cpi(name, a, e, build=build)))
    floor_procs = untimed(lambda a, s: rpc_procs(host, lambda e: host.run_floor(s, e,
                                                                                build=build)))
    cpi_objects = untimed(lambda a, s: objects_loaded(host, lambda e: host.cpi(name, a, e,
                                                                               build=build)))
    floor_objects = untimed(lambda a, s: objects_loaded(host, lambda e: host.run_floor(
        s, e, build=build)))
    cpi_times, floor_times, ratios, cpu_ratios = [], [], [], []
    for i in range(1, RUNS + 1):
        args, steps = method.prepare(i)
        pair = {}
        for who in (("cpi", "floor") if i % 2 else ("floor", "cpi")):
            if who == "cpi":
                pair[who] = (host.cpi(name, args, build=build)[1], LAST_CPU[0])
            else:
                pair[who] = (host.run_floor(steps, build=build), LAST_CPU[0])
        cpi_times.append(pair["cpi"][0])
        floor_times.append(pair["floor"][0])
        ratios.append(pair["cpi"][0] / pair["floor"][0])
        cpu_ratios.append(pair["cpi"][1] / max(pair["floor"][1], 1e-6))
        if method.after:
            method.after(i)
    return {"cpi": median(cpi_times), "floor": median(floor_times), "ratio": median(ratios),
            "cpu_ratio": median(cpu_ratios), "same": cpi_procs == floor_procs,
            "requests": len(cpi_procs), "floor_requests": len(floor_procs),
            "objects": cpi_objects, "floor_objects": floor_objects}


# The peer's figures from issue 18 (a Go CPI speaking libvirt's RPC protocol itself, measured
# in the issue's own run on this machine kind, not in this one): call -> seconds.
PEER = {"has_vm": 0.007, "create_disk next to a vm": 0.009, "attach_disk": 0.049}
PEER_TARGET = 2.0  # the release's build within 2x the peer (issue 18)


def lookup_rows(host, vm, disk, facts, rows, count, builds, results):
    made, calls = methods(host, vm, disk, facts)
    on_host = len(virsh("list", "--all", "--name").split())
    for method in calls:
        for build in builds:
            log(f"{method.name} with {count} domains of ours, {build.label}")
            r = measure(host, method, build)
            results[(method.name, count, build.label)] = r
            requests = f"{r['requests']} requests" + (
                "" if r["same"] else f", NOT the floor's ({r['floor_requests']})")
            what = (f"{method.name}, {build.label}, {count} domains of ours defined "
                    f"({on_host} on the host; median of {RUNS} pairs)")
            measured = f"{r['cpi'] * 1000:.1f} ms, {r['objects']} shared objects"
            floor = (f"C floor against {build.libvirt} ({requests}, {r['floor_objects']} shared "
                     f"objects) {r['floor'] * 1000:.1f} ms")
            ratios = f"{r['ratio']:.2f}× (CPU {r['cpu_ratio']:.2f}×)"
            if method.target is None:
                rows.append(f"| {what} | {measured} | {floor} | {ratios} | — | — |")
                continue
            target, met = f"≤ {method.target}× the floor", r["same"] and r["ratio"] <= method.target
            peer = PEER.get(method.name)
            if build is not host.build and peer is not None:
                target += (f"; ≤ {PEER_TARGET:g}× the peer's {peer * 1000:.0f} ms "
                           "(issue 18's measurement)")
                met = met and r["cpi"] <= PEER_TARGET * peer
            rows.append(row(what, measured, floor, ratios, target, met))
    for i in range(0, len(made), 50):
        virsh(" ; ".join(f"vol-delete --pool {host.env.pool} {v}" for v in made[i:i + 50]),
              check=False)
    # The cpi's own new disks (create_disk runs), unattached: delete_disk would do the same.
    left = [v for v in virsh("vol-list", host.env.pool).split()
            if v.startswith(host.env.prefix + "disk-") and host.env.prefix + disk not in v]
    for i in range(0, len(left), 50):
        virsh(" ; ".join(f"vol-delete --pool {host.env.pool} {v}" for v in left[i:i + 50]),
              check=False)


def peer_table(results, builds):
    """Markdown lines: the calls the issue has a peer figure for, each build and its floor (same
    requests, same libvirt) against the peer's figure."""
    columns = [(b, who) for b in builds for who in ("cpi", "floor")]
    ratios = [(b, "cpi") for b in builds] + [(builds[-1], "floor")] * (len(builds) > 1)

    def head(b, who):
        return b.label if who == "cpi" else f"its floor ({b.libvirt})"
    out = ["| call, domains of ours defined | " + " | ".join(head(*c) for c in columns) +
           " | peer (issue 18's measurement, not this run) | " +
           " | ".join(f"{head(*c)} / peer" for c in ratios) + " |",
           "|---" * (2 + len(columns) + len(ratios)) + "|"]
    for count in SIZES_DONE:
        for name, peer in PEER.items():
            def took(b, who):
                return results[(name, count, b.label)][who]
            out.append(f"| {name}, {count} | " +
                       " | ".join(f"{took(*c) * 1000:.1f} ms" for c in columns) +
                       f" | {peer * 1000:.0f} ms | " +
                       " | ".join(f"{took(*c) / peer:.1f}×" for c in ratios) + " |")
    return out


# --- where the milliseconds of has_vm go

EXTRA_LIBS = ["spdlog", "fmt", "archive", "pugixml", "stdc++"]  # what `cpi` links besides libvirt


def build_floor_variants(build_dir):
    """The floor linked, in addition, with the libraries only the CPI loads (the Debian build's
    shared spdlog, fmt, libarchive, pugixml): run without arguments, it measures their loading."""
    out = os.path.join(build_dir, "bench-floor-cxxlibs")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libvirt"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", out, os.path.join(HERE, "floor.c")] + flags +
                   ["-Wl,--no-as-needed"] + [f"-l{lib}" for lib in EXTRA_LIBS], check=True)
    return out


def ld_bindings(run, tmp=None):
    """Symbol bindings per object (LD_DEBUG=bindings), objects loaded, relocations processed.
    The output goes to `tmp` (a directory the run sees at the same path)."""
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        run({"LD_DEBUG": "statistics,bindings,files", "LD_DEBUG_OUTPUT": os.path.join(d, "ld")})
        text = "".join(open(os.path.join(d, f), errors="replace").read() for f in os.listdir(d))
    per = {}
    for name in re.findall(r"binding file (\S+) \[\d+\] to ", text):
        per[os.path.basename(name)] = per.get(os.path.basename(name), 0) + 1
    final = re.findall(r"final number of relocations:\s+(\d+)", text)
    return {"objects": len(re.findall(r"file=\S+ \[\d+\];\s+generating link map", text)),
            "relocations": int(final[-1]) if final else 0,
            "bindings": sum(per.values()), "per": per}


def strace_counts(run):
    with tempfile.NamedTemporaryFile(suffix=".strace") as f:
        run({}, ("strace", "-f", "-c", "-o", f.name))
        text = open(f.name).read()
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    total = re.search(r"100\.00\s+\S+\s+\S+\s+(\d+)", text)
    return {"syscalls": int(total.group(1)) if total else sum(calls.values()),
            "openat": calls.get("openat", 0), "mmap": calls.get("mmap", 0)}


def strace_phases(run, module):
    """Milestones of one process under strace -f -ttt (slowed down by tracing: for proportions):
    seconds from the exec to opening the config, to opening cpi_libvirt.so, to connecting to
    libvirtd's socket, and to the exit."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as f:
        run({}, ("strace", "-f", "-ttt", "--seccomp-bpf", "-e",
                 "trace=execve,openat,connect,exit_group", "-o", f.name))
        lines = open(f.name).read().splitlines()
    stamps = {}
    for line in lines:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        t, call = float(parts[1]), parts[2]
        for key, marker in (("exec", "execve("), ("config", "cpi.json"), ("module", module),
                            ("connect", "connect("), ("exit", "exit_group(")):
            if marker in call and key not in stamps and "ENOENT" not in call:
                stamps[key] = t
    return stamps


def libvirt_log(run, tmp=None):
    """From libvirt's debug log: the requests, and the time from the first request sent to the
    last answer read (ms resolution). The log goes to `tmp` (seen by the run at the same path)."""
    with tempfile.NamedTemporaryFile(suffix=".log", dir=tmp) as f:
        run({"LIBVIRT_DEBUG": "1", "LIBVIRT_LOG_OUTPUTS": f"1:file:{f.name}"})
        lines = open(f.name, errors="replace").read().splitlines()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d\.\d+)")

    def seconds(line):
        m = stamp.match(line)
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    sent = [seconds(l) for l in lines if "RPC_CLIENT_MSG_TX_QUEUE" in l]
    answered = [seconds(l) for l in lines if "RPC_CLIENT_MSG_RX" in l]
    stamps = [s for s in (seconds(l) for l in lines) if s is not None]
    return {"requests": len(sent),
            "rpc": (answered[-1] - sent[0]) if sent and answered else 0.0,
            "span": (stamps[-1] - stamps[0]) if stamps else 0.0}


def profile(host, vm, build_dir, builds):
    """The has_vm budget, from differences of medians of whole processes (no tracer running):
    spawning, loading libvirt, opening the connection, the two requests, the CPI's extra
    libraries and its own start (`cpi info`); then counts from LD_DEBUG, strace and libvirt's
    log. Returns markdown lines."""
    dom = [f"dom={host.name(vm)}", "meta"]
    info = json.dumps({"method": "info", "arguments": [], "context": {}}).encode()
    env = host.base_env
    cxx_floor = build_floor_variants(build_dir)

    def timed(argv, stdin=b"", build=host.build):
        return lambda: spawn(argv, stdin, dict(env, **build.env), build.runner)[0]

    def cpi_has_vm(build):
        return lambda: host.cpi("has_vm", [vm], build=build)[1]

    def build_steps(b):
        """The steps of `b` (label, run): spawning, the floor against its libvirt without
        arguments, connecting, has_vm's requests, [the floor with the CPI's libraries], `cpi`
        info, `cpi` has_vm."""
        name = "" if b is host.build else f"{b.label}: "
        cpi = [b.cpi, "--config", host.env.config]
        return [(f"{name}`/bin/true`: spawning a process", timed(["/bin/true"], build=b)),
                (f"{name}floor, no arguments: {b.libvirt} and its libraries loaded, nothing "
                 "called", timed([b.floor], build=b)),
                (f"{name}floor: + virConnectOpen and virConnectClose",
                 timed([b.floor, URI], build=b)),
                (f"{name}floor: + has_vm's lookup and metadata read",
                 timed([b.floor, URI] + dom, build=b))] + (
            [("floor linked also with " + ", ".join(f"lib{l}" for l in EXTRA_LIBS) +
              ", no arguments", timed([cxx_floor]))] if b is host.build else []) + [
                (f"{name}`cpi` info: our start, request, config and answer, without libvirt",
                 timed(cpi, info, build=b)),
                (f"{name}`cpi` has_vm", cpi_has_vm(b))]
    per_build = [build_steps(b) for b in builds]
    steps = [step for b in per_build for step in b]
    wall, cpu = {}, {}
    for _ in range(RUNS):  # interleaved, as the rows above
        for label, run in steps:
            wall.setdefault(label, []).append(run())
            cpu.setdefault(label, []).append(LAST_CPU[0])
    w = {label: median(v) * 1000 for label, v in wall.items()}
    c = {label: median(v) * 1000 for label, v in cpu.items()}
    out = [f"Medians of {RUNS} interleaved runs of each process (wall: spawn to exit, as the "
           "director waits; CPU: user + system time of the process).", "",
           "| process | wall | CPU | CPU difference |", "|---|---|---|---|"]

    def line(label, base, note=""):
        diff = "" if base is None else f"{c[label] - c[base]:+.1f} ms {note}".rstrip()
        out.append(f"| {label} | {w[label]:.1f} ms | {c[label]:.1f} ms | {diff} |")
    for b, b_steps in zip(builds, per_build):
        labels = [label for label, _ in b_steps]
        cxx = 1 if b is host.build else 0
        line(labels[0], None)
        line(labels[1], labels[0], "(loading libvirt)")
        line(labels[2], labels[1], "(libvirt's start and the connection)")
        line(labels[3], labels[2], "(the two requests)")
        if cxx:
            line(labels[4], labels[1], "(loading the CPI's other libraries)")
        line(labels[4 + cxx], labels[0], "over `/bin/true`")
        line(labels[5 + cxx], labels[3],
             f"over the floor's has_vm ({c[labels[5 + cxx]] / c[labels[3]]:.2f}× CPU, "
             f"{w[labels[5 + cxx]] / w[labels[3]]:.2f}× wall)")

    def cpi_run(extra, prefix=()):
        host.cpi("has_vm", [vm], extra, prefix)

    def floor_run(extra, prefix=()):
        host.run_floor(dom, extra, prefix)
    counts = {}
    for who, run in (("cpi", cpi_run), ("floor", floor_run)):
        logs = [libvirt_log(run) for _ in range(5)]
        counts[who] = {**ld_bindings(run), **strace_counts(run),
                       "requests": logs[0]["requests"],
                       "rpc": median([l["rpc"] for l in logs]),
                       "span": median([l["span"] for l in logs])}
    out += ["", "| one has_vm process | `cpi` | C floor |", "|---|---|---|"]
    for key, label in (("objects", "shared objects loaded (LD_DEBUG=files)"),
                       ("relocations", "relocations processed (LD_DEBUG=statistics)"),
                       ("bindings", "symbol bindings (LD_DEBUG=bindings)"),
                       ("syscalls", "system calls (strace -f -c)"),
                       ("openat", "files opened (openat)"),
                       ("mmap", "mmap calls"),
                       ("requests", "requests to libvirtd (libvirt's debug log)")):
        out.append(f"| {label} | {counts['cpi'][key]} | {counts['floor'][key]} |")
    for key, label in (("rpc", "first request sent to last answer read (libvirt's debug log, "
                               "median of 5, ms resolution)"),
                       ("span", "libvirt's debug log, first to last line (median of 5)")):
        out.append(f"| {label} | {counts['cpi'][key] * 1000:.0f} ms | "
                   f"{counts['floor'][key] * 1000:.0f} ms |")
    only = {k: v for k, v in counts["cpi"]["per"].items() if k not in counts["floor"]["per"]}
    out += ["", "Symbol bindings of the objects only `cpi` loads (LD_DEBUG=bindings): " +
            ", ".join(f"{k} {v}" for k, v in sorted(only.items(), key=lambda kv: -kv[1])) +
            "; libstdc++ " + str(counts["cpi"]["per"].get("libstdc++.so.6", 0)) + " (floor " +
            str(counts["floor"]["per"].get("libstdc++.so.6", 0)) + ")."]
    if len(builds) > 1:
        out += ["", "Loading, each build (LD_DEBUG; requests from libvirt's debug log):", "",
                "| one has_vm process | " + " | ".join(f"{b.label} | its floor" for b in builds)
                + " |", "|---" * (1 + 2 * len(builds)) + "|"]
        loads = []
        for b in builds:
            for run in (lambda e, b=b: host.cpi("has_vm", [vm], e, build=b),
                        lambda e, b=b: host.run_floor(dom, e, build=b)):
                loads.append({**ld_bindings(run, host.env.tmp),
                              "requests": libvirt_log(run, host.env.tmp)["requests"]})
        for key, label in (("objects", "shared objects loaded (LD_DEBUG=files)"),
                           ("relocations", "relocations processed (LD_DEBUG=statistics)"),
                           ("bindings", "symbol bindings (LD_DEBUG=bindings)"),
                           ("requests", "requests to libvirtd")):
            out.append(f"| {label} | " + " | ".join(str(l[key]) for l in loads) + " |")
    phases = [strace_phases(cpi_run, "cpi_libvirt.so") for _ in range(5)]
    floor_phases = [strace_phases(floor_run, "\x00") for _ in range(5)]

    def span(stamps, a, b):
        values = [p[b] - p[a] for p in stamps if a in p and b in p]
        return f"{median(values) * 1000:.1f} ms" if values else "—"
    out += ["", "Under `strace -f -ttt --seccomp-bpf` (tracing slows it down; median of 5): "
            f"`cpi` has_vm, exec to reading its config {span(phases, 'exec', 'config')}, to "
            f"opening cpi_libvirt.so {span(phases, 'exec', 'module')}, to connecting to "
            f"libvirtd {span(phases, 'exec', 'connect')}, connect to exit "
            f"{span(phases, 'connect', 'exit')}; the floor, exec to connecting "
            f"{span(floor_phases, 'exec', 'connect')}, connect to exit "
            f"{span(floor_phases, 'connect', 'exit')}."]
    return out


PACKAGES = "/var/vcap/packages"


def release_build(env, vcap):
    """The BOSH release's build, run as BOSH runs it: the compiled packages of
    scripts/compile-release.sh (`vcap`: its WORK/vcap) at /var/vcap in the stemcell-like chroot
    of scripts/stemcell-chroot.sh (through scripts/in-stemcell-chroot.sh, as
    tests/release/job_lifecycle.sh runs bin/cpi), with the host's libvirtd socket and the bench's
    directory (config, TMPDIR, logs) bound in, and LD_LIBRARY_PATH as the job's bin/cpi sets it.
    The floor is compiled there against the libvirt-client package (its headers and library,
    with the RPATH libvirt_cpi gets). Returns (Build, proc.Server)."""
    scripts = os.path.join(HERE, "..", "scripts")
    root = subprocess.run([os.path.join(scripts, "stemcell-chroot.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()
    if not env.root.startswith("/tmp/"):
        raise RuntimeError(f"the bench's directory {env.root} must lie under /tmp to be bound "
                           "into the chroot (unset TMPDIR)")
    server = proc.Server([os.path.join(scripts, "in-stemcell-chroot.sh"), root, vcap, "/",
                          "--bind", "/run/libvirt:/run/libvirt", "--bind", f"{env.root}:{env.root}",
                          "--bind", f"{HERE}:/tmp/bench-src", "--",
                          "python3", "/tmp/bench-src/proc.py", "serve"])
    client = f"{PACKAGES}/libvirt-client"
    floor = os.path.join(env.root, "floor-release")
    _, code, out, err, _ = server.run(
        ["cc", "-O2", "-Wall", "-Wextra", f"-I{client}/include", "-o", floor,
         "/tmp/bench-src/floor.c", f"-L{client}/lib", f"-Wl,-rpath,{client}/lib",
         "-Wl,--disable-new-dtags", "-lvirt"],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TMPDIR": "/tmp"})
    if code != 0:
        server.close()
        raise RuntimeError(f"compiling the floor in the chroot: {(out + err).decode()[-2000:]}")
    fingerprints = {p: os.path.basename(os.readlink(os.path.join(vcap, "packages", p)))
                    for p in ("libvirt_cpi", "libvirt-client")}
    log("release build: " + ", ".join(f"{p} {f[:12]}" for p, f in fingerprints.items()))
    build = Build("release `cpi` (stemcell chroot)", f"{PACKAGES}/libvirt_cpi/bin/cpi", floor,
                  server.run, {"LD_LIBRARY_PATH": f"{client}/lib"},
                  libvirt="the release's libvirt-client")
    build.fingerprints = fingerprints
    return build, server


def main():
    cpi, stemcells, build_dir = sys.argv[1:4]
    vcap = os.environ.get("RELEASE_VCAP", "")
    floor = build_floor(build_dir)
    env = Environment(cpi)
    host = Host(env, floor)
    rows, section, results, server = [], [], {}, None
    builds = [host.build]
    try:
        log(f"libvirtd {'started here' if env.started_libvirtd else 'already running'}")
        if vcap:
            release, server = release_build(env, vcap)
            builds.append(release)
        with open(os.path.join(stemcells, "qcow2", "cloud_properties.json")) as f:
            props = json.load(f)
        sc = host.cpi("create_stemcell", [os.path.join(stemcells, "qcow2", "image"), props])[0]
        networks = {"private": {"type": "dynamic", "cloud_properties": {"name": env.net}}}
        vm = host.cpi("create_vm", ["agent-bench", sc, {"cpu": 1, "ram": 128}, networks, [],
                                    {}])[0][0]
        virsh("destroy", host.name(vm))  # defined, not started, like the others
        disk = host.cpi("create_disk", [16, {}, None])[0]
        facts_xml = virsh("metadata", host.name(vm), NS, "--config")
        facts = json.loads(re.search(r"<facts>(.*)</facts>", facts_xml, re.S).group(1))
        for count in SIZES:
            host.clone_domains(vm, count - len(host.ours()))
            count = len(host.ours())
            log(f"{count} domains of ours defined")
            SIZES_DONE.append(count)
            lookup_rows(host, vm, disk, facts, rows, count, builds, results)
        log("profile of has_vm")
        section = profile(host, vm, build_dir, builds)
        host.cpi("delete_disk", [disk])
        host.cpi("delete_vm", [vm])
        host.cpi("delete_stemcell", [sc])
    finally:
        if server:
            server.close()
        host.remove_clones()
        env.close()
    print("\n".join(rows))
    print("PEER")
    if len(builds) > 1:
        fp = builds[1].fingerprints
        print(f"Release build: the compiled packages libvirt_cpi {fp['libvirt_cpi'][:16]}… and "
              f"libvirt-client {fp['libvirt-client'][:16]}… (fingerprints) of "
              f"{os.path.relpath(vcap, os.path.dirname(HERE))}.")
        print()
    print("\n".join(peer_table(results, builds)))
    print("PROFILE")
    print("\n".join(section))


if __name__ == "__main__":
    main()
