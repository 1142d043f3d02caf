#pragma once
// Filesystem images for the container flavour (lxc): a container mounts ext4 images where a VM
// has block devices. The root filesystem comes from a `warden-tar` stemcell (its `image` is a
// gzip tar of the root filesystem, as in bosh-warden stemcells); the agent settings, the
// ephemeral and the persistent disks are ext4 images too. Images are built here, by e2fsprogs'
// `mke2fs -d`, in a private scratch directory, and uploaded into pool volumes as sparse streams:
// only libvirt's storage API touches the pool, so a remote libvirt host works the same.

#include <cstdint>
#include <filesystem>
#include <string>

#include "cpi/agent/container_paths.hpp"
#include "cpi/util/byte_source.hpp"

namespace cpi::stemcell {

using agent::k_agent_settings_path;  // the container's paths (agent/container_paths.hpp)
using agent::k_config_dir;
using agent::k_config_label;
using agent::k_disks_dir;
using agent::k_ephemeral_dir;
using agent::k_settings_file;

struct RootfsTree {
  std::uint64_t bytes = 0;    // regular file content
  std::uint64_t entries = 0;  // archive entries
  std::string init;           // the container's init: runsvdir-start when present, else /sbin/init
};

// Extracts the gzip (or plain) tar root filesystem `tarball` below `dir`, keeping owners, modes,
// device nodes, links, times and xattrs; entries that would land outside `dir` are refused.
// Adds the settings link (k_agent_settings_path -> k_config_dir/k_settings_file) and the mount
// points. Throws NotSupported for a disk image stemcell (a tar holding only root.img) and
// CloudError naming the file for anything unreadable. Needs root (file owners, device nodes).
RootfsTree extract_rootfs(const std::string& tarball, const std::filesystem::path& dir);

// The size of an ext4 filesystem that holds `tree` with room to spare (the container writes to
// its root), in bytes, a multiple of 1 MiB, at least `at_least`.
std::uint64_t rootfs_capacity(const RootfsTree& tree, std::uint64_t at_least);

// A new sparse file `image` of `bytes` holding an ext4 filesystem labelled `label`, filled with
// the tree at `from` when not empty. Throws CloudError with mke2fs's message.
void make_ext4(const std::filesystem::path& image, std::uint64_t bytes, const std::string& label,
               const std::filesystem::path& from = {});

// libvirt's LXC driver loop-mounts a filesystem image only when its path is shorter than 64
// bytes (the kernel's LO_NAME_SIZE, which libvirt 9.0 insists on), and pool volume paths are
// often longer. lxc_source_path() returns the path a container's XML names a volume by: its own
// path when short enough; else, with the libvirt host local, a short link
// "<k_link_dir>/<16 hex of the volume path>" (made here, idempotent; remove_link() removes it
// once the XML naming it is gone); else a CloudError that says
// to shorten the pool's path or run the CPI on the host.
inline constexpr const char* k_link_dir = "/var/lib/bosh-libvirt-cpi/lxc";
inline constexpr std::size_t k_loop_name_size = 64;
std::string lxc_source_path(const std::string& volume_path, bool local_host);
// The short link lxc_source_path() makes for `volume_path` (whether or not it exists): a pure
// function of the path, so a container's XML naming it names that volume.
std::string lxc_link_path(const std::string& volume_path);
// Removes `source_path` when it is one of the links in k_link_dir (a container XML's source).
void remove_link(const std::string& source_path);

// Where the `mke2fs` binary is ("" when missing): /sbin, /usr/sbin, then PATH.
std::string mke2fs_path();

// Reads a file; what upload_volume streams. Reports the file's holes (SEEK_DATA), so a sparse
// upload of a mostly empty filesystem image never reads its empty gigabytes.
class FileSource final : public util::ByteSource {
 public:
  // Throws CloudError when the file cannot be opened.
  explicit FileSource(const std::filesystem::path& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  std::size_t read(char* buffer, std::size_t size) override;
  std::uint64_t hole_ahead() override;
  void skip(std::uint64_t bytes) override;
  std::uint64_t size() const { return m_size; }

 private:
  std::filesystem::path m_path;
  int m_fd = -1;
  std::uint64_t m_size = 0;
  std::uint64_t m_pos = 0;
};

}  // namespace cpi::stemcell
