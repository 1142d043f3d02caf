#pragma once
// The operator subcommands (`cpi doctor`, `cpi inspect`, `cpi cleanup`) as the executable
// parses them. The executable has no libvirt: it hands the request, as text, to the driver
// module's entry point `cpi_run_tool` (src/driver/tools_module.cpp), which runs the tool and
// prints.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cpi::tools {

struct ToolRequest {
  std::string tool;                        // doctor | inspect | cleanup
  std::optional<std::string> config_path;  // --config; built-in defaults without it
  bool json = false;                       // --json: one JSON document on stdout
  std::vector<std::string> cids;           // inspect: VM/disk/snapshot/stemcell CIDs
  int log_lines = 20;                      // inspect: console log lines to show
  bool orphans = false;                    // cleanup: --orphans (required)
  bool dry_run = false;                    // cleanup: list, delete nothing
  int min_age_seconds = 600;               // cleanup: spare orphans younger than this
  int incomplete_age_seconds = 3600;       // VMs unfinished this long are orphans
};

// Exit codes of every tool.
constexpr int k_exit_ok = 0;
constexpr int k_exit_findings = 1;  // doctor: a check failed; inspect: a CID not found;
                                    // cleanup: a deletion failed
constexpr int k_exit_error = 2;     // the tool could not run (config, connection, module)

// The request as the text that crosses into the module (a JSON object of its fields), and back.
// parse_tool_request throws CpiError for text that is not one.
std::string tool_request_text(const ToolRequest& request);
ToolRequest parse_tool_request(std::string_view text);

// The module's entry point (C linkage): takes tool_request_text's text, prints the result on
// stdout and errors on stderr, and returns the exit code. No C++ type or exception crosses it.
using RunToolFunction = int (*)(const char* request_text) noexcept;
constexpr const char* k_run_tool_symbol = "cpi_run_tool";

}  // namespace cpi::tools
