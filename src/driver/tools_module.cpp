// The second entry point of the cpi_libvirt module: the operator subcommands (cpi doctor, inspect,
// cleanup), which the executable hands over, as text, because they need libvirt.

#include <exception>
#include <iostream>
#include <type_traits>

#include "cpi/tools/runner.hpp"
#include "cpi/tools/tool_request.hpp"

extern "C" __attribute__((visibility("default"))) int cpi_run_tool(
    const char* request_text) noexcept {
  try {
    return cpi::tools::run_tool(cpi::tools::parse_tool_request(request_text), std::cout,
                                std::cerr);
  } catch (const std::exception& e) {  // run_tool answers its own errors; this is the request's
    std::cerr << "cpi: " << e.what() << '\n';
  } catch (...) {
    std::cerr << "cpi: the tool failed with an unknown error\n";
  }
  return cpi::tools::k_exit_error;
}

// Checked at compile time: the entry point has the type the executable expects.
static_assert(std::is_same_v<decltype(&cpi_run_tool), cpi::tools::RunToolFunction>);
