// info, calculate_vm_cloud_properties, current_vm_id: the methods that need no libvirt.

#include <fstream>

#include <nlohmann/json.hpp>

#include "cpi/actions/call.hpp"
#include "cpi/config/fields.hpp"
#include "cpi/errors.hpp"

namespace cpi::actions {

// {"api_version": 2, "stemcell_formats": [...]}; never opens a libvirt connection. Containers
// (lxc) boot root filesystem stemcells, the format bosh-warden stemcells declare.
nlohmann::json info(Call& call) {
  if (call.config().libvirt.hypervisor == "lxc") {
    return {{"api_version", 2}, {"stemcell_formats", {"warden-tar"}}};
  }
  return {{"api_version", 2}, {"stemcell_formats", {"openstack-qcow2", "openstack-raw"}}};
}

// {"cpu", "ram", "ephemeral_disk_size"} -> our create_vm cloud_properties.
nlohmann::json calculate_vm_cloud_properties(Call& call) {
  const auto desired = call.object_arg(0, "desired_instance_size");
  config::FieldReader reader{desired, "calculate_vm_cloud_properties", "desired_instance_size"};
  const auto cpu = reader.integer("cpu", 1, 4096);
  const auto ram = reader.integer("ram", 1, 64LL * 1024 * 1024);
  const auto disk = reader.integer("ephemeral_disk_size", 0, 1LL << 40);
  reader.finish();
  if (!cpu || !ram || !disk) {
    throw CloudError(
        "calculate_vm_cloud_properties: desired_instance_size needs cpu, ram and "
        "ephemeral_disk_size");
  }
  nlohmann::json props{{"cpu", *cpu}, {"ram", *ram}};
  if (*disk > 0) {
    props["ephemeral_disk"] = *disk;
  }
  return props;
}

// The CID of the VM this CPI runs on: the agent's settings name it (we write vm.name = the VM
// CID into every VM's settings). Only meaningful on a director deployed by this CPI.
nlohmann::json current_vm_id(Call& /*call*/) {
  const char* path = "/var/vcap/bosh/settings.json";
  std::ifstream in{path};
  if (!in) {
    throw CloudError(std::string{"current_vm_id: cannot read '"} + path +
                     "': this process does not run on a VM created by this CPI");
  }
  nlohmann::json settings = nlohmann::json::parse(in, nullptr, false);
  if (settings.is_object()) {
    if (auto vm = settings.find("vm"); vm != settings.end() && vm->is_object()) {
      if (auto name = vm->find("name"); name != vm->end() && name->is_string()) {
        return name->get<std::string>();
      }
    }
  }
  throw CloudError(std::string{"current_vm_id: '"} + path + "' holds no vm.name");
}

}  // namespace cpi::actions
