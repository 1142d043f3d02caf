// The promise that a persistent disk is never lost (src/driver/cloud/attachment.cpp, vm_disks.cpp,
// disks.cpp): libvirt's definitions are the truth about attachment whatever the record says,
// a "kill" at any step leaves a state the next calls reconcile, a record write cut off half-way
// still reads, and detach says done only when the running domain released the disk.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/util/file_lock.hpp"
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

  int virt_state(const cloud::VmCid& vm) {
    int state = 0;
    int reason = 0;
    EXPECT_EQ(virDomainGetState(domain(cloud().object_name(vm.value)).get(), &state, &reason, 0), 0);
    return state;
  }

  // Every volume not in `before` is a snapshot with its .meta (a complete copy).
  void expect_only_complete_snapshots(const std::vector<std::string>& before) {
    for (const auto& name : volume_names()) {
      if (std::find(before.begin(), before.end(), name) != before.end()) continue;
      const bool meta = name.size() > 5 && name.compare(name.size() - 5, 5, ".meta") == 0;
      const std::string snap = meta ? name.substr(0, name.size() - 5) : name;
      EXPECT_TRUE(cloud::is_snapshot_cid(snap)) << name;
      EXPECT_TRUE(volume_exists(snap + ".meta")) << "a partial snapshot: " << name;
    }
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
  const int steps = count_mutating_calls([&] { cloud().attach_disk(probe_vm, probe_disk, 1); });
  for_each_failing_step(steps, [&](const Arm& arm) {
    const auto vm = new_vm();
    const auto other = new_vm();
    const auto disk = new_disk();
    arm();
    EXPECT_THROW(cloud().attach_disk(vm, disk, 1), CloudError);
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
  }, Failure::kill);
}

TEST_F(DiskSafetyTest, DetachKilledAtEveryStepLosesNothing) {
  const auto probe_vm = new_vm();
  const auto probe_disk = new_disk();
  cloud().attach_disk(probe_vm, probe_disk, 1);
  const int detach_steps = count_mutating_calls([&] { cloud().detach_disk(probe_vm, probe_disk, 1); });
  for_each_failing_step(detach_steps, [&](const Arm& arm) {
    const auto vm = new_vm();
    const auto disk = new_disk();
    cloud().attach_disk(vm, disk, 1);
    arm();
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
  }, Failure::kill);
}

// set_disk_metadata failing (or killed) at any step never changes what the record says about
// the attachment.
TEST_F(DiskSafetyTest, SetMetadataKilledAtEveryStepKeepsTheAttachment) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  const int steps = count_mutating_calls([&] { cloud().set_disk_metadata(disk, {{"a", "b"}}); });
  for_each_failing_step(steps, [&](int n) {
    EXPECT_THROW(cloud().set_disk_metadata(disk, {{"step", n}}), CloudError);
    fake().disarm();
    EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);
    EXPECT_THROW(cloud().delete_disk(disk), CloudError);
  }, Failure::kill);
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

// --- one disk, one VM, whatever the record says

// The record lost or wrong: the definitions still say a stopped VM holds the disk, so a second
// VM is refused (libvirt would let a stopped domain and a running one name the same volume).
TEST_F(DiskSafetyTest, AttachRefusesADiskAStoppedVmHoldsWhateverTheRecordSays) {
  const auto vm = new_vm();
  const auto other = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  ASSERT_EQ(virDomainDestroy(domain(vm.value).get()), 0);
  for (const std::string& record :
       {std::string{"{}"}, std::string{"garbage"}, "{\"attached_to\":\"" + other.value + "\"}"}) {
    SCOPED_TRACE(record);
    write_record(disk, record);
    try {
      cloud().attach_disk(other, disk, 2);
      ADD_FAILURE() << "attached a disk a stopped vm holds";
    } catch (const CloudError& e) {
      EXPECT_NE(std::string{e.what()}.find(vm.value), std::string::npos) << e.what();
    }
    EXPECT_EQ(count_serial(other, disk.value), 0U);
    EXPECT_EQ(count_serial(vm, disk.value), 1U);
  }
}

// A domain the CPI did not make that names the volume by its path holds it too.
TEST_F(DiskSafetyTest, AttachRefusesADiskAForeignDomainHolds) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  const std::string xml =
      "<domain type='test'><name>foreign-holder</name><memory unit='MiB'>64</memory>"
      "<os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='" +
      volume_path(disk.value) + "'/><target dev='vdz' bus='virtio'/></disk></devices></domain>";
  virt::Domain foreign{virDomainDefineXML(&conn(), xml.c_str())};
  ASSERT_TRUE(foreign);
  try {
    cloud().attach_disk(vm, disk, 2);
    ADD_FAILURE() << "attached a disk another domain holds";
  } catch (const CloudError& e) {
    EXPECT_NE(std::string{e.what()}.find("foreign-holder"), std::string::npos) << e.what();
  }
  EXPECT_EQ(count_serial(vm, disk.value), 0U);
  EXPECT_TRUE(!volume_exists(disk.value + ".meta") ||
              meta_of(disk.value).value("attached_to", "").empty());
  ASSERT_EQ(virDomainUndefine(foreign.get()), 0);
  EXPECT_NO_THROW(cloud().attach_disk(vm, disk, 2));
}

// --- the VM's lock

// delete_vm waits for the VM's lock (an attach or detach under way), and removes the lock file
// only while it holds it.
TEST_F(DiskSafetyTest, DeleteVmTakesTheVmLockBeforeTouchingTheDomain) {
  const auto vm = new_vm();
  const std::string lock_file = util::FileLock::directory() + "/" +
                                cloud().names().vm_lock(vm) + ".lock";
  std::optional<util::FileLock> held;
  held.emplace(cloud().names().vm_lock(vm));
  std::atomic<bool> done{false};
  std::string error;
  std::thread deleter{[&] {
    try {
      cloud().delete_vm(vm);
    } catch (const std::exception& e) {
      error = e.what();
    }
    done = true;
  }};
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done) << "delete_vm did not wait for the vm's lock";
  const auto names = domain_names();
  EXPECT_NE(std::find(names.begin(), names.end(), vm.value), names.end())
      << "the domain went while another call held the vm's lock";
  held.reset();
  deleter.join();
  EXPECT_EQ(error, "");
  const auto after = domain_names();
  EXPECT_EQ(std::find(after.begin(), after.end(), vm.value), after.end());
  EXPECT_FALSE(std::filesystem::exists(lock_file));
}

// --- snapshots

// A running VM's disk is copied while the VM runs (libvirt's block copy, emulated): never
// paused, the copy holds the disk's bytes, and no copy job is left.
TEST_F(DiskSafetyTest, SnapshotOfARunningVmCopiesWithoutPausingIt) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  std::string pattern(64 * 1024, '\0');
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>(i * 7 + 3);
  fake().store(volume_path(disk.value), pattern);
  const int suspends = fake().suspends();

  const auto snap = cloud().snapshot_disk(disk, {{"k", "v"}});

  EXPECT_EQ(fake().suspends(), suspends) << "the vm was paused for the copy";
  EXPECT_EQ(virt_state(vm), VIR_DOMAIN_RUNNING);
  EXPECT_TRUE(fake().copy_jobs().empty());
  const auto copy = fake().uploaded(volume_path(snap.value));
  ASSERT_TRUE(copy.has_value()) << "nothing was copied into the snapshot";
  EXPECT_TRUE(copy->bytes == pattern) << "the snapshot does not hold the disk's bytes";
  EXPECT_EQ(meta_of(snap.value).value("disk", ""), disk.value);
  EXPECT_FALSE(meta_of(disk.value).contains("snapshotting"));
  EXPECT_FALSE(metadata_facts(vm).contains("snapshotting"));
}

// set_vm_metadata writes back the facts its ownership check read: after require_domain finished
// a killed snapshot, the facts it writes are the ones read again, so the intent stays cleared.
TEST_F(DiskSafetyTest, SetVmMetadataAfterAKilledSnapshotDoesNotWriteItsIntentBack) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  std::optional<cloud::SnapshotCid> probe;
  const int steps = count_mutating_calls([&] { probe = cloud().snapshot_disk(disk, {}); });
  cloud().delete_snapshot(*probe);
  int with_intent = 0;
  for_each_failing_step(steps, [&](int n) {
    EXPECT_THROW(cloud().snapshot_disk(disk, {}), CloudError);
    fake().disarm();
    if (!metadata_facts(vm).contains("snapshotting")) {
      cloud().delete_snapshot(cloud().snapshot_disk(disk, {}));  // the disk's side: its next call
      return;
    }
    ++with_intent;
    cloud().set_vm_metadata(vm, {{"step", n}});
    EXPECT_FALSE(metadata_facts(vm).contains("snapshotting"));
    EXPECT_EQ(metadata_facts(vm)["metadata"], nlohmann::json({{"step", n}}));
    EXPECT_TRUE(fake().copy_jobs().empty()) << "a copy job still writes into a snapshot";
    EXPECT_FALSE(meta_of(disk.value).contains("snapshotting"));
  }, Failure::kill);
  EXPECT_GT(with_intent, 0) << "no step left the vm's intent: the test checks nothing";
}

// A "kill" at every step of snapshot_disk on a running VM's disk; then the next call on the
// disk, a call on the VM (require_domain), or `cpi cleanup` finishes it: no copy job left, the
// VM running, no partial snapshot, no intent.
TEST_F(DiskSafetyTest, SnapshotKilledAtEveryStepIsFinishedByTheDiskTheVmOrCleanup) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  const auto before = volume_names();
  std::optional<cloud::SnapshotCid> probe;
  const int steps = count_mutating_calls([&] { probe = cloud().snapshot_disk(disk, {}); });
  cloud().delete_snapshot(*probe);
  for (const std::string by : {"disk", "vm", "cleanup"}) {
    SCOPED_TRACE("finished by " + by);
    for_each_failing_step(steps, [&] {
      EXPECT_THROW(cloud().snapshot_disk(disk, {}), CloudError);
      fake().disarm();
      const bool vm_intent = metadata_facts(vm).contains("snapshotting");
      if (by == "disk") {
        cloud().delete_snapshot(cloud().snapshot_disk(disk, {}));
      } else if (by == "vm") {
        EXPECT_EQ(cloud().get_disks(vm).size(), 1U);
      } else {
        const auto result = tools::cleanup_orphans(
            fake(), config(), {static_cast<std::int64_t>(std::time(nullptr)), 0, 3600}, false);
        EXPECT_TRUE(result.failed.empty()) << result.text();
        EXPECT_FALSE(meta_of(disk.value).contains("snapshotting")) << result.text();
      }
      EXPECT_EQ(virt_state(vm), VIR_DOMAIN_RUNNING);
      EXPECT_TRUE(fake().copy_jobs().empty()) << "a copy job still writes into a snapshot";
      if (by != "vm" || vm_intent) {
        EXPECT_EQ(volume_names(), before);
      } else {  // killed after the vm's side was done: only the disk's intent names the copy,
                // which is complete; the next call on the disk removes it (below)
        expect_only_complete_snapshots(before);
      }
      EXPECT_FALSE(metadata_facts(vm).contains("snapshotting"));
      if (vm_intent) {
        EXPECT_FALSE(meta_of(disk.value).contains("snapshotting"));
      }
      EXPECT_EQ(meta_of(disk.value).value("attached_to", ""), vm.value);
      // And the way on: a snapshot works, detach and delete work.
      cloud().delete_snapshot(cloud().snapshot_disk(disk, {}));
      EXPECT_EQ(volume_names(), before);
    }, Failure::kill);
  }
  EXPECT_NO_THROW(cloud().detach_disk(vm, disk, 2));
  EXPECT_NO_THROW(cloud().delete_disk(disk));
}

}  // namespace
}  // namespace cpi::testing
