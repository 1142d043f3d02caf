#include "cpi/xml/domain_xml.hpp"

#include <pugixml.hpp>

#include "cpi/errors.hpp"
#include "cpi/xml/xml_util.hpp"

namespace cpi::xml {
namespace {

// The qemu flavour's disk: discard on writable disks, the backing chain, the serial.
void append_disk(pugi::xml_node devices, const DiskDevice& disk) {
  auto node = append_volume_disk(devices, disk);
  if (!disk.cdrom) {
    node.child("driver").append_attribute("discard") = "unmap";
  }
  if (disk.backing_chain) {
    auto below = node.insert_child_before("backingStore", node.child("target"));
    for (std::size_t i = 0; i < disk.backing_chain->size(); ++i) {
      const BackingLayer& layer = (*disk.backing_chain)[i];
      if (i > 0) below = child(below, "backingStore");
      below.append_attribute("type") = "file";
      child(below, "format").append_attribute("type") = layer.format.c_str();
      child(below, "source").append_attribute("file") = layer.path.c_str();
    }
    if (!disk.backing_chain->empty()) child(below, "backingStore");  // the end of the chain
  }
  if (!disk.serial.empty()) {
    child(node, "serial").text() = disk.serial.c_str();
  }
}

void append_console(pugi::xml_node devices, const std::string& log_file) {
  auto serial = child(devices, "serial");
  serial.append_attribute("type") = "pty";
  if (!log_file.empty()) {
    auto log = child(serial, "log");
    log.append_attribute("file") = log_file.c_str();
    log.append_attribute("append") = "on";
  }
  child(serial, "target").append_attribute("port") = 0;
  auto console = child(devices, "console");
  console.append_attribute("type") = "pty";
  auto target = child(console, "target");
  target.append_attribute("type") = "serial";
  target.append_attribute("port") = 0;
}

void append_cpu(pugi::xml_node domain, const DomainSpec& spec) {
  const std::string mode =
      !spec.cpu.mode.empty() ? spec.cpu.mode
                             : (spec.virt_type == "kvm" && spec.host_passthrough ? "host-passthrough"
                                                                                  : "");
  if (mode.empty()) {
    return;
  }
  auto cpu = child(domain, "cpu");
  cpu.append_attribute("mode") = mode.c_str();
  if (mode == "custom") {
    cpu.append_attribute("match") = "exact";
    cpu.append_attribute("check") = "partial";
    auto model = child(cpu, "model");
    model.append_attribute("fallback") = "forbid";
    model.text() = spec.cpu.model.c_str();
  } else {
    cpu.append_attribute("check") = "none";
  }
  if (!spec.cpu.nested_feature.empty()) {
    auto feature = child(cpu, "feature");
    feature.append_attribute("policy") = "require";
    feature.append_attribute("name") = spec.cpu.nested_feature.c_str();
  }
}

// "0000:65:00.0" -> <address domain='0x0000' bus='0x65' slot='0x00' function='0x0'/>.
void append_hostdev(pugi::xml_node devices, const HostDevice& device) {
  auto node = child(devices, "hostdev");
  node.append_attribute("mode") = "subsystem";
  node.append_attribute("type") = device.pci.empty() ? "usb" : "pci";
  node.append_attribute("managed") = "yes";
  auto source = child(node, "source");
  if (device.pci.empty()) {
    child(source, "vendor").append_attribute("id") = device.vendor.c_str();
    child(source, "product").append_attribute("id") = device.product.c_str();
    return;
  }
  if (device.pci.size() != 12 || device.pci[4] != ':' || device.pci[7] != ':' ||
      device.pci[10] != '.') {
    throw CpiError("host device '" + device.pci + "' is not a PCI address like 0000:65:00.0");
  }
  auto address = child(source, "address");
  address.append_attribute("domain") = ("0x" + device.pci.substr(0, 4)).c_str();
  address.append_attribute("bus") = ("0x" + device.pci.substr(5, 2)).c_str();
  address.append_attribute("slot") = ("0x" + device.pci.substr(8, 2)).c_str();
  address.append_attribute("function") = ("0x" + device.pci.substr(11, 1)).c_str();
}

}  // namespace

pugi::xml_node append_volume_disk(pugi::xml_node devices, const DiskDevice& disk) {
  auto node = child(devices, "disk");
  node.append_attribute("type") = "volume";
  node.append_attribute("device") = disk.cdrom ? "cdrom" : "disk";
  auto driver = child(node, "driver");
  driver.append_attribute("name") = "qemu";
  driver.append_attribute("type") = disk.format.c_str();
  auto source = child(node, "source");
  source.append_attribute("pool") = disk.pool.c_str();
  source.append_attribute("volume") = disk.volume.c_str();
  auto target = child(node, "target");
  target.append_attribute("dev") = disk.target.c_str();
  target.append_attribute("bus") = disk.bus.c_str();
  if (disk.cdrom) {
    child(node, "readonly");
  }
  return node;
}

pugi::xml_node append_interface(pugi::xml_node devices, const NicDevice& nic, const std::string& model) {
  auto node = child(devices, "interface");
  node.append_attribute("type") = nic.type.c_str();
  child(node, "mac").append_attribute("address") = nic.mac.c_str();
  auto source = child(node, "source");
  if (nic.type == "network") {
    source.append_attribute("network") = nic.source.c_str();
  } else if (nic.type == "bridge") {
    source.append_attribute("bridge") = nic.source.c_str();
  } else if (nic.type == "direct") {
    source.append_attribute("dev") = nic.source.c_str();
    source.append_attribute("mode") = nic.mode.c_str();
  } else {
    throw CpiError("unsupported interface type '" + nic.type + "'");
  }
  if (!model.empty()) {
    child(node, "model").append_attribute("type") = model.c_str();
  }
  return node;
}

pugi::xml_node begin_domain(pugi::xml_document& doc, const std::string& type,
                            const DomainSpec& spec) {
  auto domain = child(doc, "domain");
  domain.append_attribute("type") = type.c_str();
  child(domain, "name").text() = spec.name.c_str();
  if (!spec.title.empty()) {
    child(domain, "title").text() = spec.title.c_str();
  }
  if (!spec.metadata.empty()) {
    pugi::xml_document meta;
    parse(meta, spec.metadata, "domain metadata");
    child(domain, "metadata").append_copy(meta.document_element());
  }
  auto memory = child(domain, "memory");
  memory.append_attribute("unit") = "MiB";
  memory.text() = static_cast<unsigned long long>(spec.memory_mib);
  auto vcpu = child(domain, "vcpu");
  vcpu.append_attribute("placement") = "static";
  vcpu.text() = spec.vcpus;
  return domain;
}

void hvm_os(pugi::xml_node domain, const char* machine) {
  auto os = child(domain, "os");
  auto type = child(os, "type");
  type.append_attribute("arch") = "x86_64";
  if (machine != nullptr) type.append_attribute("machine") = machine;
  type.text() = "hvm";
  child(os, "boot").append_attribute("dev") = "hd";
  auto features = child(domain, "features");
  child(features, "acpi");
  child(features, "apic");
}

void lifecycle(pugi::xml_node domain) {
  child(domain, "clock").append_attribute("offset") = "utc";
  child(domain, "on_poweroff").text() = "destroy";
  child(domain, "on_reboot").text() = "restart";
  child(domain, "on_crash").text() = "restart";
}

void vnc_on_loopback(pugi::xml_node devices) {
  auto graphics = child(devices, "graphics");
  graphics.append_attribute("type") = "vnc";
  graphics.append_attribute("autoport") = "yes";
  graphics.append_attribute("listen") = "127.0.0.1";
  auto listen = child(graphics, "listen");
  listen.append_attribute("type") = "address";
  listen.append_attribute("address") = "127.0.0.1";
}

std::string domain_xml(const DomainSpec& spec) {
  pugi::xml_document doc;
  auto domain = begin_domain(doc, spec.virt_type, spec);
  if (spec.hugepages) {
    child(child(domain, "memoryBacking"), "hugepages");
  }

  hvm_os(domain, spec.machine.c_str());
  append_cpu(domain, spec);
  lifecycle(domain);

  auto devices = child(domain, "devices");
  for (const auto& disk : spec.disks) {
    append_disk(devices, disk);
  }
  for (const auto& nic : spec.nics) {
    append_interface(devices, nic, nic.model);
  }
  for (const auto& device : spec.host_devices) {
    append_hostdev(devices, device);
  }
  append_console(devices, spec.console_log);
  vnc_on_loopback(devices);
  auto rng = child(devices, "rng");
  rng.append_attribute("model") = "virtio";
  auto backend = child(rng, "backend");
  backend.append_attribute("model") = "random";
  backend.text() = "/dev/urandom";
  child(devices, "memballoon").append_attribute("model") = "virtio";
  return serialize(doc);
}

std::string disk_device_xml(const DiskDevice& disk) {
  pugi::xml_document doc;
  append_disk(doc, disk);
  return serialize(doc);
}

}  // namespace cpi::xml

namespace cpi::xml {

std::string with_device(const std::string& domain_text, const std::string& device_text) {
  pugi::xml_document domain;
  parse(domain, domain_text, "domain XML");
  pugi::xml_document device;
  parse(device, device_text, "device XML");
  auto devices = domain.child("domain").child("devices");
  if (!devices) devices = domain.child("domain").append_child("devices");
  devices.append_copy(device.document_element());
  return serialize(domain);
}

std::string without_filesystem(const std::string& domain_text, const std::string& mount) {
  pugi::xml_document domain;
  parse(domain, domain_text, "domain XML");
  auto devices = domain.child("domain").child("devices");
  for (auto fs = devices.child("filesystem"); fs;) {
    auto next = fs.next_sibling("filesystem");
    if (mount == fs.child("target").attribute("dir").value()) devices.remove_child(fs);
    fs = next;
  }
  return serialize(domain);
}

}  // namespace cpi::xml
