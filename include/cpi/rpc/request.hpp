#pragma once
// The CPI request envelope (docs/architecture.md, "Protocol").

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "cpi/config/json_parse.hpp"

namespace cpi::rpc {

struct Request {
  std::string method;
  nlohmann::json arguments = nlohmann::json::array();
  nlohmann::json context = nlohmann::json::object();
  int api_version = 1;     // absent or 0 -> 1
  std::string request_id;  // context.request_id, empty when absent (bosh-cli sends none)
  // Numbers inside `arguments` that do not fit a double (1e400): null in `arguments`; the
  // argument accessors refuse the argument they belong to (path[1] is its index).
  std::vector<config::OutOfRangeNumber> out_of_range_arguments;
};

// Highest request api_version we accept (3 only adds create_stemcell's third argument).
constexpr int k_max_api_version = 3;

// Decodes one request. Throws CpiError for malformed JSON, nesting deeper than
// config::k_max_json_depth (the deep document is never built), a non-object document, a
// missing or non-string method, non-array arguments, a non-object context, a non-integer or
// negative api_version, or a number that does not fit a double outside `arguments`;
// NotImplemented for an api_version above k_max_api_version (of any size).
Request parse_request(std::string_view input);

}  // namespace cpi::rpc
