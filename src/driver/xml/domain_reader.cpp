#include "cpi/xml/domain_reader.hpp"

#include <algorithm>
#include <pugixml.hpp>

#include "cpi/errors.hpp"
#include "cpi/agent/container_paths.hpp"
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

// The name without its namespace prefix ("bosh:facts" -> "facts").
std::string local_name(const pugi::xml_node& node) {
  const std::string name = node.name();
  const auto colon = name.find(':');
  return colon == std::string::npos ? name : name.substr(colon + 1);
}

// The namespace URI of `node`: the xmlns (or xmlns:<prefix>) declaration on it or the nearest
// ancestor that has one; "" when none is in scope.
std::string namespace_of(pugi::xml_node node) {
  const std::string name = node.name();
  const auto colon = name.find(':');
  const std::string attribute =
      colon == std::string::npos ? "xmlns" : "xmlns:" + name.substr(0, colon);
  for (; node && node.type() == pugi::node_element; node = node.parent()) {
    if (auto declared = node.attribute(attribute.c_str())) return declared.value();
  }
  return "";
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
  const std::string disks_dir = std::string{agent::k_disks_dir} + "/";
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
  for (auto element : doc.child("domain").child("metadata").children()) {
    if (element.type() != pugi::node_element || namespace_of(element) != k_metadata_ns) continue;
    facts.ours = true;
    for (auto item : element.children()) {
      if (item.type() == pugi::node_element && local_name(item) == "facts") {
        facts.facts = item.child_value();
        break;
      }
    }
    break;
  }
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
