// LibvirtHypervisor: the read-only host queries the operator tools use (cpi doctor, inspect,
// cleanup). Kept apart from libvirt_hypervisor.cpp, which holds what the CPI methods call.

#include <libvirt/virterror.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::virt {
namespace {

bool starts_with(const char* name, const std::string& prefix) {
  return name != nullptr && std::string_view{name}.substr(0, prefix.size()) == prefix;
}

}  // namespace

HostVersions LibvirtHypervisor::host_versions() {
  HostVersions out;
  if (const char* type = virConnectGetType(&m_conn); type != nullptr) {
    out.type = type;
  } else {
    throw_last_error("reading the hypervisor type");
  }
  unsigned long version = 0;  // NOLINT(runtime/int): libvirt's type
  if (virConnectGetVersion(&m_conn, &version) == 0) {
    out.hypervisor = version;
  } else {
    virResetLastError();  // some drivers have no version of their own
  }
  unsigned long lib_version = 0;  // NOLINT(runtime/int)
  if (virConnectGetLibVersion(&m_conn, &lib_version) < 0) {
    throw_last_error("reading the libvirt version");
  }
  out.libvirt = lib_version;
  return out;
}

std::string LibvirtHypervisor::capabilities() {
  char* xml = virConnectGetCapabilities(&m_conn);
  if (xml == nullptr) {
    throw_last_error("reading the host capabilities");
  }
  OwnedCString owned{xml};
  return owned.get();
}

std::vector<std::string> LibvirtHypervisor::domain_names(const std::string& prefix) {
  virDomainPtr* list = nullptr;
  const int count = virConnectListAllDomains(&m_conn, &list, 0);
  if (count < 0) {
    throw_last_error("listing domains");
  }
  std::vector<Domain> owned;
  for (int i = 0; i < count; ++i) {
    owned.emplace_back(list[i]);
  }
  std::free(list);
  std::vector<std::string> names;
  for (auto& domain : owned) {
    const char* name = virDomainGetName(domain.get());
    if (starts_with(name, prefix)) {
      names.emplace_back(name);
    }
  }
  return names;
}

std::vector<std::string> LibvirtHypervisor::volume_names(virStoragePool& pool,
                                                         const std::string& prefix) {
  virStorageVolPtr* list = nullptr;
  const int count = virStoragePoolListAllVolumes(&pool, &list, 0);
  if (count < 0) {
    const char* pool_name = virStoragePoolGetName(&pool);
    throw_last_error(std::string{"listing the volumes of pool '"} +
                     (pool_name != nullptr ? pool_name : "?") + "'");
  }
  std::vector<Volume> owned;
  for (int i = 0; i < count; ++i) {
    owned.emplace_back(list[i]);
  }
  std::free(list);
  std::vector<std::string> names;
  for (auto& volume : owned) {
    const char* name = virStorageVolGetName(volume.get());
    if (starts_with(name, prefix)) {
      names.emplace_back(name);
    }
  }
  return names;
}

int LibvirtHypervisor::domain_state(virDomain& domain) {
  int state = VIR_DOMAIN_NOSTATE;
  int reason = 0;
  if (virDomainGetState(&domain, &state, &reason, 0) < 0) {
    const char* name = virDomainGetName(&domain);
    throw_last_error(std::string{"reading the state of domain '"} + (name ? name : "?") + "'");
  }
  return state;
}

}  // namespace cpi::virt
