#pragma once
// Small helpers of the e2e tier: shell commands with their exit code and output (losetup, LVM,
// debugfs ...), libvirt's last error as text, and a prefix test.

#include <libvirt/virterror.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "support/run_cpi.hpp"

namespace cpi::testing::e2e {

inline std::string last_libvirt_error() {
  virErrorPtr e = virGetLastError();
  std::string text = e != nullptr && e->message != nullptr ? e->message : "no error detail";
  virResetLastError();
  return text;
}

inline bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

struct Shell {
  std::string command;
  int code = -1;
  std::string out, err;
  bool ok() const { return code == 0; }
  // "`cmd` failed (exit N): <stderr on one line>"
  std::string failure() const {
    std::string text;  // on one line, LVM's indentation squeezed
    for (const char c : err.empty() ? out : err) {
      const bool space = c == '\n' || c == ' ' || c == '\t';
      if (!space) {
        text += c;
      } else if (!text.empty() && text.back() != ' ') {
        text += ' ';
      }
    }
    if (!text.empty() && text.back() == ' ') text.pop_back();
    return "`" + command + "` failed (exit " + std::to_string(code) + "): " + text;
  }
};

// Runs `command` with /bin/sh (stdin empty, a root PATH); trailing newlines of stdout dropped.
inline Shell sh(const std::string& command) {
  Shell result;
  result.command = command;
  const auto run = run_process(
      "/bin/sh", {"-c", command}, "",
      {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LVM_SUPPRESS_FD_WARNINGS=1"},
      std::chrono::seconds(120));
  result.code = run.exit_code;
  result.out = run.out;
  result.err = run.err;
  while (!result.out.empty() && result.out.back() == '\n') result.out.pop_back();
  return result;
}

inline bool installed(const char* tool) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    if (::access((std::string{dir} + tool).c_str(), X_OK) == 0) return true;
  }
  return false;
}

}  // namespace cpi::testing::e2e
