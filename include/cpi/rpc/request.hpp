#pragma once
// The CPI request envelope (cpi-protocol.md §1.2).

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace cpi::rpc {

struct Request {
  std::string method;
  nlohmann::json arguments = nlohmann::json::array();
  nlohmann::json context = nlohmann::json::object();
  int api_version = 1;     // absent or 0 -> 1
  std::string request_id;  // context.request_id, empty when absent (bosh-cli sends none)
};

// Highest request api_version we accept (3 only adds create_stemcell's third argument).
constexpr int k_max_api_version = 3;

// Decodes one request. Throws CpiError for malformed JSON, a non-object document, a missing or
// non-string method, non-array arguments, a non-object context or a non-integer api_version;
// NotImplemented for an api_version above k_max_api_version.
Request parse_request(std::string_view input);

}  // namespace cpi::rpc
