#include "cpi/virt/error.hpp"

#include <libvirt/virterror.h>

#include "cpi/virt/handles.hpp"

namespace cpi::virt {
namespace {

void ignore_error(void* /*user_data*/, virErrorPtr /*error*/) {}

}  // namespace

int last_error_code() noexcept {
  virErrorPtr error = virGetLastError();
  return error == nullptr ? VIR_ERR_OK : error->code;
}

void throw_last_error(const std::string& action) {
  virErrorPtr error = virGetLastError();
  if (error == nullptr) {
    throw LibvirtError(VIR_ERR_INTERNAL_ERROR, action + ": libvirt reported no error detail");
  }
  const int code = error->code;
  std::string message = error->message != nullptr ? error->message : "unknown libvirt error";
  virResetLastError();
  throw LibvirtError(code, action + ": " + message);
}

void install_quiet_error_handler() noexcept { virSetErrorFunc(nullptr, ignore_error); }

Stream::~Stream() {
  if (m_stream == nullptr) {
    return;
  }
  if (!m_done) {
    virStreamAbort(m_stream);
  }
  virStreamFree(m_stream);
}

void Stream::finish(const char* what) {
  if (virStreamFinish(m_stream) < 0) {
    m_done = true;  // a failed finish leaves the stream aborted
    throw_last_error(what);
  }
  m_done = true;
}

}  // namespace cpi::virt
