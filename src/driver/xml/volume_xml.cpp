#include "cpi/xml/volume_xml.hpp"

#include <pugixml.hpp>

#include "cpi/xml/xml_util.hpp"

namespace cpi::xml {
namespace {

void capacity(pugi::xml_node volume, std::uint64_t bytes) {
  auto node = child(volume, "capacity");
  node.append_attribute("unit") = "bytes";
  node.text() = static_cast<unsigned long long>(bytes);
}

}  // namespace

std::string volume_xml(const VolumeSpec& spec) {
  pugi::xml_document doc;
  auto volume = child(doc, "volume");
  child(volume, "name").text() = spec.name.c_str();
  capacity(volume, spec.capacity_bytes);
  if (spec.format == "qcow2") {
    // qcow2 grows on demand; raw volumes in a dir pool are sparse files anyway.
    auto allocation = child(volume, "allocation");
    allocation.append_attribute("unit") = "bytes";
    allocation.text() = 0;
  }
  auto target = child(volume, "target");
  child(target, "format").append_attribute("type") = spec.format.c_str();
  if (!spec.mode.empty()) {
    child(child(target, "permissions"), "mode").text() = spec.mode.c_str();
  }
  return serialize(doc);
}

std::string overlay_volume_xml(const OverlayVolumeSpec& spec) {
  pugi::xml_document doc;
  auto volume = child(doc, "volume");
  child(volume, "name").text() = spec.name.c_str();
  capacity(volume, spec.capacity_bytes);
  auto allocation = child(volume, "allocation");
  allocation.append_attribute("unit") = "bytes";
  allocation.text() = 0;
  child(child(volume, "target"), "format").append_attribute("type") = "qcow2";
  auto backing = child(volume, "backingStore");
  child(backing, "path").text() = spec.backing_path.c_str();
  child(backing, "format").append_attribute("type") = spec.backing_format.c_str();
  return serialize(doc);
}

VolumeFacts read_volume_xml(const std::string& text) {
  pugi::xml_document doc;
  parse(doc, text, "volume XML");
  auto volume = doc.child("volume");
  VolumeFacts facts;
  facts.name = volume.child_value("name");
  facts.path = volume.child("target").child_value("path");
  facts.format = volume.child("target").child("format").attribute("type").value();
  facts.capacity_bytes = volume.child("capacity").text().as_ullong();
  if (auto backing = volume.child("backingStore").child("path")) {
    facts.backing_path = backing.child_value();
  }
  return facts;
}

std::string dir_pool_xml(const std::string& name, const std::string& path) {
  pugi::xml_document doc;
  auto pool = child(doc, "pool");
  pool.append_attribute("type") = "dir";
  child(pool, "name").text() = name.c_str();
  auto target = child(pool, "target");
  child(target, "path").text() = path.c_str();
  child(child(target, "permissions"), "mode").text() = "0711";
  return serialize(doc);
}

PoolFacts read_pool_xml(const std::string& text) {
  pugi::xml_document doc;
  parse(doc, text, "storage pool XML");
  auto pool = doc.child("pool");
  auto bytes = [&](const char* name) -> std::optional<std::uint64_t> {
    auto node = pool.child(name);
    const std::string unit = node.attribute("unit").value();
    const std::string digits = node.child_value();
    if (!node || (!unit.empty() && unit != "bytes" && unit != "B") || digits.empty() ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    return node.text().as_ullong();
  };
  return {pool.attribute("type").value(), pool.child("target").child_value("path"),
          bytes("capacity"), bytes("available")};
}

}  // namespace cpi::xml
