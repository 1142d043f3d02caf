// How many requests each CPI method sends to libvirtd: the calls BOSH makes all the time
// (has_vm, has_disk, get_disks, create_disk, set_vm_metadata) cost one process start and these
// requests (docs/performance.md), so one more is a regression these tests catch. The requests
// are the Hypervisor methods called (FakeHypervisor::requests(); on a remote connection each is
// one request, with the exceptions virt/hypervisor.hpp lists). Each call runs on a fresh cloud,
// as in its own `cpi` process; the checks of ownership and kind stay in every path.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "support/cpi_error.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {
namespace {

using Requests = std::vector<std::string>;

class RequestsTest : public DiskFixture {
 protected:
  // The requests `call` makes on a new cloud (nothing cached from earlier calls).
  template <typename F>
  Requests requests_of(F&& call) {
    auto fresh = new_cloud();
    fake().reset_requests();
    call(*fresh);
    return fake().requests();
  }

  void stop_pool() {
    auto p = pool();
    ASSERT_EQ(virStoragePoolDestroy(p.get()), 0);
  }

  void stop_vm(const cloud::VmCid& vm) {
    auto d = domain(names().domain(vm));
    ASSERT_EQ(virDomainDestroy(d.get()), 0);
  }

  const cloud::Names& names() { return cloud().names(); }

  // The <title> of the domain's persistent or live definition.
  std::string title(const cloud::VmCid& vm, bool inactive) {
    pugi::xml_document doc;
    doc.load_string(domain_xml(names().domain(vm), inactive).c_str());
    return doc.child("domain").child_value("title");
  }
};

TEST_F(RequestsTest, HasVmLooksTheDomainUpAndReadsOurMetadata) {
  const auto vm = new_vm();
  EXPECT_EQ(requests_of([&](auto& c) { EXPECT_TRUE(c.has_vm(vm)); }),
            (Requests{"find_domain", "domain_metadata"}));
  EXPECT_EQ(requests_of([&](auto& c) { EXPECT_FALSE(c.has_vm(cloud::new_vm_cid())); }),
            (Requests{"find_domain"}));
}

TEST_F(RequestsTest, HasDiskLooksUpThePoolAndTheVolume) {
  const auto disk = new_disk(16);
  EXPECT_EQ(requests_of([&](auto& c) { EXPECT_TRUE(c.has_disk(disk)); }),
            (Requests{"find_pool", "find_volume"}));
}

TEST_F(RequestsTest, HasDiskOfAMissingDiskAlsoLooksForItsPoolRecord) {
  EXPECT_EQ(requests_of([&](auto& c) { EXPECT_FALSE(c.has_disk(cloud::new_disk_cid())); }),
            (Requests{"find_pool", "find_volume", "find_volume"}));
}

// The pool's state is read only when the pool refuses the lookup, for the operator's hint.
TEST_F(RequestsTest, HasDiskInAnInactivePoolSaysHowToStartIt) {
  const auto disk = new_disk(16);
  stop_pool();
  const auto message = error_of<CloudError>([&] { new_cloud()->has_disk(disk); });
  EXPECT_NE(message.find("storage pool 'default-pool' is inactive"), std::string::npos) << message;
  EXPECT_NE(message.find("virsh pool-start default-pool"), std::string::npos) << message;
}

// Next to a VM (as the director asks): the definition gives both our mark and the VM's pool;
// the pool's XML gives its type and free space.
TEST_F(RequestsTest, CreateDiskNextToAVmReadsItsDefinitionAndThePoolXml) {
  const auto vm = new_vm();
  EXPECT_EQ(requests_of([&](auto& c) { c.create_disk(16, nullptr, vm); }),
            (Requests{"find_domain", "domain_xml", "find_pool", "pool_xml", "create_volume"}));
  EXPECT_EQ(requests_of([&](auto& c) { c.create_disk(16, nullptr, std::nullopt); }),
            (Requests{"find_pool", "pool_xml", "create_volume"}));
}

TEST_F(RequestsTest, CreateDiskNextToADomainNotOursIsRefused) {
  const auto vm = new_vm();
  auto d = domain(names().domain(vm));
  ASSERT_EQ(virDomainSetMetadata(d.get(), VIR_DOMAIN_METADATA_ELEMENT, nullptr,
                                 xml::k_metadata_key, xml::k_metadata_ns,
                                 VIR_DOMAIN_AFFECT_CONFIG),
            0);
  const auto before = volume_names();
  EXPECT_THROW(new_cloud()->create_disk(16, nullptr, vm), CpiError);
  EXPECT_EQ(volume_names(), before);
}

TEST_F(RequestsTest, CreateDiskInAnInactivePoolSaysHowToStartIt) {
  stop_pool();
  const auto message =
      error_of<CloudError>([&] { new_cloud()->create_disk(16, nullptr, std::nullopt); });
  EXPECT_NE(message.find("storage pool 'default-pool' is inactive"), std::string::npos) << message;
  EXPECT_NE(message.find("virsh pool-start default-pool"), std::string::npos) << message;
}

// A pool without the room for a raw disk: NoDiskSpace, as before the room came from its XML.
TEST_F(RequestsTest, CreateDiskLargerThanThePoolsFreeSpaceIsNoDiskSpace) {
  auto p = pool();
  virStoragePoolInfo info{};
  ASSERT_EQ(virStoragePoolGetInfo(p.get(), &info), 0);
  const auto too_big = static_cast<std::int64_t>(info.available / k_mib) + 1;
  const auto before = volume_names();
  EXPECT_THROW(new_cloud()->create_disk(too_big, {{"format", "raw"}}, std::nullopt),
               NoDiskSpace);
  EXPECT_EQ(volume_names(), before);
}

TEST_F(RequestsTest, SetVmMetadataReadsTheFactsOnceAndWritesFactsAndTitle) {
  const auto vm = new_vm();
  const Requests want{"find_domain", "domain_metadata", "set_domain_metadata",
                      "set_domain_title"};
  const nlohmann::json running{{"deployment", "d"}, {"job", "web"}, {"index", "0"}};
  EXPECT_EQ(requests_of([&](auto& c) { c.set_vm_metadata(vm, running); }), want);
  EXPECT_EQ(metadata_facts(vm)["metadata"], running);
  EXPECT_EQ(title(vm, true), "d/web/0");
  EXPECT_EQ(title(vm, false), "d/web/0");  // the running domain's live definition too
  stop_vm(vm);
  const nlohmann::json stopped{{"deployment", "d"}, {"job", "web"}, {"index", "1"}};
  EXPECT_EQ(requests_of([&](auto& c) { c.set_vm_metadata(vm, stopped); }), want);
  EXPECT_EQ(metadata_facts(vm)["metadata"], stopped);
  EXPECT_EQ(title(vm, true), "d/web/1");
  EXPECT_EQ(metadata_facts(vm)["agent_id"], "agent-1");  // the other facts stay
}

// The running state comes from the domain handle's lookup: a domain stopped since refuses the
// live part, and the change still reaches the persistent definition.
TEST_F(RequestsTest, MetadataOfADomainStoppedAfterItsLookupIsStillWritten) {
  const auto vm = new_vm();
  auto stale = domain(names().domain(vm));  // looked up while it runs
  stop_vm(vm);
  virt::LibvirtHypervisor hv{conn()};
  hv.set_domain_title(*stale, "after the stop");
  EXPECT_EQ(title(vm, true), "after the stop");
}

TEST_F(RequestsTest, GetDisksReadsOnlyTheDefinition) {
  const auto vm = new_vm();
  const auto disk = new_disk(16);
  cloud().attach_disk(vm, disk, 2);
  std::vector<cloud::DiskCid> disks;
  EXPECT_EQ(requests_of([&](auto& c) { disks = c.get_disks(vm); }),
            (Requests{"find_domain", "domain_xml"}));
  ASSERT_EQ(disks.size(), 1U);
  EXPECT_EQ(disks[0].value, disk.value);
}

// attach_disk of a new disk (no record yet) to a VM that is not running, as bench/
// lookups_bench.py runs it (its floor makes these requests, but not yet the scan of every
// domain). The record is written before the device change (the intent) and after it; each write
// reads the record first.
TEST_F(RequestsTest, AttachDiskToAStoppedVm) {
  const auto vm = new_vm();
  const auto disk = new_disk(16);
  stop_vm(vm);
  auto requests = requests_of([&](auto& c) { c.attach_disk(vm, disk, 2); });
  // The scan of every domain for one holding the disk (domains_holding): the test driver's own
  // running domain (its persistent and live definitions) and this one, stopped (its persistent
  // one), in the order libvirt lists them.
  const auto scan = std::find(requests.begin(), requests.end(), "list_domain_names");
  ASSERT_NE(scan, requests.end());
  const auto scan_end = scan + std::min<std::ptrdiff_t>(8, requests.end() - scan);
  Requests scanned(scan, scan_end);
  std::sort(scanned.begin(), scanned.end());
  EXPECT_EQ(scanned, (Requests{"domain_active", "domain_active", "domain_xml", "domain_xml",
                               "domain_xml", "find_domain", "find_domain", "list_domain_names"}));
  requests.erase(scan, scan_end);
  EXPECT_EQ(requests,
            (Requests{"find_domain", "domain_metadata",                  // ours
                      "find_pool", "find_volume", "volume_path",         // the disk
                      "find_volume",                                     // its record: none yet
                      "domain_xml", "volume_xml", "domain_active",       // targets and format
                      "find_volume", "create_volume", "upload_volume",   // the intent
                      "attach_device",                                   // (+ its state read)
                      "find_volume", "download_volume", "volume_info",   // the record
                      "upload_volume"}));
  EXPECT_EQ(count_serial(vm, disk.value), 1U);
}

TEST_F(RequestsTest, DeleteVmWithoutPersistentDisks) {
  const auto vm = new_vm();
  EXPECT_EQ(requests_of([&](auto& c) { c.delete_vm(vm); }),
            (Requests{"find_domain", "domain_xml",  // ours, its facts and disks: one read
                      "find_pool", "pool_info",     // the pool, before anything is removed
                      "domain_active", "destroy_domain", "undefine_domain",
                      "find_volume", "delete_volume",   // root
                      "find_volume", "delete_volume",   // ephemeral
                      "find_volume", "delete_volume",   // config drive
                      "find_volume",                    // no config drive record
                      "find_volume"}));                 // the stemcell is not marked deleted
  const auto left = domain_names();
  EXPECT_EQ(std::count(left.begin(), left.end(), names().domain(vm)), 0);
}

}  // namespace
}  // namespace cpi::testing
