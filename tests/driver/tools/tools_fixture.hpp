#pragma once
// ToolsFixture: DiskFixture plus a host populated the way a deployment leaves it, with orphans
// made on purpose, for the inspect and cleanup tests.
//   owned:   a stemcell; a VM (root, ephemeral, config) with disk `attached` attached and a
//            snapshot of it; a detached disk `detached` with metadata
//   orphans: root and config volumes of a VM whose domain does not exist (`gone_vm`),
//            a disk .meta without its disk, a snapshot .meta without its snapshot

#include <algorithm>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/tools/inspect.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {

class ToolsFixture : public DiskFixture {
 protected:
  void populate() {
    stemcell = create_stemcell();
    vm = create_vm(stemcell);
    attached = new_disk(32);
    cloud().attach_disk(vm, attached, 2);
    // A snapshot as snapshot_disk leaves one (made by hand: the test driver cannot copy).
    snapshot = cloud::new_snapshot_cid();
    make_volume(snapshot.value);
    write_meta(snapshot.value,
               {{"disk", attached.value}, {"metadata", {{"note", "before upgrade"}}}});
    detached = new_disk(16);
    cloud().set_disk_metadata(detached, {{"deployment", "cf"}, {"instance_group", "db"}});

    gone_vm = cloud::new_vm_cid();
    orphans = {gone_vm.value + "-root", gone_vm.value + "-config",
               cloud::new_disk_cid().value + ".meta", cloud::new_snapshot_cid().value + ".meta"};
    for (const auto& name : orphans) make_volume(name);
  }

  // A 1 MiB raw volume made with the raw API, as a crashed CPI call would leave it.
  void make_volume(const std::string& name, const std::string& pool_name = k_pool) {
    const std::string xml = "<volume><name>" + name +
                            "</name><capacity unit='bytes'>1048576</capacity>"
                            "<target><format type='raw'/></target></volume>";
    auto p = pool(pool_name);
    virt::Volume made{virStorageVolCreateXML(p.get(), xml.c_str(), 0)};
    ASSERT_TRUE(made) << "cannot create volume " << name;
  }

  // `<name>.meta` holding `meta`, written through the fake (which keeps uploads in memory).
  void write_meta(const std::string& name, const nlohmann::json& meta) {
    class Source final : public virt::ByteSource {
     public:
      explicit Source(std::string bytes) : m_bytes(std::move(bytes)) {}
      std::size_t read(char* buffer, std::size_t size) override {
        const std::size_t n = std::min(size, m_bytes.size() - m_pos);
        std::copy_n(m_bytes.data() + m_pos, n, buffer);
        m_pos += n;
        return n;
      }

     private:
      std::string m_bytes;
      std::size_t m_pos = 0;
    };
    make_volume(name + ".meta");
    auto volume = this->volume(name + ".meta");
    Source source{meta.dump()};
    fake().upload_volume(*volume, source, meta.dump().size(), false);
  }

  static tools::InventoryOptions options(std::int64_t min_age = 0) {
    return {static_cast<std::int64_t>(std::time(nullptr)), min_age};
  }

  std::vector<tools::OwnedObject> inventory(const config::Config& with) {
    return tools::take_inventory(fake(), with, options());
  }
  std::vector<tools::OwnedObject> inventory() { return inventory(config()); }

  static std::set<std::string> orphan_names(const std::vector<tools::OwnedObject>& objects) {
    std::set<std::string> out;
    for (const auto& object : objects) {
      if (object.orphan) out.insert(object.name);
    }
    return out;
  }

  static const tools::OwnedObject* find(const std::vector<tools::OwnedObject>& objects,
                                        const std::string& name) {
    for (const auto& object : objects) {
      if (object.name == name) return &object;
    }
    return nullptr;
  }

  static tools::HostContext host() { return {"test:///default", "test"}; }

  std::set<std::string> volume_set() {
    const auto names = volume_names();
    return {names.begin(), names.end()};
  }

  cloud::StemcellCid stemcell;
  cloud::VmCid vm;
  cloud::VmCid gone_vm;
  cloud::DiskCid attached;
  cloud::DiskCid detached;
  cloud::SnapshotCid snapshot;
  std::set<std::string> orphans;
};

}  // namespace cpi::testing
