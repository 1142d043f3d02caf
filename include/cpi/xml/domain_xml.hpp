#pragma once
// Domain XML (libvirt formatdomain) for BOSH VMs, and the device XML attach/detach use.

#include <pugixml.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cpi::xml {

// Our own XML namespace for CPI facts in the domain's <metadata>.
constexpr const char* k_metadata_ns = "https://github.com/bosh-libvirt-cpi/xmlns/vm/1";
constexpr const char* k_metadata_key = "bosh";
// The fact in a VM's metadata that create_vm has not finished (seconds since the epoch when it
// defined the domain); removed as create_vm's last step, so its absence means complete.
constexpr const char* k_incomplete_since = "incomplete_since";

// One image below a disk's own volume in its backing chain.
struct BackingLayer {
  std::string path;    // host path of the image
  std::string format;  // raw | qcow2
};

struct DiskDevice {
  std::string pool;
  std::string volume;
  std::string format = "qcow2";  // driver type: qcow2 | raw
  std::string target;            // vda, sdb, hdc ...
  std::string bus = "virtio";    // virtio | scsi | sata | ide
  std::string serial;            // at most 20 bytes for virtio
  bool cdrom = false;            // read-only CD-ROM (the config drive)
  // Container flavours (lxc): the directory the volume's ext4 filesystem is mounted at ("/" for
  // the root) and the volume's host path. A cdrom is mounted read-only.
  std::string mount{};
  std::string path{};
  // The disk's whole backing chain, given explicitly and ended by an empty <backingStore/>, so
  // that libvirt never probes an image for more (a VM's root overlay: [the stemcell volume]).
  // Unset: no <backingStore> is written.
  std::optional<std::vector<BackingLayer>> backing_chain{};
};

struct NicDevice {
  std::string mac;            // lowercase, colon separated
  std::string type;           // network | bridge | direct
  std::string source;         // network name, bridge name or host device
  std::string mode = "bridge";  // for direct (macvtap)
  std::string model = "virtio";
  // Container flavours (lxc): the address libvirt sets inside the container (manual networks),
  // its prefix length, and the default gateway when this is the default network.
  std::string ip{};
  std::string prefix{};
  std::string gateway{};
};

// A host device passed through (qemu/kvm flavour): a PCI function or a USB device.
struct HostDevice {
  std::string pci;      // "0000:65:00.0" (domain:bus:slot.function), or empty for USB
  std::string vendor;   // USB "0x1234"
  std::string product;  // USB "0x5678"
};

// The guest CPU (qemu/kvm flavour). An empty mode keeps the flavour's default.
struct CpuSpec {
  std::string mode;            // "" | host-passthrough | host-model | custom
  std::string model;           // with custom: a libvirt CPU model name
  std::string nested_feature;  // "" | vmx | svm: required for nested virtualization
};

struct DomainSpec {
  std::string name;
  std::string title;
  std::string virt_type = "qemu";  // kvm | qemu
  std::string machine = "pc";
  unsigned int vcpus = 1;
  std::uint64_t memory_mib = 1024;
  bool host_passthrough = false;   // only under kvm
  std::vector<DiskDevice> disks;   // boot disk first
  std::vector<NicDevice> nics;
  std::string console_log;         // file the serial console is logged to (appended)
  std::string metadata;            // one element in k_metadata_ns (serialized), or empty
  CpuSpec cpu;                     // wins over host_passthrough when mode is set
  std::vector<HostDevice> host_devices;
  bool hugepages = false;          // <memoryBacking><hugepages/>
  std::string init;                // container flavours: the init program to run
  // Volume name -> host path, for the flavours that write <source file> (needs_volume_paths).
  std::map<std::string, std::string> volume_paths;
};

// The whole qemu/kvm <domain> (xml::Flavour picks the builder per hypervisor): UTC clock, ACPI,
// on_crash restart, serial console logged to a file
// (append='on'), VNC on 127.0.0.1, virtio RNG, memballoon.
std::string domain_xml(const DomainSpec& spec);

// <domain type> with <name>, <title>, <metadata>, <memory> and <vcpu>: the part every flavour
// shares. Returns the <domain> element appended to `doc`.
pugi::xml_node begin_domain(pugi::xml_document& doc, const std::string& type,
                            const DomainSpec& spec);

// Parts every hardware-virtualised flavour shares: <os> hvm (machine omitted when null) with
// <features> acpi and apic; the UTC clock and the on_* actions; VNC listening on 127.0.0.1 only.
void hvm_os(pugi::xml_node domain, const char* machine);
void lifecycle(pugi::xml_node domain);
void vnc_on_loopback(pugi::xml_node devices);

// One <disk type='volume'> of `disk` appended to `devices`: <driver name='qemu' type=format>,
// <source pool volume>, <target dev bus> and <readonly/> for a cdrom; returns it. The qemu
// flavour adds discard, the backing chain and the serial; xen uses it as it is.
pugi::xml_node append_volume_disk(pugi::xml_node devices, const DiskDevice& disk);

// One <interface> (network, bridge or direct) appended to `devices`, with <model type=`model`>
// unless `model` is empty; returns it. Throws CpiError for another interface type.
pugi::xml_node append_interface(pugi::xml_node devices, const NicDevice& nic, const std::string& model);

// The domain XML with `device_text` (one device element) added to <devices>, and with the
// <filesystem> mounted at `mount` removed: a container's persistent definition is edited this
// way, as libvirt's LXC driver cannot attach filesystems. Throw CpiError for malformed XML.
std::string with_device(const std::string& domain_text, const std::string& device_text);
std::string without_filesystem(const std::string& domain_text, const std::string& mount);

// One <disk> element for attach/detach/update.
std::string disk_device_xml(const DiskDevice& disk);

}  // namespace cpi::xml
