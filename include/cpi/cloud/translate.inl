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

// Whether a libvirt error code says the connection or the daemon was lost or hiccuped (an RPC
// failure, no connection, a system error on the socket, a timeout, a busy resource): a retry of
// the same call may get past it.
bool transient_code(int code) noexcept;

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

// Runs `action`; a LibvirtFailure with a transient_code becomes TransientCloudError
// (ok_to_retry true) with the same message. For the methods besides create_vm that can lose their
// daemon half-way (create_stemcell, snapshot_disk); create_vm answers VMCreationFailed itself.
template <typename F>
auto retriable_when_daemon_lost(F&& action) -> decltype(action()) {
  try {
    return action();
  } catch (const LibvirtFailure& e) {
    if (!transient_code(e.code())) throw;
    throw TransientCloudError(e.what());
  } catch (const virt::LibvirtError& e) {  // a call made outside translate()
    if (!transient_code(e.code())) throw;
    throw TransientCloudError(e.what());
  }
}

}  // namespace cpi::cloud
