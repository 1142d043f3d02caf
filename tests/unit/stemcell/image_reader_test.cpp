#include "cpi/stemcell/image_reader.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cpi/errors.hpp"

namespace cpi::stemcell {
namespace {

namespace fs = std::filesystem;

// A scratch directory for the fixtures, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string{tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"} + "/image-reader-test-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed for " + templ);
    }
    m_path = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& name) const { return m_path / name; }

 private:
  fs::path m_path;
};

struct Entry {
  std::string name;
  std::string content;
  unsigned int type = AE_IFREG;
};

struct WriteCloser {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};

// Writes a (gzip) pax tar with libarchive.
void write_tar(const fs::path& path, const std::vector<Entry>& entries, bool gzip = true) {
  std::unique_ptr<archive, WriteCloser> a{archive_write_new()};
  if (gzip) {
    archive_write_add_filter_gzip(a.get());
  }
  archive_write_set_format_pax_restricted(a.get());
  if (archive_write_open_filename(a.get(), path.c_str()) != ARCHIVE_OK) {
    throw std::runtime_error(archive_error_string(a.get()));
  }
  for (const Entry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry,
                           e.type == AE_IFREG ? static_cast<la_int64_t>(e.content.size()) : 0);
    archive_write_header(a.get(), entry);
    if (e.type == AE_IFREG) {
      archive_write_data(a.get(), e.content.data(), e.content.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a.get());
}

// Pseudo-random (incompressible) bytes with a run of zeros in the middle.
std::string disk_bytes(std::size_t size, std::uint32_t seed = 1) {
  std::string bytes(size, '\0');
  std::uint32_t x = seed;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    bytes[i] = static_cast<char>(x & 0xffU);
  }
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(size / 3),
            bytes.begin() + static_cast<std::ptrdiff_t>(size / 2), '\0');
  return bytes;
}

std::string slurp(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void run(const std::string& command) {
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error("command failed: " + command);
  }
}

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

std::string read_all(ImageReader& reader, std::size_t chunk) {
  std::string out;
  std::vector<char> buffer(chunk);
  for (;;) {
    const std::size_t got = reader.read(buffer.data(), buffer.size());
    if (got == 0) {
      return out;
    }
    EXPECT_LE(got, chunk);
    out.append(buffer.data(), got);
  }
}

// The message of the CloudError that `action` throws ("" when it throws none).
template <typename Action>
std::string cloud_error(Action action) {
  try {
    action();
  } catch (const CloudError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no CloudError thrown";
  return "";
}

TEST(ImageReaderTest, ReadsRawImageByteForByte) {
  TempDir dir;
  const std::string disk = disk_bytes(1024 * 1024 + 123);
  write_tar(dir / "image", {{"root.img", disk}});

  ImageReader reader{(dir / "image").string()};
  EXPECT_EQ(reader.detected_format(), "raw");
  EXPECT_EQ(reader.size(), disk.size());
  EXPECT_EQ(reader.virtual_size(), disk.size());
  EXPECT_TRUE(read_all(reader, 256 * 1024) == disk);
}

TEST(ImageReaderTest, DetectsQcow2AndItsVirtualSize) {
  if (!on_path("qemu-img") || !on_path("tar")) {
    GTEST_SKIP() << "needs qemu-img and tar on PATH";
  }
  TempDir dir;
  fs::create_directory(dir / "src");
  run("qemu-img create -q -f qcow2 '" + (dir / "src/root.img").string() + "' 1G");
  run("tar -czf '" + (dir / "image").string() + "' -C '" + (dir / "src").string() + "' root.img");
  const std::string disk = slurp(dir / "src/root.img");

  ImageReader reader{(dir / "image").string()};
  EXPECT_EQ(reader.detected_format(), "qcow2");
  EXPECT_EQ(reader.virtual_size(), 1024ULL * 1024 * 1024);
  EXPECT_EQ(reader.size(), disk.size());
  EXPECT_TRUE(read_all(reader, 64 * 1024) == disk);
}

TEST(ImageReaderTest, AcceptsDotSlashRootImgFromGnuTar) {
  if (!on_path("tar")) {
    GTEST_SKIP() << "needs tar on PATH";
  }
  TempDir dir;
  fs::create_directory(dir / "src");
  const std::string disk = disk_bytes(100 * 1024 + 5);
  spit(dir / "src/root.img", disk);
  run("tar -czf '" + (dir / "image").string() + "' -C '" + (dir / "src").string() + "' .");

  ImageReader reader{(dir / "image").string()};
  EXPECT_EQ(reader.detected_format(), "raw");
  EXPECT_EQ(reader.size(), disk.size());
  EXPECT_TRUE(read_all(reader, 4096) == disk);
}

TEST(ImageReaderTest, ReadsSparseGnuTarAsTheWholeDisk) {
  if (!on_path("tar")) {
    GTEST_SKIP() << "needs tar on PATH";
  }
  TempDir dir;
  fs::create_directory(dir / "src");
  spit(dir / "src/root.img", disk_bytes(4096));
  fs::resize_file(dir / "src/root.img", 2 * 1024 * 1024);  // a hole up to the end
  const std::string disk = slurp(dir / "src/root.img");

  for (const std::string format : {"gnu", "posix"}) {
    const std::string path = (dir / ("image-" + format)).string();
    run("tar --format=" + format + " -Sczf '" + path + "' -C '" + (dir / "src").string() +
        "' root.img");
    ImageReader reader{path};
    EXPECT_EQ(reader.size(), disk.size()) << format;
    EXPECT_TRUE(read_all(reader, 100000) == disk) << format;
  }
}

TEST(ImageReaderTest, AcceptsUncompressedTarAndSkipsOtherEntries) {
  TempDir dir;
  const std::string disk = disk_bytes(70000);
  write_tar(dir / "image", {{"stemcell.MF", "name: x\n"}, {"./root.img", disk}}, false);

  ImageReader reader{(dir / "image").string()};
  EXPECT_TRUE(read_all(reader, 65536) == disk);
}

TEST(ImageReaderTest, SmallBuffersGiveIdenticalBytes) {
  TempDir dir;
  const std::string disk = disk_bytes(20000);
  write_tar(dir / "image", {{"root.img", disk}});

  for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}}) {
    ImageReader reader{(dir / "image").string()};
    EXPECT_TRUE(read_all(reader, chunk) == disk) << "chunk " << chunk;
  }
}

TEST(ImageReaderTest, ReturnsZeroAgainAfterTheEnd) {
  TempDir dir;
  write_tar(dir / "image", {{"root.img", disk_bytes(1000)}});

  ImageReader reader{(dir / "image").string()};
  EXPECT_EQ(read_all(reader, 600).size(), 1000U);
  char byte = 0;
  EXPECT_EQ(reader.read(&byte, 1), 0U);
  EXPECT_EQ(reader.read(&byte, 0), 0U);
}

TEST(ImageReaderTest, EmptyRootImgIsRefused) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  write_tar(path, {{"root.img", ""}});

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_NE(message.find("root.img is refused: its raw disk has a virtual size of 0 bytes"),
            std::string::npos)
      << message;
}

TEST(ImageReaderTest, MissingRootImgListsTheNames) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  write_tar(path, {{"stemcell.MF", "x"}, {"disk.img", "y"}, {"boot", "", AE_IFDIR}});

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_EQ(message, "reading stemcell image '" + path +
                         "': root.img not found (the archive holds: stemcell.MF, disk.img, boot/)");
}

TEST(ImageReaderTest, MissingRootImgListsAtMostTenNames) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  std::vector<Entry> entries;
  for (int i = 0; i < 15; ++i) {
    entries.push_back({"file" + std::to_string(i), "x"});
  }
  write_tar(path, entries);

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_NE(message.find("file0, file1,"), std::string::npos) << message;
  EXPECT_NE(message.find("file9 and 5 more)"), std::string::npos) << message;
  EXPECT_EQ(message.find("file10"), std::string::npos) << message;
}

TEST(ImageReaderTest, EmptyArchiveSaysItHoldsNothing) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  write_tar(path, {});

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_NE(message.find("root.img not found (the archive holds: nothing)"), std::string::npos)
      << message;
}

TEST(ImageReaderTest, RootImgDirectoryIsRejected) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  write_tar(path, {{"root.img", "", AE_IFDIR}});

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_NE(message.find("root.img is not a regular file"), std::string::npos) << message;
}

TEST(ImageReaderTest, CorruptGzipThrowsNamingThePath) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  spit(path, std::string{"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10} + disk_bytes(4096));

  const std::string message = cloud_error([&] {
    ImageReader reader{path};
    read_all(reader, 4096);
  });
  EXPECT_NE(message.find("reading stemcell image '" + path + "': "), std::string::npos) << message;
}

TEST(ImageReaderTest, NotAnArchiveThrowsNamingThePath) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  spit(path, "this is not a tar file\n");

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_NE(message.find("reading stemcell image '" + path + "': "), std::string::npos) << message;
}

TEST(ImageReaderTest, TruncatedGzipThrowsOnRead) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  write_tar(path, {{"root.img", disk_bytes(1024 * 1024)}});
  fs::resize_file(path, fs::file_size(path) / 2);

  ImageReader reader{path};
  const std::string message = cloud_error([&] { read_all(reader, 65536); });
  EXPECT_NE(message.find("reading stemcell image '" + path + "': root.img"), std::string::npos)
      << message;
  EXPECT_NE(message.find("runcated"), std::string::npos) << message;
}

TEST(ImageReaderTest, TruncatedTarInsideCompleteGzipThrows) {
  if (!on_path("gzip")) {
    GTEST_SKIP() << "needs gzip on PATH";
  }
  TempDir dir;
  const fs::path tar = dir / "image";
  write_tar(tar, {{"root.img", disk_bytes(100 * 1024)}}, false);
  fs::resize_file(tar, 50 * 1024);
  run("gzip -n '" + tar.string() + "'");
  const std::string path = tar.string() + ".gz";

  // The cut lies within the first 64 KiB, which the constructor reads to check the format.
  const std::string message = cloud_error([&] {
    ImageReader reader{path};
    read_all(reader, 65536);
  });
  EXPECT_NE(message.find("reading stemcell image '" + path + "': root.img"), std::string::npos)
      << message;
  EXPECT_NE(message.find("runcated"), std::string::npos) << message;
}

TEST(ImageReaderTest, NonexistentPathThrowsNamingThePath) {
  TempDir dir;
  const std::string path = (dir / "no-such-image").string();

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_EQ(message.rfind("reading stemcell image '" + path + "': ", 0), 0U) << message;
}

TEST(ImageReaderTest, QcowMagicWithoutHeaderIsRejected) {
  TempDir dir;
  const std::string path = (dir / "image").string();
  write_tar(path, {{"root.img", std::string{"QFI\xfb\x00\x00\x00\x03", 8}}});

  const std::string message = cloud_error([&] { ImageReader reader{path}; });
  EXPECT_NE(message.find("too short for a qcow2 header"), std::string::npos) << message;
}

TEST(ImageReaderTest, LogsCompletionOnce) {
  TempDir dir;
  write_tar(dir / "image", {{"root.img", disk_bytes(5000)}});
  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(log)));

  ImageReader reader{(dir / "image").string()};
  read_all(reader, 100);
  char byte = 0;
  reader.read(&byte, 1);
  spdlog::set_default_logger(previous);

  const std::string text = log.str();
  const std::string line = "imported stemcell root.img: 4.9 KiB (raw) in ";
  EXPECT_NE(text.find(line), std::string::npos) << text;
  EXPECT_EQ(text.find(line), text.rfind(line)) << text;
}

}  // namespace
}  // namespace cpi::stemcell
