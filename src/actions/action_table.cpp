#include "cpi/actions/action_table.hpp"

namespace cpi::actions {

// info.cpp
nlohmann::json info(Call& call);
nlohmann::json calculate_vm_cloud_properties(Call& call);
nlohmann::json current_vm_id(Call& call);

const ActionTable& local_actions() {
  static const ActionTable table{
      {"calculate_vm_cloud_properties",
       {&calculate_vm_cloud_properties, {"desired_instance_size"}}},
      {"current_vm_id", {&current_vm_id, {}}},
      {"info", {&info, {}}},
  };
  return table;
}

}  // namespace cpi::actions
