#include "cpi/stemcell/image_format.hpp"

#include <fmt/format.h>

#include <cstring>
#include <iterator>

#include "cpi/errors.hpp"

namespace cpi::stemcell {
namespace {

constexpr std::string_view k_qcow2_magic{"QFI\xfb", 4};

// Formats refused by their magic at a fixed offset (libvirt's and QEMU's probes look there).
struct Magic {
  std::size_t offset;
  std::string_view bytes;
  const char* name;
};
constexpr Magic k_refused[] = {
    {0, {"QED\0", 4}, "QED"},
    {0, "KDMV", "VMDK (sparse extent)"},
    {0, "COWD", "VMDK (COWD extent)"},
    {0, "# Disk DescriptorFile", "VMDK descriptor"},
    {0, "conectix", "VHD"},
    {0, "vhdxfile", "VHDX"},
    {0, "<<< Oracle VM VirtualBox Disk Image >>>", "VDI"},
    {64, {"\x7f\x10\xda\xbe", 4}, "VDI"},
    {0, {"OOOM", 4}, "COW"},
    {0, {"LUKS\xba\xbe", 6}, "LUKS"},
    {0, "WithoutFreeSpace", "Parallels"},
    {0, "WithouFreSpacExt", "Parallels"},
    {0, "Bochs Virtual HD Image", "Bochs"},
    {0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop", "cloop"},
};

// qcow2 header fields (big-endian), from QEMU's qcow2 specification.
constexpr std::size_t k_version = 4;
constexpr std::size_t k_backing_offset = 8;  // uint64, 0 without a backing file
constexpr std::size_t k_backing_size = 16;   // uint32
constexpr std::size_t k_cluster_bits = 20;   // uint32
constexpr std::size_t k_size = 24;           // uint64, virtual size
constexpr std::size_t k_crypt_method = 32;   // uint32
constexpr std::size_t k_v2_header_length = 72;
constexpr std::size_t k_incompatible = 72;    // uint64, v3
constexpr std::size_t k_header_length = 100;  // uint32, v3
constexpr std::size_t k_v3_min_header_length = 104;
constexpr std::uint64_t k_incompatible_dirty = 1U << 0;
constexpr std::uint64_t k_incompatible_corrupt = 1U << 1;
constexpr std::uint64_t k_incompatible_data_file = 1U << 2;
constexpr std::uint64_t k_incompatible_known = (1U << 5) - 1;  // dirty .. extended L2
constexpr std::uint32_t k_ext_end = 0;
constexpr std::uint32_t k_ext_backing_format = 0xe2792aca;
constexpr std::uint32_t k_ext_data_file = 0x44415441;
constexpr std::uint32_t k_ext_encryption = 0x0537be77;

std::uint64_t be(std::string_view bytes, std::size_t offset, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  }
  return value;
}

bool has_at(std::string_view head, const Magic& magic) {
  return head.size() >= magic.offset + magic.bytes.size() &&
         head.substr(magic.offset, magic.bytes.size()) == magic.bytes;
}

// Walks the header extensions from `from` to the end marker; refuses those naming files.
void check_extensions(std::string_view head, std::size_t from, std::uint64_t stored_size,
                      const std::string& fail) {
  std::size_t at = from;
  for (;;) {
    if (at + 8 > head.size()) {
      if (head.size() >= stored_size) {
        throw CloudError(fail + "its qcow2 header extensions run past the end of the image");
      }
      throw CloudError(fail + "its qcow2 header extensions do not end within the first " +
                       std::to_string(head.size()) + " bytes");
    }
    const auto type = static_cast<std::uint32_t>(be(head, at, 4));
    const std::uint64_t length = be(head, at + 4, 4);
    if (type == k_ext_end) return;
    if (type == k_ext_data_file) {
      throw CloudError(fail + "its qcow2 header names an external data file (a host file "
                       "outside the image); only self-contained images are accepted");
    }
    if (type == k_ext_backing_format) {
      throw CloudError(fail + "its qcow2 header names a backing file format; only images "
                       "without a backing file are accepted");
    }
    if (type == k_ext_encryption) {
      throw CloudError(fail + "it is an encrypted qcow2 image; stemcells must be unencrypted");
    }
    at += 8 + static_cast<std::size_t>((length + 7) / 8 * 8);  // data padded to 8 bytes
  }
}

ImageFormat inspect_qcow2(std::string_view head, std::uint64_t stored_size,
                          const std::string& fail) {
  if (head.size() < k_v2_header_length) {
    throw CloudError(fail + "it has a qcow2 magic but only " + std::to_string(head.size()) +
                     " bytes, too short for a qcow2 header");
  }
  const std::uint64_t version = be(head, k_version, 4);
  if (version != 2 && version != 3) {
    throw CloudError(fail + "it is a qcow version " + std::to_string(version) +
                     " image; only qcow2 versions 2 and 3 are accepted");
  }
  if (be(head, k_backing_offset, 8) != 0 || be(head, k_backing_size, 4) != 0) {
    throw CloudError(fail + "its qcow2 header names a backing file (a host file every VM "
                     "would read); only images without a backing file are accepted");
  }
  const std::uint64_t cluster_bits = be(head, k_cluster_bits, 4);
  if (cluster_bits < 9 || cluster_bits > 21) {
    throw CloudError(fail + "its qcow2 header has an invalid cluster_bits " +
                     std::to_string(cluster_bits));
  }
  if (be(head, k_crypt_method, 4) != 0) {
    throw CloudError(fail + "it is an encrypted qcow2 image; stemcells must be unencrypted");
  }
  std::size_t header_length = k_v2_header_length;
  if (version == 3) {
    if (head.size() < k_v3_min_header_length) {
      throw CloudError(fail + "too short for a qcow2 version 3 header");
    }
    const std::uint64_t incompatible = be(head, k_incompatible, 8);
    if ((incompatible & k_incompatible_data_file) != 0) {
      throw CloudError(fail + "its qcow2 header names an external data file (a host file "
                       "outside the image); only self-contained images are accepted");
    }
    if ((incompatible & k_incompatible_corrupt) != 0) {
      throw CloudError(fail + "its qcow2 header marks the image corrupt (repair it with "
                       "qemu-img check -r all)");
    }
    if ((incompatible & ~k_incompatible_known) != 0) {
      throw CloudError(fail + fmt::format("its qcow2 header has unknown incompatible features "
                                          "(0x{:x})",
                                          incompatible & ~k_incompatible_known));
    }
    (void)k_incompatible_dirty;  // a dirty image is self-contained; QEMU repairs it
    header_length = static_cast<std::size_t>(be(head, k_header_length, 4));
    if (header_length < k_v3_min_header_length || header_length % 8 != 0) {
      throw CloudError(fail + "its qcow2 header_length " + std::to_string(header_length) +
                       " is invalid");
    }
  }
  check_extensions(head, header_length, stored_size, fail);
  return {"qcow2", be(head, k_size, 8)};
}

}  // namespace

ImageFormat inspect_image(std::string_view head, std::uint64_t stored_size,
                          const std::string& context) {
  const std::string fail = context + "root.img is refused: ";
  ImageFormat found;
  if (head.substr(0, k_qcow2_magic.size()) == k_qcow2_magic) {
    found = inspect_qcow2(head, stored_size, fail);
  } else {
    for (const Magic& magic : k_refused) {
      if (has_at(head, magic)) {
        throw CloudError(fail + "it is a " + magic.name +
                         " image; only raw and self-contained qcow2 images are accepted");
      }
    }
    found = {"raw", stored_size};
  }
  if (found.virtual_size == 0) {
    throw CloudError(fail + "its " + found.format + " disk has a virtual size of 0 bytes");
  }
  return found;
}

}  // namespace cpi::stemcell
