#include "cpi/rpc/request.hpp"

#include "cpi/config/fields.hpp"
#include "cpi/errors.hpp"

namespace cpi::rpc {

using config::json_type_name;

Request parse_request(std::string_view input) {
  if (input.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw CpiError("empty request: expected one JSON object on stdin");
  }
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(input.begin(), input.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw CpiError(std::string{"request is not valid JSON: "} + e.what());
  }
  if (!document.is_object()) {
    throw CpiError("request must be a JSON object, got " + json_type_name(document));
  }
  Request request;

  auto method = document.find("method");
  if (method == document.end() || method->is_null()) {
    throw CpiError("request has no 'method' key");
  }
  if (!method->is_string()) {
    throw CpiError("request 'method' must be a string, got " + json_type_name(*method));
  }
  request.method = method->get<std::string>();
  if (request.method.empty()) {
    throw CpiError("request 'method' must not be empty");
  }

  auto arguments = document.find("arguments");
  if (arguments == document.end() || arguments->is_null()) {
    throw CpiError("request has no 'arguments' key (expected an array, [] when empty)");
  }
  if (!arguments->is_array()) {
    throw CpiError("request 'arguments' must be an array, got " + json_type_name(*arguments));
  }
  request.arguments = *arguments;

  if (auto context = document.find("context"); context != document.end() && !context->is_null()) {
    if (!context->is_object()) {
      throw CpiError("request 'context' must be an object, got " + json_type_name(*context));
    }
    request.context = *context;
    if (auto id = context->find("request_id"); id != context->end() && id->is_string()) {
      request.request_id = id->get<std::string>();
    }
  }

  if (auto version = document.find("api_version");
      version != document.end() && !version->is_null()) {
    if (!version->is_number_integer()) {
      throw CpiError("request 'api_version' must be an integer, got " + json_type_name(*version));
    }
    const auto value = version->get<std::int64_t>();
    if (value < 0) {
      throw CpiError("request 'api_version' must not be negative");
    }
    if (value > k_max_api_version) {
      throw NotImplemented("CPI API version requested is '" + std::to_string(value) +
                           "', max supported is '" + std::to_string(k_max_api_version) + "'");
    }
    request.api_version = value == 0 ? 1 : static_cast<int>(value);
  }
  return request;
}

}  // namespace cpi::rpc
