#pragma once
// A private scratch directory under $TMPDIR (or /tmp), removed with everything in it when the
// object goes away. Throws std::runtime_error when it cannot be made.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace cpi::testing {

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string{tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"} + "/cpi-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
      throw std::runtime_error("cannot create a temporary directory from '" + pattern + "'");
    }
    m_path = buffer.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }

  const std::filesystem::path& path() const { return m_path; }
  std::filesystem::path operator/(const std::string& name) const { return m_path / name; }

  // Writes `bytes` to `name` inside the directory and returns the full path.
  std::filesystem::path write(const std::string& name, const std::string& bytes) const {
    const auto file = m_path / name;
    std::ofstream out{file, std::ios::binary | std::ios::trunc};
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      throw std::runtime_error("cannot write '" + file.string() + "'");
    }
    return file;
  }

  // The whole content of `file`.
  static std::string read(const std::filesystem::path& file) {
    std::ifstream in{file, std::ios::binary};
    if (!in) {
      throw std::runtime_error("cannot read '" + file.string() + "'");
    }
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  }

 private:
  std::filesystem::path m_path;
};

}  // namespace cpi::testing
