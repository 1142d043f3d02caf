// inspect_image: only raw disks and self-contained qcow2 images are accepted as stemcells.

#include "cpi/stemcell/image_format.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "cpi/errors.hpp"
#include "support/temp_dir.hpp"

namespace cpi::stemcell {
namespace {

using testing::TempDir;

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

void run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    throw std::runtime_error("command failed: " + command);
  }
}

void put_be(std::string& bytes, std::size_t offset, std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) {
    bytes[offset + width - 1 - i] = static_cast<char>((value >> (8 * i)) & 0xffU);
  }
}

// A minimal qcow2 header of `version` (2 or 3) for a disk of `size` bytes, 64 KiB clusters, no
// extensions (an end marker follows the header).
std::string qcow2_header(std::uint32_t version, std::uint64_t size = 1ULL << 30) {
  std::string h(4096, '\0');
  h.replace(0, 4, "QFI\xfb");
  put_be(h, 4, version, 4);
  put_be(h, 20, 16, 4);  // cluster_bits
  put_be(h, 24, size, 8);
  if (version == 3) {
    put_be(h, 96, 4, 4);    // refcount_order
    put_be(h, 100, 112, 4);  // header_length
  }
  return h;
}

std::string refusal(const std::string& head, std::uint64_t stored_size = 1 << 20) {
  try {
    inspect_image(head, stored_size, "ctx: ");
  } catch (const CloudError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(ImageFormatTest, RawAndSelfContainedQcow2AreAccepted) {
  const auto raw = inspect_image(std::string(4096, 'x'), 1 << 20, "");
  EXPECT_EQ(raw.format, "raw");
  EXPECT_EQ(raw.virtual_size, 1U << 20);
  for (const std::uint32_t version : {2U, 3U}) {
    const auto qcow2 = inspect_image(qcow2_header(version), 1 << 20, "");
    EXPECT_EQ(qcow2.format, "qcow2");
    EXPECT_EQ(qcow2.virtual_size, 1ULL << 30);
  }
}

TEST(ImageFormatTest, Qcow2WithABackingFileIsRefusedInBothVersions) {
  for (const std::uint32_t version : {2U, 3U}) {
    std::string h = qcow2_header(version);
    put_be(h, 8, 512, 8);  // backing_file_offset
    put_be(h, 16, 11, 4);  // backing_file_size
    h.replace(512, 11, "/etc/shadow");
    const std::string message = refusal(h);
    EXPECT_NE(message.find("ctx: root.img is refused: its qcow2 header names a backing file"),
              std::string::npos)
        << message;
  }
  std::string only_size = qcow2_header(3);
  put_be(only_size, 16, 5, 4);
  EXPECT_NE(refusal(only_size).find("backing file"), std::string::npos);
}

TEST(ImageFormatTest, Qcow2WithAnExternalDataFileIsRefused) {
  std::string bit = qcow2_header(3);
  put_be(bit, 72, 1U << 2, 8);
  EXPECT_NE(refusal(bit).find("external data file"), std::string::npos);

  std::string extension = qcow2_header(3);  // the name without the bit: refused all the same
  put_be(extension, 112, 0x44415441, 4);
  put_be(extension, 116, 9, 4);
  extension.replace(120, 9, "/dev/sda1");
  EXPECT_NE(refusal(extension).find("external data file"), std::string::npos);
}

TEST(ImageFormatTest, Qcow2HeaderExtensionsAreWalkedToTheEndMarker) {
  std::string h = qcow2_header(3);
  put_be(h, 112, 0x6803f857, 4);  // feature name table: harmless, 48 bytes
  put_be(h, 116, 48, 4);
  put_be(h, 168, 0xe2792aca, 4);  // then a backing file format: refused
  put_be(h, 172, 5, 4);
  h.replace(176, 5, "qcow2");
  EXPECT_NE(refusal(h).find("backing file format"), std::string::npos);

  std::string endless = qcow2_header(3);
  for (std::size_t at = 112; at + 8 <= endless.size(); at += 8) put_be(endless, at, 0x6803f857, 4);
  EXPECT_NE(refusal(endless, 4096).find("run past the end"), std::string::npos);
  EXPECT_NE(refusal(endless, 1 << 20).find("do not end within the first 4096 bytes"),
            std::string::npos);
}

TEST(ImageFormatTest, OddQcow2HeadersAreRefused) {
  EXPECT_NE(refusal(qcow2_header(1)).find("qcow version 1"), std::string::npos);
  EXPECT_NE(refusal(qcow2_header(4)).find("qcow version 4"), std::string::npos);
  std::string encrypted = qcow2_header(2);
  put_be(encrypted, 32, 1, 4);
  EXPECT_NE(refusal(encrypted).find("encrypted"), std::string::npos);
  std::string corrupt = qcow2_header(3);
  put_be(corrupt, 72, 1U << 1, 8);
  EXPECT_NE(refusal(corrupt).find("corrupt"), std::string::npos);
  std::string future = qcow2_header(3);
  put_be(future, 72, 1U << 9, 8);
  EXPECT_NE(refusal(future).find("unknown incompatible features (0x200)"), std::string::npos);
  EXPECT_NE(refusal(qcow2_header(3).substr(0, 60)).find("too short"), std::string::npos);
}

TEST(ImageFormatTest, VirtualSizeZeroIsRefused) {
  EXPECT_NE(refusal(qcow2_header(3, 0)).find("its qcow2 disk has a virtual size of 0 bytes"),
            std::string::npos);
  EXPECT_NE(refusal("", 0).find("its raw disk has a virtual size of 0 bytes"), std::string::npos);
}

TEST(ImageFormatTest, FormatsThatCanNameHostFilesAreRefused) {
  struct Case {
    std::string head;
    const char* name;
  };
  std::string vdi(4096, '\0');
  vdi.replace(64, 4, "\x7f\x10\xda\xbe");
  const Case cases[] = {
      {std::string("QED\0", 4) + std::string(100, '\0'), "QED"},
      {"KDMV" + std::string(100, '\0'), "VMDK (sparse extent)"},
      {"# Disk DescriptorFile\nparentFileNameHint=\"/etc/passwd\"\n", "VMDK descriptor"},
      {"conectix" + std::string(100, '\0'), "VHD"},
      {"vhdxfile" + std::string(100, '\0'), "VHDX"},
      {vdi, "VDI"},
      {"OOOM" + std::string(100, '\0'), "COW"},
      {std::string("LUKS\xba\xbe", 6) + std::string(100, '\0'), "LUKS"},
  };
  for (const Case& c : cases) {
    const std::string message = refusal(c.head);
    EXPECT_NE(message.find(std::string{"it is a "} + c.name + " image; only raw and "
                           "self-contained qcow2 images are accepted"),
              std::string::npos)
        << message;
  }
}

// The same checks on headers written by qemu-img itself, with a backing file and with an
// external data file (both scratch files in a test directory).
TEST(ImageFormatTest, QemuImgImagesWithHostFilesAreRefused) {
  if (!on_path("qemu-img")) GTEST_SKIP() << "needs qemu-img on PATH";
  TempDir dir;
  const std::string scratch = (dir / "scratch.raw").string();
  run("qemu-img create -q -f raw '" + scratch + "' 1M");
  run("qemu-img create -q -f qcow2 -F raw -b '" + scratch + "' '" + (dir / "backed").string() +
      "'");
  run("qemu-img create -q -f qcow2 -o data_file='" + (dir / "data.raw").string() + "' '" +
      (dir / "external").string() + "' 1M");
  run("qemu-img create -q -f qcow2 '" + (dir / "plain").string() + "' 1M");
  const auto head = [&](const char* name) {
    return TempDir::read(dir / name).substr(0, k_image_head_size);
  };
  EXPECT_NE(refusal(head("backed")).find("backing file"), std::string::npos);
  EXPECT_NE(refusal(head("external")).find("external data file"), std::string::npos);
  EXPECT_EQ(inspect_image(head("plain"), 1 << 20, "").format, "qcow2");
}

}  // namespace
}  // namespace cpi::stemcell
