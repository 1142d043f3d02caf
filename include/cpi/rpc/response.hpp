#pragma once
// The CPI response envelope (docs/architecture.md, "Protocol"): always result, error and log; log is a
// string; error is null or {type, message, ok_to_retry}. Serialised as one line of valid UTF-8
// (invalid bytes are replaced), so both BOSH clients can parse it.

#include <nlohmann/json.hpp>

#include <string>

namespace cpi {
class Error;
}

namespace cpi::rpc {

std::string success_response(const nlohmann::json& result);
std::string error_response(const Error& error);

}  // namespace cpi::rpc
