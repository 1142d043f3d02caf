// ImageReader on sparse tar members (GNU tar -S, in GNU and PAX sparse formats): the whole disk
// up to the member's size, holes reported to a sparse reader and never read as data.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/stemcell/image_reader.hpp"
#include "support/temp_dir.hpp"

namespace cpi::stemcell {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr std::uint64_t k_kib = 1024;
constexpr std::uint64_t k_mib = 1024 * k_kib;

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

void run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    throw std::runtime_error("command failed: " + command);
  }
}

// Bytes that no run of zeros hides in (so every data block stays data).
std::string pattern(std::size_t size, unsigned seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<char>(1 + (i * 31 + seed) % 250);
  }
  return bytes;
}

// A sparse file of `size` bytes with data only at `extents` (offset, length); holes elsewhere.
// Returns its content as a reader must see it.
std::string make_sparse(const fs::path& path, std::uint64_t size,
                        const std::vector<std::pair<std::uint64_t, std::uint64_t>>& extents) {
  std::string expected(static_cast<std::size_t>(size), '\0');
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path.string());
  unsigned seed = 0;
  for (const auto& [offset, length] : extents) {
    const std::string data = pattern(static_cast<std::size_t>(length), ++seed);
    expected.replace(static_cast<std::size_t>(offset), data.size(), data);
    if (::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) !=
        static_cast<ssize_t>(data.size())) {
      ::close(fd);
      throw std::runtime_error("cannot write " + path.string());
    }
  }
  const bool sized = ::ftruncate(fd, static_cast<off_t>(size)) == 0;
  ::close(fd);
  if (!sized) throw std::runtime_error("cannot size " + path.string());
  return expected;
}

struct Streamed {
  std::string bytes;          // the disk as a sparse upload rebuilds it
  std::uint64_t skipped = 0;  // bytes passed over as holes, never read
};

// Reads like a sparse upload: holes the reader reports are skipped, the rest read in `chunk`s.
Streamed stream_sparse(ImageReader& reader, std::size_t chunk) {
  Streamed out;
  std::vector<char> buffer(chunk);
  for (;;) {
    if (const std::uint64_t hole = reader.hole_ahead(); hole > 0) {
      reader.skip(hole);
      out.skipped += hole;
      out.bytes.append(static_cast<std::size_t>(hole), '\0');
      continue;
    }
    const std::size_t got = reader.read(buffer.data(), buffer.size());
    if (got == 0) return out;
    out.bytes.append(buffer.data(), got);
  }
}

std::string read_plain(ImageReader& reader, std::size_t chunk) {
  std::string out;
  std::vector<char> buffer(chunk);
  while (const std::size_t got = reader.read(buffer.data(), buffer.size())) {
    out.append(buffer.data(), got);
  }
  return out;
}

struct Layout {
  const char* name;
  std::uint64_t size;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;
  std::uint64_t min_hole;  // the holes a sparse reader must skip, at least
};

// Holes at the start, in the middle, at the end, and a member that is all hole; 64 KiB-aligned
// data (a file system keeps holes in whole blocks).
std::vector<Layout> layouts() {
  return {
      {"hole at the end", 8 * k_mib, {{0, 256 * k_kib}}, 7 * k_mib},
      {"hole at the start", 8 * k_mib, {{6 * k_mib, 2 * k_mib}}, 5 * k_mib},
      {"hole in the middle", 8 * k_mib, {{0, 64 * k_kib}, {7 * k_mib, 1 * k_mib}}, 6 * k_mib},
      {"holes everywhere", 16 * k_mib,
       {{1 * k_mib, 64 * k_kib}, {5 * k_mib, 128 * k_kib}, {9 * k_mib, 64 * k_kib}},
       14 * k_mib},
      {"all hole", 4 * k_mib, {}, 3 * k_mib},
  };
}

class SparseTarTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!on_path("tar")) GTEST_SKIP() << "needs GNU tar on PATH";
  }
  // Packs `file` (in m_dir) with GNU tar -S in the parameter's format, gzip-compressed.
  fs::path pack(const std::string& file, const std::string& name, bool sparse = true) {
    const fs::path image = m_dir / name;
    run(std::string{"tar "} + (sparse ? "-S " : "") + "--format=" + GetParam() + " -czf '" +
        image.string() + "' -C '" + m_dir.path().string() + "' " + file);
    return image;
  }
  TempDir m_dir;
};

TEST_P(SparseTarTest, ReadsTheWholeDiskAndReportsItsHoles) {
  for (const Layout& layout : layouts()) {
    SCOPED_TRACE(layout.name);
    const std::string disk = make_sparse(m_dir / "root.img", layout.size, layout.extents);
    const fs::path image = pack("root.img", "image");

    ImageReader sparse{image.string()};
    EXPECT_EQ(sparse.size(), layout.size);
    EXPECT_EQ(sparse.detected_format(), "raw");
    const Streamed streamed = stream_sparse(sparse, 1 << 20);
    EXPECT_EQ(streamed.bytes.size(), disk.size());
    EXPECT_TRUE(streamed.bytes == disk) << "bytes differ";
    EXPECT_GE(streamed.skipped, layout.min_hole) << "holes were read as data";

    ImageReader plain{image.string()};  // a reader that never skips gets the zeros
    EXPECT_TRUE(read_plain(plain, 100000) == disk) << "bytes differ without skipping";
  }
}

TEST_P(SparseTarTest, NonSparsePackingOfTheSameDiskGivesTheSameBytes) {
  const std::string disk = make_sparse(m_dir / "root.img", 4 * k_mib, {{k_mib, 64 * k_kib}});
  ImageReader reader{pack("root.img", "image", false).string()};
  const Streamed streamed = stream_sparse(reader, 1 << 20);
  EXPECT_TRUE(streamed.bytes == disk);
  EXPECT_EQ(streamed.skipped, 0U) << "a plain member stores its zeros";
}

TEST_P(SparseTarTest, SparseQcow2MemberIsReadByteForByte) {
  if (!on_path("qemu-img")) GTEST_SKIP() << "needs qemu-img on PATH";
  run("qemu-img create -q -f qcow2 '" + (m_dir / "root.img").string() + "' 1G");
  run("qemu-io -c 'write -P 7 100M 128k' '" + (m_dir / "root.img").string() + "'");
  const std::string disk = TempDir::read(m_dir / "root.img");

  ImageReader reader{pack("root.img", "image").string()};
  EXPECT_EQ(reader.detected_format(), "qcow2");
  EXPECT_EQ(reader.virtual_size(), 1024 * k_mib);
  EXPECT_TRUE(read_plain(reader, 65536) == disk);
}

TEST_P(SparseTarTest, SmallChunksAcrossHolesGiveIdenticalBytes) {
  const std::string disk =
      make_sparse(m_dir / "root.img", 1 * k_mib, {{64 * k_kib, 64 * k_kib}, {512 * k_kib, 4096}});
  const fs::path image = pack("root.img", "image");
  for (const std::size_t chunk : {std::size_t{1000}, std::size_t{4097}}) {
    ImageReader reader{image.string()};
    EXPECT_TRUE(stream_sparse(reader, chunk).bytes == disk) << "chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(GnuAndPax, SparseTarTest, ::testing::Values("gnu", "pax"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace cpi::stemcell
