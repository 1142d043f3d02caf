// LibvirtHypervisor: domains (definitions, power, metadata, devices, block jobs) and networks.
// Storage is in libvirt_hypervisor_storage.cpp and libvirt_hypervisor_streams.cpp, the host
// queries in libvirt_hypervisor_query.cpp.

#include <libvirt/virterror.h>

#include <cstdlib>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"
#include "object_names.hpp"

namespace cpi::virt {
namespace {

unsigned int device_flags(virDomain& domain, bool live) {
  unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
  if (live && virDomainIsActive(&domain) == 1) {
    flags |= VIR_DOMAIN_AFFECT_LIVE;
  }
  return flags;
}

// A metadata change (virDomainSetMetadata through `set`, given the flags) to the persistent
// definition and, when the domain runs, to the live one. Whether it runs is read from the
// handle's id, which the lookup returned (no call to the daemon). A domain that stopped since
// refuses the live part: the change then goes to the persistent definition alone. One that
// started since keeps its old live metadata until it restarts; the persistent definition, the
// one the CPI reads, is written either way.
template <typename Set>
void change_metadata(virDomain& domain, const char* what, Set&& set) {
  const std::string action = std::string{what} + " '" + name_of(domain) + "'";
  const bool running = virDomainGetID(&domain) != static_cast<unsigned int>(-1);
  const unsigned int config = VIR_DOMAIN_AFFECT_CONFIG;
  if (set(running ? config | VIR_DOMAIN_AFFECT_LIVE : config) == 0) return;
  if (running && last_error_code() == VIR_ERR_OPERATION_INVALID) {
    const CopiedError refusal = take_last_error();  // the next call resets it
    if (virDomainIsActive(&domain) == 0) {
      check(set(config), action);
      return;
    }
    throw LibvirtError(refusal.code, action + ": " + refusal.message);
  }
  fail(action);
}

}  // namespace

std::optional<Domain> LibvirtHypervisor::find_domain(const std::string& name) {
  return found_or_none(Domain{virDomainLookupByName(&m_conn, name.c_str())}, VIR_ERR_NO_DOMAIN,
                       [&] { return "looking up domain '" + name + "'"; });
}

std::vector<std::string> LibvirtHypervisor::list_domain_names() {
  virDomainPtr* domains = nullptr;
  const int count = virConnectListAllDomains(&m_conn, &domains, 0);
  return listed_names<Domain>(domains, count, "listing domains");
}

Domain LibvirtHypervisor::define_domain(const std::string& xml) {
  Domain domain{virDomainDefineXML(&m_conn, xml.c_str())};
  if (!domain) fail([&] { return "defining domain '" + name_in(xml) + "'"; });
  return domain;
}

void LibvirtHypervisor::start_domain(virDomain& domain) {
  check(virDomainCreate(&domain), [&] { return "starting domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::destroy_domain(virDomain& domain) {
  check(virDomainDestroy(&domain), [&] { return "stopping domain '" + name_of(domain) + "'"; });
}

// The ACPI power button for VMs. Containers (LXC) have none and refuse the flag as invalid:
// their init gets SIGTERM (libvirt 9.0's default, initctl first, sends nothing to a busybox init).
void LibvirtHypervisor::shutdown_domain(virDomain& domain) {
  if (virDomainShutdownFlags(&domain, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) == 0) return;
  if (virGetLastErrorCode() == VIR_ERR_INVALID_ARG) {
    check(virDomainShutdownFlags(&domain, VIR_DOMAIN_SHUTDOWN_SIGNAL),
          [&] { return "shutting down domain '" + name_of(domain) + "'"; });
    return;
  }
  fail([&] { return "shutting down domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::undefine_domain(virDomain& domain) {
  const unsigned int full = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                            VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                            VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
  if (virDomainUndefineFlags(&domain, full) == 0) return;
  const int code = last_error_code();
  if (code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_INVALID_ARG) {
    virResetLastError();
    check(virDomainUndefine(&domain),
          [&] { return "undefining domain '" + name_of(domain) + "'"; });
    return;
  }
  fail([&] { return "undefining domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::suspend_domain(virDomain& domain) {
  check(virDomainSuspend(&domain), [&] { return "pausing domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::resume_domain(virDomain& domain) {
  check(virDomainResume(&domain), [&] { return "resuming domain '" + name_of(domain) + "'"; });
}

bool LibvirtHypervisor::domain_active(virDomain& domain) {
  const int rc = virDomainIsActive(&domain);
  if (rc < 0) fail([&] { return "reading the state of domain '" + name_of(domain) + "'"; });
  return rc == 1;
}

std::string LibvirtHypervisor::domain_xml(virDomain& domain, bool inactive) {
  return take_string(
      virDomainGetXMLDesc(&domain,
                          inactive ? static_cast<unsigned int>(VIR_DOMAIN_XML_INACTIVE) : 0U),
      [&] { return "reading domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::set_domain_autostart(virDomain& domain) {
  check(virDomainSetAutostart(&domain, 1),
        [&] { return "setting autostart on domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::set_domain_metadata(virDomain& domain, const std::string& xml,
                                            const std::string& key, const std::string& ns_uri) {
  change_metadata(domain, "writing metadata of domain", [&](unsigned int flags) {
    return virDomainSetMetadata(&domain, VIR_DOMAIN_METADATA_ELEMENT,
                                xml.empty() ? nullptr : xml.c_str(), key.c_str(), ns_uri.c_str(),
                                flags);
  });
}

std::optional<std::string> LibvirtHypervisor::domain_metadata(virDomain& domain,
                                                              const std::string& ns_uri) {
  char* xml = virDomainGetMetadata(&domain, VIR_DOMAIN_METADATA_ELEMENT, ns_uri.c_str(),
                                   VIR_DOMAIN_AFFECT_CONFIG);
  if (xml == nullptr) {
    if (last_error_code() == VIR_ERR_NO_DOMAIN_METADATA) {
      virResetLastError();
      return std::nullopt;
    }
    fail([&] { return "reading metadata of domain '" + name_of(domain) + "'"; });
  }
  OwnedCString owned{xml};
  return std::string{owned.get()};
}

void LibvirtHypervisor::set_domain_title(virDomain& domain, const std::string& title) {
  change_metadata(domain, "writing the title of domain", [&](unsigned int flags) {
    return virDomainSetMetadata(&domain, VIR_DOMAIN_METADATA_TITLE, title.c_str(), nullptr, nullptr,
                                flags);
  });
}

void LibvirtHypervisor::attach_device(virDomain& domain, const std::string& xml, bool live) {
  check(virDomainAttachDeviceFlags(&domain, xml.c_str(), device_flags(domain, live)),
        [&] { return "attaching a device to domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::detach_device(virDomain& domain, const std::string& xml, bool live) {
  check(virDomainDetachDeviceFlags(&domain, xml.c_str(), device_flags(domain, live)),
        [&] { return "detaching a device from domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::detach_live_device(virDomain& domain, const std::string& xml) {
  check(virDomainDetachDeviceFlags(&domain, xml.c_str(), VIR_DOMAIN_AFFECT_LIVE),
        [&] { return "detaching a device from running domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::update_device(virDomain& domain, const std::string& xml, bool live) {
  check(virDomainUpdateDeviceFlags(&domain, xml.c_str(), device_flags(domain, live)),
        [&] { return "updating a device of domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::block_resize(virDomain& domain, const std::string& target,
                                     std::uint64_t bytes) {
  check(virDomainBlockResize(&domain, target.c_str(), static_cast<unsigned long long>(bytes),
                             VIR_DOMAIN_BLOCK_RESIZE_BYTES),
        [&] { return "resizing disk '" + target + "' of domain '" + name_of(domain) + "'"; });
}

void LibvirtHypervisor::block_copy(virDomain& domain, const std::string& target,
                                   const std::string& dest_xml) {
  // REUSE_EXT: the target is a volume the caller made; TRANSIENT_JOB: libvirt refuses a copy
  // job on a persistent domain without it ("domain is not transient").
  if (virDomainBlockCopy(&domain, target.c_str(), dest_xml.c_str(), nullptr, 0,
                         VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB) <
      0) {
    fail([&] { return "copying disk '" + target + "' of domain '" + name_of(domain) + "'"; });
  }
}

std::optional<BlockJob> LibvirtHypervisor::block_job(virDomain& domain, const std::string& target) {
  virDomainBlockJobInfo info{};
  const int rc = virDomainGetBlockJobInfo(&domain, target.c_str(), &info, 0);
  if (rc < 0) {
    fail([&] {
      return "reading the block job on disk '" + target + "' of domain '" + name_of(domain) + "'";
    });
  }
  if (rc == 0) return std::nullopt;
  return BlockJob{static_cast<std::uint64_t>(info.cur), static_cast<std::uint64_t>(info.end)};
}

void LibvirtHypervisor::block_job_abort(virDomain& domain, const std::string& target) {
  if (virDomainBlockJobAbort(&domain, target.c_str(), 0) < 0) {
    fail([&] {
      return "ending the block job on disk '" + target + "' of domain '" + name_of(domain) + "'";
    });
  }
}

std::optional<Network> LibvirtHypervisor::find_network(const std::string& name) {
  return found_or_none(Network{virNetworkLookupByName(&m_conn, name.c_str())}, VIR_ERR_NO_NETWORK,
                       [&] { return "looking up network '" + name + "'"; });
}

bool LibvirtHypervisor::network_active(virNetwork& network) {
  const int rc = virNetworkIsActive(&network);
  if (rc < 0) fail([&] { return "reading the state of network '" + name_of(network) + "'"; });
  return rc == 1;
}

void LibvirtHypervisor::start_network(virNetwork& network) {
  check(virNetworkCreate(&network), [&] { return "starting network '" + name_of(network) + "'"; });
}

}  // namespace cpi::virt
