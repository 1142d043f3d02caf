#pragma once
// HypervisorWrapper: forwards every call to another Hypervisor (leveldb's EnvWrapper), so a test
// double overrides only the few calls it changes (FakeHypervisor, the witnesses of some driver
// tests). Test code only: the product declares the seam once (virt/hypervisor.hpp) and
// implements it once (virt/libvirt_hypervisor.hpp).

#include "cpi/virt/hypervisor.hpp"

namespace cpi::virt {

class HypervisorWrapper : public Hypervisor {
 public:
  explicit HypervisorWrapper(Hypervisor& target) : m_target(target) {}

  std::string uri() override { return m_target.uri(); }
  std::optional<std::string> domain_capabilities(const std::string& t) override {
    return m_target.domain_capabilities(t);
  }
  HostVersions host_versions() override { return m_target.host_versions(); }
  std::string capabilities() override { return m_target.capabilities(); }
  int domain_state(virDomain& d) override { return m_target.domain_state(d); }
  std::optional<Pool> find_pool(const std::string& n) override { return m_target.find_pool(n); }
  std::vector<std::string> active_pool_names() override { return m_target.active_pool_names(); }
  Pool define_pool(const std::string& x) override { return m_target.define_pool(x); }
  void build_pool(virStoragePool& p) override { m_target.build_pool(p); }
  void start_pool(virStoragePool& p) override { m_target.start_pool(p); }
  void set_pool_autostart(virStoragePool& p) override { m_target.set_pool_autostart(p); }
  void undefine_pool(virStoragePool& p) override { m_target.undefine_pool(p); }
  PoolInfo pool_info(virStoragePool& p) override { return m_target.pool_info(p); }
  std::string pool_xml(virStoragePool& p) override { return m_target.pool_xml(p); }
  std::optional<Volume> find_volume(virStoragePool& p, const std::string& n) override {
    return m_target.find_volume(p, n);
  }
  std::vector<std::string> list_volume_names(virStoragePool& p) override {
    return m_target.list_volume_names(p);
  }
  std::vector<std::string> list_domain_names() override { return m_target.list_domain_names(); }
  Volume create_volume(virStoragePool& p, const std::string& x) override {
    return m_target.create_volume(p, x);
  }
  Volume clone_volume(virStoragePool& p, const std::string& x, virStorageVol& f) override {
    return m_target.clone_volume(p, x, f);
  }
  void upload_volume(virStorageVol& v, ByteSource& s, std::uint64_t l, bool sp) override {
    m_target.upload_volume(v, s, l, sp);
  }
  std::string download_volume(virStorageVol& v, std::uint64_t m) override {
    return m_target.download_volume(v, m);
  }
  void copy_volume_bytes(virStorageVol& f, virStorageVol& t) override {
    m_target.copy_volume_bytes(f, t);
  }
  void resize_volume(virStorageVol& v, std::uint64_t c) override { m_target.resize_volume(v, c); }
  void delete_volume(virStorageVol& v) override { m_target.delete_volume(v); }
  std::string volume_xml(virStorageVol& v) override { return m_target.volume_xml(v); }
  std::string volume_path(virStorageVol& v) override { return m_target.volume_path(v); }
  VolumeInfo volume_info(virStorageVol& v) override { return m_target.volume_info(v); }
  std::optional<Domain> find_domain(const std::string& n) override {
    return m_target.find_domain(n);
  }
  Domain define_domain(const std::string& x) override { return m_target.define_domain(x); }
  void start_domain(virDomain& d) override { m_target.start_domain(d); }
  void destroy_domain(virDomain& d) override { m_target.destroy_domain(d); }
  void shutdown_domain(virDomain& d) override { m_target.shutdown_domain(d); }
  void suspend_domain(virDomain& d) override { m_target.suspend_domain(d); }
  void resume_domain(virDomain& d) override { m_target.resume_domain(d); }
  void undefine_domain(virDomain& d) override { m_target.undefine_domain(d); }
  bool domain_active(virDomain& d) override { return m_target.domain_active(d); }
  std::string domain_xml(virDomain& d, bool i) override { return m_target.domain_xml(d, i); }
  void set_domain_autostart(virDomain& d) override { m_target.set_domain_autostart(d); }
  void set_domain_metadata(virDomain& d, const std::string& x, const std::string& k,
                           const std::string& u) override {
    m_target.set_domain_metadata(d, x, k, u);
  }
  std::optional<std::string> domain_metadata(virDomain& d, const std::string& u) override {
    return m_target.domain_metadata(d, u);
  }
  void set_domain_title(virDomain& d, const std::string& t) override {
    m_target.set_domain_title(d, t);
  }
  void attach_device(virDomain& d, const std::string& x, bool l) override {
    m_target.attach_device(d, x, l);
  }
  void detach_device(virDomain& d, const std::string& x, bool l) override {
    m_target.detach_device(d, x, l);
  }
  void update_device(virDomain& d, const std::string& x, bool l) override {
    m_target.update_device(d, x, l);
  }
  void detach_live_device(virDomain& d, const std::string& x) override {
    m_target.detach_live_device(d, x);
  }
  void block_resize(virDomain& d, const std::string& t, std::uint64_t b) override {
    m_target.block_resize(d, t, b);
  }
  void block_copy(virDomain& d, const std::string& t, const std::string& x) override {
    m_target.block_copy(d, t, x);
  }
  std::optional<BlockJob> block_job(virDomain& d, const std::string& t) override {
    return m_target.block_job(d, t);
  }
  void block_job_abort(virDomain& d, const std::string& t) override {
    m_target.block_job_abort(d, t);
  }
  std::optional<Network> find_network(const std::string& n) override {
    return m_target.find_network(n);
  }
  bool network_active(virNetwork& n) override { return m_target.network_active(n); }
  void start_network(virNetwork& n) override { m_target.start_network(n); }

 protected:
  Hypervisor& target() { return m_target; }

 private:
  Hypervisor& m_target;
};

}  // namespace cpi::virt
