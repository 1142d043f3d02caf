// The driver module's action table: every CPI method that needs libvirt. Adding a method is a
// row here, its handler in one file of this folder, and (when it needs a new step of the cloud)
// that step in one src/driver/cloud/ file (docs/architecture.md, "How to add a CPI method").

#include "cpi/actions/action_table.hpp"

namespace cpi::actions {

// The handlers, by the file of this folder that holds them.
// stemcells.cpp
nlohmann::json create_stemcell(Call& call);
nlohmann::json delete_stemcell(Call& call);
// vms.cpp
nlohmann::json create_vm(Call& call);
nlohmann::json delete_vm(Call& call);
nlohmann::json has_vm(Call& call);
nlohmann::json reboot_vm(Call& call);
nlohmann::json set_vm_metadata(Call& call);
// disks.cpp
nlohmann::json create_disk(Call& call);
nlohmann::json delete_disk(Call& call);
nlohmann::json has_disk(Call& call);
nlohmann::json attach_disk(Call& call);
nlohmann::json detach_disk(Call& call);
nlohmann::json get_disks(Call& call);
nlohmann::json resize_disk(Call& call);
nlohmann::json set_disk_metadata(Call& call);
nlohmann::json snapshot_disk(Call& call);
nlohmann::json delete_snapshot(Call& call);
nlohmann::json update_disk(Call& call);

const ActionTable& driver_actions() {
  static const ActionTable table{
      {"attach_disk", {&attach_disk, {"vm_cid", "disk_cid"}}},
      {"create_disk", {&create_disk, {"size", "cloud_properties"}}},
      {"create_stemcell", {&create_stemcell, {"image_path", "cloud_properties"}}},
      {"create_vm",
       {&create_vm, {"agent_id", "stemcell_cid", "cloud_properties", "networks"}}},
      {"delete_disk", {&delete_disk, {"disk_cid"}}},
      {"delete_snapshot", {&delete_snapshot, {"snapshot_cid"}}},
      {"delete_stemcell", {&delete_stemcell, {"stemcell_cid"}}},
      {"delete_vm", {&delete_vm, {"vm_cid"}}},
      {"detach_disk", {&detach_disk, {"vm_cid", "disk_cid"}}},
      {"get_disks", {&get_disks, {"vm_cid"}}},
      {"has_disk", {&has_disk, {"disk_cid"}}},
      {"has_vm", {&has_vm, {"vm_cid"}}},
      {"reboot_vm", {&reboot_vm, {"vm_cid"}}},
      {"resize_disk", {&resize_disk, {"disk_cid", "new_size"}}},
      {"set_disk_metadata", {&set_disk_metadata, {"disk_cid", "metadata"}}},
      {"set_vm_metadata", {&set_vm_metadata, {"vm_cid", "metadata"}}},
      {"snapshot_disk", {&snapshot_disk, {"disk_cid"}}},
      {"update_disk", {&update_disk, {"disk_cid", "new_size", "cloud_properties"}}},
  };
  return table;
}

}  // namespace cpi::actions
