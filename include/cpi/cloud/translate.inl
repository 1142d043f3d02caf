#pragma once

#include "cpi/errors.hpp"
#include "cpi/virt/error.hpp"

namespace cpi::cloud {

// A libvirt failure translated to a CPI error; keeps libvirt's error code.
class LibvirtFailure : public CloudError {
 public:
  LibvirtFailure(const std::string& message, int code) : CloudError(message), m_code(code) {}
  int code() const noexcept { return m_code; }

 private:
  int m_code;
};

template <typename F>
auto translate(const std::string& what, F&& action) -> decltype(action()) {
  try {
    return action();
  } catch (const virt::LibvirtError& e) {
    // The virt layer already names the operation and object; do not say it twice.
    const std::string message = e.what();
    throw LibvirtFailure(message.rfind(what, 0) == 0 ? message : what + ": " + message, e.code());
  }
}

}  // namespace cpi::cloud
