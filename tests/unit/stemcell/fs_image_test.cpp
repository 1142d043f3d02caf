// Filesystem images for containers: root filesystem tarballs unpacked safely, ext4 images made
// by mke2fs and read back with debugfs (e2fsprogs), sparse files read hole by hole.

#include "cpi/stemcell/fs_image.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "support/temp_dir.hpp"

namespace cpi::stemcell {
namespace {

namespace fs = std::filesystem;
using cpi::testing::TempDir;

struct Entry {
  std::string name;
  unsigned int type = AE_IFREG;
  std::string content{};  // file content, or the target of a symlink / hard link
  int uid = 0;
  int mode = 0644;
};

// A gzip tar of `entries`, written with libarchive.
void write_tgz(const fs::path& path, const std::vector<Entry>& entries) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_uid(entry, e.uid);
    archive_entry_set_gid(entry, e.uid);
    if (e.type == AE_IFLNK) {
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.content.c_str());
      archive_entry_set_perm(entry, 0777);
    } else if (e.type == 0) {  // a hard link to e.content
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.content.c_str());
      archive_entry_set_perm(entry, static_cast<mode_t>(e.mode));
    } else {
      archive_entry_set_filetype(entry, e.type);
      archive_entry_set_perm(entry, static_cast<mode_t>(e.type == AE_IFDIR ? 0755 : e.mode));
      if (e.type == AE_IFREG) archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
    }
    archive_write_header(a, entry);
    if (e.type == AE_IFREG && !e.content.empty()) {
      archive_write_data(a, e.content.data(), e.content.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::string run(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen((command + " 2>/dev/null").c_str(), "r")) {
    std::array<char, 4096> buffer{};
    for (std::size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), p)) > 0;) {
      out.append(buffer.data(), n);
    }
    ::pclose(p);
  }
  return out;
}

bool have_e2fsprogs() { return !mke2fs_path().empty() && !run("command -v debugfs").empty(); }

TEST(FsImageTest, Ext4ImageIsLabelledSparseAndHoldsTheTree) {
  if (!have_e2fsprogs()) GTEST_SKIP() << "e2fsprogs (mke2fs, debugfs) is not installed";
  TempDir dir;
  fs::create_directories(dir / "tree/sub");
  std::ofstream{dir / "tree/sub/settings.json"} << R"({"agent_id":"a-1"})";
  const fs::path image = dir / "image";
  make_ext4(image, 16ULL << 20, "config-2", dir / "tree");
  EXPECT_EQ(fs::file_size(image), 16ULL << 20);
  struct stat st {};
  ASSERT_EQ(::stat(image.c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, 4ULL << 20) << "not sparse";
  EXPECT_EQ(run("debugfs -R 'cat /sub/settings.json' " + image.string()), R"({"agent_id":"a-1"})");
  EXPECT_NE(run("dumpe2fs -h " + image.string()).find("Filesystem volume name:   config-2"),
            std::string::npos);

  // Without a tree: an empty filesystem, for the ephemeral and persistent disks.
  const fs::path empty = dir / "empty";
  make_ext4(empty, 64ULL << 20, "bosh-disk");
  EXPECT_NE(run("debugfs -R 'ls -p /' " + empty.string()).find("lost+found"), std::string::npos);
}

TEST(FsImageTest, Mke2fsFailureIsACloudErrorWithItsMessage) {
  if (!have_e2fsprogs()) GTEST_SKIP() << "e2fsprogs is not installed";
  TempDir dir;
  try {
    make_ext4(dir / "tiny", 4096, "x", dir / "missing-tree");
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("mke2fs"), std::string::npos) << message;
    EXPECT_NE(message.find("missing-tree"), std::string::npos) << message;
  }
}

TEST(FsImageTest, FileSourceSkipsHolesAndReadsData) {
  TempDir dir;
  const fs::path file = dir / "sparse";
  {
    std::ofstream out{file, std::ios::binary};
    out << "head";
  }
  fs::resize_file(file, 32ULL << 20);
  {
    std::fstream out{file, std::ios::binary | std::ios::in | std::ios::out};
    out.seekp(16LL << 20);
    out << "middle";
  }
  FileSource source{file};
  EXPECT_EQ(source.size(), 32ULL << 20);
  EXPECT_EQ(source.hole_ahead(), 0U) << "data at offset 0";
  std::array<char, 4> head{};
  ASSERT_EQ(source.read(head.data(), head.size()), 4U);
  EXPECT_EQ(std::string(head.data(), 4), "head");
  source.skip((1ULL << 20) - 4);  // to the next MiB: a hole up to the data at 16 MiB
  const auto hole = source.hole_ahead();
  EXPECT_GT(hole, 0U);
  EXPECT_LE(hole, 15ULL << 20);
  source.skip(hole);
  std::vector<char> rest(64ULL << 10);
  std::string seen;
  for (std::size_t n; (n = source.read(rest.data(), rest.size())) > 0;) {
    seen.append(rest.data(), n);
    if (seen.size() > (1ULL << 20)) break;
  }
  EXPECT_NE(seen.find("middle"), std::string::npos);
}

TEST(FsImageTest, RootfsCapacityLeavesRoomAndRoundsToMiB) {
  RootfsTree tree;
  tree.bytes = 300ULL << 20;
  tree.entries = 20000;
  const auto capacity = rootfs_capacity(tree, 0);
  EXPECT_EQ(capacity % (1ULL << 20), 0U);
  EXPECT_GE(capacity, tree.bytes + tree.bytes / 4 + (1ULL << 30));
  EXPECT_EQ(rootfs_capacity(tree, 8ULL << 30), 8ULL << 30);
}

TEST(LxcSourcePathTest, ShortPathsStayLongOnesAreLinkedLocallyAndRefusedRemotely) {
  EXPECT_EQ(lxc_source_path("/var/lib/lxb/vm-1-root", false), "/var/lib/lxb/vm-1-root");
  const std::string long_path =
      "/var/lib/libvirt/bosh/vm-0f8fad5b-d9cb-469f-a165-70867728950e-ephemeral";
  try {
    lxc_source_path(long_path, false);
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("under 64 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find(long_path), std::string::npos) << message;
  }
  if (::geteuid() != 0) GTEST_SKIP() << "the link directory needs root";
  const std::string link = lxc_source_path(long_path, true);
  EXPECT_LT(link.size(), 64U);
  EXPECT_EQ(link.rfind(k_link_dir, 0), 0U) << link;
  EXPECT_EQ(fs::read_symlink(link), long_path);
  EXPECT_EQ(lxc_source_path(long_path, true), link) << "the same link again";
  remove_link(link);
  EXPECT_FALSE(fs::is_symlink(link));
}

class RootfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "unpacking a root filesystem needs root";
  }
  TempDir m_dir;
};

TEST_F(RootfsTest, UnpacksOwnersLinksAndAddsTheSettingsLink) {
  const fs::path tgz = m_dir / "image";
  write_tgz(tgz, {{"./", AE_IFDIR},
                  {"./bin/", AE_IFDIR},
                  {"./bin/busybox", AE_IFREG, "#!binary", 0, 0755},
                  {"./bin/sh", AE_IFLNK, "busybox"},
                  {"./etc/", AE_IFDIR},
                  {"./etc/owned", AE_IFREG, "vcap", 1000, 0600},
                  {"./etc/hard", 0, "./etc/owned"},
                  {"./var/vcap/bosh/warden-cpi-agent-env.json", AE_IFREG, "{}"}});
  const fs::path root = m_dir / "root";
  fs::create_directory(root);
  const auto tree = extract_rootfs(tgz.string(), root);
  EXPECT_EQ(tree.entries, 8U);
  EXPECT_EQ(tree.bytes, 8U + 4U + 2U);
  EXPECT_EQ(tree.init, "/sbin/init");
  EXPECT_EQ(fs::read_symlink(root / "bin/sh"), "busybox");
  struct stat st {};
  ASSERT_EQ(::stat((root / "etc/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000U);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_EQ(st.st_nlink, 2U) << "the hard link";
  // The agent's settings file becomes a link into the settings filesystem's mount point.
  EXPECT_EQ(fs::read_symlink(root / "var/vcap/bosh/warden-cpi-agent-env.json"),
            "libvirt-config/settings.json");
  EXPECT_TRUE(fs::is_directory(root / "var/vcap/bosh/libvirt-config"));
  EXPECT_TRUE(fs::is_directory(root / "warden-cpi-dev"));
  EXPECT_TRUE(fs::is_directory(root / "var/vcap/data"));
}

TEST_F(RootfsTest, WardenStemcellInitIsRunsvdirStart) {
  const fs::path tgz = m_dir / "image";
  write_tgz(tgz, {{"bin/", AE_IFDIR}, {"usr/sbin/runsvdir-start", AE_IFREG, "#!/bin/sh", 0, 0755}});
  fs::create_directory(m_dir / "root");
  EXPECT_EQ(extract_rootfs(tgz.string(), m_dir / "root").init, "/usr/sbin/runsvdir-start");
}

TEST_F(RootfsTest, EntriesOutsideTheTreeAreRefused) {
  for (const std::string evil : {"../escaped", "bin/../../escaped"}) {
    SCOPED_TRACE(evil);
    const fs::path tgz = m_dir / "evil.tgz";
    write_tgz(tgz, {{"bin/", AE_IFDIR}, {evil, AE_IFREG, "x"}});
    const fs::path root = m_dir / "root";
    fs::remove_all(root);
    fs::create_directory(root);
    EXPECT_THROW(extract_rootfs(tgz.string(), root), CloudError);
    EXPECT_FALSE(fs::exists(m_dir / "escaped"));
  }
  // Through a symlink that points outside: libarchive replaces the link by a directory (or
  // refuses), never writing through it.
  const fs::path tgz = m_dir / "link.tgz";
  write_tgz(tgz, {{"bin/", AE_IFDIR}, {"out", AE_IFLNK, m_dir.path().string()},
                  {"out/escaped", AE_IFREG, "x"}});
  const fs::path root = m_dir / "root";
  fs::remove_all(root);
  fs::create_directory(root);
  try {
    extract_rootfs(tgz.string(), root);
    EXPECT_FALSE(fs::is_symlink(root / "out"));
    EXPECT_TRUE(fs::exists(root / "out/escaped"));
  } catch (const CloudError&) {
  }
  EXPECT_FALSE(fs::exists(m_dir / "escaped"));
}

TEST_F(RootfsTest, DiskImageStemcellIsNotSupported) {
  const fs::path tgz = m_dir / "image";
  write_tgz(tgz, {{"root.img", AE_IFREG, std::string(4096, '\0')}});
  fs::create_directory(m_dir / "root");
  try {
    extract_rootfs(tgz.string(), m_dir / "root");
    ADD_FAILURE() << "no error";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string{e.what()}.find("warden-tar"), std::string::npos) << e.what();
  }
}

TEST_F(RootfsTest, CorruptTarballIsACloudErrorNamingIt) {
  const fs::path tgz = m_dir / "broken";
  std::ofstream{tgz} << "not a tarball";
  fs::create_directory(m_dir / "root");
  try {
    extract_rootfs(tgz.string(), m_dir / "root");
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    EXPECT_NE(std::string{e.what()}.find(tgz.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cpi::stemcell
