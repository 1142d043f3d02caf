// Object names and orphan rules of the operator tools (src/tools/inventory.cpp).

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpi/tools/inventory.hpp"

namespace cpi::tools {
namespace {

constexpr const char* k_uuid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
const std::string k_vm = std::string{"vm-"} + k_uuid;
const std::string k_disk = "disk-0123456789abcde";
const std::string k_snap = std::string{"snap-"} + k_uuid;
const std::string k_sc = std::string{"sc-"} + k_uuid;

struct NameCase {
  std::string name;
  std::string prefix;
  bool domain;
  std::optional<ObjectKind> kind;  // nullopt: not ours
  std::string cid;
  std::string role;
};

TEST(ParseObjectNameTest, TellsEveryKindApartAndRejectsForeignNames) {
  const std::vector<NameCase> cases{
      {k_vm, "", true, ObjectKind::vm, k_vm, ""},
      {k_vm + "-root", "", false, ObjectKind::vm_volume, k_vm, "root"},
      {k_vm + "-ephemeral", "", false, ObjectKind::vm_volume, k_vm, "ephemeral"},
      {k_vm + "-config", "", false, ObjectKind::vm_volume, k_vm, "config"},
      {k_vm + "-config.meta", "", false, ObjectKind::vm_volume, k_vm, "settings"},  // lxc
      {k_vm + "-root.meta", "", false, std::nullopt, "", ""},
      {k_disk, "", false, ObjectKind::disk, k_disk, ""},
      {k_disk + ".meta", "", false, ObjectKind::disk_meta, k_disk, ""},
      {k_snap, "", false, ObjectKind::snapshot, k_snap, ""},
      {k_snap + ".meta", "", false, ObjectKind::snapshot_meta, k_snap, ""},
      {k_sc, "", false, ObjectKind::stemcell, k_sc, ""},
      {k_sc + ".meta", "", false, ObjectKind::stemcell_meta, k_sc, ""},
      {"p1-" + k_vm, "p1-", true, ObjectKind::vm, k_vm, ""},
      {"p1-" + k_disk + ".meta", "p1-", false, ObjectKind::disk_meta, k_disk, ""},
      // not ours
      {"p1-" + k_vm, "", true, std::nullopt, "", ""},    // another director's prefix
      {k_vm, "p1-", true, std::nullopt, "", ""},         // ours lack the prefix
      {k_vm + "-root", "", true, std::nullopt, "", ""},  // a volume name as domain
      {k_vm, "", false, std::nullopt, "", ""},           // a domain name as volume
      {k_vm + "-swap", "", false, std::nullopt, "", ""},
      {"disk-0123456789abcdef", "", false, std::nullopt, "", ""},  // 16 hex
      {"disk-0123456789ABCDE", "", false, std::nullopt, "", ""},   // upper case
      {"cpi-doctor-0a1b2c3d.raw", "", false, std::nullopt, "", ""},
      {"ubuntu.qcow2", "", false, std::nullopt, "", ""},
  };
  for (const auto& c : cases) {
    const auto parsed = parse_object_name(c.name, c.prefix, c.domain);
    ASSERT_EQ(parsed.has_value(), c.kind.has_value()) << c.name << " prefix '" << c.prefix << "'";
    if (!parsed) continue;
    EXPECT_EQ(parsed->kind, *c.kind) << c.name;
    EXPECT_EQ(parsed->cid, c.cid) << c.name;
    EXPECT_EQ(parsed->role, c.role) << c.name;
  }
}

OwnedObject make(ObjectKind kind, const std::string& name, const std::string& pool = "bosh") {
  const auto parsed = parse_object_name(name, "", kind == ObjectKind::vm);
  EXPECT_TRUE(parsed) << name;
  OwnedObject object;
  object.kind = kind;
  object.name = name;
  object.cid = parsed ? parsed->cid : "";
  object.role = parsed ? parsed->role : "";
  object.pool = kind == ObjectKind::vm ? "" : pool;
  return object;
}

const OwnedObject& named(const std::vector<OwnedObject>& objects, const std::string& name) {
  for (const auto& object : objects) {
    if (object.name == name) return object;
  }
  throw std::runtime_error("no object " + name);
}

TEST(FlagOrphansTest, FlagsVmVolumesWithoutDomainAndMetaWithoutItsVolume) {
  const std::string gone_vm = "vm-11111111-2222-3333-4444-555555555555";
  const std::string gone_snap = "snap-11111111-2222-3333-4444-555555555555";
  std::vector<OwnedObject> objects{
      make(ObjectKind::vm, k_vm),
      make(ObjectKind::vm_volume, k_vm + "-root"),
      make(ObjectKind::vm_volume, k_vm + "-config"),
      make(ObjectKind::vm_volume, gone_vm + "-root"),
      make(ObjectKind::vm_volume, gone_vm + "-config"),
      make(ObjectKind::disk, k_disk),
      make(ObjectKind::disk_meta, k_disk + ".meta"),
      make(ObjectKind::disk_meta, "disk-fffffffffffffff.meta"),
      make(ObjectKind::snapshot, k_snap),
      make(ObjectKind::snapshot_meta, k_snap + ".meta"),
      make(ObjectKind::snapshot_meta, gone_snap + ".meta"),
      make(ObjectKind::stemcell, k_sc),
      make(ObjectKind::stemcell_meta, k_sc + ".meta"),
      make(ObjectKind::stemcell_meta, "sc-11111111-2222-3333-4444-555555555555.meta"),
  };
  flag_orphans(objects, 1000, 600);

  std::vector<std::string> orphans;
  for (const auto& object : objects) {
    if (object.orphan) orphans.push_back(object.name);
  }
  EXPECT_EQ(orphans, (std::vector<std::string>{gone_vm + "-root", gone_vm + "-config",
                                               "disk-fffffffffffffff.meta", gone_snap + ".meta",
                                               "sc-11111111-2222-3333-4444-555555555555.meta"}));
  EXPECT_NE(named(objects, gone_vm + "-root").orphan_reason.find(gone_vm), std::string::npos);
  EXPECT_TRUE(named(objects, k_vm).notes.empty());
}

TEST(FlagOrphansTest, MetaWhoseDiskIsInAnotherPoolIsAnOrphan) {
  std::vector<OwnedObject> objects{make(ObjectKind::disk, k_disk, "a"),
                                   make(ObjectKind::disk_meta, k_disk + ".meta", "b")};
  flag_orphans(objects, 0, 0);
  EXPECT_FALSE(objects[0].orphan);
  EXPECT_TRUE(objects[1].orphan);
}

TEST(FlagOrphansTest, RecentlyChangedOrphanIsMarkedRecent) {
  std::vector<OwnedObject> objects{make(ObjectKind::vm_volume, k_vm + "-root"),
                                   make(ObjectKind::vm_volume, k_vm + "-config"),
                                   make(ObjectKind::vm_volume, k_vm + "-ephemeral")};
  objects[0].changed_at = 1000 - 30;   // 30 s old
  objects[1].changed_at = 1000 - 900;  // 15 min old
  flag_orphans(objects, 1000, 600);
  EXPECT_TRUE(objects[0].orphan && objects[0].recent);
  EXPECT_TRUE(objects[1].orphan && !objects[1].recent);
  EXPECT_TRUE(objects[2].orphan && !objects[2].recent) << "no timestamps: not recent";
}

TEST(FlagIncompleteVmsTest, UnfinishedVmPastTheBoundIsAnOrphanWithItsVolumes) {
  const std::string other = "vm-11111111-2222-3333-4444-555555555555";
  std::vector<OwnedObject> objects{make(ObjectKind::vm, k_vm),
                                   make(ObjectKind::vm_volume, k_vm + "-root"),
                                   make(ObjectKind::vm_volume, k_vm + "-config"),
                                   make(ObjectKind::vm, other),
                                   make(ObjectKind::vm_volume, other + "-root"),
                                   make(ObjectKind::disk, k_disk)};
  objects[0].incomplete_since = 10000 - 7200;
  flag_orphans(objects, 10000, 600);
  flag_incomplete_vms(objects, 10000, 3600);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(objects[i].orphan && !objects[i].recent) << objects[i].name;
  }
  EXPECT_NE(objects[0].orphan_reason.find("create_vm did not finish"), std::string::npos);
  for (std::size_t i = 3; i < objects.size(); ++i) {
    EXPECT_FALSE(objects[i].orphan) << objects[i].name << ": no marker means complete";
  }
}

TEST(FlagIncompleteVmsTest, UnfinishedVmWithinTheBoundIsRecent) {
  std::vector<OwnedObject> objects{make(ObjectKind::vm, k_vm),
                                   make(ObjectKind::vm_volume, k_vm + "-root")};
  objects[0].incomplete_since = 10000 - 60;
  flag_incomplete_vms(objects, 10000, 3600);
  EXPECT_TRUE(objects[0].orphan && objects[0].recent);
  EXPECT_TRUE(objects[1].orphan && objects[1].recent);
  flag_incomplete_vms(objects, 10000, 30);
  EXPECT_TRUE(objects[0].orphan && !objects[0].recent);
}

TEST(FlagUnfinishedSnapshotsTest, SnapshotWithoutItsMetaIsAnOrphan) {
  const std::string half = "snap-11111111-2222-3333-4444-555555555555";
  std::vector<OwnedObject> objects{make(ObjectKind::snapshot, k_snap),
                                   make(ObjectKind::snapshot_meta, k_snap + ".meta"),
                                   make(ObjectKind::snapshot, half)};
  objects[2].changed_at = 1000 - 30;
  flag_unfinished_snapshots(objects, 1000, 600);
  EXPECT_FALSE(objects[0].orphan) << "a finished snapshot has its .meta";
  EXPECT_TRUE(objects[2].orphan && objects[2].recent) << "a copy may still be under way";
  flag_unfinished_snapshots(objects, 1000, 0);
  EXPECT_TRUE(objects[2].orphan && !objects[2].recent);
}

TEST(FlagOrphansTest, NotesVmWithoutRootAndDiskAttachedToMissingVm) {
  std::vector<OwnedObject> objects{make(ObjectKind::vm, k_vm), make(ObjectKind::disk, k_disk)};
  objects[1].attached_to = "vm-11111111-2222-3333-4444-555555555555";
  flag_orphans(objects, 0, 0);
  EXPECT_EQ(objects[0].notes, std::vector<std::string>{"no root volume"});
  ASSERT_EQ(objects[1].notes.size(), 1U);
  EXPECT_NE(objects[1].notes[0].find("does not exist"), std::string::npos);
  EXPECT_FALSE(objects[0].orphan);
  EXPECT_FALSE(objects[1].orphan) << "a disk is never an orphan";
}

TEST(InventoryOutputTest, TableAndJsonFlagOrphans) {
  std::vector<OwnedObject> objects{make(ObjectKind::vm_volume, k_vm + "-root"),
                                   make(ObjectKind::stemcell, k_sc)};
  objects[0].capacity = 3ULL << 30;
  flag_orphans(objects, 0, 0);

  const auto json = inventory_json(objects);
  ASSERT_EQ(json["orphans"].size(), 1U);
  EXPECT_EQ(json["orphans"][0], k_vm + "-root");
  EXPECT_EQ(json["objects"][0]["kind"], "vm_volume");
  EXPECT_EQ(json["objects"][0]["capacity"], 3ULL << 30);
  EXPECT_FALSE(json["objects"][1]["orphan"].get<bool>());

  const auto table = inventory_table(objects);
  EXPECT_NE(table.find("KIND"), std::string::npos);
  EXPECT_NE(table.find("ORPHAN: vm '" + k_vm + "'"), std::string::npos) << table;
  EXPECT_NE(table.find("3 GiB"), std::string::npos) << table;
  EXPECT_NE(table.find("2 objects, 1 orphans"), std::string::npos) << table;
}

TEST(HumanSizeTest, PicksTheLargestWholeUnit) {
  EXPECT_EQ(human_size(0), "0 B");
  EXPECT_EQ(human_size(1023), "1023 B");
  EXPECT_EQ(human_size(64U << 10), "64 KiB");
  EXPECT_EQ(human_size(1536ULL << 20), "1.5 GiB");
  EXPECT_EQ(human_size(100ULL << 30), "100 GiB");
}

}  // namespace
}  // namespace cpi::tools
