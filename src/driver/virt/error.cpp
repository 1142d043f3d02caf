#include "cpi/virt/error.hpp"

#include <libvirt/virterror.h>

#include "cpi/virt/handles.hpp"

namespace cpi::virt {
namespace {

void ignore_error(void* /*user_data*/, virErrorPtr /*error*/) {}

}  // namespace

CopiedError take_last_error() {
  CopiedError out{VIR_ERR_INTERNAL_ERROR, "libvirt reported no error detail"};
  if (virErrorPtr error = virGetLastError(); error != nullptr) {
    if (error->code != VIR_ERR_OK) out.code = error->code;
    if (error->message != nullptr) out.message = error->message;
  }
  virResetLastError();
  return out;
}

int last_error_code() noexcept {
  virErrorPtr error = virGetLastError();
  return error == nullptr ? VIR_ERR_OK : error->code;
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

void Stream::finish(const std::string& what) {
  if (virStreamFinish(m_stream) < 0) {
    m_done = true;  // a failed finish leaves the stream aborted
    fail(what);
  }
  m_done = true;
}

}  // namespace cpi::virt
