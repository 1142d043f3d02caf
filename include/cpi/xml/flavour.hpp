#pragma once
// Domain XML flavours: one per libvirt hypervisor driver the CPI speaks (config
// `libvirt.hypervisor`: qemu | kvm | lxc | xen | vbox | vmware). A flavour knows its <domain
// type>, disk and CD-ROM buses, NIC model, accepted disk image formats and console, and builds
// the whole <domain> from a DomainSpec. What a hypervisor cannot do is a NotSupported CPI error
// naming the hypervisor and the feature, never XML that libvirt would reject or silently ignore.
// The driver picks the flavour once (make_flavour) and asks it; no hypervisor if-chains elsewhere.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cpi/xml/domain_xml.hpp"

namespace cpi::xml {

class Flavour {
 public:
  virtual ~Flavour() = default;

  // The config's hypervisor name ("qemu", "kvm", "lxc", "xen", "vbox", "vmware").
  virtual std::string name() const = 0;
  // The <domain type='...'>. qemu/kvm call `detect` (libvirt.domain_type, or "kvm" when KVM is
  // usable, else "qemu"); the other flavours never call it.
  virtual std::string domain_type(const std::function<std::string()>& detect) const = 0;
  // Bus of hard disks; `configured` is libvirt.storage_controller (honoured by qemu/kvm only).
  virtual std::string disk_bus(const std::string& configured) const = 0;
  // Bus of the config-drive CD-ROM; `configured` is the qemu/kvm choice for the machine type.
  virtual std::string cdrom_bus(const std::string& configured) const = 0;
  // The NIC <model type>, "" when the flavour writes none.
  virtual std::string nic_model() const = 0;
  // Disk image formats the flavour can boot and attach ("qcow2", "raw", "vmdk", "vdi").
  virtual std::vector<std::string> formats() const = 0;
  // True when disks are written as host files (<source file>): DiskDevice::path must be set.
  virtual bool needs_volume_paths() const { return false; }
  // True for containers (lxc): root filesystem stemcells, every volume an ext4 filesystem
  // mounted at DiskDevice::mount (with its host path), settings as a file, no hot plug.
  virtual bool container() const { return false; }
  // True when a running domain can copy one of its disks while it runs (libvirt's block copy:
  // qemu/kvm); snapshot_disk pauses the others for the copy.
  virtual bool live_block_copy() const { return false; }
  // The file the serial console is logged to for `domain_name`, "" when the flavour has none.
  virtual std::string console_log(const std::string& domain_name) const = 0;
  // The whole <domain>. Throws NotSupported for what the hypervisor cannot do, CpiError for a
  // malformed spec.
  virtual std::string build(const DomainSpec& spec) const = 0;
  // One <disk> for hot attach/detach (a container's <filesystem>, for its redefinition).
  // Throws NotSupported where the flavour has no such device.
  virtual std::string disk_device(const DiskDevice& disk) const;

  bool accepts_format(const std::string& format) const;
  // Throws NotSupported "<hypervisor>: <what> format '<format>' is not supported (accepted: ...)".
  void require_format(const std::string& format, const std::string& what) const;
  // Throws NotSupported "hypervisor '<name>' does not support <feature>".
  [[noreturn]] void not_supported(const std::string& feature) const;
};

// The flavour for a config `libvirt.hypervisor` value. Throws CpiError for an unknown name.
std::unique_ptr<Flavour> make_flavour(const std::string& hypervisor);

// The CPU feature nested virtualization requires on the host of `capabilities_xml`
// (virConnectGetCapabilities): "vmx" for Intel, "svm" for AMD. Throws CloudError otherwise.
std::string nested_virt_feature(const std::string& capabilities_xml);

// Flavours other than qemu/kvm (flavour_others.cpp); nullptr for a name they do not cover.
std::unique_ptr<Flavour> make_other_flavour(const std::string& hypervisor);

}  // namespace cpi::xml
