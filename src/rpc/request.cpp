#include "cpi/rpc/request.hpp"

#include "cpi/config/fields.hpp"
#include "cpi/config/json_parse.hpp"
#include "cpi/errors.hpp"

namespace cpi::rpc {

using config::json_type_name;

namespace {

// api_version: any JSON number; the message says what is wrong with it.
int read_api_version(const nlohmann::json& version) {
  if (!version.is_number_integer()) {
    throw CpiError("request 'api_version' must be an integer, got " + json_type_name(version));
  }
  if (version.is_number_unsigned()) {
    const auto value = version.get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(k_max_api_version)) {
      throw NotImplemented("CPI API version requested is '" + std::to_string(value) +
                           "', max supported is '" + std::to_string(k_max_api_version) + "'");
    }
    return value == 0 ? 1 : static_cast<int>(value);
  }
  const auto value = version.get<std::int64_t>();
  if (value < 0) {
    throw CpiError("request 'api_version' must not be negative, got " + std::to_string(value));
  }
  if (value > k_max_api_version) {
    throw NotImplemented("CPI API version requested is '" + std::to_string(value) +
                         "', max supported is '" + std::to_string(k_max_api_version) + "'");
  }
  return value == 0 ? 1 : static_cast<int>(value);
}

}  // namespace

Request parse_request(std::string_view input) {
  if (input.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw CpiError("empty request: expected one JSON object on stdin");
  }
  config::BoundedJson parsed;
  try {
    parsed = config::parse_bounded_json(input, "request");
  } catch (const nlohmann::json::exception& e) {
    throw CpiError(std::string{"request is not valid JSON: "} + e.what());
  }
  Request request;
  for (auto& number : parsed.out_of_range) {
    // Inside an argument: reported by the handler, which knows the argument's name.
    if (number.path.size() >= 2 && number.path[0] == "arguments") {
      request.out_of_range_arguments.push_back(std::move(number));
    } else if (!number.path.empty() &&
               (number.path[0] == "context" || number.path[0] == "api_version" ||
                number.path[0] == "method" || number.path[0] == "arguments")) {
      throw CpiError("request '" + config::json_path_text(number.path) + "': number '" +
                     number.text + "' is out of range");
    }
  }
  nlohmann::json& document = parsed.document;
  if (!document.is_object()) {
    throw CpiError("request must be a JSON object, got " + json_type_name(document));
  }

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
  request.arguments = std::move(*arguments);

  if (auto context = document.find("context"); context != document.end() && !context->is_null()) {
    if (!context->is_object()) {
      throw CpiError("request 'context' must be an object, got " + json_type_name(*context));
    }
    request.context = std::move(*context);
    if (auto id = request.context.find("request_id");
        id != request.context.end() && id->is_string()) {
      request.request_id = id->get<std::string>();
    }
  }

  if (auto version = document.find("api_version");
      version != document.end() && !version->is_null()) {
    request.api_version = read_api_version(*version);
  }
  return request;
}

}  // namespace cpi::rpc
