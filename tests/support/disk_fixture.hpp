#pragma once
// DiskFixture: TestDriver plus the helpers the persistent-disk tests share (disks_test.cpp,
// vm_disks_test.cpp): VMs on a stemcell imported on first use, disks, a second storage pool,
// and readers for the domain's disks and a `.meta` volume.

#include <libvirt/libvirt.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/cloud/meta_record.hpp"
#include "support/test_driver.hpp"

namespace cpi::testing {

constexpr const char* k_other_pool = "other-pool";

class DiskFixture : public TestDriver {
 protected:
  // A VM on a stemcell imported on first use.
  cloud::VmCid new_vm() {
    if (!m_stemcell) m_stemcell = create_stemcell();
    return create_vm(*m_stemcell);
  }

  cloud::DiskCid new_disk(std::int64_t size_mib = 64,
                          const nlohmann::json& cloud_properties = nullptr) {
    return cloud().create_disk(size_mib, cloud_properties, std::nullopt);
  }

  // A second active dir pool in the test driver.
  void define_other_pool() {
    const std::string xml = std::string{"<pool type='dir'><name>"} + k_other_pool +
                            "</name><target><path>/" + k_other_pool + "</path></target></pool>";
    virt::Pool other{virStoragePoolDefineXML(&conn(), xml.c_str(), 0)};
    ASSERT_TRUE(other);
    ASSERT_EQ(virStoragePoolCreate(other.get(), 0), 0);
  }

  // The <disk> elements of the domain whose <serial> is `serial`.
  static std::vector<pugi::xml_node> disks_with_serial(const pugi::xml_document& doc,
                                                       const std::string& serial) {
    std::vector<pugi::xml_node> found;
    for (auto disk : doc.child("domain").child("devices").children("disk")) {
      if (serial == disk.child_value("serial")) found.push_back(disk);
    }
    return found;
  }

  std::size_t count_serial(const cloud::VmCid& vm, const std::string& serial,
                           bool inactive = true) {
    pugi::xml_document doc;
    doc.load_string(domain_xml(vm.value, inactive).c_str());
    return disks_with_serial(doc, serial).size();
  }

  static std::set<std::string> cids(const std::vector<cloud::DiskCid>& disks) {
    std::set<std::string> out;
    for (const auto& d : disks) out.insert(d.value);
    return out;
  }

  // The JSON a `.meta` volume holds, as the fake stores its bytes.
  nlohmann::json meta_of(const std::string& name, const std::string& pool_name = k_pool) {
    const auto upload = fake().uploaded(volume_path(name + ".meta", pool_name));
    if (!upload) return nullptr;
    return cloud::decode_meta(upload->bytes).record;
  }

  std::uint64_t capacity_of(const std::string& name) {
    auto v = volume(name);
    return fake().volume_info(*v).capacity;
  }

 private:
  std::optional<cloud::StemcellCid> m_stemcell;
};

}  // namespace cpi::testing
