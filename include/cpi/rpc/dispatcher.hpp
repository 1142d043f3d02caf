#pragma once
// Turns one request text into one response text. Never throws: every failure becomes a
// well-formed error response (docs/architecture.md, "Protocol").

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpi/actions/action_table.hpp"
#include "cpi/actions/call.hpp"

namespace cpi::rpc {

struct DispatchOptions {
  // The --config file; nullopt runs on the schema's defaults.
  std::optional<std::filesystem::path> config_path;
  // The tables searched, in order, for the request's method.
  std::vector<const actions::ActionTable*> tables;
  // Opens the cloud when a handler first needs it (the driver's handlers).
  actions::CloudFactory cloud_factory;
  // For a method in none of the tables: when set, the request text, as it came, is handed here
  // and what it returns is the response (the executable hands it to the driver module, which
  // runs this dispatcher on its own tables); when unset, NotImplemented. May throw cpi::Error.
  std::function<std::string(std::string_view request)> forward;
};

std::string dispatch(std::string_view input, const DispatchOptions& options) noexcept;

}  // namespace cpi::rpc
