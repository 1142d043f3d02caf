#pragma once
// Storage volume and pool XML (libvirt formatstorage): builders are pure functions.

#include <cstdint>
#include <optional>
#include <string>

namespace cpi::xml {

struct VolumeSpec {
  std::string name;
  std::uint64_t capacity_bytes = 0;
  std::string format = "qcow2";  // qcow2 | raw
  std::string mode;              // octal file mode ("0600"), empty for the pool's default
};

// A qcow2 volume whose backing store is another volume (the stemcell).
struct OverlayVolumeSpec {
  std::string name;
  std::uint64_t capacity_bytes = 0;  // >= the backing volume's capacity
  std::string backing_path;          // target path of the backing volume
  std::string backing_format;        // qcow2 | raw
};

std::string volume_xml(const VolumeSpec& spec);
std::string overlay_volume_xml(const OverlayVolumeSpec& spec);

// What the driver reads back from a volume's XML.
struct VolumeFacts {
  std::string name;
  std::string path;
  std::string format;  // target format type, "" when absent
  std::uint64_t capacity_bytes = 0;
  std::optional<std::string> backing_path;
};
VolumeFacts read_volume_xml(const std::string& text);

// A `dir` pool at `path`.
std::string dir_pool_xml(const std::string& name, const std::string& path);
// The pool's type attribute ("dir", "logical", ...), target path and sizes. The sizes are the
// ones virStoragePoolGetInfo reports (libvirt formats both from the same record, in bytes);
// nullopt when absent or in another unit.
struct PoolFacts {
  std::string type;
  std::string path;
  std::optional<std::uint64_t> capacity;
  std::optional<std::uint64_t> available;
};
PoolFacts read_pool_xml(const std::string& text);

}  // namespace cpi::xml
