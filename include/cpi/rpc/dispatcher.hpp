#pragma once
// Turns one request text into one response text. Never throws: every failure becomes a
// well-formed error response (docs/architecture.md, "Protocol").

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cpi/cloud/cloud.hpp"

namespace cpi::rpc {

struct DispatchOptions {
  // The --config file; nullopt runs on the schema's defaults.
  std::optional<std::filesystem::path> config_path;
  // Opens the cloud when a handler first needs it.
  cloud::CloudFactory cloud_factory;
};

std::string dispatch(std::string_view input, const DispatchOptions& options) noexcept;

}  // namespace cpi::rpc
