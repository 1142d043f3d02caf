#pragma once
// The e2e tier's libvirt environment (a GoogleTest global Environment, implemented and
// registered in tests/e2e/environment.cpp): the daemons, a dedicated `dir` pool in a temp dir, an
// isolated network with no <ip> (no host address, no dnsmasq: the guest can reach nothing), the
// domain type to use, and the test stemcell. Everything it made is removed in TearDown, also after
// a failed test; daemons are stopped only when it started them. When no libvirtd can be started at
// all, unavailable() says why and every test skips with that message.

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "cpi/virt/handles.hpp"
#include "e2e/support/e2e_host.hpp"

namespace cpi::testing::e2e {

constexpr const char* k_uri = "qemu:///system";
constexpr const char* k_name_root = "cpie2e-";  // every libvirt name of the tier starts so
constexpr const char* k_console_dir = "/var/log/libvirt/qemu";

inline std::string random_hex(std::size_t n) {
  std::string hex = read_text("/proc/sys/kernel/random/uuid");
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  return hex.substr(0, n);
}

// One timed phase of one test, printed in a table when the run ends.
struct Phase {
  std::string test, phase;
  double seconds;
};

class Environment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;

  // Empty when the tier can run; else why not (no libvirtd could be started).
  const std::string& unavailable() const { return m_unavailable; }
  // A live connection (reopened after a libvirtd restart).
  virConnect& conn();
  void reconnect();
  const std::string& prefix() const { return m_prefix; }  // "cpie2e-<8 hex>-"
  const std::string& pool_name() const { return m_pool; }
  const std::string& network_name() const { return m_network; }
  const std::string& domain_type() const { return m_domain_type; }
  const std::filesystem::path& root() const { return m_root; }  // temp dir, pool inside
  const std::filesystem::path& stemcell_dir() const { return m_stemcell_dir; }

  // Destroys and removes every domain and volume whose name starts with `prefix`, and the
  // console logs of those domains. Returns what it removed ("domain x", "volume y").
  std::vector<std::string> remove_objects(const std::string& prefix);

  void record(const std::string& phase, double seconds);
  void print_phases() const;

 private:
  bool start_daemons(std::string& why);
  void remove_stale_runs();
  void choose_domain_type();
  void make_pool();
  void make_network();
  void build_stemcell();

  HostLock m_lock;
  Daemon m_virtlogd{"virtlogd"}, m_libvirtd{"libvirtd"};
  virt::Connection m_conn;
  std::string m_unavailable;
  std::string m_prefix, m_pool, m_network, m_domain_type, m_domain_type_reason;
  std::filesystem::path m_root, m_stemcell_dir;
  bool m_pool_made = false, m_network_made = false;
  std::vector<Phase> m_phases;
};

// The one environment of the process.
Environment& env();

}  // namespace cpi::testing::e2e
