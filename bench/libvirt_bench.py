#!/usr/bin/env python3
"""The benchmarks that need a real libvirtd (each row states its target): create_stemcell vs `tar -xzf`,
create_vm and delete_vm vs the same work done by `virsh` alone, 20 create_vm at once, and the peak
RSS of one call. Prints markdown table rows (what | measured | floor/baseline | ratio | target |
met). Run by bench/run-all.sh under the e2e host lock; alone:
    flock /tmp/bosh-libvirt-cpi-e2e.lock bench/libvirt_bench.py CPI_BIN STEMCELL_DIR CACHE_DIR
STEMCELL_DIR is the output of tests/e2e/stemcell/build.sh; CACHE_DIR keeps the 2 GiB images.
RUNS (default 5) sets the repetitions of each timed step; ONLY=create_stemcell runs the
create_stemcell rows alone."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import Environment, median, row, virsh

GIB, MIB = 1 << 30, 1 << 20
RUNS = int(os.environ.get("RUNS", "5"))
PROPS = {"cpu": 1, "ram": 128}


def log(text):
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def timed(argv, **kw):
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, **kw)
    return time.perf_counter() - t0


def big_images(stemcells, cache):
    """2 GiB raw disk: the test stemcell's root.img, then 200 MiB of random data, the rest a
    hole; packed as the stemcell `image` (a gzip tar of root.img): raw in a plain tar, raw with
    `tar -S` (a GNU sparse member: holes not stored, the disk ends in one), and qcow2 (-c)."""
    out = {f: os.path.join(cache, f, "image") for f in ("raw", "raw-sparse", "qcow2")}
    missing = [f for f, p in out.items() if not os.path.exists(p)]
    if not missing:
        return out
    log("building the 2 GiB test images (once; cached in " + cache + "): " + ", ".join(missing))
    os.makedirs(cache, exist_ok=True)
    work = tempfile.mkdtemp(dir=cache)
    subprocess.run(["tar", "-xzf", os.path.join(stemcells, "raw", "image"), "-C", work], check=True)
    img = os.path.join(work, "root.img")
    with open(img, "r+b") as f:
        f.seek(256 * MIB)
        for _ in range(200):
            f.write(os.urandom(MIB))
        f.truncate(2 * GIB)
    for fmt in missing:
        d = os.path.join(cache, fmt)
        os.makedirs(d, exist_ok=True)
        src, tar = work, ["tar", "-czf"]
        if fmt == "qcow2":
            src = os.path.join(work, "q")
            os.makedirs(src)
            subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compat=0.10", img,
                            os.path.join(src, "root.img")], check=True)
        if fmt == "raw-sparse":
            tar = ["tar", "-S", "-czf"]
        subprocess.run(tar + [out[fmt] + ".part", "-C", src, "root.img"], check=True)
        os.rename(out[fmt] + ".part", out[fmt])
    subprocess.run(["rm", "-rf", work], check=True)
    return out


def props_of(stemcells, fmt):
    with open(os.path.join(stemcells, fmt, "cloud_properties.json")) as f:
        return json.load(f)


def volume_info(env, name):
    info = {}
    for line in virsh("vol-info", "--pool", env.pool, name, "--bytes").splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.split()[0] if value.split() else ""
    return int(info.get("Capacity", 0)), int(info.get("Allocation", 0))


def bench_stemcells(env, stemcells, images, rows, rss):
    packings = (("qcow2", "qcow2", 0.9, "`tar -czf`"), ("raw", "raw", 1.25, "plain `tar -czf`"),
                ("raw-sparse", "raw", 1.25, "`tar -S -czf`"))
    for name, fmt, target, packing in packings:
        image = images[name]
        floor = median([timed(f"tar -xzf '{image}' -O > /dev/null", shell=True)
                        for _ in range(3)])
        times, alloc = [], (0, 0)
        for _ in range(3):
            sc, seconds, kib = env.call("create_stemcell", [image, props_of(stemcells, fmt)])
            times.append(seconds)
            rss.append((f"create_stemcell 2 GiB {name}", kib))
            alloc = volume_info(env, env.prefix + sc)
            env.call("delete_stemcell", [sc])
        t = median(times)
        rows.append(row(f"create_stemcell, 2 GiB {fmt} image (216 MiB data), {packing}",
                        f"{t:.2f} s", f"`tar -xzf` to /dev/null {floor:.2f} s", f"{t / floor:.2f}×",
                        f"≤ {target}×", t / floor <= target))
        cap, used = alloc
        if fmt == "raw":
            rows.append(row(f"raw stemcell volume stays sparse ({packing})",
                            f"{used / MIB:.0f} MiB allocated", f"capacity {cap / MIB:.0f} MiB",
                            f"{used / cap:.2f}", "allocation ≈ data (≤ 0.2 of capacity)",
                            used <= 0.2 * cap))
        else:
            rows.append(row("qcow2 stemcell volume allocation", f"{used / MIB:.0f} MiB allocated",
                            f"virtual size {cap / MIB:.0f} MiB", f"{used / cap:.2f}", "—", True))


class VirshVm:
    """The libvirt work of create_vm done with virsh alone: qcow2 overlay on the stemcell, the
    config ISO built (bsdtar) and vol-upload'ed, define, start; the template XML is the one the
    CPI wrote for an earlier VM, renamed."""

    def __init__(self, env, template_vm, stemcell_volume):
        self.env, self.n = env, 0
        self.xml = virsh("dumpxml", "--inactive", env.prefix + template_vm)
        self.old = env.prefix + template_vm
        self.stemcell = stemcell_volume
        self.capacity, _ = volume_info(env, stemcell_volume)
        fmt = virsh("vol-dumpxml", "--pool", env.pool, stemcell_volume)
        self.format = "qcow2" if "type='qcow2'" in fmt else "raw"
        self.files = os.path.join(env.root, "iso")
        os.makedirs(os.path.join(self.files, "openstack", "latest"), exist_ok=True)
        settings = {"agent_id": "bench", "vm": {"name": "bench"}, "mbus": "https://x@0.0.0.0"}
        with open(os.path.join(self.files, "openstack", "latest", "user_data"), "w") as f:
            json.dump(settings, f)

    def create(self):
        env, self.n = self.env, self.n + 1
        name = f"{env.prefix}virsh-{self.n}"
        t0 = time.perf_counter()
        virsh("vol-create-as", env.pool, name + "-root", str(self.capacity), "--format", "qcow2",
              "--backing-vol", self.stemcell, "--backing-vol-format", self.format)
        iso = os.path.join(env.root, name + ".iso")
        subprocess.run(["bsdtar", "-cf", iso, "--format", "iso9660", "--options",
                        "volume-id=config-2,joliet,rockridge", "-C", self.files, "."], check=True)
        virsh("vol-create-as", env.pool, name + "-config", str(os.path.getsize(iso)),
              "--format", "raw")
        virsh("vol-upload", "--pool", env.pool, name + "-config", iso)
        xml = self.xml.replace(self.old, name)
        xml = "\n".join(l for l in xml.splitlines() if "<uuid>" not in l and "<mac " not in l)
        path = os.path.join(env.root, name + ".xml")
        with open(path, "w") as f:
            f.write(xml)
        virsh("define", path)
        virsh("start", name)
        seconds = time.perf_counter() - t0
        os.unlink(iso)
        env.silence_taps(name)
        return name, seconds

    def delete(self, name):
        t0 = time.perf_counter()
        virsh("destroy", name)
        virsh("undefine", name)
        virsh("vol-delete", "--pool", self.env.pool, name + "-root")
        virsh("vol-delete", "--pool", self.env.pool, name + "-config")
        return time.perf_counter() - t0


def networks(env):
    return {"private": {"type": "dynamic", "cloud_properties": {"name": env.net}}}


def create_vm(env, sc):
    result, seconds, kib = env.call("create_vm", ["agent-bench", sc, PROPS, networks(env), [], {}])
    env.silence_taps(env.prefix + result[0])
    return result[0], seconds, kib


def wait_booted(env, vm, timeout=120):
    path = os.path.join("/var/log/libvirt/qemu", env.prefix + vm)
    xml = virsh("dumpxml", env.prefix + vm)
    for part in xml.split("<log file='")[1:]:
        path = part.split("'")[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                if "BOSHTEST end" in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def bench_vms(env, stemcells, images, rows, rss):
    scs = {}
    for label, image, fmt in (("64 MiB", os.path.join(stemcells, "qcow2", "image"), "qcow2"),
                              ("2 GiB", images["qcow2"], "qcow2")):
        scs[label] = env.call("create_stemcell", [image, props_of(stemcells, fmt)])[0]
    per = {}
    deletes, virsh_deletes = [], []
    for label, sc in scs.items():
        cpi_times, virsh_times = [], []
        template, seconds, _ = create_vm(env, sc)
        env.call("delete_vm", [template])  # warm-up; its XML is gone, take a fresh one below
        template, seconds, _ = create_vm(env, sc)
        baseline = VirshVm(env, template, env.prefix + sc)
        env.call("delete_vm", [template])
        for _ in range(RUNS):
            vm, seconds, kib = create_vm(env, sc)
            cpi_times.append(seconds)
            rss.append(("create_vm", kib))
            deletes.append(env.call("delete_vm", [vm])[1])
            name, seconds = baseline.create()
            virsh_times.append(seconds)
            virsh_deletes.append(baseline.delete(name))
        c, v = median(cpi_times), median(virsh_times)
        per[label] = c
        rows.append(row(f"create_vm until the domain runs, {label} stemcell", f"{c:.3f} s",
                        f"virsh {v:.3f} s", f"{c / v:.2f}×", "≤ 1.1×", c / v <= 1.1))
    growth = per["2 GiB"] - per["64 MiB"]
    rows.append(row("create_vm growth, 64 MiB → 2 GiB stemcell", f"{growth:+.3f} s", "—", "—",
                    "< 0.05 s", growth < 0.05))
    d, v = median(deletes), median(virsh_deletes)
    rows.append(row("delete_vm, no persistent disk (powered off at once)", f"{d:.3f} s",
                    f"virsh destroy+undefine+vol-delete {v:.3f} s", f"{d / v:.2f}×", "≤ 1.1×",
                    d / v <= 1.1))
    # With a persistent disk attached delete_vm shuts the guest down first (ACPI, up to 5 s).
    for booted in (False, True):
        times = []
        for _ in range(2 if booted else 1):
            vm, _, _ = create_vm(env, scs["64 MiB"])
            disk = env.call("create_disk", [16, {}, vm])[0]
            env.call("attach_disk", [vm, disk])
            if booted and not wait_booted(env, vm):
                log("guest did not boot; its delete is not counted")
                env.call("delete_vm", [vm])
            else:
                times.append(env.call("delete_vm", [vm])[1])
            env.call("delete_disk", [disk])
        if times:
            b = median(times)
            what = ("booted guest (ACPI shutdown answered)" if booted
                    else "guest not booted yet (ACPI unanswered)")
            rows.append(row(f"delete_vm, persistent disk attached, {what}", f"{b:.3f} s",
                            f"virsh {v:.3f} s", f"{b / v:.2f}×", "≤ 1.1×", b / v <= 1.1))
    return scs["64 MiB"], per["64 MiB"], scs


def bench_concurrency(env, sc, single, rows):
    vms, errors = [None] * 20, []

    def one(i):
        try:
            vms[i] = create_vm(env, sc)[0]
        except Exception as e:  # noqa: BLE001 -- reported in the table
            errors.append(str(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    macs = set()
    for vm in vms:
        if vm:
            macs.update(l.split()[-1] for l in virsh("domiflist", env.prefix + vm).splitlines()
                        if l.split())
    ok = not errors and len(macs) == 20
    rows.append(row("20 create_vm at once (wall time)", f"{wall:.2f} s",
                    f"one create_vm {single:.2f} s",
                    f"{wall / single:.1f}× ({wall / single / 20:.2f}× per VM)",
                    "all succeed, distinct MACs", ok))
    if errors:
        log("concurrency errors: " + "; ".join(errors)[:2000])
    dels = [threading.Thread(target=env.call, args=("delete_vm", [vm])) for vm in vms if vm]
    for t in dels:
        t.start()
    for t in dels:
        t.join()


def main():
    cpi, stemcells, cache = sys.argv[1:4]
    os.makedirs(cache, exist_ok=True)
    images = big_images(stemcells, cache)
    env = Environment(cpi)
    rows, rss = [], []
    try:
        log(f"libvirtd {'started here' if env.started_libvirtd else 'already running'}; "
            f"domain type {env.domain_type}")
        log("create_stemcell")
        bench_stemcells(env, stemcells, images, rows, rss)
        if os.environ.get("ONLY") == "create_stemcell":  # just these rows (a partial run)
            print("\n".join(rows))
            return
        log("create_vm / delete_vm")
        sc, single, scs = bench_vms(env, stemcells, images, rows, rss)
        log("20 at once")
        bench_concurrency(env, sc, single, rows)
        for label in scs:
            env.call("delete_stemcell", [scs[label]])
        for what in ("create_vm", "create_stemcell 2 GiB raw", "create_stemcell 2 GiB qcow2"):
            peak = max(k for w, k in rss if w == what) / 1024
            rows.append(row(f"peak RSS of one call: {what}", f"{peak:.1f} MiB", "—", "—",
                            "< 30 MiB", peak < 30))
    finally:
        env.close()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
