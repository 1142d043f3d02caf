#pragma once
// One row per CPI method: its handler and its argument names (for arity messages). Two tables:
// the executable's, for the methods it answers without libvirt, and the driver module's, for
// every other one (docs/architecture.md, "Two binaries"). The handlers are declared beside their
// rows, by the file that holds them.

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

// info, calculate_vm_cloud_properties and current_vm_id (src/actions/info.cpp): answered by the
// executable itself, which never loads the driver module for them.
const ActionTable& local_actions();

// Every method that needs libvirt (src/driver/actions/action_table.cpp), defined only in the
// driver module and in the static library the tests link. A method in neither table gets
// NotImplemented from the dispatcher.
const ActionTable& driver_actions();

}  // namespace cpi::actions
