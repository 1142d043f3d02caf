#include "cpi/cloud/libvirt_cloud.hpp"

#include <spdlog/spdlog.h>

#include "cpi/errors.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::cloud {
namespace {

// Owns the connection, its scratch files and the hypervisor the cloud borrows.
class OwningCloud final : public Cloud {
 public:
  explicit OwningCloud(const config::Config& config)
      : m_open(virt::open_connection(config.libvirt)),
        m_hypervisor(*m_open.connection),
        m_cloud(m_hypervisor, config) {
    spdlog::debug("connected to {}", m_open.target.display_uri);
  }

  StemcellCid create_stemcell(const std::string& p, const nlohmann::json& c) override {
    return m_cloud.create_stemcell(p, c);
  }
  void delete_stemcell(const StemcellCid& c) override { m_cloud.delete_stemcell(c); }
  CreatedVm create_vm(const VmRequest& r) override { return m_cloud.create_vm(r); }
  void delete_vm(const VmCid& c) override { m_cloud.delete_vm(c); }
  bool has_vm(const VmCid& c) override { return m_cloud.has_vm(c); }
  void reboot_vm(const VmCid& c) override { m_cloud.reboot_vm(c); }
  void set_vm_metadata(const VmCid& c, const nlohmann::json& m) override {
    m_cloud.set_vm_metadata(c, m);
  }
  DiskCid create_disk(std::int64_t s, const nlohmann::json& c,
                      const std::optional<VmCid>& v) override {
    return m_cloud.create_disk(s, c, v);
  }
  void delete_disk(const DiskCid& c) override { m_cloud.delete_disk(c); }
  bool has_disk(const DiskCid& c) override { return m_cloud.has_disk(c); }
  nlohmann::json attach_disk(const VmCid& v, const DiskCid& d, int a) override {
    return m_cloud.attach_disk(v, d, a);
  }
  void detach_disk(const VmCid& v, const DiskCid& d, int a) override {
    m_cloud.detach_disk(v, d, a);
  }
  std::vector<DiskCid> get_disks(const VmCid& v) override { return m_cloud.get_disks(v); }
  void resize_disk(const DiskCid& c, std::int64_t s) override { m_cloud.resize_disk(c, s); }
  void set_disk_metadata(const DiskCid& c, const nlohmann::json& m) override {
    m_cloud.set_disk_metadata(c, m);
  }
  SnapshotCid snapshot_disk(const DiskCid& c, const nlohmann::json& m) override {
    return m_cloud.snapshot_disk(c, m);
  }
  void delete_snapshot(const SnapshotCid& c) override { m_cloud.delete_snapshot(c); }

 private:
  virt::OpenConnection m_open;
  virt::LibvirtHypervisor m_hypervisor;
  LibvirtCloud m_cloud;
};

}  // namespace

LibvirtCloud::LibvirtCloud(virt::Hypervisor& hypervisor, config::Config config)
    : m_hv(hypervisor), m_config(std::move(config)), m_names(m_config.libvirt.name_prefix) {}

std::string LibvirtCloud::object_name(const std::string& cid) const {
  const auto parsed = parse_unprefixed(cid);
  if (parsed && parsed->cid == cid) {
    switch (parsed->kind) {
      case NameKind::stemcell:
        return m_names.stemcell({cid});
      case NameKind::vm:
        return m_names.domain({cid});
      case NameKind::disk:
        return m_names.disk({cid});
      case NameKind::snapshot:
        return m_names.snapshot({cid});
      default:
        break;
    }
  }
  throw CpiError(quote_text(cid) + " is not a CID of this CPI; nothing was touched");
}

// virt's errors at the boundary: a connection failure is a LibvirtError, already the CloudError
// BOSH gets; settings no URI can be built from are the operator's config: CpiError.
std::unique_ptr<Cloud> open_libvirt_cloud(const config::Config& config) {
  try {
    return std::make_unique<OwningCloud>(config);
  } catch (const virt::InvalidSettings& e) {
    throw CpiError(e.what());
  }
}

}  // namespace cpi::cloud
