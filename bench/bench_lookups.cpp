// bench_lookups: LibvirtCloud::has_vm, get_disks and attach_disk on a small
// host (10 domains) and a big one (500 domains, 1,000 more volumes), in process
// on libvirt's test:///default driver (per process, so the `cpi` binary cannot
// be driven against it). has_vm and get_disks look up by name, so their times
// should stay flat (the target: a ratio under 1.5); attach_disk checks every
// domain on the host for one holding the disk (LibvirtCloud::domains_holding),
// so it grows with the domains by design (no target: the row shows by how
// much). Prints a markdown table; the last line, `RESULT
// has_vm=<ratio> get_disks=<ratio> attach_disk=<ratio>`, is for
// bench/run-all.sh.
//
// The cloud runs on the FakeHypervisor of the driver tests (tests/support),
// which emulates the device attach and volume upload the test driver lacks.

#include <libvirt/libvirt.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "support/disk_fixture.hpp"

namespace {

using cpi::cloud::DiskCid;
using cpi::cloud::VmCid;

constexpr int k_small = 10;
constexpr int k_big = 500;
constexpr int k_padding_volumes = 1000;
constexpr int k_lookups = 300; // per measurement of has_vm / get_disks
constexpr int k_attaches = 2;  // per VM

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

double time_us(const std::function<void()> &fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - start)
      .count();
}

struct Row {
  double has_vm = 0, get_disks = 0, attach_disk = 0;
  int domains = 0;  // on the host (the test driver's own included), before the attaches
};

class Bench : public cpi::testing::DiskFixture {
public:
  void TestBody() override {}
  void start() { SetUp(); }
  void stop() { TearDown(); }

  // `count` more domains the cloud does not know (as other tenants of a host).
  void pad_domains(int count) {
    for (int i = 0; i < count; ++i) {
      const std::string xml =
          "<domain type='test'><name>pad-dom-" + std::to_string(m_padded++) +
          "</name><memory unit='MiB'>64</memory>"
          "<os><type arch='x86_64'>hvm</type></os></domain>";
      cpi::virt::Domain d{virDomainDefineXML(&conn(), xml.c_str())};
      if (!d)
        throw std::runtime_error("cannot define a padding domain");
    }
  }

  void pad_volumes(int count) {
    auto p = pool();
    for (int i = 0; i < count; ++i) {
      const std::string xml =
          "<volume><name>pad-vol-" + std::to_string(i) +
          "</name><capacity unit='MiB'>1</capacity></volume>";
      cpi::virt::Volume v{virStorageVolCreateXML(p.get(), xml.c_str(), 0)};
      if (!v)
        throw std::runtime_error("cannot create a padding volume");
    }
  }

  std::vector<VmCid> make_vms(int count) {
    std::vector<VmCid> vms;
    for (int i = 0; i < count; ++i)
      vms.push_back(new_vm());
    return vms;
  }

  // Times the three calls on `lookup_vms` (has_vm, get_disks) and on
  // `attach_vms` (fresh disks).
  Row measure(const std::vector<VmCid> &lookup_vms,
              const std::vector<VmCid> &attach_vms) {
    Row row;
    row.domains = virConnectNumOfDomains(&conn()) + virConnectNumOfDefinedDomains(&conn());
    std::vector<double> samples;
    for (int i = 0; i < k_lookups; ++i) {
      const auto &vm =
          lookup_vms[static_cast<std::size_t>(i) % lookup_vms.size()];
      samples.push_back(time_us([&] { (void)cloud().has_vm(vm); }));
    }
    row.has_vm = median(samples);
    samples.clear();
    for (int i = 0; i < k_lookups; ++i) {
      const auto &vm =
          lookup_vms[static_cast<std::size_t>(i) % lookup_vms.size()];
      samples.push_back(time_us([&] { (void)cloud().get_disks(vm); }));
    }
    row.get_disks = median(samples);
    samples.clear();
    for (const auto &vm : attach_vms) {
      for (int i = 0; i < k_attaches; ++i) {
        const DiskCid disk = new_disk(16);
        samples.push_back(
            time_us([&] { (void)cloud().attach_disk(vm, disk, 2); }));
      }
    }
    row.attach_disk = median(samples);
    return row;
  }

private:
  int m_padded = 0;
};

} // namespace

int main() {
  Bench bench;
  bench.start();
  int rc = 0;
  try {
    // Small host: 10 VMs of the CPI (3 volumes each) and the stemcell.
    const auto vms = bench.make_vms(k_small);
    const auto attach_small = bench.make_vms(k_small);
    const Row small = bench.measure(vms, attach_small);
    // Big host: 500 domains and 1,000 more volumes; the same 10 VMs are looked
    // up.
    bench.pad_domains(k_big - 2 * k_small);
    bench.pad_volumes(k_padding_volumes);
    const auto attach_big = bench.make_vms(k_small);
    const Row big = bench.measure(vms, attach_big);

    std::printf("| call | %d domains | %d domains + %d volumes | ratio | "
                "target | met |\n",
                small.domains, big.domains, k_padding_volumes);
    std::printf("|---|---|---|---|---|---|\n");
    const auto line = [](const char *what, double a, double b, bool flat) {
      const double ratio = b / a;
      if (flat) {
        std::printf("| %s | %.0f us | %.0f us | %.2f | flat (ratio ≈ 1, < 1.5) | %s |\n",
                    what, a, b, ratio, ratio < 1.5 ? "yes" : "no");
      } else {
        std::printf("| %s | %.0f us | %.0f us | %.2f | — (a scan of every domain) | — |\n",
                    what, a, b, ratio);
      }
      return ratio;
    };
    const double r1 = line("has_vm", small.has_vm, big.has_vm, true);
    const double r2 = line("get_disks", small.get_disks, big.get_disks, true);
    const double r3 = line("attach_disk", small.attach_disk, big.attach_disk, false);
    std::printf("RESULT has_vm=%.0f/%.0f get_disks=%.0f/%.0f "
                "attach_disk=%.0f/%.0f ratios=%.2f,%.2f,%.2f\n",
                small.has_vm, big.has_vm, small.get_disks, big.get_disks,
                small.attach_disk, big.attach_disk, r1, r2, r3);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench_lookups: %s\n", e.what());
    rc = 1;
  }
  bench.stop();
  return rc;
}
