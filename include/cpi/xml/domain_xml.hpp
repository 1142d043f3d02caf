#pragma once
// Domain XML (libvirt formatdomain) for BOSH VMs, and the device XML attach/detach use.

#include <cstdint>
#include <string>
#include <vector>

namespace cpi::xml {

// Our own XML namespace for CPI facts in the domain's <metadata>.
constexpr const char* k_metadata_ns = "https://github.com/bosh-libvirt-cpi/xmlns/vm/1";
constexpr const char* k_metadata_key = "bosh";

struct DiskDevice {
  std::string pool;
  std::string volume;
  std::string format = "qcow2";  // driver type: qcow2 | raw
  std::string target;            // vda, sdb, hdc ...
  std::string bus = "virtio";    // virtio | scsi | sata | ide
  std::string serial;            // at most 20 bytes for virtio
  bool cdrom = false;            // read-only CD-ROM (the config drive)
};

struct NicDevice {
  std::string mac;            // lowercase, colon separated
  std::string type;           // network | bridge | direct
  std::string source;         // network name, bridge name or host device
  std::string mode = "bridge";  // for direct (macvtap)
  std::string model = "virtio";
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
};

// The whole <domain>: UTC clock, ACPI, on_crash restart, serial console logged to a file
// (append='on'), VNC on 127.0.0.1, virtio RNG, memballoon.
std::string domain_xml(const DomainSpec& spec);

// One <disk> element for attach/detach/update.
std::string disk_device_xml(const DiskDevice& disk);

}  // namespace cpi::xml
