#pragma once
// libvirt errors as exceptions. libvirt keeps its last error per thread and the next call
// resets it, so it is copied right after the failing call.

#include <stdexcept>
#include <string>

namespace cpi::virt {

class LibvirtError : public std::runtime_error {
 public:
  LibvirtError(int code, const std::string& message)
      : std::runtime_error(message), m_code(code) {}
  int code() const noexcept { return m_code; }  // virErrorNumber

 private:
  int m_code;
};

// The code of the thread's last libvirt error (VIR_ERR_OK when none).
int last_error_code() noexcept;

// Throws LibvirtError "<action>: <libvirt's message>" with the last error's code.
[[noreturn]] void throw_last_error(const std::string& action);

// Makes libvirt print nothing by itself; its errors reach the log only through our exceptions.
void install_quiet_error_handler() noexcept;

}  // namespace cpi::virt
