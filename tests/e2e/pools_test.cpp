// Storage pool types (issue 9): the CPI uses only libvirt's storage API, so `fs`, `netfs` and
// `logical` pools work like the `dir` pool of the rest of the tier. The root disk is a qcow2
// overlay where the pool type has backing stores (dir, fs, netfs) and a full copy
// (virStorageVolCreateXMLFrom) where not (logical).
//
// Each test makes its own pool on a loop device under the tier's temp dir and runs a short
// lifecycle through the built binary with `storage_pool` set to it. Pools the machine cannot do
// (no NFS or no device-mapper in the kernel) are probed first and the test skips with the exact
// command and error. Everything made here (pool, mount, volume group, loop device, image file) is
// removed in TearDown, also after a failure; stale ones of a run that died are removed in SetUp.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "e2e/e2e_fixture.hpp"
#include "e2e/support/e2e_shell.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing::e2e {
namespace {

namespace fs = std::filesystem;

bool has_filesystem(const std::string& type) {
  std::istringstream in{read_whole_file("/proc/filesystems")};
  for (std::string line; std::getline(in, line);) {
    if (line.substr(line.find_last_of(" \t") + 1) == type) return true;
  }
  return false;
}

bool has_misc_device(const std::string& name) {
  std::istringstream in{read_whole_file("/proc/misc")};
  for (std::string line; std::getline(in, line);) {
    if (line.size() > name.size() && line.substr(line.size() - name.size()) == name) return true;
  }
  return false;
}

std::string mount_source(const fs::path& dir) {  // the device mounted at `dir`, or ""
  std::istringstream in{read_whole_file("/proc/mounts")};
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields{line};
    std::string device, point;
    fields >> device >> point;
    if (point == dir.string()) return device;
  }
  return "";
}

std::string loop_backing_file(const std::string& device) {  // "" when detached
  return read_text("/sys/block/" + fs::path{device}.filename().string() + "/loop/backing_file");
}

// Runs `undo` when it goes out of scope (for the probes' own resources).
struct ScopeGuard {
  std::function<void()> undo;
  ~ScopeGuard() {
    if (undo) undo();
  }
};

// The volume `name` of pool `pool` (refreshed first), if there.
std::optional<virt::Volume> pool_volume(const std::string& pool, const std::string& name) {
  virt::Pool p{virStoragePoolLookupByName(&env().conn(), pool.c_str())};
  if (!p) throw std::runtime_error("pool " + pool + " is gone: " + last_libvirt_error());
  virStoragePoolRefresh(p.get(), 0);
  virt::Volume v{virStorageVolLookupByName(p.get(), name.c_str())};
  virResetLastError();
  if (!v) return std::nullopt;
  return v;
}

class PoolTypesTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped()) return;
    remove_stale_storage();
  }

  // The test's domains and volumes first (in every active pool, so also in ours), then the pool,
  // mount, volume group, loop device and files, newest first.
  void TearDown() override {
    E2eTest::TearDown();
    while (!m_undo.empty()) {
      auto [what, undo] = std::move(m_undo.back());
      m_undo.pop_back();
      try {
        undo();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cleanup: " << what << ": " << e.what();
      }
    }
  }

  void on_teardown(const std::string& what, std::function<void()> undo) {
    m_undo.emplace_back(what, std::move(undo));
  }

  // Rewrites the test's CPI config to use `pool` (store_dir only matters for a missing pool).
  void use_pool(const std::string& pool, const fs::path& dir) {
    auto config = nlohmann::json::parse(read_whole_file(m_config.string()));
    config["libvirt"]["storage_pool"] = pool;
    config["libvirt"]["store_dir"] = dir.string();
    std::ofstream{m_config, std::ios::trunc} << config.dump(2);
  }

  // A sparse file of `mib` MiB under the tier's root, removed in TearDown.
  fs::path sparse_file(const std::string& name, std::uint64_t mib) {
    const fs::path file = env().root() / (m_prefix + name);
    { std::ofstream{file, std::ios::binary}; }
    on_teardown("removing " + file.string(), [file] { fs::remove(file); });
    fs::resize_file(file, mib * k_mib);
    return file;
  }

  // A free loop device on `file` (losetup --find --show), detached in TearDown.
  std::string attach_loop(const fs::path& file) {
    const Shell attach = sh("losetup --find --show " + file.string());
    if (!attach.ok()) throw std::runtime_error(attach.failure());
    const std::string device = attach.out;
    on_teardown("detaching " + device, [device, file] {
      if (loop_backing_file(device) != file.string()) return;  // already gone
      const Shell detach = sh("losetup -d " + device);
      if (!detach.ok()) throw std::runtime_error(detach.failure());
    });
    return device;
  }

  // Defines, builds and starts a pool from `xml`; TearDown destroys it (libvirt unmounts an fs
  // pool, deactivates a volume group), runs `remove_extra` (e.g. the VG) and undefines it.
  void make_pool(const std::string& name, const std::string& xml,
                 std::function<void()> remove_extra = nullptr) {
    virt::Pool pool{virStoragePoolDefineXML(&env().conn(), xml.c_str(), 0)};
    ASSERT_TRUE(pool) << "defining pool " << name << ": " << last_libvirt_error() << "\n" << xml;
    on_teardown("removing pool " + name, [name, remove_extra] {
      virt::Pool p{virStoragePoolLookupByName(&env().conn(), name.c_str())};
      if (!p) return;
      std::string errors;
      if (virStoragePoolIsActive(p.get()) == 1 && virStoragePoolDestroy(p.get()) != 0) {
        errors += "destroy: " + last_libvirt_error() + "; ";
      }
      if (remove_extra) remove_extra();
      if (virStoragePoolUndefine(p.get()) != 0) errors += "undefine: " + last_libvirt_error();
      if (!errors.empty()) throw std::runtime_error(errors);
    });
    ASSERT_EQ(virStoragePoolBuild(pool.get(), 0), 0)
        << "building " << name << ": " << last_libvirt_error();
    ASSERT_EQ(virStoragePoolCreate(pool.get(), 0), 0)
        << "starting " << name << ": " << last_libvirt_error();
  }

  // What the test and the CPI expect of the root disk in a pool.
  struct PoolKind {
    std::string pool;      // libvirt pool name
    std::string type;      // dir | fs | netfs | logical
    fs::path target;       // every volume path lies under it
    bool overlays = true;  // root disk: qcow2 overlay (backingStore) or full copy
  };

  // create_stemcell, create_vm (the guest boots and reports), create_disk + attach_disk (the
  // guest sees it), detach_disk, delete_vm, delete_disk, delete_stemcell, with every volume
  // checked to live in `kind.pool` and nowhere else.
  void run_lifecycle(const PoolKind& kind);

  // The volume `name` in the test's pool: it must be there (and not in the tier's dir pool).
  void expect_in_pool(const PoolKind& kind, const std::string& name) {
    auto volume = pool_volume(kind.pool, name);
    ASSERT_TRUE(volume.has_value())
        << "no volume " << name << " in " << kind.type << " pool " << kind.pool;
    virt::OwnedCString path{virStorageVolGetPath(volume->get())};
    ASSERT_TRUE(path) << last_libvirt_error();
    EXPECT_TRUE(starts_with(path.get(), kind.target.string() + "/"))
        << name << " is at " << path.get() << ", not under the pool's target " << kind.target;
    EXPECT_FALSE(find_volume(name).has_value()) << name << " is in the tier's dir pool too";
  }

  std::vector<std::string> prefixed_volumes(const std::string& pool) {
    std::vector<std::string> out;
    virt::Pool p{virStoragePoolLookupByName(&env().conn(), pool.c_str())};
    if (!p) throw std::runtime_error("pool " + pool + " is gone: " + last_libvirt_error());
    virStoragePoolRefresh(p.get(), 0);
    for (auto& v : all_volumes(*p)) {
      const std::string name = virStorageVolGetName(v.get());
      if (starts_with(name, m_prefix)) out.push_back(name);
    }
    return out;
  }

  // Why the kernel cannot do a `logical` pool ("" when it can): vgcreate on a loop device and
  // lvcreate in that group, all removed again before it returns.
  std::string logical_unavailable();
  // Why this machine cannot serve and mount NFS for a `netfs` pool ("" when it can).
  std::string netfs_unavailable();

 private:
  // Mounts, loop devices and volume groups of earlier runs that died (under the host lock no
  // other run is alive, so whatever carries the tier's name root is stale).
  void remove_stale_storage();

  std::vector<std::pair<std::string, std::function<void()>>> m_undo;
};

void PoolTypesTest::remove_stale_storage() {
  const std::string root = env().root().string() + "/";
  const std::string tmp = env().root().parent_path().string() + "/" + k_name_root;
  std::istringstream mounts{read_whole_file("/proc/mounts")};
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields{line};
    std::string device, point;
    fields >> device >> point;
    if (starts_with(point, tmp) && !starts_with(point, root)) {
      const Shell umount = sh("umount -l " + point);
      std::printf("[e2e] stale run: unmounted %s%s\n", point.c_str(),
                  umount.ok() ? "" : (": " + umount.failure()).c_str());
    }
  }
  for (const auto& entry : fs::directory_iterator("/sys/block")) {
    const std::string dev = entry.path().filename().string();
    if (!starts_with(dev, "loop")) continue;
    const std::string backing = loop_backing_file("/dev/" + dev);
    if (starts_with(backing, tmp) && !starts_with(backing, root)) {
      const bool lvm = backing.find("lvm") != std::string::npos;  // lvm.img, lvm-probe.img
      if (lvm && installed("pvs")) {  // the volume group of that run on it goes first
        const Shell vg = sh("pvs --noheadings -o vg_name /dev/" + dev + " 2>/dev/null");
        std::string name = vg.out;
        name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
        if (vg.ok() && starts_with(name, k_name_root)) sh("vgremove -f " + name);
        sh("pvremove -y /dev/" + dev);
      }
      const Shell detach = sh("losetup -d /dev/" + dev);
      std::printf("[e2e] stale run: detached /dev/%s (%s)%s\n", dev.c_str(), backing.c_str(),
                  detach.ok() ? "" : (": " + detach.failure()).c_str());
    }
  }
  std::fflush(stdout);
}

void PoolTypesTest::run_lifecycle(const PoolKind& kind) {
  use_pool(kind.pool, kind.target);
  const nlohmann::json vm_context{{"stemcell", {{"api_version", 2}}}};

  // create_stemcell: the qcow2 test stemcell, into the test's pool
  const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
  const auto props = nlohmann::json::parse(
      read_whole_file((env().stemcell_dir() / "qcow2" / "cloud_properties.json").string()));
  const std::string stemcell = cpi("create_stemcell", {image, props});
  phase("create_stemcell (" + kind.type + " pool)", last_call_seconds());
  ASSERT_TRUE(std::regex_match(stemcell, std::regex{"sc-[0-9a-f-]{36}"})) << stemcell;
  ASSERT_NO_FATAL_FAILURE(expect_in_pool(kind, volume_name(stemcell)));
  auto stemcell_volume = pool_volume(kind.pool, volume_name(stemcell));
  ASSERT_TRUE(stemcell_volume.has_value());
  const virt::OwnedCString stemcell_path{virStorageVolGetPath(stemcell_volume->get())};
  ASSERT_TRUE(stemcell_path) << last_libvirt_error();

  // create_vm: boots from a root disk in the pool
  const nlohmann::json networks{{"private",
                                 {{"type", "manual"},
                                  {"ip", "10.244.0.10"},
                                  {"netmask", "255.255.255.0"},
                                  {"gateway", "10.244.0.1"},
                                  {"default", {"dns", "gateway"}},
                                  {"cloud_properties", {{"name", env().network_name()}}}}}};
  const nlohmann::json vm_props{{"cpu", 1}, {"ram", 256}, {"ephemeral_disk", 64}};
  std::string vm;
  {
    Ipv6Guard quiet;  // the tap is made while the domain starts
    const auto created = cpi("create_vm",
                             {"agent-" + random_hex(8), stemcell, vm_props, networks,
                              nlohmann::json::array(), nlohmann::json::object()},
                             2, vm_context);
    ASSERT_TRUE(created.is_array() && created.size() == 2) << created;
    vm = created.at(0).get<std::string>();
  }
  const auto vm_created = Clock::now();
  phase("create_vm (" + kind.type + " pool)", last_call_seconds());
  ASSERT_TRUE(domain_active(vm));
  expect_silent_taps(vm);
  for (const char* own : {"-root", "-ephemeral", "-config"}) {
    ASSERT_NO_FATAL_FAILURE(expect_in_pool(kind, volume_name(vm) + own)) << own;
  }
  // Every disk of the domain is a volume of the test's pool.
  for (const auto& pool : xml_values(vm, "/domain/devices/disk/source/@pool")) {
    EXPECT_EQ(pool, kind.pool);
  }

  // The root disk: a qcow2 overlay on the stemcell volume, or a full copy without backing.
  auto root = pool_volume(kind.pool, volume_name(vm) + "-root");
  ASSERT_TRUE(root.has_value());
  const virt::OwnedCString root_text{virStorageVolGetXMLDesc(root->get(), 0)};
  ASSERT_TRUE(root_text) << last_libvirt_error();
  pugi::xml_document root_xml;
  ASSERT_TRUE(root_xml.load_string(root_text.get()));
  const auto backing = root_xml.select_node("/volume/backingStore/path").node();
  if (kind.overlays) {
    EXPECT_STREQ(root_xml.select_node("/volume/target/format/@type").attribute().value(), "qcow2")
        << root_text.get();
    ASSERT_TRUE(backing) << "the root disk has no backingStore:\n" << root_text.get();
    EXPECT_EQ(std::string{backing.child_value()}, std::string{stemcell_path.get()})
        << "the root overlay is backed by the stemcell volume";
    EXPECT_STREQ(root_xml.select_node("/volume/backingStore/format/@type").attribute().value(),
                 "qcow2");
  } else {
    EXPECT_FALSE(backing) << "a " << kind.type << " pool has no backing stores: full copy\n"
                          << root_text.get();
  }

  // The guest boots from it and reports.
  const std::string log = console_log(vm);
  const GuestBoot first = wait_report(log, 0);
  phase("boot to first guest report (" + kind.type + " pool)", since(vm_created));
  EXPECT_NE(first.configdrive.find("label=config-2"), std::string::npos) << first.configdrive;
  bool has_vda = false;
  for (const auto& b : first.blocks) has_vda = has_vda || b.name == "vda";
  EXPECT_TRUE(has_vda) << ::testing::PrintToString(first.lines);

  // A persistent disk in the pool, attached while the guest runs, then detached.
  const std::string disk = cpi("create_disk", {32, nlohmann::json::object(), vm});
  ASSERT_TRUE(std::regex_match(disk, std::regex{"disk-[0-9a-f]{15}"})) << disk;
  ASSERT_NO_FATAL_FAILURE(expect_in_pool(kind, volume_name(disk)));
  const int before_attach = last_tick(log);
  const auto attach_start = Clock::now();
  const auto hint = cpi("attach_disk", {vm, disk}, 2, vm_context);
  EXPECT_EQ(hint, (nlohmann::json{{"path", "/dev/disk/by-id/virtio-" + disk}}));
  wait_tick(log, before_attach, [&](const GuestTick& t) { return tick_has(t, disk, 32 * k_mib); });
  phase("attach_disk until the guest sees it (" + kind.type + " pool)", since(attach_start));
  EXPECT_EQ(cpi("get_disks", {vm}), nlohmann::json::array({disk}));
  const int before_detach = last_tick(log);
  EXPECT_TRUE(cpi("detach_disk", {vm, disk}, 2, vm_context).is_null());
  wait_tick(log, before_detach, [&](const GuestTick& t) { return !tick_has(t, disk); });
  EXPECT_EQ(cpi("get_disks", {vm}), nlohmann::json::array());

  // delete_vm takes the VM's own volumes; the disk and stemcell stay.
  EXPECT_TRUE(cpi("delete_vm", {vm}, 2, vm_context).is_null());
  EXPECT_FALSE(find_domain(vm).has_value());
  for (const char* own : {"-root", "-ephemeral", "-config"}) {
    EXPECT_FALSE(pool_volume(kind.pool, volume_name(vm) + own).has_value()) << own;
  }
  EXPECT_TRUE(pool_volume(kind.pool, volume_name(disk)).has_value());
  EXPECT_TRUE(pool_volume(kind.pool, volume_name(stemcell)).has_value());

  EXPECT_TRUE(cpi("delete_disk", {disk}).is_null());
  EXPECT_TRUE(cpi("delete_stemcell", {stemcell}).is_null());
  EXPECT_EQ(prefixed_volumes(kind.pool), std::vector<std::string>{})
      << "nothing of the test may be left in the pool";
  EXPECT_EQ(leftovers(), std::vector<std::string>{}) << "nor in the tier's dir pool";
}

std::string PoolTypesTest::logical_unavailable() {
  if (!installed("vgcreate") || !installed("lvcreate")) {
    return "lvm2 is not installed (no vgcreate/lvcreate; apt-get install -y lvm2)";
  }
  // LVM creates /dev/mapper/control even when the kernel has no device-mapper: put it back.
  const bool had_mapper = fs::exists("/dev/mapper");
  const bool had_control = fs::exists("/dev/mapper/control");
  const bool dm_in_kernel = has_misc_device("device-mapper");
  ScopeGuard restore_dev{[&] {
    std::error_code ec;
    if (!dm_in_kernel && !had_control) fs::remove("/dev/mapper/control", ec);
    if (!had_mapper && fs::is_empty("/dev/mapper", ec)) fs::remove("/dev/mapper", ec);
  }};

  const fs::path file = env().root() / (m_prefix + "lvm-probe.img");
  { std::ofstream{file, std::ios::binary}; }
  ScopeGuard remove_file{[&] { fs::remove(file); }};
  fs::resize_file(file, 64 * k_mib);
  const Shell attach = sh("losetup --find --show " + file.string());
  if (!attach.ok()) return "cannot attach a loop device: " + attach.failure();
  const std::string device = attach.out;
  ScopeGuard detach{[&] { sh("losetup -d " + device); }};

  const std::string vg = m_prefix + "probevg";
  const Shell create_vg = sh("vgcreate " + vg + " " + device);
  ScopeGuard remove_vg{[&] {
    sh("vgremove -f " + vg);
    sh("pvremove -y " + device);
  }};
  if (!create_vg.ok()) return "LVM does not work here: " + create_vg.failure();
  const Shell create_lv = sh("lvcreate -L 4M -n probe " + vg);
  if (!create_lv.ok()) {
    return std::string{"the kernel has no device-mapper ("} +
           (dm_in_kernel ? "/proc/misc lists device-mapper" : "/proc/misc lists no device-mapper") +
           (had_control ? "" : ", no /dev/mapper/control") +
           "), so no logical volume can be made: " + create_vg.command + " worked, then " +
           create_lv.failure();
  }
  return "";
}

std::string PoolTypesTest::netfs_unavailable() {
  std::vector<std::string> why;
  if (!has_filesystem("nfs")) {
    const Shell load = sh("modprobe nfs");
    if (!load.ok() || !has_filesystem("nfs")) {
      why.push_back(
          "the kernel has no NFS client, so libvirt cannot mount a netfs pool: "
          "/proc/filesystems lists no 'nfs' and " +
          (load.ok() ? "`modprobe nfs` did not add it" : load.failure()));
    }
  }
  if (!installed("rpc.nfsd") || !installed("exportfs")) {
    why.push_back(
        "no NFS server to test against: rpc.nfsd is not installed "
        "(apt-get install -y nfs-kernel-server)");
  } else if (!has_filesystem("nfsd")) {
    // Without nfsd in the kernel rpc.nfsd cannot start a thing: its error says why.
    const Shell load = sh("modprobe nfsd");
    if (!load.ok() || !has_filesystem("nfsd")) {
      const Shell nfsd = sh("rpc.nfsd 1");
      why.push_back("the kernel has no NFS server: /proc/filesystems lists no 'nfsd', " +
                    (load.ok() ? "`modprobe nfsd` did not add it" : load.failure()) + ", and " +
                    nfsd.failure());
    }
  }
  std::string text;
  for (const auto& w : why) text += (text.empty() ? "" : "; ") + w;
  return text;
}

// An ext4 file system on a loop device, mounted by libvirt at the pool's target.
TEST_F(PoolTypesTest, FsPoolOnLoopDeviceRunsTheLifecycle) {
  const auto start = Clock::now();
  const fs::path image = sparse_file("fs.img", 512);
  const Shell mkfs = sh("mkfs.ext4 -q " + image.string());
  ASSERT_TRUE(mkfs.ok()) << mkfs.failure();
  const std::string device = attach_loop(image);
  const fs::path target = env().root() / (m_prefix + "fs-mnt");
  on_teardown("removing " + target.string(), [target] {
    if (!mount_source(target).empty()) {
      const Shell umount = sh("umount " + target.string());  // libvirt did not unmount it
      if (!umount.ok()) throw std::runtime_error(umount.failure());
    }
    std::error_code ec;
    fs::remove(target, ec);
  });
  const std::string pool = m_prefix + "fs";
  ASSERT_NO_FATAL_FAILURE(make_pool(pool, "<pool type='fs'><name>" + pool +
                                              "</name><source><device path='" + device +
                                              "'/><format type='ext4'/></source><target><path>" +
                                              target.string() + "</path></target></pool>"));
  ASSERT_EQ(mount_source(target), device) << "libvirt mounted the pool's device at its target";
  phase("fs pool: mkfs, loop device, build and start", since(start));

  run_lifecycle({pool, "fs", target, true});
}

// A volume group on a loop device. The kernel needs device-mapper for logical volumes.
TEST_F(PoolTypesTest, LogicalPoolRunsTheLifecycleWithFullCopies) {
  if (const std::string why = logical_unavailable(); !why.empty()) {
    GTEST_SKIP() << "logical pool: " << why;
  }
  const fs::path image = sparse_file("lvm.img", 512);
  const std::string device = attach_loop(image);
  const std::string pool = m_prefix + "lvm";
  const std::string vg = m_prefix + "vg";
  const fs::path target = "/dev/" + vg;
  // destroy deactivates the group; then libvirt's delete runs vgremove + pvremove
  ASSERT_NO_FATAL_FAILURE(
      make_pool(pool,
                "<pool type='logical'><name>" + pool + "</name><source><device path='" + device +
                    "'/><name>" + vg + "</name><format type='lvm2'/></source><target><path>" +
                    target.string() + "</path></target></pool>",
                [pool, vg, device] {
                  virt::Pool p{virStoragePoolLookupByName(&env().conn(), pool.c_str())};
                  if (p && virStoragePoolDelete(p.get(), 0) != 0) {
                    virResetLastError();
                    sh("vgremove -f " + vg);
                    sh("pvremove -y " + device);
                  }
                }));
  run_lifecycle({pool, "logical", target, false});
}

// An NFS export of a local directory, mounted by libvirt over loopback.
TEST_F(PoolTypesTest, NetfsPoolRunsTheLifecycle) {
  if (const std::string why = netfs_unavailable(); !why.empty()) {
    GTEST_SKIP() << "netfs pool: " << why;
  }
  GTEST_SKIP() << "netfs pool: this machine has an NFS client and server, but this test does not "
                  "yet run a loopback NFS server (rpcbind, exportfs, rpc.nfsd, rpc.mountd) to "
                  "define a netfs pool on";
}

}  // namespace
}  // namespace cpi::testing::e2e
