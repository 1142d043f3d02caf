#pragma once
// The cloud driver lives in the module `cpi_libvirt.so` (libvirt and libarchive are linked
// only there), loaded on the first call that needs libvirt. This keeps `info`, which BOSH calls
// before nearly every method, free of libvirt's start-up cost.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace cpi::cloud {

// The entry point the module exports (C linkage), the only one for CPI requests: it answers
// one request text as the executable would (rpc::dispatch on both action tables, on a cloud it
// opens itself) and returns the response text in memory from malloc() for the caller to free(),
// or null when even that failed. `request` holds `size` bytes (any bytes); `config_path` is the
// --config file or null. Nothing of C++ crosses it: no type, no exception.
using DispatchFunction = char* (*)(const char* request, std::size_t size,
                                   const char* config_path) noexcept;
constexpr const char* k_dispatch_symbol = "cpi_dispatch";

// Loads the module and has it answer `request`: the response text. The module is searched, in
// order, at $CPI_DRIVER_MODULE, next to the executable, and in ../lib/bosh-libvirt-cpi/ beside
// it. Throws CloudError naming the paths tried when it cannot be loaded, and when it gave no
// answer.
std::string dispatch_in_driver_module(std::string_view request,
                                      const std::optional<std::filesystem::path>& config_path);

// The address of the module's exported symbol `name` (C linkage), loading the module from the
// same places on first use. Throws CloudError naming the paths tried.
void* load_driver_symbol(const char* name);

}  // namespace cpi::cloud
