// `cpi cleanup --orphans` (src/driver/tools/cleanup.cpp) on test:///default: removes exactly the orphans
// inspect flags, never a persistent disk, snapshot or complete stemcell.

#include <gtest/gtest.h>

#include <pugixml.hpp>

#include <algorithm>
#include <iterator>
#include <set>
#include <sstream>
#include <string>

#include "cpi/tools/runner.hpp"
#include "cpi/virt/handles.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "driver/tools/tools_fixture.hpp"
#include "support/hypervisor_wrapper.hpp"

namespace cpi::testing {
namespace {

class CleanupTest : public ToolsFixture {
 protected:
  void SetUp() override {
    ToolsFixture::SetUp();
    populate();
  }

  tools::CleanupResult cleanup(bool dry_run = false, std::int64_t min_age = 0) {
    return tools::cleanup_orphans(fake(), config(), options(min_age), dry_run);
  }

  static std::set<std::string> as_set(const std::vector<std::string>& names) {
    return {names.begin(), names.end()};
  }

  static std::set<std::string> minus(const std::set<std::string>& a,
                                     const std::set<std::string>& b) {
    std::set<std::string> out;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
    return out;
  }

  // Every volume that must survive any cleanup.
  std::set<std::string> precious() const {
    return {stemcell.value,           attached.value,           attached.value + ".meta",
            detached.value,           detached.value + ".meta", snapshot.value,
            snapshot.value + ".meta", vm.value + "-root",       vm.value + "-ephemeral",
            vm.value + "-config"};
  }
};

TEST_F(CleanupTest, DryRunListsTheOrphansAndDeletesNothing) {
  const auto before = volume_set();
  const auto result = cleanup(true);
  EXPECT_EQ(as_set(result.would_delete), orphans);
  EXPECT_TRUE(result.deleted.empty());
  EXPECT_EQ(volume_set(), before);
}

TEST_F(CleanupTest, RemovesExactlyTheOrphansInspectFlags) {
  const auto flagged = orphan_names(inventory());
  ASSERT_EQ(flagged, orphans);
  const auto before = volume_set();

  const auto result = cleanup();
  EXPECT_TRUE(result.failed.empty());
  EXPECT_EQ(as_set(result.deleted), flagged);
  EXPECT_EQ(minus(before, volume_set()), flagged);
  for (const auto& name : precious()) {
    EXPECT_TRUE(volume_exists(name)) << name << " was deleted";
  }
  EXPECT_TRUE(orphan_names(inventory()).empty());
  EXPECT_EQ(domain_names().size(), 2U) << "the test driver's own domain and our VM";
  EXPECT_TRUE(cleanup().deleted.empty()) << "a second run finds nothing";
}

// snapshot_disk killed while libvirt copies the running VM's disk: the copy job still writes into
// the partial snapshot. A dry run only says it would finish it; the real run ends the job,
// removes the partial snapshot and the intents, then the orphans as always.
TEST_F(CleanupTest, FinishesAnInterruptedSnapshotBeforeDeletingOrphans) {
  fake().kill_at(5);  // intent, vm fact, snapshot volume, copy started: killed at its end
  EXPECT_THROW(cloud().snapshot_disk(attached, nlohmann::json::object()), CloudError);
  fake().disarm();
  ASSERT_EQ(fake().copy_jobs().size(), 1U) << "not killed while copying";
  const auto partial = minus(volume_set(), precious());
  const auto flagged = orphan_names(inventory());
  EXPECT_EQ(minus(flagged, orphans).size(), 1U) << "the partial snapshot is an orphan";

  const auto before = volume_set();
  const auto dry = cleanup(true);
  EXPECT_EQ(as_set(dry.would_finish),
            (std::set<std::string>{"disk " + attached.value, "vm " + vm.value}));
  EXPECT_EQ(volume_set(), before);
  EXPECT_EQ(fake().copy_jobs().size(), 1U);

  const auto result = cleanup();
  EXPECT_TRUE(result.failed.empty()) << result.text();
  EXPECT_EQ(result.finished.size(), 1U) << result.text();
  EXPECT_NE(result.text().find("finished      disk " + attached.value), std::string::npos)
      << result.text();
  EXPECT_TRUE(fake().copy_jobs().empty());
  for (const auto& name : partial) {
    if (orphans.count(name) == 0) {
      EXPECT_FALSE(volume_exists(name)) << name;
    }
  }
  for (const auto& name : precious()) EXPECT_TRUE(volume_exists(name)) << name;
  EXPECT_TRUE(orphan_names(inventory()).empty());
  const auto again = cleanup();
  EXPECT_TRUE(again.finished.empty() && again.deleted.empty()) << again.text();
}

TEST_F(CleanupTest, VmLostWithoutDeleteVmLeavesItsDiskAndStemcell) {
  // The domain disappears behind the CPI's back (undefined by hand, a crashed delete_vm).
  {
    auto d = domain(vm.value);
    ASSERT_EQ(virDomainDestroy(d.get()), 0);
    ASSERT_EQ(virDomainUndefine(d.get()), 0);
  }
  const auto objects = inventory();
  for (const char* role : {"-root", "-ephemeral", "-config"}) {
    EXPECT_TRUE(orphan_names(objects).count(vm.value + role)) << role;
  }
  const auto* disk = find(objects, attached.value);
  ASSERT_NE(disk, nullptr);
  EXPECT_FALSE(disk->orphan);
  ASSERT_EQ(disk->notes.size(), 1U) << "its .meta names a VM that is gone";

  const auto result = cleanup();
  EXPECT_TRUE(result.failed.empty());
  for (const char* role : {"-root", "-ephemeral", "-config"}) {
    EXPECT_FALSE(volume_exists(vm.value + role)) << role;
  }
  for (const auto& name : {stemcell.value, attached.value, attached.value + ".meta", snapshot.value,
                           snapshot.value + ".meta", detached.value}) {
    EXPECT_TRUE(volume_exists(name)) << name << " was deleted";
  }
}

TEST_F(CleanupTest, StemcellKeptForItsVmsStaysButItsOrphanedMetaGoes) {
  write_meta(stemcell.value, {{"deleted", true}});  // what delete_stemcell leaves while VMs use it
  const std::string gone_sc_meta = cloud::new_stemcell_cid().value + ".meta";
  make_volume(gone_sc_meta);

  const auto objects = inventory();
  const auto* kept = find(objects, stemcell.value);
  ASSERT_NE(kept, nullptr);
  EXPECT_FALSE(kept->orphan);
  ASSERT_EQ(kept->notes.size(), 1U);
  EXPECT_NE(kept->notes[0].find("deleted by BOSH"), std::string::npos) << kept->notes[0];
  EXPECT_TRUE(orphan_names(objects).count(gone_sc_meta));

  const auto result = cleanup();
  EXPECT_TRUE(as_set(result.deleted).count(gone_sc_meta));
  EXPECT_TRUE(volume_exists(stemcell.value));
  EXPECT_TRUE(volume_exists(stemcell.value + ".meta"));
  EXPECT_FALSE(volume_exists(gone_sc_meta));
}

// Adds <timestamps> (changed now) to every volume's XML, as a dir pool reports them.
class FreshVolumes final : public virt::HypervisorWrapper {
 public:
  using HypervisorWrapper::HypervisorWrapper;
  std::string volume_xml(virStorageVol& volume) override {
    std::string text = HypervisorWrapper::volume_xml(volume);
    const std::string now = std::to_string(std::time(nullptr)) + ".5";
    const auto at = text.find("</target>");
    if (at != std::string::npos) {
      text.insert(at,
                  "<timestamps><mtime>" + now + "</mtime><ctime>" + now + "</ctime></timestamps>");
    }
    return text;
  }
};

TEST_F(CleanupTest, SparesOrphansChangedWithinMinAge) {
  FreshVolumes fresh{fake()};
  const auto before = volume_set();
  const auto spared = tools::cleanup_orphans(fresh, config(), options(600), false);
  EXPECT_EQ(as_set(spared.spared), orphans);
  EXPECT_TRUE(spared.deleted.empty());
  EXPECT_EQ(volume_set(), before);

  const auto deleted = tools::cleanup_orphans(fresh, config(), options(0), false);
  EXPECT_EQ(as_set(deleted.deleted), orphans);
}

// Lists no domains, as if our VM's domain were defined just after the listing: its volumes look
// orphaned to the inventory, but cleanup looks again before deleting and keeps them.
class LateDomainList final : public virt::HypervisorWrapper {
 public:
  using HypervisorWrapper::HypervisorWrapper;
  std::vector<std::string> list_domain_names() override { return {}; }
};

TEST_F(CleanupTest, RechecksEachOrphanRightBeforeDeletingIt) {
  LateDomainList late{fake()};
  const auto objects = tools::take_inventory(late, config(), options());
  ASSERT_TRUE(orphan_names(objects).count(vm.value + "-root"));

  const auto result = tools::cleanup_orphans(late, config(), options(), false);
  EXPECT_EQ(as_set(result.deleted), orphans);
  EXPECT_TRUE(volume_exists(vm.value + "-root"));
  EXPECT_TRUE(volume_exists(vm.value + "-config"));
}

TEST_F(CleanupTest, AnotherPrefixLeavesOurOrphansAlone) {
  auto theirs = config();
  theirs.libvirt.name_prefix = "p2-";
  const std::string their_orphan = "p2-" + cloud::new_vm_cid().value + "-root";
  make_volume(their_orphan);
  const auto before = volume_set();

  const auto result = tools::cleanup_orphans(fake(), theirs, options(), false);
  EXPECT_EQ(result.deleted, std::vector<std::string>{their_orphan});
  EXPECT_EQ(minus(before, volume_set()), std::set<std::string>{their_orphan});
}

TEST_F(CleanupTest, RunOnHostPrintsWhatItDidAsTextOrJson) {
  tools::ToolRequest request;
  request.tool = "cleanup";
  request.orphans = true;
  request.dry_run = true;
  request.min_age_seconds = 0;
  std::ostringstream text;
  EXPECT_EQ(tools::run_on_host(request, fake(), config(), host(), text), tools::k_exit_ok);
  EXPECT_NE(text.str().find("would delete  " + gone_vm.value + "-root"), std::string::npos)
      << text.str();

  request.dry_run = false;
  request.json = true;
  std::ostringstream json;
  EXPECT_EQ(tools::run_on_host(request, fake(), config(), host(), json), tools::k_exit_ok);
  const auto parsed = nlohmann::json::parse(json.str(), nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << json.str();
  EXPECT_EQ(parsed["deleted"].size(), orphans.size());
  EXPECT_TRUE(parsed["failed"].empty());
}

// create_vm killed after it defined the domain: the domain keeps the incomplete_since fact.
class UnfinishedVmTest : public CleanupTest {
 protected:
  void mark_incomplete(const cloud::VmCid& cid, std::int64_t since) {
    auto d = domain(cid.value);
    const auto text = fake().domain_metadata(*d, xml::k_metadata_ns);
    ASSERT_TRUE(text);
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(text->c_str()));
    auto facts = nlohmann::json::parse(doc.document_element().child_value("facts"));
    ASSERT_FALSE(facts.contains(xml::k_incomplete_since)) << "create_vm finished: no marker";
    facts[xml::k_incomplete_since] = since;
    pugi::xml_document written;  // as create_vm writes it: <vm xmlns=...><facts>JSON</facts>
    auto root = written.append_child("vm");
    root.append_attribute("xmlns") = xml::k_metadata_ns;
    root.append_child("facts").text() = facts.dump().c_str();
    std::ostringstream out;
    written.document_element().print(out, "", pugi::format_raw);
    fake().set_domain_metadata(*d, out.str(), xml::k_metadata_key, xml::k_metadata_ns);
  }
  static std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }
};

TEST_F(UnfinishedVmTest, OldUnfinishedVmIsRemovedWithItsVolumes) {
  const auto killed = create_vm(stemcell);
  mark_incomplete(killed, now() - 7200);
  const auto objects = inventory();
  const auto* flagged = find(objects, killed.value);
  ASSERT_NE(flagged, nullptr);
  EXPECT_TRUE(flagged->orphan);
  EXPECT_NE(flagged->orphan_reason.find("create_vm did not finish"), std::string::npos);
  EXPECT_FALSE(find(objects, vm.value)->orphan) << "a complete VM is no orphan";

  const auto result = cleanup();
  EXPECT_TRUE(result.failed.empty());
  EXPECT_TRUE(as_set(result.deleted).count(killed.value));
  const auto domains = domain_names();
  EXPECT_EQ(std::count(domains.begin(), domains.end(), killed.value), 0);
  for (const char* role : {"-root", "-ephemeral", "-config"}) {
    EXPECT_FALSE(volume_exists(killed.value + role)) << role;
  }
  for (const auto& name : precious()) EXPECT_TRUE(volume_exists(name)) << name;
}

TEST_F(UnfinishedVmTest, YoungUnfinishedVmIsSparedAndTheBoundIsConfigurable) {
  const auto running = create_vm(stemcell);
  mark_incomplete(running, now() - 60);
  auto result = cleanup();
  EXPECT_TRUE(as_set(result.spared).count(running.value));
  EXPECT_TRUE(volume_exists(running.value + "-root"));
  auto opts = options();
  opts.incomplete_age_seconds = 30;
  result = tools::cleanup_orphans(fake(), config(), opts, false);
  EXPECT_TRUE(as_set(result.deleted).count(running.value));
  EXPECT_FALSE(volume_exists(running.value + "-root"));
}

TEST_F(UnfinishedVmTest, UnfinishedVmWithAPersistentDiskIsKept) {
  mark_incomplete(vm, now() - 7200);  // `vm` has disk `attached` in its definition
  const auto result = cleanup();
  ASSERT_EQ(result.failed.size(), 1U);
  EXPECT_EQ(result.failed[0].first, vm.value);
  EXPECT_NE(result.failed[0].second.find("persistent disk"), std::string::npos);
  for (const auto& name : precious()) EXPECT_TRUE(volume_exists(name)) << name;
  const auto domains = domain_names();
  EXPECT_EQ(std::count(domains.begin(), domains.end(), vm.value), 1);
}

// What a create_stemcell killed during its upload leaves: the stemcell volume and its marker
// (and, killed earlier, a marker alone). Both go once the marker is old enough, the stemcell
// first; a complete stemcell is never touched.
TEST_F(CleanupTest, IncompleteStemcellGoesWithItsMarkerOnceOldEnough) {
  const std::string half = cloud::new_stemcell_cid().value;
  make_volume(half);
  make_volume(half + ".incomplete");
  const std::string lone_marker = cloud::new_stemcell_cid().value + ".incomplete";
  make_volume(lone_marker);
  const std::set<std::string> incomplete{half, half + ".incomplete", lone_marker};
  EXPECT_EQ(minus(orphan_names(inventory()), orphans), incomplete);

  FreshVolumes fresh{fake()};
  const auto spared = tools::cleanup_orphans(fresh, config(), options(600), false);
  EXPECT_TRUE(as_set(spared.spared).count(half)) << "a running create_stemcell is spared";
  EXPECT_TRUE(volume_exists(half));

  const auto result = cleanup();
  EXPECT_TRUE(result.failed.empty());
  EXPECT_EQ(minus(as_set(result.deleted), orphans), incomplete);
  const auto at = [&](const std::string& name) {
    return std::find(result.deleted.begin(), result.deleted.end(), name) - result.deleted.begin();
  };
  EXPECT_LT(at(half), at(half + ".incomplete")) << "the marker goes last";
  for (const auto& name : incomplete) EXPECT_FALSE(volume_exists(name)) << name;
  EXPECT_TRUE(volume_exists(stemcell.value));
}

}  // namespace
}  // namespace cpi::testing
