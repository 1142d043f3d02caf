// The flavour factory, the shared Flavour members and the qemu/kvm flavour.

#include "cpi/xml/flavour.hpp"

#include <pugixml.hpp>

#include <algorithm>

#include "cpi/errors.hpp"
#include "cpi/xml/xml_util.hpp"

namespace cpi::xml {
namespace {

// qemu and kvm: the DomainSpec builder of domain_xml.cpp. Under the qemu domain type (TCG, no
// /dev/kvm) what needs KVM is refused here, before libvirt fails at start.
class QemuFlavour final : public Flavour {
 public:
  explicit QemuFlavour(std::string name) : m_name(std::move(name)) {}

  std::string name() const override { return m_name; }
  std::string domain_type(const std::function<std::string()>& detect) const override {
    return detect();
  }
  std::string disk_bus(const std::string& configured) const override { return configured; }
  std::string cdrom_bus(const std::string& configured) const override { return configured; }
  std::string nic_model() const override { return "virtio"; }
  std::vector<std::string> formats() const override { return {"qcow2", "raw"}; }
  bool live_block_copy() const override { return true; }
  std::string console_log(const std::string& domain_name) const override {
    return "/var/log/libvirt/qemu/" + domain_name + "-console.log";
  }

  std::string build(const DomainSpec& spec) const override {
    if (spec.cpu.mode == "custom" && spec.cpu.model.empty()) {
      throw CpiError("cpu_mode custom needs a cpu_model");
    }
    if (spec.cpu.mode != "custom" && !spec.cpu.model.empty()) {
      throw CpiError("cpu_model applies only with cpu_mode custom");
    }
    if (spec.virt_type != "kvm") {
      const std::string tcg = " under domain type '" + spec.virt_type + "' (TCG, no KVM)";
      if (spec.cpu.mode == "host-passthrough") not_supported("cpu_mode host-passthrough" + tcg);
      if (!spec.cpu.nested_feature.empty()) not_supported("nested_virtualization" + tcg);
      for (const auto& device : spec.host_devices) {
        if (!device.pci.empty()) not_supported("PCI host device " + device.pci + tcg);
      }
    }
    for (const auto& disk : spec.disks) {
      require_format(disk.format, "disk '" + disk.volume + "'");
    }
    return domain_xml(spec);
  }

 private:
  std::string m_name;
};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::string Flavour::disk_device(const DiskDevice& disk) const {
  require_format(disk.format, "disk '" + disk.volume + "'");
  return disk_device_xml(disk);
}

bool Flavour::accepts_format(const std::string& format) const {
  const auto accepted = formats();
  return std::find(accepted.begin(), accepted.end(), format) != accepted.end();
}

void Flavour::require_format(const std::string& format, const std::string& what) const {
  if (!accepts_format(format)) {
    throw NotSupported("hypervisor '" + name() + "': " + what + ": disk format '" + format +
                       "' is not supported (accepted: " + joined(formats()) + ")");
  }
}

void Flavour::not_supported(const std::string& feature) const {
  throw NotSupported("hypervisor '" + name() + "' does not support " + feature);
}

std::string nested_virt_feature(const std::string& capabilities_xml) {
  pugi::xml_document doc;
  parse(doc, capabilities_xml, "host capabilities");
  const std::string vendor =
      doc.child("capabilities").child("host").child("cpu").child_value("vendor");
  if (vendor == "Intel") return "vmx";
  if (vendor == "AMD") return "svm";
  throw CloudError("create_vm: cloud_properties.nested_virtualization: the host CPU vendor '" +
                   vendor + "' is neither Intel (vmx) nor AMD (svm)");
}

std::unique_ptr<Flavour> make_flavour(const std::string& hypervisor) {
  if (hypervisor == "qemu" || hypervisor == "kvm") {
    return std::make_unique<QemuFlavour>(hypervisor);
  }
  if (auto other = make_other_flavour(hypervisor)) {
    return other;
  }
  throw CpiError("libvirt.hypervisor: unknown hypervisor '" + hypervisor +
                 "' (accepted: qemu, kvm, lxc, xen, vbox, vmware)");
}

}  // namespace cpi::xml
