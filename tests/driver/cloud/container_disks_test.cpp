// Persistent disks of containers (hypervisor lxc; src/driver/cloud/containers.cpp, attachment.cpp) on
// test:///default. A container mounts a disk as a <filesystem> (its volume path, or the short
// link stemcell::lxc_source_path() makes for a long one), never as a <disk>: those definitions
// hold the disk as surely as a VM's <disk> does. The test driver runs no containers, so the
// containers here are test-driver domains defined as create_vm defines one (our metadata), with
// the <filesystem> devices the lxc flavour writes.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/fs_image.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {
namespace {

class ContainerDisksTest : public DiskFixture {
 protected:
  void SetUp() override {
    DiskFixture::SetUp();
    m_lxc_config = config();
    m_lxc_config.libvirt.hypervisor = "lxc";
    m_lxc = new_cloud(m_lxc_config);
  }
  void TearDown() override {
    m_lxc.reset();
    DiskFixture::TearDown();
  }

  cloud::LibvirtCloud& lxc() { return *m_lxc; }

  // The <filesystem> the lxc flavour writes for a persistent disk mounted from `source`.
  static std::string filesystem(const std::string& source, const std::string& dir) {
    return "<filesystem type='file' accessmode='passthrough'><driver type='loop' format='raw'/>"
           "<source file='" + source + "'/><target dir='" + dir + "'/></filesystem>";
  }
  static std::string mount_of(const cloud::DiskCid& disk) {
    return std::string{stemcell::k_disks_dir} + "/" + disk.value;
  }

  // A container of ours (create_vm's metadata) with `devices`, running when `start`.
  cloud::VmCid container(const std::string& devices = "", bool start = false) {
    const auto vm = cloud::new_vm_cid();
    const std::string xml = "<domain type='test'><name>" + cloud().object_name(vm.value) +
                            "</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
                            "<devices>" + devices + "</devices></domain>";
    virt::Domain d{virDomainDefineXML(&conn(), xml.c_str())};
    if (!d) throw std::runtime_error("the test driver refused the container XML: " + xml);
    fake().set_domain_metadata(*d, std::string{"<vm xmlns='"} + xml::k_metadata_ns +
                                       "'><facts>{}</facts></vm>",
                               xml::k_metadata_key, xml::k_metadata_ns);
    if (start && virDomainCreate(d.get()) != 0) throw std::runtime_error("cannot start " + xml);
    return vm;
  }

  // A disk as create_disk makes one for containers (an ext4 filesystem).
  cloud::DiskCid container_disk() { return lxc().create_disk(16, nullptr, std::nullopt); }

  std::size_t mounts(const cloud::VmCid& vm, const cloud::DiskCid& disk) {
    pugi::xml_document doc;
    doc.load_string(domain_xml(vm.value).c_str());
    std::size_t n = 0;
    for (auto fs : doc.child("domain").child("devices").children("filesystem")) {
      if (mount_of(disk) == fs.child("target").attribute("dir").value()) ++n;
    }
    return n;
  }

  int state(const cloud::VmCid& vm) {
    int s = 0;
    int reason = 0;
    EXPECT_EQ(virDomainGetState(domain(vm.value).get(), &s, &reason, 0), 0);
    return s;
  }

  void write_record(const cloud::DiskCid& disk, const nlohmann::json& record) {
    fake().store(volume_path(disk.value + ".meta"), record.dump());
  }

  config::Config m_lxc_config;

 private:
  std::unique_ptr<cloud::LibvirtCloud> m_lxc;
};

// delete_disk refuses while a container mounts the disk, by each way a container's definition
// names it; and the calls that reconcile the record (snapshot_disk) keep its attachment.
TEST_F(ContainerDisksTest, AContainerMountingTheDiskHoldsIt) {
  const auto disk = new_disk();
  cloud().set_disk_metadata(disk, nlohmann::json::object());  // its .meta, rewritten below
  const std::string path = volume_path(disk.value);
  struct Case {
    const char* what;
    std::string devices;
  };
  const Case cases[] = {
      {"the volume's path", filesystem(path, mount_of(disk))},
      {"the short link to the volume", filesystem(stemcell::lxc_link_path(path), "/data")},
      {"the disk's mount point", filesystem("/elsewhere/image", mount_of(disk))},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const auto vm = container(c.devices, true);
    write_record(disk, {{"attached_to", vm.value}});
    EXPECT_THROW(lxc().delete_disk(disk), CloudError);
    EXPECT_THROW(cloud().delete_disk(disk), CloudError);
    ASSERT_TRUE(volume_exists(disk.value));
    const auto snap = lxc().snapshot_disk(disk, nullptr);
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value)
        << "the record lost the container's attachment";
    lxc().delete_snapshot(snap);
    auto d = domain(vm.value);
    virDomainDestroy(d.get());
    ASSERT_EQ(virDomainUndefine(d.get()), 0);
  }
  EXPECT_NO_THROW(lxc().delete_disk(disk));
  EXPECT_FALSE(volume_exists(disk.value));
}

TEST_F(ContainerDisksTest, AttachAndDetachKeepTheRecordAndDetachOfANotAttachedDiskIsDiskNotAttached) {
  const auto vm = container();
  const auto other = container();
  const auto disk = container_disk();
  EXPECT_THROW(lxc().detach_disk(vm, disk, 2), DiskNotAttached);

  EXPECT_EQ(lxc().attach_disk(vm, disk, 2), mount_of(disk));
  EXPECT_EQ(mounts(vm, disk), 1U);
  EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);
  EXPECT_FALSE(meta_of(disk.value).contains("attaching"));
  EXPECT_EQ(lxc().attach_disk(vm, disk, 2), mount_of(disk)) << "attach twice: the same answer";
  EXPECT_EQ(mounts(vm, disk), 1U);

  try {
    lxc().detach_disk(other, disk, 2);
    FAIL() << "no error";
  } catch (const DiskNotAttached& e) {
    EXPECT_STREQ(e.type(), "Bosh::Clouds::DiskNotAttached");
  }
  EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);

  // The record lost: the other container is still refused, by the definitions.
  write_record(disk, nlohmann::json::object());
  EXPECT_THROW(lxc().attach_disk(other, disk, 2), CloudError);
  EXPECT_EQ(mounts(other, disk), 0U);

  EXPECT_NO_THROW(lxc().detach_disk(vm, disk, 2));
  EXPECT_EQ(mounts(vm, disk), 0U);
  EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), "");
  EXPECT_THROW(lxc().detach_disk(vm, disk, 2), DiskNotAttached);
  EXPECT_NO_THROW(lxc().delete_disk(disk));
}

// A "kill" at every step of a container's attach: the next calls see what the definitions say.
TEST_F(ContainerDisksTest, AttachKilledAtEveryStepLosesNothing) {
  const auto probe_vm = container();
  const auto probe_disk = container_disk();
  const int steps = count_mutating_calls([&] { lxc().attach_disk(probe_vm, probe_disk, 2); });
  for_each_failing_step(steps, [&](const Arm& arm) {
    const auto vm = container();
    const auto other = container();
    const auto disk = container_disk();
    arm();
    EXPECT_THROW(lxc().attach_disk(vm, disk, 2), CloudError);
    fake().disarm();
    if (mounts(vm, disk) > 0) {
      EXPECT_THROW(lxc().delete_disk(disk), CloudError);
      EXPECT_THROW(lxc().attach_disk(other, disk, 2), CloudError) << "one disk, one container";
    }
    EXPECT_EQ(mounts(other, disk), 0U);
    EXPECT_NO_THROW(lxc().attach_disk(vm, disk, 2));
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);
    EXPECT_FALSE(meta_of(disk.value).contains("attaching"));
    EXPECT_NO_THROW(lxc().detach_disk(vm, disk, 2));
    EXPECT_NO_THROW(lxc().delete_disk(disk));
  }, Failure::kill);
}

// Containers cannot copy a disk while they run: snapshot_disk pauses the container for the copy.
// Killed at any step, a later call on the container (require_domain) or `cpi cleanup` resumes
// it and removes the partial snapshot; none is left paused.
TEST_F(ContainerDisksTest, SnapshotKilledAtEveryStepNeverLeavesTheContainerPaused) {
  const auto vm = container("", false);
  const auto disk = container_disk();
  lxc().attach_disk(vm, disk, 2);
  ASSERT_EQ(virDomainCreate(domain(vm.value).get()), 0);
  const auto before = volume_names();
  const int suspends = fake().suspends();
  cloud::SnapshotCid probe;
  const int steps = count_mutating_calls([&] { probe = lxc().snapshot_disk(disk, nullptr); });
  lxc().delete_snapshot(probe);
  ASSERT_GT(fake().suspends(), suspends) << "the container was not paused: nothing to test";
  ASSERT_EQ(volume_names(), before);
  for (const std::string by : {"vm", "cleanup"}) {
    SCOPED_TRACE("finished by " + by);
    for_each_failing_step(steps, [&] {
      EXPECT_THROW(lxc().snapshot_disk(disk, nullptr), CloudError);
      fake().disarm();
      if (by == "vm") {
        EXPECT_EQ(lxc().get_disks(vm).size(), 1U);
      } else {
        const auto result = tools::cleanup_orphans(
            fake(), m_lxc_config, {static_cast<std::int64_t>(std::time(nullptr)), 0, 3600}, false);
        EXPECT_TRUE(result.failed.empty()) << result.text();
      }
      EXPECT_EQ(state(vm), VIR_DOMAIN_RUNNING) << "left paused";
      for (const auto& name : volume_names()) {  // a complete copy only the disk's intent names
        if (std::find(before.begin(), before.end(), name) != before.end()) continue;  // may stay
        const bool meta = name.size() > 5 && name.compare(name.size() - 5, 5, ".meta") == 0;
        const std::string snap = meta ? name.substr(0, name.size() - 5) : name;
        EXPECT_TRUE(by == "vm" && volume_exists(snap + ".meta")) << "a partial snapshot: " << name;
      }
      EXPECT_FALSE(metadata_facts(vm).contains("snapshotting"));
      lxc().delete_snapshot(lxc().snapshot_disk(disk, nullptr));  // clears a disk-only intent
      EXPECT_FALSE(meta_of(disk.value).contains("snapshotting"));
      EXPECT_EQ(volume_names(), before);
      EXPECT_EQ(state(vm), VIR_DOMAIN_RUNNING);
    }, Failure::kill);
  }
}

}  // namespace
}  // namespace cpi::testing
