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

FileLock::FileLock(const std::string& name, Wait wait) : m_path(lock_path(name)) {
  for (;;) {
    const int fd = ::open(m_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      throw CpiError("cannot open the lock file '" + m_path + "': " + std::strerror(errno));
    }
    const int operation = wait == Wait::yes ? LOCK_EX : LOCK_EX | LOCK_NB;
    int rc = 0;
    while ((rc = ::flock(fd, operation)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      const int error = errno;
      ::close(fd);
      if (wait == Wait::no && error == EWOULDBLOCK) return;  // another process holds it
      throw CpiError("cannot lock '" + m_path + "': " + std::strerror(error));
    }
    // The holder before us may have unlinked the file (remove()) after we opened it: then the
    // lock we hold is on a file nobody else can find. Only the file the path names counts.
    struct stat locked {};
    struct stat named {};
    if (::fstat(fd, &locked) == 0 && ::lstat(m_path.c_str(), &named) == 0 &&
        locked.st_dev == named.st_dev && locked.st_ino == named.st_ino) {
      m_fd = fd;
      return;
    }
    ::close(fd);
  }
}

FileLock::~FileLock() {
  if (m_fd >= 0) ::close(m_fd);
}

void FileLock::remove() noexcept {
  if (m_fd < 0) return;  // only the holder may unlink it
  if (::unlink(m_path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("removing lock file '{}': {}", m_path, std::strerror(errno));
  }
}

}  // namespace cpi::util
