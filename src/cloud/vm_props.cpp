#include "cpi/cloud/vm_props.hpp"

#include "cpi/config/fields.hpp"
#include "cpi/errors.hpp"

namespace cpi::cloud {
namespace {

constexpr std::int64_t k_max_mib = 64LL * 1024 * 1024;  // 64 TiB

// Reads `key` or its alias; setting both is an error.
std::optional<std::int64_t> integer_alias(config::FieldReader& reader, const std::string& key,
                                          const std::string& alias, std::int64_t min,
                                          std::int64_t max) {
  auto a = reader.integer(key, min, max);
  auto b = reader.integer(alias, min, max);
  if (a && b) {
    reader.fail(alias, "is an alias of '" + key + "'; set only one of them");
  }
  return a ? a : b;
}

}  // namespace

VmProps parse_vm_props(const nlohmann::json& cloud_properties) {
  config::FieldReader reader{cloud_properties, "create_vm", "cloud_properties"};
  VmProps props;
  if (auto v = integer_alias(reader, "cpu", "cpus", 1, 1024)) {
    props.cpu = static_cast<unsigned int>(*v);
  }
  if (auto v = integer_alias(reader, "ram", "memory", 16, k_max_mib)) {
    props.ram_mib = static_cast<std::uint64_t>(*v);
  }
  if (auto v = integer_alias(reader, "ephemeral_disk", "disk", 0, k_max_mib)) {
    props.ephemeral_disk_mib = static_cast<std::uint64_t>(*v);
  }
  if (auto root = reader.object("root_disk")) {
    if (auto size = root->integer("size", 1, k_max_mib)) {
      props.root_disk_mib = static_cast<std::uint64_t>(*size);
    }
    root->finish();
  }
  reader.finish();
  return props;
}

DiskProps parse_disk_props(const nlohmann::json& cloud_properties) {
  config::FieldReader reader{cloud_properties, "create_disk", "cloud_properties"};
  DiskProps props;
  if (auto pool = reader.string("storage_pool")) {
    if (pool->empty()) reader.fail("storage_pool", "must not be empty");
    props.storage_pool = *pool;
  }
  auto format = reader.choice("format", {"qcow2", "raw"});
  auto type = reader.choice("type", {"qcow2", "raw"});
  if (format && type) {
    reader.fail("type", "is an alias of 'format'; set only one of them");
  }
  if (format || type) {
    props.format = format ? *format : *type;
  }
  reader.finish();
  return props;
}

NetworkProps parse_network_props(const std::string& network_name,
                                 const nlohmann::json& cloud_properties) {
  config::FieldReader reader{cloud_properties, "create_vm",
                             "networks." + network_name + ".cloud_properties"};
  NetworkProps props;
  auto name = reader.string("name");
  auto bridge = reader.string("bridge");
  auto dev = reader.string("dev");
  auto mode = reader.choice("mode", {"bridge", "vepa", "private", "passthrough"});
  reader.finish();
  const int given = (name ? 1 : 0) + (bridge ? 1 : 0) + (dev ? 1 : 0);
  if (given > 1) {
    reader.fail("name", "set only one of name (a libvirt network), bridge or dev");
  }
  if (mode && !dev) {
    reader.fail("mode", "applies only with dev (a macvtap interface)");
  }
  if (bridge) {
    props.type = "bridge";
    props.source = *bridge;
  } else if (dev) {
    props.type = "direct";
    props.source = *dev;
    props.mode = mode.value_or("bridge");
  } else if (name) {
    props.source = *name;
  }
  for (const auto* value : {&props.source}) {
    if (given == 1 && value->empty()) {
      throw CpiError("create_vm: networks." + network_name + ".cloud_properties: empty value");
    }
  }
  return props;
}

StemcellProps parse_stemcell_props(const nlohmann::json& cloud_properties) {
  StemcellProps props;
  if (!cloud_properties.is_object()) {
    return props;
  }
  auto it = cloud_properties.find("disk_format");
  if (it == cloud_properties.end() || it->is_null()) {
    return props;
  }
  if (!it->is_string() || (*it != "qcow2" && *it != "raw")) {
    throw CloudError(
        "create_stemcell: cloud_properties.disk_format: unknown disk format (accepted: qcow2, "
        "raw)");
  }
  props.disk_format = it->get<std::string>();
  return props;
}

}  // namespace cpi::cloud
