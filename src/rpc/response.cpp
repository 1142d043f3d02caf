#include "cpi/rpc/response.hpp"

#include "cpi/errors.hpp"
#include "cpi/util/redact.hpp"

namespace cpi::rpc {
namespace {

std::string dump(const nlohmann::json& document) {
  return document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string success_response(const nlohmann::json& result) {
  return dump({{"result", result}, {"error", nullptr}, {"log", ""}});
}

std::string error_response(const Error& error) {
  return dump({{"result", nullptr},
               {"error",
                {{"type", error.type()},
                 {"message", util::redact(error.what())},
                 {"ok_to_retry", error.ok_to_retry()}}},
               {"log", ""}});
}

}  // namespace cpi::rpc
