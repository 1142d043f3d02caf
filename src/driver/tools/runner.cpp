#include "cpi/tools/runner.hpp"

#include <ctime>
#include <filesystem>

#include "cpi/tools/doctor.hpp"
#include "cpi/tools/render.hpp"
#include "cpi/util/log.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"

namespace cpi::tools {
namespace {

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

int doctor(const ToolRequest& request, std::ostream& out) {
  std::optional<std::filesystem::path> path;
  if (request.config_path) path = *request.config_path;
  const auto report = run_doctor(path, now());
  if (request.json) {
    out << report.to_json().dump(2) << '\n';
  } else {
    out << report.table();
  }
  return report.failed() ? k_exit_findings : k_exit_ok;
}

int inspect(const ToolRequest& request, virt::Hypervisor& hv, const config::Config& config,
            const HostContext& host, std::ostream& out) {
  if (request.cids.empty()) {
    const auto objects = take_inventory(
        hv, config, {now(), request.min_age_seconds, request.incomplete_age_seconds});
    out << (request.json ? inventory_json(objects).dump(2) + "\n" : inventory_table(objects));
    return k_exit_ok;
  }
  int code = k_exit_ok;
  nlohmann::json all = nlohmann::json::array();
  for (const auto& cid : request.cids) {
    auto details = inspect_cid(hv, config, host, cid, request.log_lines);
    if (!details.value("found", false)) code = k_exit_findings;
    if (!request.json) out << render_details(details) << (&cid == &request.cids.back() ? "" : "\n");
    all.push_back(std::move(details));
  }
  if (request.json) out << all.dump(2) << '\n';
  return code;
}

int cleanup(const ToolRequest& request, virt::Hypervisor& hv, const config::Config& config,
            std::ostream& out) {
  const auto result = cleanup_orphans(
      hv, config, {now(), request.min_age_seconds, request.incomplete_age_seconds},
      request.dry_run);
  out << (request.json ? result.to_json().dump(2) + "\n" : result.text());
  return result.failed.empty() ? k_exit_ok : k_exit_findings;
}

}  // namespace

int run_on_host(const ToolRequest& request, virt::Hypervisor& hv, const config::Config& config,
                const HostContext& host, std::ostream& out) {
  if (request.tool == "inspect") return inspect(request, hv, config, host, out);
  if (request.tool == "cleanup") return cleanup(request, hv, config, out);
  throw std::invalid_argument("unknown tool '" + request.tool + "'");
}

int run_tool(const ToolRequest& request, std::ostream& out, std::ostream& err) {
  const std::string name = "cpi " + request.tool;
  try {
    virt::install_quiet_error_handler();
    if (request.tool == "doctor") return doctor(request, out);
    const config::Config config =
        request.config_path ? config::load_config(*request.config_path) : config::default_config();
    util::set_log_level(config.log_level);
    config::register_secrets(config);
    auto open = virt::open_connection(config.libvirt);
    const HostContext host{open.target.display_uri, open.target.transport};
    virt::LibvirtHypervisor hv{*open.connection};
    return run_on_host(request, hv, config, host, out);
  } catch (const std::exception& e) {
    out.flush();
    err << name << ": " << e.what() << '\n';
    err << name << ": for a full diagnosis run: cpi doctor"
        << (request.config_path ? " --config " + *request.config_path : std::string{}) << '\n';
    return k_exit_error;
  }
}

}  // namespace cpi::tools
