// check_host: the doctor checks that need a connection (see doctor.hpp for the list).

#include <libvirt/virterror.h>

#include <pugixml.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <unistd.h>

#include "cpi/cloud/names.hpp"
#include "cpi/tools/doctor.hpp"
#include "cpi/stemcell/fs_image.hpp"
#include "cpi/tools/local_checks.hpp"
#include "cpi/util/uuid.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::tools {
namespace {

constexpr std::uint64_t k_gib = 1024ULL * 1024ULL * 1024ULL;
constexpr std::uint64_t k_test_bytes = 64U << 10;
constexpr const char* k_qemu_hint =
    "install QEMU on the host (Debian: apt install qemu-system-x86 qemu-utils) and restart "
    "libvirtd";

struct Guest {
  std::string os_type;
  std::string arch;
  std::vector<std::string> domain_types;
};

struct Capabilities {
  std::string host_arch;
  std::vector<Guest> guests;
  bool offers(const std::string& domain_type) const {
    return std::any_of(guests.begin(), guests.end(), [&](const Guest& g) {
      return g.os_type == "hvm" && g.arch == host_arch &&
             std::find(g.domain_types.begin(), g.domain_types.end(), domain_type) !=
                 g.domain_types.end();
    });
  }
};

Capabilities read_capabilities(const std::string& text) {
  pugi::xml_document doc;
  doc.load_string(text.c_str());
  Capabilities caps;
  const auto root = doc.child("capabilities");
  caps.host_arch = root.child("host").child("cpu").child_value("arch");
  for (auto guest : root.children("guest")) {
    for (auto arch : guest.children("arch")) {
      Guest g{guest.child_value("os_type"), arch.attribute("name").value(), {}};
      for (auto domain : arch.children("domain")) {
        g.domain_types.emplace_back(domain.attribute("type").value());
      }
      caps.guests.push_back(std::move(g));
    }
  }
  return caps;
}

bool no_support(const std::exception& e) {
  const auto* error = dynamic_cast<const virt::LibvirtError*>(&e);
  return error != nullptr && error->code() == VIR_ERR_NO_SUPPORT;
}

void check_kvm_and_guest(virt::Hypervisor& hv, const config::Config& config, DoctorReport& report) {
  Capabilities caps;
  std::string type;
  try {
    caps = read_capabilities(hv.capabilities());
    type = hv.host_versions().type;
  } catch (const std::exception& e) {
    report.fail("kvm", std::string{"cannot read the host capabilities: "} + e.what(), k_qemu_hint);
    return;
  }
  if (config.libvirt.hypervisor == "lxc") {  // containers: no KVM, "exe" guests
    report.ok("kvm", "not needed: hypervisor lxc runs containers");
    for (const auto& guest : caps.guests) {
      if (guest.os_type == "exe" && guest.arch == caps.host_arch) {
        report.ok("guest", "exe " + guest.arch + " guests (containers)");
        return;
      }
    }
    report.fail("guest", "the host offers no container (exe) guests for " + caps.host_arch,
                "connect to libvirt's LXC driver (uri lxc:///, package libvirt-daemon-driver-lxc)");
    return;
  }
  const bool kvm = hv.domain_capabilities("kvm").has_value() || caps.offers("kvm");
  const bool qemu = hv.domain_capabilities("qemu").has_value() || caps.offers("qemu");
  const std::string kvm_hint =
      "enable VT-x/AMD-V in the firmware, load kvm_intel or kvm_amd, and check that /dev/kvm "
      "exists and libvirt's qemu user may open it (nested: enable nested virtualization)";
  if (kvm) {
    report.ok("kvm", "KVM available on " + caps.host_arch);
  } else if (qemu && config.libvirt.domain_type == "kvm") {
    report.fail("kvm", "libvirt.domain_type is kvm but the host offers no KVM",
                kvm_hint + ", or set domain_type auto");
  } else if (qemu) {
    report.warn("kvm", "no KVM: VMs run under TCG (software emulation), many times slower",
                kvm_hint);
  } else if (type == "QEMU") {
    report.fail("kvm", "the QEMU driver offers neither kvm nor qemu guests on " + caps.host_arch,
                k_qemu_hint);
  } else {
    report.warn("kvm", "the " + type + " driver runs no KVM or QEMU guests",
                "for BOSH VMs use a qemu:// URI (libvirt.hypervisor qemu or kvm)");
  }

  std::string arches;
  for (const auto& guest : caps.guests) {
    if (guest.os_type != "hvm" || guest.arch != caps.host_arch) continue;
    std::string types;
    for (const auto& t : guest.domain_types) types += (types.empty() ? "" : ", ") + t;
    report.ok("guest", "hvm " + guest.arch + " guests (domain types: " + types + ")");
    return;
  }
  for (const auto& guest : caps.guests) {
    if (guest.os_type == "hvm") arches += (arches.empty() ? "" : ", ") + guest.arch;
  }
  report.fail("guest",
              "no hvm guest for the host's architecture " + caps.host_arch +
                  (arches.empty() ? "" : " (only " + arches + ")"),
              k_qemu_hint);
}

std::optional<virt::Pool> check_pool(virt::Hypervisor& hv, const config::Config& config,
                                     DoctorReport& report) {
  const std::string& name = config.libvirt.storage_pool;
  try {
    auto pool = hv.find_pool(name);
    if (!pool) {
      report.warn("storage_pool",
                  "pool '" + name + "' does not exist: the CPI creates it as a dir pool at '" +
                      config.libvirt.store_dir + "' on first use",
                  "make sure libvirtd may create that directory, or create the pool yourself: "
                  "virsh pool-define-as " +
                      name + " dir --target " + config.libvirt.store_dir + " && virsh pool-build " +
                      name + " && virsh pool-start " + name + " && virsh pool-autostart " + name);
      return std::nullopt;
    }
    const auto info = hv.pool_info(**pool);
    const auto facts = xml::read_pool_xml(hv.pool_xml(**pool));
    const std::string what = "pool '" + name + "' (" + facts.type + " at " + facts.path + ")";
    if (!info.active) {
      report.fail("storage_pool", what + " is inactive",
                  "virsh pool-start " + name + " && virsh pool-autostart " + name);
      return std::nullopt;
    }
    const std::string space = human_size(info.available) + " free of " + human_size(info.capacity);
    if (info.available < k_gib) {
      report.fail("storage_pool", what + " is active but has only " + space,
                  "free space in the pool, or point libvirt.storage_pool at a larger one");
    } else if (info.available < 10 * k_gib) {
      report.warn("storage_pool", what + " is active, " + space,
                  "stemcells and disks need room: free space soon");
    } else {
      report.ok("storage_pool", what + " is active, " + space);
    }
    return pool;
  } catch (const std::exception& e) {
    report.fail("storage_pool", e.what(),
                no_support(e) ? "the libvirt daemon has no storage driver: install "
                                "libvirt-daemon-driver-storage (or libvirt-daemon-system)"
                              : "check that libvirtd runs and its storage driver works");
    return std::nullopt;
  }
}

void check_network(virt::Hypervisor& hv, const config::Config& config, DoctorReport& report) {
  const std::string& name = config.libvirt.network;
  if (name.empty()) return;
  const std::string start = "virsh net-start " + name + " && virsh net-autostart " + name;
  try {
    auto network = hv.find_network(name);
    if (!network) {
      report.fail("network", "libvirt network '" + name + "' does not exist",
                  "define it (virsh net-define FILE, then " + start +
                      ") or set libvirt.network to one that virsh net-list --all shows");
    } else if (hv.network_active(**network)) {
      report.ok("network", "libvirt network '" + name + "' is active");
    } else if (config.libvirt.auto_enable_networks) {
      report.warn("network",
                  "libvirt network '" + name +
                      "' is inactive; the CPI starts it on demand (auto_enable_networks)",
                  start);
    } else {
      report.fail("network", "libvirt network '" + name + "' is inactive",
                  start + " (or set libvirt.auto_enable_networks)");
    }
  } catch (const std::exception& e) {
    report.fail("network", e.what(),
                no_support(e) ? "the libvirt daemon has no network driver: install "
                                "libvirt-daemon-driver-network (or libvirt-daemon-system)"
                              : "check that libvirtd runs and its network driver works");
  }
}

struct Outcome {
  std::string error;         // what `use` threw; empty when it succeeded
  bool unsupported = false;  // ... with VIR_ERR_NO_SUPPORT
  std::string leak;          // why the test volume could not be deleted; empty when it was
};

// Creates a test volume (throws when that fails), runs `use` on it and deletes it.
template <typename Use>
Outcome with_test_volume(virt::Hypervisor& hv, virStoragePool& pool, const xml::VolumeSpec& spec,
                         Use&& use) {
  auto volume = hv.create_volume(pool, xml::volume_xml(spec));
  Outcome outcome;
  try {
    use(*volume);
  } catch (const std::exception& e) {
    outcome.error = e.what();
    outcome.unsupported = no_support(e);
  }
  try {
    hv.delete_volume(*volume);
  } catch (const std::exception& e) {
    outcome.leak = e.what();
  }
  return outcome;
}

void report_leak(const Outcome& outcome, const std::string& check, const std::string& pool,
                 const std::string& volume, DoctorReport& report) {
  if (!outcome.leak.empty()) {
    report.fail(check, "test volume '" + volume + "' left behind: " + outcome.leak,
                "delete it: virsh vol-delete --pool " + pool + " " + volume);
  }
}

void check_volumes(virt::Hypervisor& hv, const config::Config& config, virStoragePool& pool,
                   DoctorReport& report) {
  const cloud::Names names{config.libvirt.name_prefix};
  const std::string hex = util::random_hex(8);
  const std::string qcow2_name = names.doctor_volume(hex, "qcow2");
  const std::string raw_name = names.doctor_volume(hex, "raw");
  const std::string pool_name = config.libvirt.storage_pool;
  try {
    const auto outcome = with_test_volume(hv, pool, {qcow2_name, 1U << 20, "qcow2", "0600"},
                                          [](virStorageVol&) {});
    report.ok("volume", "created and deleted a qcow2 volume in pool '" + pool_name + "'");
    report_leak(outcome, "volume", pool_name, qcow2_name, report);
  } catch (const std::exception& e) {
    report.fail("volume", std::string{"cannot create a qcow2 volume: "} + e.what(),
                "check that libvirtd may write the pool's directory (permissions, AppArmor/"
                "SELinux, disk full) and that qemu-img is installed on the host");
  }
  std::string pattern(k_test_bytes, '\0');
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>('a' + i % 26);
  try {
    const auto outcome = with_test_volume(
        hv, pool, {raw_name, 1U << 20, "raw", "0600"}, [&](virStorageVol& volume) {
          virt::StringSource source{pattern};
          hv.upload_volume(volume, source, pattern.size(), false);
          if (hv.download_volume(volume, pattern.size()) != pattern) {
            throw std::runtime_error("the bytes read back differ from those written");
          }
        });
    if (outcome.error.empty()) {
      report.ok("stream", "wrote 64 KiB into a volume by stream and read them back");
    } else if (outcome.unsupported) {
      report.warn("stream", "stream upload is not supported by this driver: " + outcome.error,
                  "stemcells and config drives are uploaded by stream: use a qemu:// URI");
    } else {
      report.fail("stream", "stream write/read failed: " + outcome.error,
                  "check libvirtd's log: streams need a libvirtd that can read and write the "
                  "pool's files");
    }
    report_leak(outcome, "stream", pool_name, raw_name, report);
  } catch (const std::exception& e) {
    report.fail("stream", std::string{"cannot create a raw volume: "} + e.what(),
                "check that libvirtd may write the pool's directory");
  }
}

void check_qemu_img(const HostContext& host, DoctorReport& report) {
  if (!host.local()) {
    const Check* volume = report.find("volume");
    if (volume != nullptr && volume->verdict == Verdict::ok) {
      report.ok("qemu-img", "remote host: creating a qcow2 volume worked, so it is there");
    } else {
      report.warn("qemu-img", "remote host: not checked", std::string{k_qemu_hint});
    }
    return;
  }
  const auto program = find_program("qemu-img");
  if (!program) {
    report.fail("qemu-img", "qemu-img is not on PATH",
                "install it (Debian: apt install qemu-utils): qcow2 volumes need it");
    return;
  }
  const auto version = run_command(shell_quote(program->string()) + " --version");
  const std::string first = version.output.substr(0, version.output.find('\n'));
  report.ok("qemu-img", program->string() + (first.empty() ? "" : " (" + first + ")"));
}

// What the lxc hypervisor needs of the host the CPI runs on (README, LXC containers).
void check_containers(const HostContext& host, DoctorReport& report) {
  if (!host.local()) {
    report.fail("lxc", "the libvirt host is remote; containers need the CPI on it",
                "run the CPI on the libvirt host with uri lxc:/// (it links the volumes there)");
    return;
  }
  const std::string mke2fs = stemcell::mke2fs_path();
  if (mke2fs.empty()) {
    report.fail("lxc", "mke2fs is not installed: containers' volumes are ext4 images it builds",
                "install e2fsprogs");
    return;
  }
  // libvirt 9.0 bind-mounts a cgroup2 hierarchy beside v1 controllers before it makes room
  // for it, and the container fails to start.
  bool v1 = false;
  bool unified = false;
  std::ifstream mounts{"/proc/self/mountinfo"};
  for (std::string line; std::getline(mounts, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const std::string type = line.substr(dash + 3, line.find(' ', dash + 3) - dash - 3);
    if (type == "cgroup") v1 = true;
    if (type == "cgroup2" && line.find(" /sys/fs/cgroup/unified ") != std::string::npos) {
      unified = true;
    }
  }
  if (v1 && unified) {
    report.fail("lxc",
                "cgroup v1 controllers with a cgroup2 hierarchy at /sys/fs/cgroup/unified: "
                "libvirt's LXC driver cannot start containers here ('Unable to create directory "
                "/sys/fs/cgroup/unified')",
                "detach the unused hierarchy: scripts/lxc-host.sh (umount -l "
                "/sys/fs/cgroup/unified)");
    return;
  }
  if (::geteuid() != 0) {
    report.fail("lxc", "the CPI does not run as root",
                "run it as root: it unpacks root filesystems and links volumes in " +
                    std::string{stemcell::k_link_dir});
    return;
  }
  report.ok("lxc", mke2fs + "; cgroups fit libvirt's LXC driver; running as root");
}

}  // namespace

void check_host(virt::Hypervisor& hv, const config::Config& config, const HostContext& host,
                DoctorReport& report) {
  check_kvm_and_guest(hv, config, report);
  auto pool = check_pool(hv, config, report);
  check_network(hv, config, report);
  if (pool) {
    check_volumes(hv, config, **pool, report);
  } else {
    report.warn("volume", "skipped: no usable storage pool", "fix storage_pool first");
  }
  check_qemu_img(host, report);
  if (config.libvirt.hypervisor == "lxc") check_containers(host, report);
}

}  // namespace cpi::tools
