#pragma once
// Stemcell `image` files for tests: a gzip tar holding one root.img, made with the real `tar`
// (and `qemu-img` for qcow2), as the director hands them to create_stemcell. Each image lives
// in its own subdirectory of a TempDir owned by the fixture. Throws std::runtime_error when a
// tool fails.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "support/temp_dir.hpp"

namespace cpi::testing {

class StemcellImages {
 public:
  static constexpr std::size_t k_mib = 1024U * 1024U;

  // A raw disk of `size` bytes: a recognisable 64 KiB at the start and at the end, zeros between
  // (so a sparse upload has a hole to skip).
  static std::string raw_disk(std::size_t size) {
    std::string bytes(size, '\0');
    constexpr std::size_t k_edge = 64U * 1024U;
    for (std::size_t i = 0; i < k_edge && i < size; ++i) {
      bytes[i] = static_cast<char>('A' + i % 26);
      bytes[size - 1 - i] = static_cast<char>('a' + i % 26);
    }
    return bytes;
  }

  // An image whose root.img is raw_disk(size).
  std::filesystem::path raw(std::size_t size = 4 * k_mib) {
    const auto dir = next_dir();
    m_root_img = raw_disk(size);
    m_dir.write(dir + "/root.img", m_root_img);
    return pack(dir, "root.img");
  }

  // An image whose root.img is an empty qcow2 disk of virtual size `size` (qemu-img syntax).
  std::filesystem::path qcow2(const std::string& size = "64M") {
    const auto dir = next_dir();
    run("qemu-img create -q -f qcow2 '" + (m_dir / dir / "root.img").string() + "' " + size);
    m_root_img = TempDir::read(m_dir / dir / "root.img");
    return pack(dir, "root.img");
  }

  // A raw disk of `size` bytes with data only in its first 64 KiB and a hole up to its end,
  // packed with GNU tar -S (--format=gnu or pax): the packing of raw disks tar -S makes.
  std::filesystem::path sparse_raw(std::size_t size, const std::string& format = "gnu") {
    const auto dir = next_dir();
    m_root_img = std::string(size, '\0');
    const std::string head = raw_disk(64U * 1024U).substr(0, std::min<std::size_t>(size, 32768));
    m_root_img.replace(0, head.size(), head);
    m_dir.write(dir + "/root.img", head);
    std::filesystem::resize_file(m_dir / dir / "root.img", size);  // the rest is a hole
    const auto image = m_dir / dir / "image";
    run("tar -S --format=" + format + " -czf '" + image.string() + "' -C '" +
        (m_dir / dir).string() + "' root.img");
    return image;
  }

  // An image whose root.img is a qcow2 overlay on `backing` (a raw file): untrusted input that
  // names a host file.
  std::filesystem::path qcow2_backed_by(const std::filesystem::path& backing) {
    const auto dir = next_dir();
    run("qemu-img create -q -f qcow2 -F raw -b '" + backing.string() + "' '" +
        (m_dir / dir / "root.img").string() + "'");
    m_root_img = TempDir::read(m_dir / dir / "root.img");
    return pack(dir, "root.img");
  }

  // The fixture's own scratch directory (for files a test image may point at).
  const TempDir& dir() const { return m_dir; }

  // A valid gzip tar that holds no root.img.
  std::filesystem::path without_root_img() {
    const auto dir = next_dir();
    m_dir.write(dir + "/disk.img", raw_disk(64U * 1024U));
    return pack(dir, "disk.img");
  }

  // Bytes that are no archive at all.
  std::filesystem::path corrupt() {
    const auto dir = next_dir();
    std::string junk(8192, '\0');
    for (std::size_t i = 0; i < junk.size(); ++i) {
      junk[i] = static_cast<char>((i * 7919U + 13U) % 251U);
    }
    return m_dir.write(dir + "/image", junk);
  }

  // A gzip tar whose root.img header is intact but whose data ends early: the reader fails in
  // the middle of the upload.
  std::filesystem::path truncated() {
    const auto dir = next_dir();
    std::string noise(2 * k_mib, '\0');
    std::uint32_t state = 2463534242U;  // xorshift: incompressible, so the cut lands in the data
    for (char& c : noise) {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      c = static_cast<char>(state & 0xffU);
    }
    m_dir.write(dir + "/root.img", noise);
    const auto image = pack(dir, "root.img");
    std::filesystem::resize_file(image, std::filesystem::file_size(image) / 2);
    return image;
  }

  // The bytes of the root.img packed last by raw() or qcow2().
  const std::string& root_img() const { return m_root_img; }

 private:
  std::string next_dir() {
    const std::string name = "image-" + std::to_string(++m_count);
    std::filesystem::create_directory(m_dir / name);
    return name;
  }

  std::filesystem::path pack(const std::string& dir, const std::string& member) {
    const auto image = m_dir / dir / "image";
    run("tar -czf '" + image.string() + "' -C '" + (m_dir / dir).string() + "' " + member);
    return image;
  }

  static void run(const std::string& command) {
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
      throw std::runtime_error("test fixture command failed: " + command);
    }
  }

  TempDir m_dir;
  int m_count = 0;
  std::string m_root_img;
};

}  // namespace cpi::testing
