// run_doctor: the config, TLS material and connection checks, then check_host.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/tools/doctor.hpp"
#include "cpi/tools/local_checks.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::tools {
namespace {

namespace fs = std::filesystem;

constexpr const char* k_job_config = "/var/vcap/jobs/libvirt_cpi/config/cpi.json";

// Where libvirt looks for `file` (cacert.pem, clientcert.pem) when no pkipath is given.
std::optional<fs::path> default_pki_file(const std::string& file) {
  std::vector<fs::path> candidates;
  const char* home = std::getenv("HOME");
  if (::geteuid() != 0 && home != nullptr) {
    candidates.push_back(fs::path{home} / ".pki" / "libvirt" / file);
  }
  candidates.push_back(file == "cacert.pem" ? fs::path{"/etc/pki/CA/cacert.pem"}
                                            : fs::path{"/etc/pki/libvirt"} / file);
  for (const auto& candidate : candidates) {
    std::error_code ignored;
    if (fs::exists(candidate, ignored)) return candidate;
  }
  return std::nullopt;
}

void check_tls(const config::Config& config, std::int64_t now, DoctorReport& report) {
  struct Item {
    const char* name;
    const config::Material* material;
    const char* field;
    const char* pki_file;
  };
  const config::TlsConfig& tls = config.libvirt.tls;
  for (const Item& item :
       {Item{"tls_ca_cert", &tls.ca_cert, "libvirt.tls.ca_cert", "cacert.pem"},
        Item{"tls_client_cert", &tls.client_cert, "libvirt.tls.client_cert", "clientcert.pem"}}) {
    std::string pem;
    std::string what = item.field;
    try {
      if (!item.material->empty()) {
        pem = item.material->text(item.field);
      } else if (auto file = default_pki_file(item.pki_file)) {
        what = file->string() + " (libvirt's default; " + item.field + " is not set)";
        pem = config::Material{file->string()}.text(item.field);
      } else {
        report.warn(item.name,
                    std::string{item.field} + " is not set and libvirt's default " + item.pki_file +
                        " is absent",
                    std::string{"set "} + item.field + " (PEM text or a path)");
        continue;
      }
    } catch (const std::exception& e) {
      report.fail(item.name, e.what(), std::string{"check "} + item.field);
      continue;
    }
    report.add(certificate_check(item.name, what, pem, now));
  }
}

std::string connection_detail(virt::Hypervisor& hv, const HostContext& host) {
  std::string detail = host.display_uri + " (transport " + host.transport + ")";
  try {
    const auto versions = hv.host_versions();
    detail += ": libvirt " + version_string(versions.libvirt) + ", " + versions.type;
    if (versions.hypervisor != 0) detail += " " + version_string(versions.hypervisor);
  } catch (const std::exception& e) {
    detail += std::string{": versions unknown ("} + e.what() + ")";
  }
  return detail;
}

}  // namespace

DoctorReport run_doctor(const std::optional<fs::path>& config_path, std::int64_t now) {
  virt::install_quiet_error_handler();
  DoctorReport report;
  config::Config config;
  try {
    if (config_path) {
      config = config::load_config(*config_path);
      report.ok("config", config.source + " loaded");
      if (auto problem = config::exposed_secrets(*config_path, config)) {
        report.warn("config_permissions", *problem,
                    "chmod 0600 " + config_path->string() + " (readable by the CPI's user only)");
      }
    } else {
      config = config::default_config();
      report.warn("config", "no --config given: checking the built-in defaults",
                  std::string{"pass the file the BOSH job renders: --config "} + k_job_config);
    }
  } catch (const std::exception& e) {
    report.fail("config", e.what(),
                "fix the file (README.md \"Configuration\" lists every key); nothing else was "
                "checked");
    return report;
  }

  HostContext host;
  try {
    const auto target = virt::build_target(config.libvirt);
    host.display_uri = target.display_uri;
    host.transport = target.transport;
  } catch (const std::exception& e) {
    report.fail("connection", e.what(), "complete the libvirt section of the config");
    return report;
  }
  if (host.transport == "tls") {
    check_tls(config, now, report);
  }

  virt::OpenConnection open;
  try {
    open = virt::open_connection(config.libvirt);
  } catch (const std::exception& e) {
    auto [detail, hint] = split_hint(e.what());
    report.fail("connection", detail,
                hint.empty() ? "check libvirt.uri / transport / host in the config" : hint);
    return report;
  }
  {
    virt::LibvirtHypervisor hv{*open.connection};
    report.ok("connection", connection_detail(hv, host));
    check_host(hv, config, host, report);
  }
  return report;
}

}  // namespace cpi::tools
