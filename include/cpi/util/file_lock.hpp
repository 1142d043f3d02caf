#pragma once
// Named exclusive locks shared by the CPI processes of one machine (the director runs many at
// once; in-process mutexes cannot help): flock() on `$TMPDIR/bosh-libvirt-cpi-locks/<name>.lock`.
//
//   util::FileLock lock{names.vm_lock(vm)};   // blocks until no other process holds it
//
// Names come from the naming module (cloud/names.hpp); a name that is not one plain file name
// ([A-Za-z0-9._-], not starting with '.', at most 200 bytes) is refused with CpiError, so no
// name can reach a path outside the directory. The directory is created with mode 0700 and used
// only when it is ours: a real directory (not a symlink), owned by our effective uid, mode 0700.
// Otherwise, or when it or the lock file cannot be made, the constructor throws CpiError saying
// what to fix: a lock that is not held is never silently skipped.

#include <string>

namespace cpi::util {

class FileLock {
 public:
  explicit FileLock(const std::string& name);
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  bool held() const noexcept { return m_fd >= 0; }

  // Removes the lock file of `name` (when the object it guarded is gone for good). Does nothing
  // when the name or the directory fails the checks above.
  static void remove(const std::string& name) noexcept;

  // The lock directory, created when absent and checked as above (CpiError otherwise).
  static std::string directory();

 private:
  int m_fd = -1;
};

}  // namespace cpi::util
