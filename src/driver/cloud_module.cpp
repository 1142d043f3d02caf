// The entry point of the cpi_libvirt module (see cpi/cloud/driver_loader.hpp).

#include "cpi/cloud/driver_loader.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/virt/error.hpp"

extern "C" __attribute__((visibility("default"))) cpi::cloud::Cloud* cpi_open_libvirt_cloud(
    const cpi::config::Config& config) {
  cpi::virt::install_quiet_error_handler();
  return cpi::cloud::open_libvirt_cloud(config).release();
}

// Checked at compile time: the entry point has the type the loader expects.
static_assert(std::is_same_v<decltype(&cpi_open_libvirt_cloud), cpi::cloud::OpenCloudFunction>);
