#include "cpi/stemcell/fs_image.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "cpi/errors.hpp"

extern char** environ;

namespace cpi::stemcell {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;
constexpr std::uint64_t k_inode_overhead = 4096;  // a block per entry: directories, small files
constexpr std::uint64_t k_root_headroom = 1024 * k_mib;  // free space a new container starts with

struct ReadCloser {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};
struct WriteCloser {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};

// "a/b/../c" and absolute names are refused by libarchive (SECURE_* flags) once prefixed with
// the extraction dir; here the relative name is only normalised ("./x" -> "x").
std::string relative_name(const char* raw) {
  std::string name = raw == nullptr ? "" : raw;
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  if (name == ".") name.clear();
  return name;
}

void add_settings_link(const fs::path& dir) {
  const fs::path bosh = dir / "var/vcap/bosh";
  const fs::path link = dir / std::string{k_agent_settings_path}.substr(1);
  const fs::path config = dir / std::string{k_config_dir}.substr(1);
  std::error_code ec;
  fs::create_directories(bosh, ec);
  fs::create_directories(config, ec);
  fs::create_directories(dir / std::string{k_ephemeral_dir}.substr(1), ec);
  fs::create_directories(dir / std::string{k_disks_dir}.substr(1), ec);
  fs::remove(link, ec);
  fs::create_symlink(fs::path{"libvirt-config"} / k_settings_file, link, ec);
  if (ec) {
    throw CloudError("adding the settings link " + std::string{k_agent_settings_path} +
                     " to the root filesystem: " + ec.message());
  }
}

}  // namespace

RootfsTree extract_rootfs(const std::string& tarball, const fs::path& dir) {
  if (geteuid() != 0) {
    throw CloudError("create_stemcell: a root filesystem stemcell (lxc) must be unpacked as root "
                     "to keep its file owners and device nodes; run the CPI as root");
  }
  std::unique_ptr<archive, ReadCloser> in{archive_read_new()};
  std::unique_ptr<archive, WriteCloser> out{archive_write_disk_new()};
  if (!in || !out) throw CloudError("create_stemcell: out of memory for libarchive");
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  archive_write_disk_set_options(
      out.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                     ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_UNLINK |
                     ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  archive_write_disk_set_standard_lookup(out.get());
  if (archive_read_open_filename(in.get(), tarball.c_str(), 1U << 20) != ARCHIVE_OK) {
    throw CloudError("create_stemcell: cannot open '" + tarball +
                     "': " + archive_error_string(in.get()));
  }
  RootfsTree tree;
  std::vector<std::string> names;
  archive_entry* entry = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(in.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      throw CloudError("create_stemcell: '" + tarball + "' is not a readable root filesystem "
                       "tarball: " + archive_error_string(in.get()));
    }
    const std::string name = relative_name(archive_entry_pathname(entry));
    ++tree.entries;
    if (names.size() < 3) names.push_back(name);
    if (name.empty()) continue;  // "./": the extraction dir itself
    if (name.front() == '/') {
      throw CloudError("create_stemcell: '" + tarball + "' has an absolute path '" + name + "'");
    }
    archive_entry_set_pathname(entry, (dir / name).c_str());
    if (const char* target = archive_entry_hardlink(entry); target != nullptr) {
      const std::string link = relative_name(target);
      archive_entry_set_hardlink(entry, (dir / link).c_str());
    }
    if (archive_entry_filetype(entry) == AE_IFREG && archive_entry_size_is_set(entry) != 0) {
      tree.bytes += static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(entry), 0));
    }
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN) {
      throw CloudError("create_stemcell: unpacking '" + name + "' from '" + tarball +
                       "': " + archive_error_string(out.get()));
    }
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
      const int r = archive_read_data_block(in.get(), &block, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        throw CloudError("create_stemcell: reading '" + name + "' from '" + tarball +
                         "': " + archive_error_string(in.get()));
      }
      if (archive_write_data_block(out.get(), block, size, offset) < ARCHIVE_WARN) {
        throw CloudError("create_stemcell: writing '" + name + "': " +
                         archive_error_string(out.get()));
      }
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) {
      throw CloudError("create_stemcell: finishing '" + name + "': " +
                       archive_error_string(out.get()));
    }
  }
  if (archive_write_close(out.get()) < ARCHIVE_WARN) {
    throw CloudError("create_stemcell: unpacking '" + tarball + "': " +
                     archive_error_string(out.get()));
  }
  if (tree.entries == 1 && !names.empty() && names.front() == "root.img") {
    throw NotSupported("hypervisor 'lxc' does not support disk image stemcells ('" + tarball +
                       "' holds root.img): upload a root filesystem stemcell (stemcell_formats "
                       "warden-tar, e.g. bosh-warden-boshlite-ubuntu-jammy-go_agent)");
  }
  std::error_code ec;
  if (!fs::is_directory(dir / "bin", ec) && !fs::is_symlink(dir / "bin", ec)) {
    throw CloudError("create_stemcell: '" + tarball + "' is not a root filesystem (no /bin in it; "
                     "first entries: " + (names.empty() ? std::string{"none"} : names.front()) +
                     ")");
  }
  tree.init = fs::exists(dir / "usr/sbin/runsvdir-start", ec) ? "/usr/sbin/runsvdir-start"
                                                              : "/sbin/init";
  add_settings_link(dir);
  spdlog::info("unpacked root filesystem: {} entries, {} MiB of files, init {}", tree.entries,
               tree.bytes / k_mib, tree.init);
  return tree;
}

std::uint64_t rootfs_capacity(const RootfsTree& tree, std::uint64_t at_least) {
  const std::uint64_t used = tree.bytes + tree.entries * k_inode_overhead;
  const std::uint64_t wanted = used + used / 4 + k_root_headroom;
  const std::uint64_t bytes = std::max(wanted, at_least);
  return (bytes + k_mib - 1) / k_mib * k_mib;
}

namespace {

fs::path link_of(const std::string& volume_path) {
  std::uint64_t hash = 14695981039346656037ULL;  // FNV-1a: stable across builds and hosts
  for (const char c : volume_path) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return fs::path{k_link_dir} / hex;
}

}  // namespace

std::string lxc_link_path(const std::string& volume_path) {
  return link_of(volume_path).string();
}

std::string lxc_source_path(const std::string& volume_path, bool local_host) {
  if (volume_path.size() < k_loop_name_size) return volume_path;
  if (!local_host) {
    throw CloudError("libvirt's LXC driver mounts only images whose path is under " +
                     std::to_string(k_loop_name_size) + " bytes, and '" + volume_path + "' has " +
                     std::to_string(volume_path.size()) +
                     ": give the storage pool a shorter target path (and a shorter "
                     "name_prefix), or run the CPI on the libvirt host (lxc:///), where it "
                     "links long paths in " + std::string{k_link_dir});
  }
  const fs::path link = link_of(volume_path);
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == volume_path) return link.string();
  fs::remove(link, ec);
  fs::create_symlink(volume_path, link, ec);
  if (ec) {
    throw CloudError("linking volume '" + volume_path + "' as '" + link.string() +
                     "' (libvirt's LXC driver needs paths under 64 bytes): " + ec.message() +
                     "; the lxc hypervisor needs the CPI to run as root on the libvirt host");
  }
  return link.string();
}

void remove_link(const std::string& source_path) {
  const fs::path path{source_path};
  std::error_code ec;
  if (path.parent_path() == fs::path{k_link_dir} && fs::is_symlink(path, ec)) fs::remove(path, ec);
}

std::string mke2fs_path() {
  for (const char* candidate : {"/sbin/mke2fs", "/usr/sbin/mke2fs"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path == nullptr ? "" : path;
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto end = dirs.find(':', start);
    const std::string d = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!d.empty()) {
      const std::string candidate = d + "/mke2fs";
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

void make_ext4(const fs::path& image, std::uint64_t bytes, const std::string& label,
               const fs::path& from) {
  const std::string tool = mke2fs_path();
  if (tool.empty()) {
    throw CloudError("mke2fs not found (in /sbin, /usr/sbin or PATH): install e2fsprogs, which "
                     "the lxc hypervisor needs to build its filesystem images");
  }
  {
    const int fd = ::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      const std::string why = std::strerror(errno);
      if (fd >= 0) ::close(fd);
      throw CloudError("creating the image file '" + image.string() + "': " + why);
    }
    ::close(fd);
  }
  std::vector<std::string> args{tool, "-q", "-F", "-t", "ext4", "-m", "0", "-L", label,
                                "-E", "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1"};
  if (bytes < 64 * k_mib) {
    args.insert(args.end(), {"-O", "^has_journal"});  // a small image has no room for one
  }
  if (!from.empty()) args.insert(args.end(), {"-d", from.string()});
  args.push_back(image.string());

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw CloudError(std::string{"running mke2fs: pipe: "} + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, tool.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  std::string output;
  if (spawned == 0) {
    std::array<char, 4096> buffer{};
    for (;;) {
      const auto n = ::read(pipe_fds[0], buffer.data(), buffer.size());
      if (n > 0) {
        if (output.size() < 16384) output.append(buffer.data(), static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;
    }
  }
  ::close(pipe_fds[0]);
  if (spawned != 0) {
    throw CloudError("running " + tool + ": " + std::strerror(spawned));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    throw CloudError("mke2fs could not build the " + std::to_string(bytes / k_mib) +
                     " MiB ext4 image '" + label + "'" +
                     (from.empty() ? std::string{} : " from " + from.string()) + ": " +
                     (output.empty() ? "exit status " + std::to_string(WEXITSTATUS(status))
                                     : output));
  }
}

FileSource::FileSource(const fs::path& path)
    : m_path(path), m_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
  struct stat st {};
  if (m_fd < 0 || ::fstat(m_fd, &st) != 0) {
    const std::string why = std::strerror(errno);
    if (m_fd >= 0) ::close(m_fd);
    throw CloudError("opening '" + path.string() + "': " + why);
  }
  m_size = static_cast<std::uint64_t>(st.st_size);
}

FileSource::~FileSource() {
  if (m_fd >= 0) ::close(m_fd);
}

std::size_t FileSource::read(char* buffer, std::size_t size) {
  for (;;) {
    const auto n = ::pread(m_fd, buffer, size, static_cast<off_t>(m_pos));
    if (n >= 0) {
      m_pos += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
    if (errno != EINTR) {
      throw CloudError("reading '" + m_path.string() + "': " + std::strerror(errno));
    }
  }
}

std::uint64_t FileSource::hole_ahead() {
  if (m_pos >= m_size) return 0;
  const off_t data = ::lseek(m_fd, static_cast<off_t>(m_pos), SEEK_DATA);
  if (data < 0) return errno == ENXIO ? m_size - m_pos : 0;  // ENXIO: a hole to the end
  return static_cast<std::uint64_t>(data) - m_pos;
}

void FileSource::skip(std::uint64_t bytes) { m_pos = std::min(m_size, m_pos + bytes); }

}  // namespace cpi::stemcell
