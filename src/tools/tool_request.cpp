#include "cpi/tools/tool_request.hpp"

#include <nlohmann/json.hpp>

#include "cpi/errors.hpp"

namespace cpi::tools {

std::string tool_request_text(const ToolRequest& request) {
  nlohmann::json text{{"tool", request.tool},
                      {"json", request.json},
                      {"cids", request.cids},
                      {"log_lines", request.log_lines},
                      {"orphans", request.orphans},
                      {"dry_run", request.dry_run},
                      {"min_age_seconds", request.min_age_seconds},
                      {"incomplete_age_seconds", request.incomplete_age_seconds}};
  text["config_path"] = request.config_path ? nlohmann::json(*request.config_path) : nullptr;
  return text.dump();
}

ToolRequest parse_tool_request(std::string_view text) {
  try {
    const auto fields = nlohmann::json::parse(text);
    ToolRequest request;
    fields.at("tool").get_to(request.tool);
    if (const auto& path = fields.at("config_path"); !path.is_null()) {
      request.config_path = path.get<std::string>();
    }
    fields.at("json").get_to(request.json);
    fields.at("cids").get_to(request.cids);
    fields.at("log_lines").get_to(request.log_lines);
    fields.at("orphans").get_to(request.orphans);
    fields.at("dry_run").get_to(request.dry_run);
    fields.at("min_age_seconds").get_to(request.min_age_seconds);
    fields.at("incomplete_age_seconds").get_to(request.incomplete_age_seconds);
    return request;
  } catch (const nlohmann::json::exception& e) {
    throw CpiError(std::string{"not a tool request from this cpi (are the cpi binary and "
                               "cpi_libvirt.so from one build?): "} +
                   e.what());
  }
}

}  // namespace cpi::tools
