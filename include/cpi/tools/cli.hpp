#pragma once
// The operator subcommands on the executable's command line. Without a subcommand, `cpi` is
// the CPI itself (one request on stdin, one response on stdout); these only add to that.
//   cpi doctor  [--config FILE] [--json]
//   cpi inspect [--config FILE] [--json] [--lines N] [--min-age SECONDS] [CID...]
//   cpi cleanup [--config FILE] --orphans [--dry-run] [--min-age SECONDS] [--json]
//   cpi inspect [--config FILE] [--json] [--lines N] [CID...]
//   cpi cleanup [--config FILE] --orphans [--dry-run] [--min-age SECONDS]
//   [--json]

#include "cpi/tools/tool_request.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace cpi::tools {

// Adds the three subcommands to `app`. After parsing, `request.tool` names the one given
// (empty when none) and the other fields hold its options. `request` must outlive parsing.
void add_tool_commands(CLI::App& app, ToolRequest& request);

// Runs `request` through the driver module's cpi_run_tool; prints to stdout/stderr and returns
// the exit code (k_exit_error when the module cannot be loaded).
int run_tool_command(const ToolRequest& request);

}  // namespace cpi::tools
