// The entry point of the cpi_libvirt module for CPI requests (see cpi/cloud/driver_loader.hpp):
// the request text in, the response text out.

#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "cpi/actions/action_table.hpp"
#include "cpi/cloud/driver_loader.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "cpi/virt/error.hpp"

extern "C" __attribute__((visibility("default"))) char* cpi_dispatch(
    const char* request, std::size_t size, const char* config_path) noexcept {
  try {
    cpi::virt::install_quiet_error_handler();
    cpi::rpc::DispatchOptions options;
    if (config_path != nullptr) options.config_path = config_path;
    options.tables = {&cpi::actions::local_actions(), &cpi::actions::driver_actions()};
    options.cloud_factory = &cpi::cloud::open_libvirt_cloud;
    const std::string response = cpi::rpc::dispatch({request, size}, options);
    char* out = static_cast<char*>(std::malloc(response.size() + 1));
    if (out != nullptr) std::memcpy(out, response.c_str(), response.size() + 1);
    return out;
  } catch (...) {  // dispatch never throws; the options and the copy may fail to allocate
    return nullptr;
  }
}

// Checked at compile time: the entry point has the type the loader expects.
static_assert(std::is_same_v<decltype(&cpi_dispatch), cpi::cloud::DispatchFunction>);
