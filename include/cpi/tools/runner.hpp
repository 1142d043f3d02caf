#pragma once
// Running a parsed ToolRequest inside the driver (the module's cpi_run_tool calls run_tool).

#include <ostream>

#include "cpi/config/config.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/tools/tool_request.hpp"
#include "cpi/virt/hypervisor.hpp"

namespace cpi::tools {

// Loads the config, connects (doctor reports failures of both as check lines), runs the tool,
// prints its result on `out` (text, or one JSON document with --json) and problems on `err`.
// Returns k_exit_ok, k_exit_findings or k_exit_error (tool_request.hpp). Never throws.
int run_tool(const ToolRequest& request, std::ostream& out, std::ostream& err);

// inspect or cleanup on an open connection (what run_tool does after connecting). Throws on
// libvirt failures.
int run_on_host(const ToolRequest& request, virt::Hypervisor& hv, const config::Config& config,
                const HostContext& host, std::ostream& out);

}  // namespace cpi::tools
