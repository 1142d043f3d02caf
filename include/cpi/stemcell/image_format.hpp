#pragma once
// What a stemcell's root.img is, judged from its first bytes: a stemcell is untrusted input, so
// only images that cannot name anything outside themselves are accepted: raw disks, and qcow2
// images with no backing file, no external data file and no encryption. Everything that libvirt
// or QEMU could read as another format able to reference a host file (qcow v1, QED, VMDK, VHD,
// VHDX, VDI, COW, LUKS, Parallels, Bochs, cloop) is refused, even when it would be uploaded as
// raw: a dir pool's refresh probes a volume's header and would follow what it names.

#include <cstdint>
#include <string>
#include <string_view>

namespace cpi::stemcell {

// Bytes of root.img the checks read (the qcow2 header and its extensions must fit).
inline constexpr std::size_t k_image_head_size = 64 * 1024;

struct ImageFormat {
  std::string format;             // "raw" | "qcow2"
  std::uint64_t virtual_size = 0;  // the disk's size as the guest sees it
};

// Identifies root.img from `head` (its first min(stored_size, k_image_head_size) bytes) and
// its stored size. Throws CloudError "<context>root.img ..." for a disk of size 0, a format
// other than raw or qcow2, and a qcow2 image that names a backing file or backing format, an
// external data file, is encrypted, marked corrupt, of an unknown version or has unknown
// incompatible features or a malformed header.
ImageFormat inspect_image(std::string_view head, std::uint64_t stored_size,
                          const std::string& context);

}  // namespace cpi::stemcell
