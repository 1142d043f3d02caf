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
//
// Lock files may be unlinked, but only by their holder (remove()): a process that opened the
// file before the unlink and gets the flock after it holds a lock on an inode no path names any
// more, so after each flock the constructor checks that the path still names the inode it
// locked, and otherwise opens the path again. Two processes never hold "the same" lock on two
// inodes.

#include <string>

namespace cpi::util {

class FileLock {
 public:
  enum class Wait { yes, no };
  // Blocks until the lock is ours; with Wait::no returns at once, held() false when another
  // process holds it.
  explicit FileLock(const std::string& name, Wait wait = Wait::yes);
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  bool held() const noexcept { return m_fd >= 0; }

  // Unlinks the lock file (when the object it guarded is gone for good) while this lock is
  // held; the lock stays held until destruction, and a waiter then locks a new file.
  void remove() noexcept;

  // The lock directory, created when absent and checked as above (CpiError otherwise).
  static std::string directory();

 private:
  std::string m_path;
  int m_fd = -1;
};

}  // namespace cpi::util
