#include "cpi/cloud/driver_loader.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "cpi/errors.hpp"

namespace cpi::cloud {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> candidates() {
  std::vector<fs::path> paths;
  if (const char* env = std::getenv("CPI_DRIVER_MODULE"); env != nullptr && *env != '\0') {
    paths.emplace_back(env);
  }
  char self[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    const fs::path dir = fs::path{std::string{self, static_cast<std::size_t>(n)}}.parent_path();
    paths.push_back(dir / "cpi_libvirt.so");
    paths.push_back(dir.parent_path() / "lib" / "bosh-libvirt-cpi" / "cpi_libvirt.so");
  }
  return paths;
}

DispatchFunction load() {
  static DispatchFunction loaded = nullptr;
  if (loaded == nullptr) {
    loaded = reinterpret_cast<DispatchFunction>(load_driver_symbol(k_dispatch_symbol));
  }
  return loaded;
}

}  // namespace

void* load_driver_symbol(const char* name) {
  std::string tried;
  for (const auto& path : candidates()) {
    if (!fs::exists(path)) {
      tried += (tried.empty() ? "" : ", ") + path.string() + " (absent)";
      continue;
    }
    // Kept loaded for the life of the process (the cloud's code lives there). The module itself
    // is linked -z now, so its own references (libvirt's API among them) are all bound here, and
    // a missing one fails this dlopen; RTLD_LAZY leaves the ~60 libraries libvirt pulls in to bind
    // their functions on first use, as in any program, instead of all of them now (RTLD_NOW
    // applies to every object this call loads: ~5,000 more symbol lookups per call).
    void* handle = ::dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      tried += (tried.empty() ? "" : ", ") + path.string() + " (" + (why ? why : "?") + ")";
      continue;
    }
    if (void* symbol = ::dlsym(handle, name); symbol != nullptr) {
      return symbol;
    }
    tried += (tried.empty() ? "" : ", ") + path.string() + " (no entry point " + name + ")";
  }
  throw CloudError("cannot load the libvirt driver module cpi_libvirt.so (tried: " + tried +
                   "); check that the package installed it next to the cpi binary and that "
                   "libvirt's client library is installed");
}

std::string dispatch_in_driver_module(std::string_view request,
                                      const std::optional<fs::path>& config_path) {
  const DispatchFunction dispatch = load();
  const std::string path = config_path ? config_path->string() : std::string{};
  const std::unique_ptr<char, decltype(&std::free)> response{
      dispatch(request.data(), request.size(), config_path ? path.c_str() : nullptr), &std::free};
  if (!response) {
    throw CloudError("the libvirt driver module cpi_libvirt.so gave no answer (out of memory?)");
  }
  return std::string{response.get()};
}

}  // namespace cpi::cloud
