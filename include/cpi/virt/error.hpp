#pragma once
// The one error virt/ throws for a failed libvirt call: a cpi::CloudError (so the dispatcher
// answers Bosh::Clouds::CloudError with its message) that keeps libvirt's error code. The message
// is "<operation> '<object>': <libvirt's message>", so an operator knows what failed and why.
//
// libvirt keeps its last error per thread and every API call resets it, naming an object
// (virDomainGetName, ...) included. So a failure is reported with fail(describe): the error is
// copied first and only then `describe` (a lambda, or a string built before the failing call)
// runs. Never build the description in the argument list of the failing call's check: the
// compiler may evaluate it after the call (Clang does), and the name lookup clears the error.

#include <string>
#include <type_traits>
#include <utility>

#include "cpi/errors.hpp"

namespace cpi::virt {

class LibvirtError : public CloudError {
 public:
  LibvirtError(int code, const std::string& message) : CloudError(message), m_code(code) {}
  int code() const noexcept { return m_code; }  // virErrorNumber

 private:
  int m_code;
};

// Settings the connection cannot be built from (an incomplete transport, a NUL in the URI). The
// cloud boundary (open_libvirt_cloud) answers it as CpiError with the same message.
class InvalidSettings : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The thread's last libvirt error, copied; the thread's error is reset.
struct CopiedError {
  int code;             // VIR_ERR_INTERNAL_ERROR when libvirt reported none
  std::string message;  // "libvirt reported no error detail" when it reported none
};
CopiedError take_last_error();

// The code of the thread's last libvirt error (VIR_ERR_OK when none); resets nothing.
int last_error_code() noexcept;

// Throws LibvirtError "<describe>: <libvirt's message>" with the last error's code. `describe`
// is a callable returning the description (run after the error was copied) or a string.
template <typename Describe>
[[noreturn]] void fail(Describe&& describe) {
  CopiedError error = take_last_error();  // before describe(), which may call libvirt
  if constexpr (std::is_invocable_v<Describe&>) {
    throw LibvirtError(error.code, std::string{describe()} + ": " + error.message);
  } else {
    static_assert(!std::is_same_v<std::decay_t<Describe>, std::string> ||
                      std::is_lvalue_reference_v<Describe>,
                  "pass a lambda or a string built before the failing call, not a temporary");
    throw LibvirtError(error.code, std::string{describe} + ": " + error.message);
  }
}

// fail(describe) when a libvirt call returned `rc` < 0.
template <typename Describe>
void check(int rc, Describe&& describe) {
  if (rc < 0) fail(std::forward<Describe>(describe));
}

// Makes libvirt print nothing by itself; its errors reach the log only through our exceptions.
void install_quiet_error_handler() noexcept;

}  // namespace cpi::virt
