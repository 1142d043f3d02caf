// The lxc, xen, vbox and vmware flavours. Each writes only what its libvirt driver reads and
// refuses (NotSupported) the rest: the qemu/kvm-only cloud_properties (host_devices, cpu_mode,
// nested_virtualization, hugepages) everywhere, plus each driver's own gaps.

#include <pugixml.hpp>

#include <algorithm>

#include "cpi/errors.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/xml/xml_util.hpp"

namespace cpi::xml {
namespace {

void pty_console(pugi::xml_node devices, const char* target_type) {
  auto console = child(devices, "console");
  console.append_attribute("type") = "pty";
  auto target = child(console, "target");
  target.append_attribute("type") = target_type;
  target.append_attribute("port") = 0;
}

// The shared part of every non-qemu flavour: refusals of the qemu/kvm-only options.
class OtherFlavour : public Flavour {
 protected:
  void refuse_qemu_only(const DomainSpec& spec) const {
    if (!spec.host_devices.empty()) not_supported("host_devices (PCI/USB passthrough)");
    if (!spec.cpu.mode.empty() || !spec.cpu.model.empty()) not_supported("cpu_mode/cpu_model");
    if (!spec.cpu.nested_feature.empty()) not_supported("nested_virtualization");
    if (spec.hugepages) not_supported("hugepages");
  }
  void refuse_nic_types(const DomainSpec& spec, const std::vector<std::string>& accepted) const {
    for (const auto& nic : spec.nics) {
      if (std::find(accepted.begin(), accepted.end(), nic.type) == accepted.end()) {
        not_supported("'" + nic.type + "' interfaces (network " + nic.source + ")");
      }
    }
  }
  std::string file_path(const DomainSpec& spec, const DiskDevice& disk) const {
    const auto it = spec.volume_paths.find(disk.volume);
    if (it == spec.volume_paths.end() || it->second.empty()) {
      throw CpiError("hypervisor '" + name() + "': disk '" + disk.volume + "' has no host path");
    }
    return it->second;
  }
  // <disk type='file'> for the drivers that take host paths (vbox, vmware).
  void append_file_disk(pugi::xml_node devices, const DomainSpec& spec,
                        const DiskDevice& disk) const {
    if (!disk.cdrom) require_format(disk.format, "disk '" + disk.volume + "'");
    auto node = child(devices, "disk");
    node.append_attribute("type") = "file";
    node.append_attribute("device") = disk.cdrom ? "cdrom" : "disk";
    child(node, "source").append_attribute("file") = file_path(spec, disk).c_str();
    auto target = child(node, "target");
    target.append_attribute("dev") = disk.target.c_str();
    target.append_attribute("bus") = disk.bus.c_str();
    if (disk.cdrom) child(node, "readonly");
  }
};

// LXC containers get filesystems, not block devices: every volume holds an ext4 filesystem
// that libvirt loop-mounts (raw) or nbd-mounts (qcow2) at DiskDevice::mount: the root at /, the
// settings read-only, the ephemeral and persistent disks where the warden stemcell's agent looks
// for them (cpi/stemcell/fs_image.hpp). Filesystems cannot be hot-plugged: the cloud redefines
// the container with the filesystem and restarts it. Manual networks get their address from
// libvirt (<ip>, <route>), so the agent finds them preconfigured.
class LxcFlavour final : public OtherFlavour {
 public:
  std::string name() const override { return "lxc"; }
  std::string domain_type(const std::function<std::string()>&) const override { return "lxc"; }
  std::string disk_bus(const std::string&) const override { return "virtio"; }  // names only
  std::string cdrom_bus(const std::string&) const override { return "ide"; }
  std::string nic_model() const override { return ""; }
  std::vector<std::string> formats() const override { return {"raw", "qcow2"}; }
  bool container() const override { return true; }
  std::string console_log(const std::string&) const override { return ""; }
  std::string disk_device(const DiskDevice& disk) const override {
    pugi::xml_document doc;
    append_filesystem(doc, disk);
    return serialize(doc);
  }

  std::string build(const DomainSpec& spec) const override {
    refuse_qemu_only(spec);
    refuse_nic_types(spec, {"network", "bridge", "direct"});
    pugi::xml_document doc;
    auto domain = begin_domain(doc, "lxc", spec);
    auto os = child(domain, "os");
    auto type = child(os, "type");
    type.append_attribute("arch") = "x86_64";
    type.text() = "exe";
    child(os, "init").text() = spec.init.empty() ? "/sbin/init" : spec.init.c_str();
    // Its own network namespace even without NICs: never the host's.
    child(child(domain, "features"), "privnet");
    lifecycle(domain);
    auto devices = child(domain, "devices");
    for (const auto& disk : spec.disks) append_filesystem(devices, disk);
    for (const auto& nic : spec.nics) {
      auto node = append_interface(devices, nic, "");
      if (nic.ip.empty()) continue;
      auto ip = child(node, "ip");
      ip.append_attribute("address") = nic.ip.c_str();
      ip.append_attribute("prefix") = nic.prefix.c_str();
      if (nic.gateway.empty()) continue;
      auto route = child(node, "route");
      route.append_attribute("family") = "ipv4";
      route.append_attribute("address") = "0.0.0.0";
      route.append_attribute("prefix") = 0;
      route.append_attribute("gateway") = nic.gateway.c_str();
    }
    pty_console(devices, "lxc");
    return serialize(doc);
  }

 private:
  void append_filesystem(pugi::xml_node devices, const DiskDevice& disk) const {
    if (disk.mount.empty()) {
      not_supported("block devices in containers (volume '" + disk.volume +
                    "' has no mount point)");
    }
    require_format(disk.format, "volume '" + disk.volume + "'");
    if (disk.path.empty()) {
      throw CpiError("hypervisor 'lxc': volume '" + disk.volume + "' has no host path");
    }
    auto fs = child(devices, "filesystem");
    fs.append_attribute("type") = "file";
    fs.append_attribute("accessmode") = "passthrough";
    auto driver = child(fs, "driver");
    driver.append_attribute("type") = disk.format == "qcow2" ? "nbd" : "loop";
    driver.append_attribute("format") = disk.format.c_str();
    child(fs, "source").append_attribute("file") = disk.path.c_str();
    child(fs, "target").append_attribute("dir") = disk.mount.c_str();
    if (disk.cdrom) child(fs, "readonly");
  }
};

// Xen HVM guests (libxl): pool volumes on the xen bus (xvda...), netfront NICs, no macvtap.
class XenFlavour final : public OtherFlavour {
 public:
  std::string name() const override { return "xen"; }
  std::string domain_type(const std::function<std::string()>&) const override { return "xen"; }
  std::string disk_bus(const std::string&) const override { return "xen"; }
  std::string cdrom_bus(const std::string&) const override { return "ide"; }
  std::string nic_model() const override { return "netfront"; }
  std::vector<std::string> formats() const override { return {"raw", "qcow2"}; }
  std::string console_log(const std::string&) const override { return ""; }
  std::string disk_device(const DiskDevice& disk) const override {
    pugi::xml_document doc;
    append_checked_disk(doc, disk);
    return serialize(doc);
  }

  std::string build(const DomainSpec& spec) const override {
    refuse_qemu_only(spec);
    refuse_nic_types(spec, {"network", "bridge"});
    pugi::xml_document doc;
    auto domain = begin_domain(doc, "xen", spec);
    hvm_os(domain, "xenfv");
    child(domain.child("features"), "pae");
    lifecycle(domain);
    auto devices = child(domain, "devices");
    for (const auto& disk : spec.disks) append_checked_disk(devices, disk);
    for (const auto& nic : spec.nics) append_interface(devices, nic, nic_model());
    auto serial = child(devices, "serial");
    serial.append_attribute("type") = "pty";
    child(serial, "target").append_attribute("port") = 0;
    pty_console(devices, "serial");
    vnc_on_loopback(devices);
    child(devices, "memballoon").append_attribute("model") = "xen";
    return serialize(doc);
  }

 private:
  void append_checked_disk(pugi::xml_node devices, const DiskDevice& disk) const {
    if (!disk.cdrom) require_format(disk.format, "disk '" + disk.volume + "'");
    append_volume_disk(devices, disk);
  }
};

// VirtualBox and VMware Workstation/Player: disks are host files in their own formats, no
// libvirt networks for VMware, no macvtap, no disk hot plug, no serial log.
class DesktopFlavour final : public OtherFlavour {
 public:
  explicit DesktopFlavour(bool vbox) : m_vbox(vbox) {}
  std::string name() const override { return m_vbox ? "vbox" : "vmware"; }
  std::string domain_type(const std::function<std::string()>&) const override { return name(); }
  std::string disk_bus(const std::string&) const override { return m_vbox ? "sata" : "scsi"; }
  std::string cdrom_bus(const std::string&) const override { return "ide"; }
  std::string nic_model() const override { return m_vbox ? "82540EM" : "e1000"; }
  std::vector<std::string> formats() const override {
    if (m_vbox) return {"vmdk", "vdi"};
    return {"vmdk"};
  }
  bool needs_volume_paths() const override { return true; }
  std::string console_log(const std::string&) const override { return ""; }
  std::string disk_device(const DiskDevice&) const override {
    not_supported("attaching disks to a defined VM (no disk hot plug in its libvirt driver)");
  }

  std::string build(const DomainSpec& spec) const override {
    refuse_qemu_only(spec);
    if (m_vbox) {
      refuse_nic_types(spec, {"network", "bridge"});
    } else {
      refuse_nic_types(spec, {"bridge"});
    }
    pugi::xml_document doc;
    auto domain = begin_domain(doc, name(), spec);
    hvm_os(domain, nullptr);
    lifecycle(domain);
    auto devices = child(domain, "devices");
    for (const auto& disk : spec.disks) append_file_disk(devices, spec, disk);
    for (const auto& nic : spec.nics) append_interface(devices, nic, nic_model());
    return serialize(doc);
  }

 private:
  bool m_vbox;
};

}  // namespace

std::unique_ptr<Flavour> make_other_flavour(const std::string& hypervisor) {
  if (hypervisor == "lxc") return std::make_unique<LxcFlavour>();
  if (hypervisor == "xen") return std::make_unique<XenFlavour>();
  if (hypervisor == "vbox") return std::make_unique<DesktopFlavour>(true);
  if (hypervisor == "vmware") return std::make_unique<DesktopFlavour>(false);
  return nullptr;
}

}  // namespace cpi::xml
