#include "cpi/rpc/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "cpi/actions/action_table.hpp"
#include "cpi/errors.hpp"
#include "cpi/rpc/request.hpp"
#include "cpi/rpc/response.hpp"
#include "cpi/util/log.hpp"
#include "cpi/util/redact.hpp"

namespace cpi::rpc {
namespace {

// Registers every string found under a secret-looking key (passwords, keys, certificates'
// private parts, tokens) anywhere in the request, so the log sink masks it. The request is
// at most config::k_max_json_depth levels deep, which bounds the recursion.
void register_request_secrets(const nlohmann::json& value, bool secret_context) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (secret_context || text.find("PRIVATE KEY") != std::string::npos) {
      util::redactor().add_secret(text);
    }
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      register_request_secrets(item, secret_context || util::is_secret_key(key, false));
    }
  } else if (value.is_array()) {
    for (const auto& item : value) {
      register_request_secrets(item, secret_context);
    }
  }
}

config::Config load(const DispatchOptions& options) {
  config::Config config =
      options.config_path ? config::load_config(*options.config_path) : config::default_config();
  util::set_log_level(config.log_level,
                      options.config_path ? config.source + ": log_level" : "log_level");
  config::register_secrets(config);
  return config;
}

const actions::Action* find_action(const Request& request, const DispatchOptions& options) {
  for (const auto* table : options.tables) {
    if (const auto row = table->find(request.method); row != table->end()) return &row->second;
  }
  return nullptr;
}

nlohmann::json run(const Request& request, const actions::Action& action,
                   const DispatchOptions& options) {
  if (request.arguments.size() < action.arguments.size()) {
    std::string names;
    for (const char* name : action.arguments) {
      names += (names.empty() ? "" : ", ") + std::string{name};
    }
    throw CloudError(request.method + ": expected " + std::to_string(action.arguments.size()) +
                     " arguments (" + names + "), got " +
                     std::to_string(request.arguments.size()));
  }
  const actions::CallInput input{request.method, request.api_version, request.arguments,
                                request.context, request.out_of_range_arguments};
  actions::Call call{input, load(options), options.cloud_factory};
  return action.handler(call);
}

}  // namespace

std::string dispatch(std::string_view input, const DispatchOptions& options) noexcept {
  const auto started = std::chrono::steady_clock::now();
  std::string method = "?";
  try {
    try {
      const Request request = parse_request(input);
      method = request.method;
      util::set_log_context(request.request_id, request.method);
      register_request_secrets(request.context, false);
      register_request_secrets(request.arguments, false);
      const actions::Action* action = find_action(request, options);
      if (action == nullptr) {
        if (options.forward) return options.forward(input);  // its own start and done lines
        throw NotImplemented("method '" + request.method + "' is not implemented by this CPI");
      }
      spdlog::info("start (api_version {})", request.api_version);
      auto result = run(request, *action, options);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
      spdlog::info("done in {} ms", ms);
      return success_response(result);
    } catch (const Error& e) {
      spdlog::error("{} failed: {}: {}", method, e.type(), e.what());
      return error_response(e);
    } catch (const std::exception& e) {
      const CloudError wrapped{method + ": unexpected failure: " + e.what()};
      spdlog::error("{}", wrapped.what());
      return error_response(wrapped);
    } catch (...) {
      const CloudError wrapped{method + ": unexpected failure of an unknown kind"};
      spdlog::error("{}", wrapped.what());
      return error_response(wrapped);
    }
  } catch (...) {
    // Logging itself failed (e.g. stderr closed): still answer.
    return R"({"result":null,"error":{"type":"Bosh::Clouds::CloudError","message":"internal error while reporting a failure","ok_to_retry":false},"log":""})";
  }
}

}  // namespace cpi::rpc
