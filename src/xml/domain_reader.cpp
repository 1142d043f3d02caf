#include "cpi/xml/domain_reader.hpp"

#include <algorithm>
#include <pugixml.hpp>

#include "cpi/errors.hpp"
#include "cpi/stemcell/fs_image.hpp"
#include "cpi/xml/xml_util.hpp"

namespace cpi::xml {
namespace {

std::string bus_prefix(const std::string& bus) {
  if (bus == "virtio") return "vd";
  if (bus == "ide") return "hd";
  if (bus == "xen") return "xvd";
  return "sd";
}

std::string suffix(int index) {  // 0 -> a, 25 -> z, 26 -> aa
  std::string out;
  ++index;
  while (index > 0) {
    --index;
    out.insert(out.begin(), static_cast<char>('a' + index % 26));
    index /= 26;
  }
  return out;
}

}  // namespace

DomainFacts read_domain_xml(const std::string& text) {
  pugi::xml_document doc;
  parse(doc, text, "domain XML");
  DomainFacts facts;
  auto devices = doc.child("domain").child("devices");
  for (auto disk : devices.children("disk")) {
    DiskDevice d;
    d.cdrom = std::string{disk.attribute("device").value()} == "cdrom";
    d.format = disk.child("driver").attribute("type").value();
    d.pool = disk.child("source").attribute("pool").value();
    d.volume = disk.child("source").attribute("volume").value();
    d.target = disk.child("target").attribute("dev").value();
    d.bus = disk.child("target").attribute("bus").value();
    d.serial = disk.child_value("serial");
    facts.targets.push_back(d.target);
    facts.disks.push_back(std::move(d));
  }
  // A container's filesystems: persistent disks are mounted below k_disks_dir/<disk cid>, which
  // stands in for the serial a VM's disk carries.
  const std::string disks_dir = std::string{stemcell::k_disks_dir} + "/";
  for (auto fs : devices.children("filesystem")) {
    DiskDevice d;
    d.cdrom = static_cast<bool>(fs.child("readonly"));
    d.format = fs.child("driver").attribute("format").value();
    d.path = fs.child("source").attribute("file").value();
    d.mount = fs.child("target").attribute("dir").value();
    if (d.mount.rfind(disks_dir, 0) == 0) d.serial = d.mount.substr(disks_dir.size());
    facts.disks.push_back(std::move(d));
  }
  for (auto nic : devices.children("interface")) {
    NicDevice n;
    n.type = nic.attribute("type").value();
    n.mac = nic.child("mac").attribute("address").value();
    auto source = nic.child("source");
    n.source = source.attribute("network") ? source.attribute("network").value()
               : source.attribute("bridge") ? source.attribute("bridge").value()
                                            : source.attribute("dev").value();
    n.mode = source.attribute("mode").value();
    n.model = nic.child("model").attribute("type").value();
    facts.nics.push_back(std::move(n));
  }
  facts.console_log = devices.child("serial").child("log").attribute("file").value();
  return facts;
}

std::string next_target(const std::string& bus, const std::vector<std::string>& used) {
  const std::string prefix = bus_prefix(bus);
  for (int i = 0; i < 26 * 27; ++i) {
    std::string name = prefix + suffix(i);
    if (std::find(used.begin(), used.end(), name) == used.end()) {
      return name;
    }
  }
  throw CloudError("no free disk target name left for bus '" + bus + "'");
}

}  // namespace cpi::xml
