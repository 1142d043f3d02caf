#pragma once
// cloud_properties schemas. Unknown keys are an error naming the key and listing the accepted
// ones (docs/architecture.md, "Protocol"; README "Configuration").

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cpi::cloud {

// Largest size, in MiB, of any disk (create_disk, resize_disk, ephemeral_disk, root_disk.size)
// or of RAM: 64 TiB. Every size the CPI turns into bytes is at most this, so MiB -> bytes
// (and -> KiB) can never wrap.
constexpr std::int64_t k_max_size_mib = 64LL * 1024 * 1024;

// `size_mib` MiB in bytes. Throws CloudError "<what>: ..." when size_mib is below 1 or above
// k_max_size_mib, and checks the multiplication itself.
std::uint64_t mib_to_bytes(std::int64_t size_mib, const std::string& what);

// One entry of host_devices: a PCI address, or a USB vendor/product pair.
struct HostDeviceProps {
  std::string pci;      // "0000:65:00.0", lowercase; empty for USB
  std::string vendor;   // USB "0x1234", lowercase
  std::string product;  // USB "0x5678", lowercase
};

struct VmProps {
  unsigned int cpu = 1;
  std::uint64_t ram_mib = 1024;
  std::uint64_t ephemeral_disk_mib = 0;       // 0: no ephemeral disk
  std::optional<std::uint64_t> root_disk_mib;  // grow the root disk to this size
  // qemu/kvm only (other hypervisors answer NotSupported):
  std::vector<HostDeviceProps> host_devices;
  std::string cpu_mode;   // "" (default) | host-passthrough | host-model | custom
  std::string cpu_model;  // only with custom, required there
  bool nested_virtualization = false;
  bool hugepages = false;
};

// Keys: cpu (alias cpus), ram (alias memory) in MiB, ephemeral_disk (alias disk) in MiB,
// root_disk {size}, host_devices [PCI "0000:65:00.0" | {vendor: "0x1234", product: "0x5678"}],
// cpu_mode, cpu_model, nested_virtualization, hugepages. Throws CpiError naming the key.
VmProps parse_vm_props(const nlohmann::json& cloud_properties);

struct DiskProps {
  std::optional<std::string> storage_pool;
  std::string format = "qcow2";  // qcow2 | raw
  bool format_set = false;       // given in cloud_properties (else the default, for file pools)
};

// Keys: storage_pool, format (alias type). Throws CpiError.
DiskProps parse_disk_props(const nlohmann::json& cloud_properties);

// The NIC a BOSH network's cloud_properties ask for.
struct NetworkProps {
  std::string type = "network";  // network | bridge | direct
  std::string source;            // empty: the config's default network
  std::string mode = "bridge";   // for direct
};

// Keys: name (a libvirt network) | bridge | dev (+ mode) — at most one of them. Throws CpiError
// naming the BOSH network.
NetworkProps parse_network_props(const std::string& network_name,
                                 const nlohmann::json& cloud_properties);

struct StemcellProps {
  std::optional<std::string> disk_format;  // qcow2 | raw
};

// stemcell.MF cloud_properties are taken as they are (any keys); only disk_format is checked.
StemcellProps parse_stemcell_props(const nlohmann::json& cloud_properties);

}  // namespace cpi::cloud
