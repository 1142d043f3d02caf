#pragma once
// Turns one request text into one response text. Never throws: every failure becomes a
// well-formed error response (cpi-protocol.md §5).

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cpi/actions/call.hpp"

namespace cpi::rpc {

struct DispatchOptions {
  // The --config file; nullopt runs on the schema's defaults.
  std::optional<std::filesystem::path> config_path;
  // Opens the cloud when a handler first needs it.
  actions::CloudFactory cloud_factory;
};

std::string dispatch(std::string_view input, const DispatchOptions& options) noexcept;

}  // namespace cpi::rpc
