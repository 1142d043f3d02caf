#include "cpi/util/private_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include "cpi/errors.hpp"

namespace cpi::util {

PrivateDir::PrivateDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  std::string templ = base + "/" + std::string{prefix} + "-XXXXXX";
  std::vector<char> buffer(templ.begin(), templ.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {  // mkdtemp creates the directory with mode 0700
    throw CloudError("creating a private directory under '" + base + "': " + std::strerror(errno) +
                     " (check that TMPDIR is writable)");
  }
  m_path = buffer.data();
}

PrivateDir::PrivateDir(PrivateDir&& other) noexcept : m_path(std::move(other.m_path)) {
  other.m_path.clear();
}

PrivateDir& PrivateDir::operator=(PrivateDir&& other) noexcept {
  if (this != &other) {
    std::error_code ignored;
    if (!m_path.empty()) {
      std::filesystem::remove_all(m_path, ignored);
    }
    m_path = std::move(other.m_path);
    other.m_path.clear();
  }
  return *this;
}

PrivateDir::~PrivateDir() {
  if (!m_path.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
}

std::filesystem::path PrivateDir::write_file(const std::string& name,
                                             std::string_view content) const {
  const std::filesystem::path file = m_path / name;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    throw CloudError("writing '" + file.string() + "': " + std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int saved = errno;
      ::close(fd);
      throw CloudError("writing '" + file.string() + "': " + std::strerror(saved));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return file;
}

}  // namespace cpi::util
