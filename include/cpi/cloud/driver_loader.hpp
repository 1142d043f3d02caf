#pragma once
// The cloud driver lives in the module `cpi_libvirt.so` (libvirt and libarchive are linked
// only there), loaded on the first call that needs libvirt. This keeps `info`, which BOSH calls
// before nearly every method, free of libvirt's start-up cost.

#include "cpi/cloud/cloud.hpp"

namespace cpi::cloud {

// The entry point the module exports (C linkage): returns a new Cloud owning its connection,
// or throws cpi::Error.
using OpenCloudFunction = Cloud* (*)(const config::Config& config);
constexpr const char* k_open_cloud_symbol = "cpi_open_libvirt_cloud";

// A factory that loads the module and opens the cloud. The module is searched, in order, at
// $CPI_DRIVER_MODULE, next to the executable, and in ../lib/bosh-libvirt-cpi/ beside it.
// Throws CloudError naming the paths tried when it cannot be loaded.
CloudFactory driver_module_factory();

// The address of the module's exported symbol `name` (C linkage), loading the module from the
// same places on first use. Throws CloudError naming the paths tried.
void* load_driver_symbol(const char* name);

}  // namespace cpi::cloud
