#include "cpi/util/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace cpi::util {
namespace {

std::string lock_dir() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string{tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"} + "/bosh-libvirt-cpi-locks";
}

}  // namespace

FileLock::FileLock(const std::string& name) {
  const std::string dir = lock_dir();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    spdlog::warn("could not create lock directory '{}': {}; going on without a lock", dir,
                 std::strerror(errno));
    return;
  }
  const std::string path = dir + "/" + name + ".lock";
  m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (m_fd >= 0 && ::flock(m_fd, LOCK_EX) != 0) {
    ::close(m_fd);
    m_fd = -1;
  }
  if (m_fd < 0) spdlog::warn("could not lock '{}'; going on without the lock", path);
}

FileLock::~FileLock() {
  if (m_fd >= 0) ::close(m_fd);
}

void FileLock::remove(const std::string& name) noexcept {
  const std::string path = lock_dir() + "/" + name + ".lock";
  ::unlink(path.c_str());
}

}  // namespace cpi::util
