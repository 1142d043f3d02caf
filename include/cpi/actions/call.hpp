#pragma once
// One CPI call as a handler sees it: typed access to the arguments, the negotiated API
// version, the config (with the request context's overrides) and, on first use, the cloud.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpi/cloud/cloud.hpp"
#include "cpi/config/config.hpp"
#include "cpi/rpc/request.hpp"

namespace cpi::actions {

// Opens the cloud for a call; may throw (connection failures).
using CloudFactory =
    std::function<std::unique_ptr<cloud::Cloud>(const config::Config& effective_config)>;

class Call {
 public:
  Call(const rpc::Request& request, config::Config config, CloudFactory factory);

  const std::string& method() const { return m_request.method; }
  int api_version() const { return m_request.api_version; }
  const nlohmann::json& context() const { return m_request.context; }
  // The config with the context's libvirt overrides applied.
  const config::Config& config() const { return m_config; }
  // Opens the libvirt connection on first use.
  cloud::Cloud& cloud();

  // Argument accessors. Each throws CloudError "<method>: argument <i> (<name>): expected ..."
  // for a missing argument or a wrong type (cpi-protocol.md §5), and CpiError
  // "<method>: argument <i> (<name>): number ... is out of range" when the argument is or holds
  // a number that does not fit a double (1e400), or int_arg's number does not fit an int64.
  std::string string_arg(std::size_t index, const char* name) const;
  std::string cid_arg(std::size_t index, const char* name) const;  // non-empty string
  std::optional<std::string> optional_cid_arg(std::size_t index, const char* name) const;
  std::int64_t int_arg(std::size_t index, const char* name, std::int64_t min) const;
  // null or absent -> {}
  nlohmann::json object_arg(std::size_t index, const char* name) const;
  // null or absent -> []
  std::vector<std::string> string_list_arg(std::size_t index, const char* name) const;
  std::size_t arg_count() const { return m_request.arguments.size(); }

  [[noreturn]] void bad_arg(std::size_t index, const char* name, const std::string& problem) const;

 private:
  const nlohmann::json* arg(std::size_t index, const char* name, bool required) const;

  const rpc::Request& m_request;
  config::Config m_config;
  CloudFactory m_factory;
  std::unique_ptr<cloud::Cloud> m_cloud;
};

}  // namespace cpi::actions
