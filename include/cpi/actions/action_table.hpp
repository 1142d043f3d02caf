#pragma once
// One row per CPI method: its handler and its argument names (for arity messages).

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cpi/actions/call.hpp"

namespace cpi::actions {

using Handler = nlohmann::json (*)(Call&);

struct Action {
  Handler handler;
  std::vector<const char*> arguments;  // required arguments, in order
};

using ActionTable = std::map<std::string_view, Action>;

// Every method this CPI implements. A method missing here gets NotImplemented from the
// dispatcher.
const ActionTable& action_table();

// Handlers (one file per area under src/actions/).
nlohmann::json info(Call& call);
nlohmann::json calculate_vm_cloud_properties(Call& call);
nlohmann::json current_vm_id(Call& call);

nlohmann::json create_stemcell(Call& call);
nlohmann::json delete_stemcell(Call& call);

nlohmann::json create_vm(Call& call);
nlohmann::json delete_vm(Call& call);
nlohmann::json has_vm(Call& call);
nlohmann::json reboot_vm(Call& call);
nlohmann::json set_vm_metadata(Call& call);

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

}  // namespace cpi::actions
