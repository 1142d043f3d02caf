#pragma once
// Hypervisor on the libvirt C API over one borrowed connection.

#include "cpi/virt/hypervisor.hpp"

namespace cpi::virt {

class LibvirtHypervisor final : public Hypervisor {
 public:
  explicit LibvirtHypervisor(virConnect& connection) : m_conn(connection) {}

  // libvirt_hypervisor_query.cpp: the connection and the host
  std::string uri() override;
  std::optional<std::string> domain_capabilities(const std::string& virt_type) override;
  HostVersions host_versions() override;
  std::string capabilities() override;
  int domain_state(virDomain& domain) override;

  // libvirt_hypervisor_storage.cpp (the streams: libvirt_hypervisor_streams.cpp)
  std::optional<Pool> find_pool(const std::string& name) override;
  std::vector<std::string> active_pool_names() override;
  Pool define_pool(const std::string& xml) override;
  void build_pool(virStoragePool& pool) override;
  void start_pool(virStoragePool& pool) override;
  void set_pool_autostart(virStoragePool& pool) override;
  void undefine_pool(virStoragePool& pool) override;
  PoolInfo pool_info(virStoragePool& pool) override;
  std::string pool_xml(virStoragePool& pool) override;

  std::optional<Volume> find_volume(virStoragePool& pool, const std::string& name) override;
  std::vector<std::string> list_volume_names(virStoragePool& pool) override;
  Volume create_volume(virStoragePool& pool, const std::string& xml) override;
  Volume clone_volume(virStoragePool& pool, const std::string& xml, virStorageVol& from) override;
  void upload_volume(virStorageVol& volume, ByteSource& source, std::uint64_t length,
                     bool sparse) override;
  std::string download_volume(virStorageVol& volume, std::uint64_t max_bytes) override;
  void copy_volume_bytes(virStorageVol& from, virStorageVol& to) override;
  void resize_volume(virStorageVol& volume, std::uint64_t capacity_bytes) override;
  void delete_volume(virStorageVol& volume) override;
  std::string volume_xml(virStorageVol& volume) override;
  std::string volume_path(virStorageVol& volume) override;
  VolumeInfo volume_info(virStorageVol& volume) override;

  // libvirt_hypervisor_domains.cpp: domains and networks
  std::optional<Domain> find_domain(const std::string& name) override;
  std::vector<std::string> list_domain_names() override;
  Domain define_domain(const std::string& xml) override;
  void start_domain(virDomain& domain) override;
  void destroy_domain(virDomain& domain) override;
  void shutdown_domain(virDomain& domain) override;
  void suspend_domain(virDomain& domain) override;
  void resume_domain(virDomain& domain) override;
  void undefine_domain(virDomain& domain) override;
  bool domain_active(virDomain& domain) override;
  std::string domain_xml(virDomain& domain, bool inactive) override;
  void set_domain_autostart(virDomain& domain) override;
  void set_domain_metadata(virDomain& domain, const std::string& xml, const std::string& key,
                           const std::string& ns_uri) override;
  std::optional<std::string> domain_metadata(virDomain& domain,
                                             const std::string& ns_uri) override;
  void set_domain_title(virDomain& domain, const std::string& title) override;
  void attach_device(virDomain& domain, const std::string& xml, bool live) override;
  void detach_device(virDomain& domain, const std::string& xml, bool live) override;
  void update_device(virDomain& domain, const std::string& xml, bool live) override;
  void detach_live_device(virDomain& domain, const std::string& xml) override;
  void block_resize(virDomain& domain, const std::string& target, std::uint64_t bytes) override;
  void block_copy(virDomain& domain, const std::string& target,
                  const std::string& dest_xml) override;
  std::optional<BlockJob> block_job(virDomain& domain, const std::string& target) override;
  void block_job_abort(virDomain& domain, const std::string& target) override;

  std::optional<Network> find_network(const std::string& name) override;
  bool network_active(virNetwork& network) override;
  void start_network(virNetwork& network) override;

 private:
  virConnect& m_conn;
};

}  // namespace cpi::virt
