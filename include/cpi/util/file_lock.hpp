#pragma once
// Named exclusive locks shared by the CPI processes of one machine (the director runs many at
// once; in-process mutexes cannot help): flock() on `$TMPDIR/bosh-libvirt-cpi-locks/<name>`.
//
//   util::FileLock lock{"vm-1234"};   // blocks until no other process holds "vm-1234"
//
// A lock that cannot be taken (unwritable TMPDIR) is logged and not held: callers go on, as
// libvirt itself still refuses conflicting changes.

#include <string>

namespace cpi::util {

class FileLock {
 public:
  explicit FileLock(const std::string& name);
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  bool held() const noexcept { return m_fd >= 0; }

  // Removes the lock file of `name` (when the object it guarded is gone for good).
  static void remove(const std::string& name) noexcept;

 private:
  int m_fd = -1;
};

}  // namespace cpi::util
