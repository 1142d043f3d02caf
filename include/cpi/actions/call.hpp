#pragma once
// One CPI call as a handler sees it: typed access to the arguments, the negotiated API
// version, the config (with the request context's overrides) and, on first use, the cloud.
// The handlers that use the cloud run in the driver module (src/driver/actions/), which defines
// LibvirtCloud; the executable's own handlers (info.cpp) never open it.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpi/config/config.hpp"
#include "cpi/config/json_parse.hpp"

namespace cpi::cloud {
class LibvirtCloud;  // cloud/libvirt_cloud.hpp, in the driver module
}  // namespace cpi::cloud

namespace cpi::actions {

// Opens the cloud for a call (in the module: open_libvirt_cloud; in tests: one on a test
// hypervisor); may throw cpi::Error (connection failures).
using CloudFactory =
    std::function<std::shared_ptr<cloud::LibvirtCloud>(const config::Config& effective_config)>;

// What the decoded request (rpc::Request) hands a call; it must outlive the Call.
struct CallInput {
  const std::string& method;
  int api_version;
  const nlohmann::json& arguments;  // an array
  const nlohmann::json& context;    // an object
  // Numbers inside `arguments` that do not fit a double: null there; the accessors refuse them.
  const std::vector<config::OutOfRangeNumber>& out_of_range_arguments;
};

class Call {
 public:
  Call(const CallInput& input, config::Config config, CloudFactory factory);

  const std::string& method() const { return m_input.method; }
  int api_version() const { return m_input.api_version; }
  const nlohmann::json& context() const { return m_input.context; }
  // The config with the context's libvirt overrides applied.
  const config::Config& config() const { return m_config; }
  // Opens the libvirt connection on first use; CpiError when the call has no factory.
  cloud::LibvirtCloud& cloud();

  // Argument accessors. Each throws CloudError "<method>: argument <i> (<name>): expected ..."
  // for a missing argument or a wrong type (docs/architecture.md, "Protocol"), and CpiError
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
  std::size_t arg_count() const { return m_input.arguments.size(); }

  [[noreturn]] void bad_arg(std::size_t index, const char* name, const std::string& problem) const;

 private:
  const nlohmann::json* arg(std::size_t index, const char* name, bool required) const;

  CallInput m_input;
  config::Config m_config;
  CloudFactory m_factory;
  std::shared_ptr<cloud::LibvirtCloud> m_cloud;
};

}  // namespace cpi::actions
