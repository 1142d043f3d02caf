#pragma once
// One row per CPI method: its handler and its argument names (for arity messages). The
// handlers are declared in action_table.cpp beside their rows, by the file that holds them.

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

}  // namespace cpi::actions
