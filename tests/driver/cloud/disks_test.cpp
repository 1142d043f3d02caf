// Persistent disks and snapshots as volumes (src/driver/cloud/disks.cpp): create/delete/has, resize,
// metadata and snapshots, against test:///default.

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

class DisksTest : public DiskFixture {};

// --- create_disk / has_disk / delete_disk

TEST_F(DisksTest, CreateDiskReturnsTwentyCharacterCid) {
  const auto disk = new_disk();
  EXPECT_EQ(disk.value.size(), 20U);
  EXPECT_EQ(disk.value.rfind("disk-", 0), 0U);
  EXPECT_TRUE(cloud::is_disk_cid(disk.value)) << disk.value;
}

TEST_F(DisksTest, CreateDiskMakesQcow2VolumeOfRequestedSize) {
  const auto disk = new_disk(100);
  pugi::xml_document doc;
  parse_xml(doc, volume_xml(disk.value));
  EXPECT_STREQ(doc.child("volume").child("target").child("format").attribute("type").value(),
               "qcow2");
  EXPECT_EQ(doc.child("volume").child("capacity").text().as_ullong(), 100 * k_mib);
}

TEST_F(DisksTest, CreateDiskMakesRawVolumeWhenAsked) {
  const auto disk = new_disk(32, {{"format", "raw"}});
  pugi::xml_document doc;
  parse_xml(doc, volume_xml(disk.value));
  EXPECT_STREQ(doc.child("volume").child("target").child("format").attribute("type").value(),
               "raw");
  EXPECT_EQ(doc.child("volume").child("capacity").text().as_ullong(), 32 * k_mib);
}

TEST_F(DisksTest, CreateDiskUsesNamedStoragePool) {
  define_other_pool();
  const auto disk = new_disk(16, {{"storage_pool", k_other_pool}});

  EXPECT_TRUE(volume_exists(disk.value, k_other_pool));
  EXPECT_FALSE(volume_exists(disk.value));
  EXPECT_TRUE(cloud().has_disk(disk));
}

TEST_F(DisksTest, CreateDiskInMissingPoolFails) {
  const auto before = volume_names();
  EXPECT_THROW(new_disk(16, {{"storage_pool", "no-such-pool"}}), CloudError);
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DisksTest, UnknownDiskPropertyIsNamed) {
  const auto before = volume_names();
  try {
    new_disk(16, {{"iops", 300}});
    FAIL() << "create_disk accepted an unknown cloud property";
  } catch (const CpiError& e) {
    EXPECT_NE(std::string{e.what()}.find("iops"), std::string::npos) << e.what();
  }
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DisksTest, CreateDiskFailureLeavesNoVolume) {
  const auto before = volume_names();
  fake().fail_at(1);
  EXPECT_THROW(new_disk(), CloudError);
  EXPECT_TRUE(fake().injected());
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DisksTest, HasDiskIsTrueForExistingDisk) { EXPECT_TRUE(cloud().has_disk(new_disk())); }

TEST_F(DisksTest, HasDiskIsFalseForMissingDisk) {
  EXPECT_FALSE(cloud().has_disk(cloud::new_disk_cid()));
}

TEST_F(DisksTest, DeleteDiskRemovesVolume) {
  const auto disk = new_disk();
  cloud().delete_disk(disk);
  EXPECT_FALSE(volume_exists(disk.value));
  EXPECT_FALSE(cloud().has_disk(disk));
}

TEST_F(DisksTest, DeleteMissingDiskSucceeds) {
  EXPECT_NO_THROW(cloud().delete_disk(cloud::new_disk_cid()));
}

TEST_F(DisksTest, DeleteAttachedDiskFailsNamingVm) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);
  try {
    cloud().delete_disk(disk);
    FAIL() << "an attached disk was deleted";
  } catch (const CloudError& e) {
    EXPECT_NE(std::string{e.what()}.find(vm.value), std::string::npos) << e.what();
  }
  EXPECT_TRUE(volume_exists(disk.value));
}

// --- resize_disk

TEST_F(DisksTest, ResizeGrowsDisk) {
  const auto disk = new_disk(64);
  cloud().resize_disk(disk, 128);
  EXPECT_EQ(capacity_of(disk.value), 128 * k_mib);
}

TEST_F(DisksTest, ResizeToSameSizeChangesNothing) {
  const auto disk = new_disk(64);
  fake().reset_calls();
  cloud().resize_disk(disk, 64);
  EXPECT_EQ(fake().mutating_calls(), 0);
  EXPECT_EQ(capacity_of(disk.value), 64 * k_mib);
}

TEST_F(DisksTest, ShrinkIsNotSupported) {
  const auto disk = new_disk(64);
  EXPECT_THROW(cloud().resize_disk(disk, 32), NotSupported);
  EXPECT_EQ(capacity_of(disk.value), 64 * k_mib);
}

TEST_F(DisksTest, ResizeOfMissingDiskThrowsDiskNotFound) {
  EXPECT_THROW(cloud().resize_disk(cloud::new_disk_cid(), 64), DiskNotFound);
}

TEST_F(DisksTest, ResizeOfDiskAttachedToRunningVmGrowsItOnline) {
  const auto vm = new_vm();
  const auto disk = new_disk(64);
  cloud().attach_disk(vm, disk, 2);
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));
  const std::string target =
      disks_with_serial(doc, disk.value).front().child("target").attribute("dev").value();
  // The test driver's live definition changes only on restart.
  {
    auto d = domain(vm.value);
    ASSERT_EQ(virDomainDestroy(d.get()), 0);
    ASSERT_EQ(virDomainCreate(d.get()), 0);
  }

  cloud().resize_disk(disk, 96);

  ASSERT_EQ(fake().block_resizes().size(), 1U);
  EXPECT_EQ(fake().block_resizes().front().domain, vm.value);
  EXPECT_EQ(fake().block_resizes().front().target, target);
  EXPECT_EQ(fake().block_resizes().front().bytes, 96 * k_mib);
}

// --- metadata

TEST_F(DisksTest, SetDiskMetadataIsStoredInMetaVolume) {
  const auto disk = new_disk();
  const nlohmann::json metadata = {{"deployment", "dep"}, {"instance_index", "0"}};

  cloud().set_disk_metadata(disk, metadata);

  EXPECT_TRUE(volume_exists(disk.value + ".meta"));
  const auto meta = meta_of(disk.value);
  ASSERT_TRUE(meta.is_object()) << meta.dump();
  EXPECT_EQ(meta.at("metadata"), metadata);
}

TEST_F(DisksTest, NewCloudInstanceReadsDiskMetadata) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  const nlohmann::json metadata = {{"deployment", "dep"}, {"attached_at", "now"}};
  cloud().set_disk_metadata(disk, metadata);

  new_cloud()->attach_disk(vm, disk, 2);  // read-modify-write of the same .meta volume

  const auto meta = meta_of(disk.value);
  ASSERT_TRUE(meta.is_object()) << meta.dump();
  EXPECT_EQ(meta.at("metadata"), metadata);
  EXPECT_EQ(meta.value("attached_to", ""), vm.value);
}

TEST_F(DisksTest, SetMetadataOfMissingDiskThrowsDiskNotFound) {
  EXPECT_THROW(cloud().set_disk_metadata(cloud::new_disk_cid(), {{"a", "b"}}), DiskNotFound);
}

TEST_F(DisksTest, DeleteDiskRemovesItsMetaVolume) {
  const auto disk = new_disk();
  cloud().set_disk_metadata(disk, {{"deployment", "dep"}});
  cloud().delete_disk(disk);
  EXPECT_FALSE(volume_exists(disk.value + ".meta"));
}

// --- snapshots

TEST_F(DisksTest, SnapshotCreatesVolumeAndLeavesDiskUntouched) {
  const auto disk = new_disk();
  const auto disk_xml = volume_xml(disk.value);
  const nlohmann::json metadata = {{"deployment", "dep"}, {"index", 0}};

  const auto snapshot = cloud().snapshot_disk(disk, metadata);

  EXPECT_TRUE(cloud::is_snapshot_cid(snapshot.value)) << snapshot.value;
  EXPECT_TRUE(volume_exists(snapshot.value));
  EXPECT_EQ(volume_xml(disk.value), disk_xml);
  const auto meta = meta_of(snapshot.value);
  ASSERT_TRUE(meta.is_object());
  EXPECT_EQ(meta.at("disk"), disk.value);
  EXPECT_EQ(meta.at("metadata"), metadata);
}

TEST_F(DisksTest, SnapshotOfDiskOnRunningVmLeavesVmRunning) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  cloud().attach_disk(vm, disk, 2);

  const auto snapshot = cloud().snapshot_disk(disk, nlohmann::json::object());

  EXPECT_TRUE(volume_exists(snapshot.value));
  int state = 0;
  int reason = 0;
  ASSERT_EQ(virDomainGetState(domain(vm.value).get(), &state, &reason, 0), 0);
  EXPECT_EQ(state, VIR_DOMAIN_RUNNING);
}

// A failure at any mutating step of snapshot_disk leaves no snapshot volume and no .meta.
TEST_F(DisksTest, SnapshotFailureAtEveryStepLeavesNothing) {
  const auto disk = new_disk();
  cloud().set_disk_metadata(disk, {{"deployment", "dep"}});
  const auto before = volume_names();
  cloud::SnapshotCid probe;
  const int steps =
      count_mutating_calls([&] { probe = cloud().snapshot_disk(disk, nlohmann::json::object()); });
  cloud().delete_snapshot(probe);
  ASSERT_EQ(volume_names(), before);

  for_each_failing_step(steps, [&] {
    EXPECT_THROW(cloud().snapshot_disk(disk, nlohmann::json::object()), CloudError);
    fake().disarm();
    EXPECT_EQ(volume_names(), before);
  });
}

TEST_F(DisksTest, SnapshotOfMissingDiskThrowsDiskNotFound) {
  EXPECT_THROW(cloud().snapshot_disk(cloud::new_disk_cid(), nullptr), DiskNotFound);
}

TEST_F(DisksTest, DeleteSnapshotRemovesVolumeAndMeta) {
  const auto disk = new_disk();
  const auto snapshot = cloud().snapshot_disk(disk, {{"deployment", "dep"}});

  cloud().delete_snapshot(snapshot);

  EXPECT_FALSE(volume_exists(snapshot.value));
  EXPECT_FALSE(volume_exists(snapshot.value + ".meta"));
  EXPECT_TRUE(volume_exists(disk.value));
}

TEST_F(DisksTest, DeleteSnapshotTwiceSucceeds) {
  const auto snapshot = cloud().snapshot_disk(new_disk(), nullptr);
  cloud().delete_snapshot(snapshot);
  EXPECT_NO_THROW(cloud().delete_snapshot(snapshot));
}

}  // namespace
}  // namespace cpi::testing
