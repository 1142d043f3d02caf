#pragma once
// A private scratch directory (mode 0700) under $TMPDIR (or /tmp) whose files are created with
// mode 0600. The directory and everything in it are removed when the owner is destroyed.

#include <filesystem>
#include <string>
#include <string_view>

namespace cpi::util {

class PrivateDir {
 public:
  // Throws CloudError when the directory cannot be made.
  explicit PrivateDir(std::string_view prefix = "cpi");
  PrivateDir(PrivateDir&& other) noexcept;
  PrivateDir& operator=(PrivateDir&& other) noexcept;
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
  ~PrivateDir();

  const std::filesystem::path& path() const noexcept { return m_path; }

  // Writes `content` to `name` inside the dir with mode 0600; returns the file's path.
  std::filesystem::path write_file(const std::string& name, std::string_view content) const;

 private:
  std::filesystem::path m_path;
};

}  // namespace cpi::util
