// LibvirtCloud's construction (its session and its VmKind), object names, and stopping a domain.

#include "cpi/cloud/libvirt_cloud.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/errors.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::cloud {
namespace {

// The connection with its scratch files, and the hypervisor on it, for a cloud to own.
struct Session {
  explicit Session(const config::LibvirtConfig& config)
      : open(virt::open_connection(config)), hypervisor(*open.connection) {}
  virt::OpenConnection open;
  virt::LibvirtHypervisor hypervisor;
};

}  // namespace

LibvirtCloud::LibvirtCloud(virt::Hypervisor& hypervisor, config::Config config,
                           std::shared_ptr<void> owner)
    : m_owner(std::move(owner)),
      m_hv(hypervisor),
      m_config(std::move(config)),
      m_names(m_config.libvirt.name_prefix),
      m_storage(m_hv, m_config.libvirt, m_names) {
  m_flavour = xml::make_flavour(m_config.libvirt.hypervisor);
  if (m_flavour->container()) {
    m_kind = std::make_unique<ContainerVms>(*this);
  } else {
    m_kind = std::make_unique<MachineVms>(*this);
  }
}

LibvirtCloud::~LibvirtCloud() = default;

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
std::shared_ptr<LibvirtCloud> open_libvirt_cloud(const config::Config& config) {
  try {
    auto session = std::make_shared<Session>(config.libvirt);
    spdlog::debug("connected to {}", session->open.target.display_uri);
    auto& hypervisor = session->hypervisor;
    return std::make_shared<LibvirtCloud>(hypervisor, config, std::move(session));
  } catch (const virt::InvalidSettings& e) {
    throw CpiError(e.what());
  }
}

bool LibvirtCloud::host_is_local() {
  const std::string uri = m_hv.uri();  // "lxc:///", "lxc+unix:///": no host part
  const auto scheme_end = uri.find("://");
  return scheme_end != std::string::npos && uri.compare(scheme_end + 3, 1, "/") == 0;
}

void LibvirtCloud::stop_domain(virDomain& domain, const std::string& what, int grace_seconds) {
  if (!m_hv.domain_active(domain)) return;
  if (grace_seconds > 0) {
    try {
      m_hv.shutdown_domain(domain);
      for (int i = 0; i < grace_seconds * 4 && m_hv.domain_active(domain); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    } catch (const virt::LibvirtError& e) {
      spdlog::info("graceful shutdown of {} not possible: {}", what, e.what());
    }
    if (!m_hv.domain_active(domain)) return;
  }
  m_hv.destroy_domain(domain);
}

}  // namespace cpi::cloud
