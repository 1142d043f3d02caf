// `cpi inspect` (src/driver/tools/collect.cpp, inspect.cpp) on test:///default: the inventory of owned
// objects with orphans flagged, and the details of one VM, disk, snapshot or stemcell.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

#include "cpi/tools/render.hpp"
#include "cpi/tools/runner.hpp"
#include "driver/tools/tools_fixture.hpp"

namespace cpi::testing {
namespace {

using tools::ObjectKind;

class InspectTest : public ToolsFixture {
 protected:
  void SetUp() override {
    ToolsFixture::SetUp();
    populate();
  }

  nlohmann::json details(const std::string& cid) {
    return tools::inspect_cid(fake(), config(), host(), cid, 20);
  }
};

TEST_F(InspectTest, InventoryListsEveryOwnedObjectByKind) {
  std::map<ObjectKind, int> counts;
  for (const auto& object : inventory()) ++counts[object.kind];
  EXPECT_EQ(counts[ObjectKind::vm], 1);
  EXPECT_EQ(counts[ObjectKind::vm_volume], 3 + 2);  // the VM's own + the orphans
  EXPECT_EQ(counts[ObjectKind::disk], 2);
  EXPECT_EQ(counts[ObjectKind::disk_meta], 2 + 1);
  EXPECT_EQ(counts[ObjectKind::snapshot], 1);
  EXPECT_EQ(counts[ObjectKind::snapshot_meta], 1 + 1);
  EXPECT_EQ(counts[ObjectKind::stemcell], 1);
}

TEST_F(InspectTest, InventoryFlagsExactlyTheOrphans) {
  const auto objects = inventory();
  EXPECT_EQ(orphan_names(objects), orphans);
  const auto* root = find(objects, gone_vm.value + "-root");
  ASSERT_NE(root, nullptr);
  EXPECT_NE(root->orphan_reason.find(gone_vm.value), std::string::npos) << root->orphan_reason;
}

TEST_F(InspectTest, InventoryShowsStateAndAttachment) {
  const auto objects = inventory();
  const auto* domain = find(objects, vm.value);
  ASSERT_NE(domain, nullptr);
  EXPECT_EQ(domain->state, "running");
  EXPECT_TRUE(domain->notes.empty());
  const auto* disk = find(objects, attached.value);
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->attached_to, vm.value);
  EXPECT_EQ(disk->capacity, 32 * k_mib);
  EXPECT_EQ(find(objects, detached.value)->attached_to, "");
}

TEST_F(InspectTest, InventoryKeepsVmsWithTheirVolumesTogether) {
  const auto objects = inventory();
  ASSERT_GE(objects.size(), 4U);
  std::size_t at = 0;
  while (at < objects.size() && objects[at].name != vm.value) ++at;
  ASSERT_LT(at + 3, objects.size());
  for (std::size_t i = at + 1; i <= at + 3; ++i) {
    EXPECT_EQ(objects[i].cid, vm.value) << objects[i].name;
  }
}

TEST_F(InspectTest, InventoryIgnoresForeignVolumesAndOtherPrefixes) {
  const std::string other = "p2-" + cloud::new_vm_cid().value + "-root";
  make_volume(other);
  make_volume("ubuntu-22.04.qcow2");
  const auto ours = inventory();
  EXPECT_EQ(find(ours, other), nullptr);
  EXPECT_EQ(find(ours, "ubuntu-22.04.qcow2"), nullptr);

  auto with_prefix = config();
  with_prefix.libvirt.name_prefix = "p2-";
  const auto theirs = inventory(with_prefix);
  ASSERT_EQ(theirs.size(), 1U);
  EXPECT_EQ(theirs[0].name, other);
  EXPECT_TRUE(theirs[0].orphan);
}

TEST_F(InspectTest, InventoryReadsOnlyTheConfiguredAndTheRecordedPools) {
  define_other_pool();
  const auto remote = cloud().create_disk(16, {{"storage_pool", k_other_pool}}, std::nullopt);
  const std::string stray = cloud::new_disk_cid().value;  // never recorded: not ours
  make_volume(stray, k_other_pool);
  make_volume(stray + ".meta", k_other_pool);
  const auto objects = inventory();
  const auto* disk = find(objects, remote.value);
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->pool, k_other_pool);
  const auto* record = find(objects, remote.value + ".pool");
  ASSERT_NE(record, nullptr);
  EXPECT_EQ(record->kind, ObjectKind::pool_record);
  EXPECT_EQ(record->record_pool, k_other_pool);
  EXPECT_FALSE(record->orphan);
  EXPECT_EQ(find(objects, stray), nullptr);
  EXPECT_EQ(find(objects, stray + ".meta"), nullptr);
}

TEST_F(InspectTest, APoolRecordWhoseDiskIsGoneIsAnOrphanThatCleanupRemoves) {
  define_other_pool();
  const auto remote = cloud().create_disk(16, {{"storage_pool", k_other_pool}}, std::nullopt);
  auto gone = volume(remote.value, k_other_pool);
  ASSERT_EQ(virStorageVolDelete(gone.get(), 0), 0);
  const auto objects = inventory();
  const auto* record = find(objects, remote.value + ".pool");
  ASSERT_NE(record, nullptr);
  EXPECT_TRUE(record->orphan);
  const auto result = tools::cleanup_orphans(fake(), config(), options(), false);
  EXPECT_NE(std::find(result.deleted.begin(), result.deleted.end(), remote.value + ".pool"),
            result.deleted.end());
  EXPECT_FALSE(volume_exists(remote.value + ".pool"));
}

TEST_F(InspectTest, ADomainWithoutOurMetadataIsNotedAsNotOurs) {
  const std::string name = cloud::new_vm_cid().value;
  const std::string xml = "<domain type='test'><name>" + name +
                          "</name><memory>65536</memory><os><type>hvm</type></os></domain>";
  virt::Domain domain{virDomainDefineXML(&conn(), xml.c_str())};
  ASSERT_TRUE(domain);
  const auto objects = inventory();
  const auto* found = find(objects, name);
  ASSERT_NE(found, nullptr);
  const bool noted = std::any_of(found->notes.begin(), found->notes.end(), [](const auto& note) {
    return note.find("no metadata of this CPI") != std::string::npos;
  });
  EXPECT_TRUE(noted);
  const auto* ours = find(objects, vm.value);
  ASSERT_NE(ours, nullptr);
  EXPECT_TRUE(ours->notes.empty());
}

TEST_F(InspectTest, VmDetailsShowStateSizesDisksNicsAndFacts) {
  const auto vm_details = details(vm.value);
  EXPECT_TRUE(vm_details["found"].get<bool>());
  EXPECT_EQ(vm_details["state"], "running");
  EXPECT_EQ(vm_details["vcpus"], 2);
  EXPECT_EQ(vm_details["memory_mib"], 512);
  std::map<std::string, nlohmann::json> by_role;
  for (const auto& volume : vm_details["volumes"]) by_role[volume["role"]] = volume;
  for (const char* role : {"root", "ephemeral", "config", "persistent"}) {
    ASSERT_TRUE(by_role.count(role)) << role << "\n" << vm_details.dump(2);
    EXPECT_TRUE(by_role[role]["present"].get<bool>()) << role;
  }
  EXPECT_EQ(by_role["ephemeral"]["capacity"], 1024 * k_mib);
  EXPECT_EQ(by_role["persistent"]["serial"], attached.value);
  EXPECT_TRUE(by_role["root"]["live"].get<bool>());
  // The fake hot-plugs into its emulated live definition too (fake_hypervisor.hpp).
  EXPECT_TRUE(by_role["persistent"]["live"].get<bool>());
  EXPECT_EQ(vm_details["persistent_disks"], nlohmann::json::array({attached.value}));
  ASSERT_EQ(vm_details["nics"].size(), 1U);
  EXPECT_EQ(vm_details["nics"][0]["source"], "default");
  EXPECT_EQ(vm_details["nics"][0]["mac"].get<std::string>().rfind("52:54:00:", 0), 0U);
  EXPECT_EQ(vm_details["facts"]["agent_id"], "agent-1");
  EXPECT_EQ(vm_details["facts"]["stemcell"], stemcell.value);
  const auto& console = vm_details["console_log"];
  EXPECT_NE(console["path"].get<std::string>().find(vm.value), std::string::npos);
  EXPECT_TRUE(console.contains("note")) << "the test driver writes no console log";

  const std::string text = tools::render_details(vm_details);
  EXPECT_NE(text.find("running"), std::string::npos) << text;
  EXPECT_NE(text.find(attached.value), std::string::npos) << text;
}

TEST_F(InspectTest, MissingVmListsItsLeftoverVolumes) {
  const auto gone = details(gone_vm.value);
  EXPECT_FALSE(gone["found"].get<bool>());
  ASSERT_EQ(gone["leftover_volumes"].size(), 2U) << gone.dump(2);
}

TEST_F(InspectTest, DiskDetailsShowAttachmentMetadataAndSnapshots) {
  const auto disk = details(attached.value);
  EXPECT_TRUE(disk["found"].get<bool>());
  EXPECT_EQ(disk["volume"]["capacity"], 32 * k_mib);
  EXPECT_EQ(disk["volume"]["format"], "qcow2");
  EXPECT_EQ(disk["attached_to"], vm.value);
  EXPECT_EQ(disk["attached_in"], nlohmann::json::array({vm.value}));
  ASSERT_EQ(disk["snapshots"].size(), 1U) << disk.dump(2);
  EXPECT_EQ(disk["snapshots"][0]["cid"], snapshot.value);
  EXPECT_EQ(disk["snapshots"][0]["metadata"]["note"], "before upgrade");

  const auto other = details(detached.value);
  EXPECT_TRUE(other["attached_to"].is_null());
  EXPECT_TRUE(other["attached_in"].empty());
  EXPECT_EQ(other["metadata"]["deployment"], "cf");
  EXPECT_TRUE(other["snapshots"].empty());
}

TEST_F(InspectTest, SnapshotAndStemcellDetails) {
  const auto snap = details(snapshot.value);
  EXPECT_TRUE(snap["found"].get<bool>());
  EXPECT_EQ(snap["disk"], attached.value);
  const auto sc = details(stemcell.value);
  EXPECT_TRUE(sc["found"].get<bool>());
  EXPECT_EQ(sc["used_by"], nlohmann::json::array({vm.value}));
}

TEST_F(InspectTest, UnknownOrAbsentCidIsNotFound) {
  EXPECT_FALSE(details(cloud::new_disk_cid().value)["found"].get<bool>());
  EXPECT_EQ(details("i-123")["kind"], "unknown");
}

TEST_F(InspectTest, RunOnHostPrintsTheTableAndExitsOneForAMissingCid) {
  tools::ToolRequest request;
  request.tool = "inspect";
  request.min_age_seconds = 0;
  std::ostringstream table;
  EXPECT_EQ(tools::run_on_host(request, fake(), config(), host(), table), tools::k_exit_ok);
  EXPECT_NE(table.str().find("ORPHAN"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("4 orphans"), std::string::npos) << table.str();

  request.cids = {vm.value, cloud::new_vm_cid().value};
  request.json = true;
  std::ostringstream json;
  EXPECT_EQ(tools::run_on_host(request, fake(), config(), host(), json), tools::k_exit_findings);
  const auto parsed = nlohmann::json::parse(json.str(), nullptr, false);
  ASSERT_TRUE(parsed.is_array()) << json.str();
  EXPECT_EQ(parsed.size(), 2U);
}

TEST_F(InspectTest, MetadataValuesUnderSecretKeysAreMasked) {
  cloud().set_disk_metadata(detached, {{"deployment", "cf"},
                                       {"db_password", "Hunter22Pw"},
                                       {"api_key", "K3yValue"},
                                       {"creds", {{"token", "T0kenValue"}}},
                                       {"url", "nats://u:UrlPw99@h:4222"}});
  const auto disk = details(detached.value);
  EXPECT_EQ(disk["metadata"]["deployment"], "cf");
  EXPECT_EQ(disk["metadata"]["db_password"], "***");
  EXPECT_EQ(disk["metadata"]["api_key"], "***");
  EXPECT_EQ(disk["metadata"]["creds"]["token"], "***");
  EXPECT_EQ(disk["metadata"]["url"], "nats://u:***@h:4222");
  const std::string rendered = tools::render_details(disk);
  for (const char* secret : {"Hunter22Pw", "K3yValue", "T0kenValue", "UrlPw99"}) {
    EXPECT_EQ(disk.dump().find(secret), std::string::npos) << secret;
    EXPECT_EQ(rendered.find(secret), std::string::npos) << secret;
  }
}

}  // namespace
}  // namespace cpi::testing
