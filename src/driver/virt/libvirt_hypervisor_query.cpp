// LibvirtHypervisor: the connection's and the host's read-only queries (the operator tools, cpi
// doctor, inspect and cleanup, use most of them). Domains are in libvirt_hypervisor_domains.cpp,
// storage in libvirt_hypervisor_storage.cpp and libvirt_hypervisor_streams.cpp.

#include <libvirt/virterror.h>

#include <string>

#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"
#include "object_names.hpp"

namespace cpi::virt {

std::string LibvirtHypervisor::uri() {
  return take_string(virConnectGetURI(&m_conn), "reading the connection URI");
}

std::optional<std::string> LibvirtHypervisor::domain_capabilities(const std::string& virt_type) {
  char* xml =
      virConnectGetDomainCapabilities(&m_conn, nullptr, nullptr, nullptr, virt_type.c_str(), 0);
  if (xml == nullptr) {
    virResetLastError();
    return std::nullopt;
  }
  OwnedCString owned{xml};
  return std::string{owned.get()};
}

HostVersions LibvirtHypervisor::host_versions() {
  HostVersions out;
  if (const char* type = virConnectGetType(&m_conn); type != nullptr) {
    out.type = type;
  } else {
    fail("reading the hypervisor type");
  }
  unsigned long version = 0;  // NOLINT(runtime/int): libvirt's type
  if (virConnectGetVersion(&m_conn, &version) == 0) {
    out.hypervisor = version;
  } else {
    virResetLastError();  // some drivers have no version of their own
  }
  unsigned long lib_version = 0;  // NOLINT(runtime/int)
  if (virConnectGetLibVersion(&m_conn, &lib_version) < 0) {
    fail("reading the libvirt version");
  }
  out.libvirt = lib_version;
  return out;
}

std::string LibvirtHypervisor::capabilities() {
  return take_string(virConnectGetCapabilities(&m_conn), "reading the host capabilities");
}

int LibvirtHypervisor::domain_state(virDomain& domain) {
  int state = VIR_DOMAIN_NOSTATE;
  int reason = 0;
  check(virDomainGetState(&domain, &state, &reason, 0),
        [&] { return "reading the state of domain '" + name_of(domain) + "'"; });
  return state;
}

}  // namespace cpi::virt
