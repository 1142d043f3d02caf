// The second entry point of the cpi_libvirt module: the operator subcommands (cpi doctor, inspect,
// cleanup), which the executable hands over because they need libvirt.

#include <iostream>
#include <type_traits>

#include "cpi/tools/runner.hpp"
#include "cpi/tools/tool_request.hpp"

extern "C" __attribute__((visibility("default"))) int cpi_run_tool(
    const cpi::tools::ToolRequest& request) {
  return cpi::tools::run_tool(request, std::cout, std::cerr);
}

// Checked at compile time: the entry point has the type the executable expects.
static_assert(std::is_same_v<decltype(&cpi_run_tool), cpi::tools::RunToolFunction>);
