// The promise that a persistent disk is never lost (src/cloud/attachment.cpp, vm_disks.cpp,
// disks.cpp): libvirt's definitions are the truth about attachment whatever the record says,
// a "kill" at any step leaves a state the next calls reconcile, a record write cut off half-way
// still reads, and detach says done only when the running domain released the disk.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <memory>
#include <optional>
#include <string>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {
namespace {

class DiskSafetyTest : public DiskFixture {
 protected:
  // The disk in the live definition as the fake emulates it (hot-plugs included).
  std::size_t live_count(const cloud::VmCid& vm, const std::string& serial) {
    auto d = domain(cloud().object_name(vm.value));
    pugi::xml_document doc;
    doc.load_string(fake().domain_xml(*d, false).c_str());
    return disks_with_serial(doc, serial).size();
  }

  void write_record(const cloud::DiskCid& disk, const std::string& text) {
    fake().store(volume_path(disk.value + ".meta"), text);
  }

  // Mutating libvirt calls `call` makes; fails the test when 0 (a step loop would not test).
  template <typename F>
  int count_steps(F&& call) {
    fake().reset_calls();
    call();
    const int steps = fake().mutating_calls();
    EXPECT_GT(steps, 0);
    return steps;
  }

  int virt_state(const cloud::VmCid& vm) {
    int state = 0;
    int reason = 0;
    EXPECT_EQ(virDomainGetState(domain(cloud().object_name(vm.value)).get(), &state, &reason, 0), 0);
    return state;
  }

  std::unique_ptr<cloud::LibvirtCloud> quick_detach_cloud() {
    auto c = config();
    c.libvirt.detach_timeout = 1;
    return new_cloud(c);
  }
};

// --- the record is an index, never the only evidence

TEST_F(DiskSafetyTest, DeleteDiskRefusesWhenTheRecordWasDeletedByHand) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  {
    auto meta = volume(disk.value + ".meta");
    ASSERT_EQ(virStorageVolDelete(meta.get(), 0), 0);
  }
  EXPECT_THROW(cloud().delete_disk(disk), CloudError);
  EXPECT_TRUE(volume_exists(disk.value));
  EXPECT_EQ(count_serial(vm, disk.value), 1U);
}

TEST_F(DiskSafetyTest, DeleteDiskRefusesWhenTheRecordIsStale) {
  const auto vm = new_vm();
  const auto other = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  for (const std::string& stale :
       {std::string{"{}"}, "{\"attached_to\":\"" + other.value + "\"}", std::string{"garbage"}}) {
    SCOPED_TRACE(stale);
    write_record(disk, stale);
    try {
      cloud().delete_disk(disk);
      ADD_FAILURE() << "delete_disk deleted a disk a domain holds";
    } catch (const CloudError& e) {
      EXPECT_NE(std::string{e.what()}.find(cloud().object_name(vm.value)), std::string::npos)
          << e.what();
    }
    EXPECT_TRUE(volume_exists(disk.value));
  }
}

// A record write cut off at any byte (a crash in the middle of write_meta) still reads as the
// record before or after it, never as "not attached".
TEST_F(DiskSafetyTest, TornRecordWriteStillReadsAsAttached) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  for (std::size_t keep : {std::size_t{0}, std::size_t{1}, std::size_t{10}, std::size_t{40},
                           std::size_t{60}, std::size_t{70}, std::size_t{80}, std::size_t{100},
                           std::size_t{32768}, std::size_t{32800}, std::size_t{65535}}) {
    SCOPED_TRACE("upload cut after " + std::to_string(keep) + " bytes");
    // A long record, then a short one cut off: its tail would be the long one's.
    cloud().set_disk_metadata(disk, {{"long", std::string(300, 'x')}});
    fake().tear_next_upload(keep);
    EXPECT_THROW(cloud().set_disk_metadata(disk, {{"k", 1}}), CloudError);
    fake().disarm();
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value) << meta_of(disk.value);
  }
}

// --- kills: a failure at a step and no clean-up after it

TEST_F(DiskSafetyTest, AttachKilledAtEveryStepLosesNothing) {
  const auto probe_vm = new_vm();
  const auto probe_disk = new_disk();
  const int steps = count_steps([&] { cloud().attach_disk(probe_vm, probe_disk, 1); });
  for (int n = 1; n <= steps; ++n) {
    SCOPED_TRACE("killed at mutating step " + std::to_string(n));
    const auto vm = new_vm();
    const auto other = new_vm();
    const auto disk = new_disk();
    fake().kill_at(n);
    EXPECT_THROW(cloud().attach_disk(vm, disk, 1), CloudError);
    EXPECT_TRUE(fake().injected());
    fake().disarm();
    const bool held = count_serial(vm, disk.value) + live_count(vm, disk.value) > 0;
    if (held) {
      EXPECT_THROW(cloud().delete_disk(disk), CloudError);
      EXPECT_THROW(cloud().attach_disk(other, disk, 2), CloudError) << "one disk, one vm";
      EXPECT_NO_THROW(cloud().detach_disk(vm, disk, 1));
    }
    EXPECT_EQ(count_serial(other, disk.value), 0U);
    // Retry as the director would: attach works, and so does the way back.
    EXPECT_NO_THROW(cloud().attach_disk(vm, disk, 1));
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);
    EXPECT_THROW(cloud().delete_disk(disk), CloudError);
    EXPECT_NO_THROW(cloud().detach_disk(vm, disk, 1));
    EXPECT_FALSE(user_data(vm).at("disks").at("persistent").contains(disk.value));
    EXPECT_NO_THROW(cloud().delete_disk(disk));
    EXPECT_FALSE(volume_exists(disk.value));
  }
}

TEST_F(DiskSafetyTest, DetachKilledAtEveryStepLosesNothing) {
  const auto probe_vm = new_vm();
  const auto probe_disk = new_disk();
  cloud().attach_disk(probe_vm, probe_disk, 1);
  const int detach_steps = count_steps([&] { cloud().detach_disk(probe_vm, probe_disk, 1); });
  for (int n = 1; n <= detach_steps; ++n) {
    SCOPED_TRACE("killed at mutating step " + std::to_string(n));
    const auto vm = new_vm();
    const auto disk = new_disk();
    cloud().attach_disk(vm, disk, 1);
    fake().kill_at(n);
    EXPECT_THROW(cloud().detach_disk(vm, disk, 1), CloudError);
    fake().disarm();
    if (count_serial(vm, disk.value) + live_count(vm, disk.value) > 0) {
      EXPECT_THROW(cloud().delete_disk(disk), CloudError);
      EXPECT_NO_THROW(cloud().detach_disk(vm, disk, 1));
    } else {
      EXPECT_THROW(cloud().detach_disk(vm, disk, 1), DiskNotAttached);
    }
    EXPECT_FALSE(user_data(vm).at("disks").at("persistent").contains(disk.value));
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), "");
    EXPECT_NO_THROW(cloud().delete_disk(disk));
  }
}

// set_disk_metadata failing (or killed) at any step never changes what the record says about
// the attachment.
TEST_F(DiskSafetyTest, SetMetadataKilledAtEveryStepKeepsTheAttachment) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  const int steps = count_steps([&] { cloud().set_disk_metadata(disk, {{"a", "b"}}); });
  for (int n = 1; n <= steps; ++n) {
    SCOPED_TRACE("killed at mutating step " + std::to_string(n));
    fake().kill_at(n);
    EXPECT_THROW(cloud().set_disk_metadata(disk, {{"step", n}}), CloudError);
    fake().disarm();
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);
    EXPECT_THROW(cloud().delete_disk(disk), CloudError);
  }
}

// An attach killed after the hot-plug left `attaching` and no `attached_to`: a second VM is
// refused, by the intent's VM definitions.
TEST_F(DiskSafetyTest, IntentOfAKilledAttachStopsASecondVm) {
  const auto vm = new_vm();
  const auto other = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  write_record(disk, "{\"attaching\":\"" + vm.value + "\"}");
  EXPECT_THROW(cloud().attach_disk(other, disk, 2), CloudError);
  EXPECT_EQ(count_serial(other, disk.value), 0U);
  EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value) << "reconciled";
}

// --- detach waits for the guest

TEST_F(DiskSafetyTest, DetachFromAGuestThatIgnoresTheUnplugIsRetriable) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  auto quick = quick_detach_cloud();
  quick->attach_disk(vm, disk, 2);
  ASSERT_EQ(live_count(vm, disk.value), 1U);
  fake().ignore_unplug(true);
  try {
    quick->detach_disk(vm, disk, 2);
    FAIL() << "detach_disk succeeded while the running domain still holds the disk";
  } catch (const CloudError& e) {
    EXPECT_TRUE(e.ok_to_retry());
    EXPECT_NE(std::string{e.what()}.find("did not release"), std::string::npos) << e.what();
  }
  EXPECT_EQ(live_count(vm, disk.value), 1U);
  EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value) << "still recorded";
  EXPECT_THROW(quick->delete_disk(disk), CloudError);
  EXPECT_TRUE(volume_exists(disk.value));

  fake().ignore_unplug(false);  // the guest comes round: the retry finishes the detach
  EXPECT_NO_THROW(quick->detach_disk(vm, disk, 2));
  EXPECT_EQ(live_count(vm, disk.value), 0U);
  EXPECT_EQ(count_serial(vm, disk.value), 0U);
  EXPECT_NO_THROW(quick->delete_disk(disk));
}

TEST_F(DiskSafetyTest, DetachOfANotAttachedDiskIsDiskNotAttached) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  try {
    cloud().detach_disk(vm, disk, 2);
    FAIL() << "no error";
  } catch (const DiskNotAttached& e) {
    EXPECT_STREQ(e.type(), "Bosh::Clouds::DiskNotAttached");
    EXPECT_FALSE(e.ok_to_retry());
  }
}

// API v1: the disk gone from the domain but still in the settings; the not-attached answer
// still removes it from the settings.
TEST_F(DiskSafetyTest, DetachNotAttachedStillCleansTheV1Settings) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 1);
  cloud().detach_disk(vm, disk, 2);  // leaves the settings as they are
  ASSERT_TRUE(user_data(vm).at("disks").at("persistent").contains(disk.value));
  EXPECT_THROW(cloud().detach_disk(vm, disk, 1), DiskNotAttached);
  EXPECT_FALSE(user_data(vm).at("disks").at("persistent").contains(disk.value));
}

// --- snapshots

TEST_F(DiskSafetyTest, SnapshotKilledAtEveryStepLeavesNoPausedVmNorPartialSnapshot) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  const auto before = volume_names();
  std::optional<cloud::SnapshotCid> probe;
  const int steps = count_steps([&] { probe = cloud().snapshot_disk(disk, {}); });
  cloud().delete_snapshot(*probe);
  for (int n = 1; n <= steps; ++n) {
    SCOPED_TRACE("killed at mutating step " + std::to_string(n));
    fake().kill_at(n);
    EXPECT_THROW(cloud().snapshot_disk(disk, {}), CloudError);
    fake().disarm();
    // The next call on the disk finishes what the killed one left.
    const auto snap = cloud().snapshot_disk(disk, {});
    EXPECT_EQ(virt_state(vm), VIR_DOMAIN_RUNNING);
    cloud().delete_snapshot(snap);
    EXPECT_EQ(volume_names(), before);
  }
}

}  // namespace
}  // namespace cpi::testing
