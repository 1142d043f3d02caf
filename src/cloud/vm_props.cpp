#include "cpi/cloud/vm_props.hpp"

#include "cpi/config/fields.hpp"
#include "cpi/errors.hpp"

#include <cctype>

namespace cpi::cloud {
namespace {

constexpr std::int64_t k_max_mib = k_max_size_mib;

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

// A size in MiB: an integer, or an object {size: MiB} (the form AWS/GCP-style manifests use, and
// this CPI's root_disk). Nullopt when absent.
std::optional<std::int64_t> size_mib(config::FieldReader& reader, const std::string& key,
                                     std::int64_t min, std::int64_t max) {
  const auto* value = reader.any(key);
  if (value == nullptr || !value->is_object()) return reader.integer(key, min, max);
  auto nested = reader.object(key);
  auto size = nested->integer("size", min, max);
  nested->finish();
  if (!size) reader.fail(key, "needs 'size' (MiB) when given as an object");
  return size;
}

// Like integer_alias, for sizes (size_mib).
std::optional<std::int64_t> size_alias(config::FieldReader& reader, const std::string& key,
                                       const std::string& alias, std::int64_t min,
                                       std::int64_t max) {
  auto a = size_mib(reader, key, min, max);
  auto b = size_mib(reader, alias, min, max);
  if (a && b) {
    reader.fail(alias, "is an alias of '" + key + "'; set only one of them");
  }
  return a ? a : b;
}

bool hex_digits(const std::string& text, std::size_t from, std::size_t count) {
  for (std::size_t i = from; i < from + count; ++i) {
    if (std::isxdigit(static_cast<unsigned char>(text[i])) == 0) return false;
  }
  return true;
}

std::string lowercase(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// "dddd:bb:ss.f" with hex digits and a function 0-7.
bool pci_address(const std::string& text) {
  return text.size() == 12 && hex_digits(text, 0, 4) && text[4] == ':' && hex_digits(text, 5, 2) &&
         text[7] == ':' && hex_digits(text, 8, 2) && text[10] == '.' && text[11] >= '0' &&
         text[11] <= '7';
}

// "0x" and four hex digits.
bool usb_id(const std::string& text) {
  return text.size() == 6 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') &&
         hex_digits(text, 2, 4);
}

std::vector<HostDeviceProps> host_devices(config::FieldReader& reader) {
  std::vector<HostDeviceProps> out;
  const auto* list = reader.any("host_devices");
  if (list == nullptr) return out;
  if (!list->is_array()) {
    reader.fail("host_devices", "expected a list of PCI addresses (\"0000:65:00.0\") or USB "
                                "{vendor, product} objects, got " + config::json_type_name(*list));
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto& item = (*list)[i];
    const std::string key = "host_devices[" + std::to_string(i) + "]";
    HostDeviceProps device;
    if (item.is_string()) {
      device.pci = lowercase(item.get<std::string>());
      if (!pci_address(device.pci)) {
        reader.fail(key, "is not a PCI address like 0000:65:00.0");
      }
    } else if (item.is_object()) {
      config::FieldReader usb{item, "create_vm", "cloud_properties." + key};
      device.vendor = lowercase(usb.string("vendor").value_or(""));
      device.product = lowercase(usb.string("product").value_or(""));
      usb.finish();
      if (!usb_id(device.vendor)) usb.fail("vendor", "expected a USB id like \"0x1234\"");
      if (!usb_id(device.product)) usb.fail("product", "expected a USB id like \"0x5678\"");
    } else {
      reader.fail(key, "expected a PCI address string or a USB {vendor, product} object, got " +
                           config::json_type_name(item));
    }
    for (const auto& seen : out) {
      if (seen.pci == device.pci && seen.vendor == device.vendor &&
          seen.product == device.product) {
        reader.fail(key, "is listed twice");
      }
    }
    out.push_back(device);
  }
  return out;
}

}  // namespace

std::uint64_t mib_to_bytes(std::int64_t size_mib, const std::string& what) {
  if (size_mib < 1 || size_mib > k_max_size_mib) {
    throw CloudError(what + ": " + std::to_string(size_mib) + " MiB is out of range (1 MiB up to " +
                     std::to_string(k_max_size_mib) + " MiB = 64 TiB)");
  }
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(size_mib), std::uint64_t{1} << 20U,
                             &bytes)) {
    throw CloudError(what + ": " + std::to_string(size_mib) + " MiB does not fit in 64 bits");
  }
  return bytes;
}

VmProps parse_vm_props(const nlohmann::json& cloud_properties) {
  config::FieldReader reader{cloud_properties, "create_vm", "cloud_properties"};
  VmProps props;
  if (auto v = integer_alias(reader, "cpu", "cpus", 1, 1024)) {
    props.cpu = static_cast<unsigned int>(*v);
  }
  if (auto v = integer_alias(reader, "ram", "memory", 16, k_max_mib)) {
    props.ram_mib = static_cast<std::uint64_t>(*v);
  }
  if (auto v = size_alias(reader, "ephemeral_disk", "disk", 0, k_max_mib)) {
    props.ephemeral_disk_mib = static_cast<std::uint64_t>(*v);
  }
  if (auto root = reader.object("root_disk")) {
    if (auto size = root->integer("size", 1, k_max_mib)) {
      props.root_disk_mib = static_cast<std::uint64_t>(*size);
    }
    root->finish();
  }
  props.host_devices = host_devices(reader);
  props.cpu_mode = reader.choice("cpu_mode", {"host-passthrough", "host-model", "custom"})
                       .value_or("");
  props.cpu_model = reader.string("cpu_model").value_or("");
  if (props.cpu_mode == "custom" && props.cpu_model.empty()) {
    reader.fail("cpu_model", "is required with cpu_mode custom (a libvirt CPU model name)");
  }
  if (props.cpu_mode != "custom" && !props.cpu_model.empty()) {
    reader.fail("cpu_model", "applies only with cpu_mode custom");
  }
  props.nested_virtualization = reader.boolean("nested_virtualization").value_or(false);
  props.hugepages = reader.boolean("hugepages").value_or(false);
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
    props.format_set = true;
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
