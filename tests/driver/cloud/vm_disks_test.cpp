// Persistent disks on VMs (src/driver/cloud/vm_disks.cpp): attach, detach, get_disks, the API v1
// config drive rewrite, and disks outliving their VM, against test:///default.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <set>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {
namespace {

class VmDisksTest : public DiskFixture {};

// --- attach / detach / get_disks

TEST_F(VmDisksTest, AttachReturnsHintBySerial) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  const auto hint = cloud().attach_disk(vm, disk, 2);
  EXPECT_EQ(hint, nlohmann::json({{"path", "/dev/disk/by-id/virtio-" + disk.value}}));
  EXPECT_EQ(count_serial(vm, disk.value), 1U);
}

TEST_F(VmDisksTest, AttachFiveDisksGivesDistinctSerialsAndTargets) {
  const auto vm = new_vm();
  std::set<std::string> wanted;
  for (int i = 0; i < 5; ++i) {
    const auto disk = new_disk(16);
    cloud().attach_disk(vm, disk, 2);
    wanted.insert(disk.value);
  }

  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));
  std::set<std::string> targets;
  std::size_t disks = 0;
  for (auto disk : doc.child("domain").child("devices").children("disk")) {
    targets.insert(disk.child("target").attribute("dev").value());
    ++disks;
  }
  EXPECT_EQ(disks, 8U) << "root, ephemeral, config drive and five persistent disks";
  EXPECT_EQ(targets.size(), disks) << "every disk needs its own target";
  for (const auto& cid : wanted) {
    const auto found = disks_with_serial(doc, cid);
    ASSERT_EQ(found.size(), 1U) << cid;
    EXPECT_STREQ(found.front().child("target").attribute("bus").value(), "virtio");
  }
  EXPECT_EQ(cids(cloud().get_disks(vm)), wanted);
}

TEST_F(VmDisksTest, AttachTwiceReturnsSameHintWithoutDuplicate) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  const auto first = cloud().attach_disk(vm, disk, 2);
  const auto second = cloud().attach_disk(vm, disk, 2);

  EXPECT_EQ(first, second);
  EXPECT_EQ(count_serial(vm, disk.value), 1U);
  EXPECT_EQ(cloud().get_disks(vm).size(), 1U);
}

TEST_F(VmDisksTest, AttachDiskOfAnotherVmFails) {
  const auto first = new_vm();
  const auto second = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(first, disk, 2);

  EXPECT_THROW(cloud().attach_disk(second, disk, 2), CloudError);
  EXPECT_EQ(count_serial(second, disk.value), 0U);
  EXPECT_EQ(count_serial(first, disk.value), 1U);
}

TEST_F(VmDisksTest, AttachMissingDiskThrowsDiskNotFound) {
  const auto vm = new_vm();
  EXPECT_THROW(cloud().attach_disk(vm, cloud::new_disk_cid(), 2), DiskNotFound);
}

TEST_F(VmDisksTest, AttachToMissingVmThrowsVmNotFound) {
  const auto disk = new_disk();
  EXPECT_THROW(cloud().attach_disk(cloud::new_vm_cid(), disk, 2), VmNotFound);
}

// A failure at any mutating step of attach_disk leaves the disk detached and attachable.
TEST_F(VmDisksTest, AttachFailureAtEveryStepLeavesDiskDetached) {
  const auto probe_vm = new_vm();
  const auto probe_disk = new_disk();
  const int steps = count_mutating_calls([&] { cloud().attach_disk(probe_vm, probe_disk, 2); });

  const auto vm = new_vm();
  for_each_failing_step(steps, [&](const Arm& arm) {
    const auto disk = new_disk();
    arm();
    EXPECT_THROW(cloud().attach_disk(vm, disk, 2), CloudError);
    fake().disarm();
    EXPECT_EQ(count_serial(vm, disk.value), 0U);
    EXPECT_TRUE(cloud().get_disks(vm).empty());
  });
}

TEST_F(VmDisksTest, DetachRemovesDiskFromDefinition) {
  const auto vm = new_vm();
  const auto kept = new_disk();
  const auto gone = new_disk();
  cloud().attach_disk(vm, kept, 2);
  cloud().attach_disk(vm, gone, 2);

  cloud().detach_disk(vm, gone, 2);

  EXPECT_EQ(count_serial(vm, gone.value), 0U);
  EXPECT_EQ(count_serial(vm, kept.value), 1U);
  EXPECT_EQ(cids(cloud().get_disks(vm)), std::set<std::string>{kept.value});
}

TEST_F(VmDisksTest, DetachedDiskCanBeDeleted) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  cloud().detach_disk(vm, disk, 2);

  EXPECT_NO_THROW(cloud().delete_disk(disk));
  EXPECT_FALSE(cloud().has_disk(disk));
}

TEST_F(VmDisksTest, DetachOfUnattachedDiskIsDiskNotAttached) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  EXPECT_THROW(cloud().detach_disk(vm, disk, 2), DiskNotAttached);
  EXPECT_TRUE(cloud().get_disks(vm).empty());
}

TEST_F(VmDisksTest, GetDisksOfNewVmIsEmpty) { EXPECT_TRUE(cloud().get_disks(new_vm()).empty()); }

TEST_F(VmDisksTest, AttachWithApiV1WritesHintIntoConfigDrive) {
  const auto vm = new_vm();
  const auto disk = new_disk();

  const auto hint = cloud().attach_disk(vm, disk, 1);

  const auto settings = user_data(vm);
  EXPECT_EQ(settings.at("disks").at("persistent").at(disk.value), hint);
  EXPECT_EQ(settings.at("agent_id"), "agent-1") << "the rest of the settings is kept";
  EXPECT_FALSE(fake().updates().empty()) << "the CD-ROM media should be swapped";
}

TEST_F(VmDisksTest, DetachWithApiV1RemovesHintFromConfigDrive) {
  const auto vm = new_vm();
  const auto kept = new_disk();
  const auto gone = new_disk();
  cloud().attach_disk(vm, kept, 1);
  cloud().attach_disk(vm, gone, 1);

  cloud().detach_disk(vm, gone, 1);

  const auto persistent = user_data(vm).at("disks").at("persistent");
  EXPECT_FALSE(persistent.contains(gone.value));
  EXPECT_TRUE(persistent.contains(kept.value));
}

// API v1: a failure at any mutating step of attach_disk leaves neither the device nor its hint
// in the settings (an agent would wait for that disk at its next boot).
TEST_F(VmDisksTest, AttachWithApiV1FailureAtEveryStepLeavesNoHint) {
  const auto probe_vm = new_vm();
  const auto probe_disk = new_disk();
  const int steps = count_mutating_calls([&] { cloud().attach_disk(probe_vm, probe_disk, 1); });

  const auto vm = new_vm();
  for_each_failing_step(steps, [&](const Arm& arm) {
    const auto disk = new_disk();
    arm();
    EXPECT_THROW(cloud().attach_disk(vm, disk, 1), CloudError);
    fake().disarm();
    EXPECT_EQ(count_serial(vm, disk.value), 0U);
    EXPECT_FALSE(user_data(vm).at("disks").at("persistent").contains(disk.value));
  });
}

// API v1: after a detach failed at any step, the director's retry ends with the disk gone from
// both the domain and the settings.
TEST_F(VmDisksTest, DetachWithApiV1RetryAfterFailureAtEveryStepCleansUp) {
  const auto probe_vm = new_vm();
  const auto probe_disk = new_disk();
  cloud().attach_disk(probe_vm, probe_disk, 1);
  const int steps = count_mutating_calls([&] { cloud().detach_disk(probe_vm, probe_disk, 1); });

  const auto vm = new_vm();
  for_each_failing_step(steps, [&](const Arm& arm) {
    const auto disk = new_disk();
    cloud().attach_disk(vm, disk, 1);
    arm();
    EXPECT_THROW(cloud().detach_disk(vm, disk, 1), CloudError);
    fake().disarm();

    try {  // DiskNotAttached when the failed call had already detached it
      cloud().detach_disk(vm, disk, 1);
    } catch (const DiskNotAttached&) {
    }

    EXPECT_EQ(count_serial(vm, disk.value), 0U);
    EXPECT_FALSE(user_data(vm).at("disks").at("persistent").contains(disk.value));
  });
}

TEST_F(VmDisksTest, AttachWithApiV2LeavesConfigDriveAlone) {
  const auto vm = new_vm();
  const auto before = config_drive(vm);
  cloud().attach_disk(vm, new_disk(), 2);
  EXPECT_TRUE(config_drive(vm) == before);
}

TEST_F(VmDisksTest, AttachedDiskSurvivesDomainRestart) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);

  {
    auto d = domain(vm.value);
    ASSERT_EQ(virDomainDestroy(d.get()), 0);
    ASSERT_EQ(virDomainCreate(d.get()), 0);
  }

  EXPECT_EQ(count_serial(vm, disk.value, false), 1U);
  EXPECT_EQ(cids(cloud().get_disks(vm)), std::set<std::string>{disk.value});
}

TEST_F(VmDisksTest, DeleteVmKeepsDisksForANewVm) {
  const auto vm = new_vm();
  const auto first = new_disk();
  const auto second = new_disk();
  cloud().attach_disk(vm, first, 2);
  cloud().attach_disk(vm, second, 2);

  cloud().delete_vm(vm);

  EXPECT_TRUE(cloud().has_disk(first));
  EXPECT_TRUE(cloud().has_disk(second));
  const auto next = new_vm();
  cloud().attach_disk(next, first, 2);
  cloud().attach_disk(next, second, 2);
  EXPECT_EQ(cids(cloud().get_disks(next)), (std::set<std::string>{first.value, second.value}));
}

}  // namespace
}  // namespace cpi::testing
