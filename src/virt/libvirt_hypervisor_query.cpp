// LibvirtHypervisor: the read-only host queries the operator tools use (cpi doctor, inspect,
// cleanup). Kept apart from libvirt_hypervisor.cpp, which holds what the CPI methods call.

#include <libvirt/virterror.h>

#include <string>

#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::virt {

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
