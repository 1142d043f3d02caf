#include "cpi/util/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cpi/errors.hpp"

namespace cpi::util {
namespace {

constexpr std::size_t k_max_name = 200;

std::string lock_dir_path() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string{tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"} + "/bosh-libvirt-cpi-locks";
}

bool plain_name(const std::string& name) {
  return !name.empty() && name.size() <= k_max_name && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
         });
}

std::string lock_path(const std::string& name) {
  if (!plain_name(name)) {
    throw CpiError("internal: lock name '" + name.substr(0, 80) +
                   "' is not a plain file name; nothing was locked");
  }
  return FileLock::directory() + "/" + name + ".lock";
}

}  // namespace

std::string FileLock::directory() {
  const std::string dir = lock_dir_path();
  if (::mkdir(dir.c_str(), 0700) == 0) {
    ::chmod(dir.c_str(), 0700);  // ours: whatever the umask took away
  } else if (errno != EEXIST) {
    throw CpiError("cannot create the lock directory '" + dir + "': " + std::strerror(errno) +
                   " (set TMPDIR to a directory the CPI may write)");
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    throw CpiError("cannot read the lock directory '" + dir + "': " + std::strerror(errno));
  }
  std::string wrong;
  if (S_ISLNK(st.st_mode)) {
    wrong = "it is a symbolic link";
  } else if (!S_ISDIR(st.st_mode)) {
    wrong = "it is not a directory";
  } else if (st.st_uid != ::geteuid()) {
    wrong = "it is owned by uid " + std::to_string(st.st_uid) + ", not by this process (uid " +
            std::to_string(::geteuid()) + ")";
  } else if ((st.st_mode & 07777) != 0700) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned int>(st.st_mode & 07777));
    wrong = std::string{"its mode is "} + mode + ", not 0700";
  }
  if (!wrong.empty()) {
    throw CpiError("refusing the lock directory '" + dir + "': " + wrong +
                   "; another user may have made it. Remove it (the CPI makes it again) or set "
                   "TMPDIR to a private directory");
  }
  return dir;
}

FileLock::FileLock(const std::string& name) {
  const std::string path = lock_path(name);
  m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (m_fd < 0) {
    throw CpiError("cannot open the lock file '" + path + "': " + std::strerror(errno));
  }
  while (::flock(m_fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int error = errno;
    ::close(m_fd);
    m_fd = -1;
    throw CpiError("cannot lock '" + path + "': " + std::strerror(error));
  }
}

FileLock::~FileLock() {
  if (m_fd >= 0) ::close(m_fd);
}

void FileLock::remove(const std::string& name) noexcept {
  try {
    const std::string path = lock_path(name);
    ::unlink(path.c_str());
  } catch (const std::exception& e) {
    spdlog::warn("not removing lock '{}': {}", name.substr(0, 80), e.what());
  }
}

}  // namespace cpi::util
