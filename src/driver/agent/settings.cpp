#include "cpi/agent/settings.hpp"

#include <cmath>
#include <cstdint>
#include <string>

#include "cpi/errors.hpp"

namespace cpi::agent {
namespace {

using nlohmann::json;

std::string lowercase(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return text;
}

// The agent's Network.Prefix is a string; a JSON number there fails the whole settings source.
json prefix_string(const json& prefix, const std::string& network) {
  if (prefix.is_string() || prefix.is_null()) {
    return prefix;
  }
  if (prefix.is_number_unsigned()) {
    return std::to_string(prefix.get<std::uint64_t>());
  }
  if (prefix.is_number_integer()) {
    return std::to_string(prefix.get<std::int64_t>());
  }
  if (prefix.is_number_float()) {
    const double value = prefix.get<double>();
    if (std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < 1e15) {
      return std::to_string(static_cast<std::int64_t>(value));
    }
  }
  throw CpiError("network '" + network + "': prefix must be a string or an integer, got " +
                 prefix.dump(-1, ' ', false, json::error_handler_t::replace));
}

// One BOSH network as the agent reads it: lowercase mac, string prefix, no null
// cloud_properties; every other key as BOSH sent it.
json agent_network(const std::string& name, const json& network) {
  if (!network.is_object()) {
    throw CpiError("network '" + name + "': must be an object");
  }
  json result = network;
  if (const auto mac = result.find("mac"); mac != result.end()) {
    if (mac->is_string()) {
      *mac = lowercase(mac->get<std::string>());
    } else if (!mac->is_null()) {
      throw CpiError("network '" + name + "': mac must be a string");
    }
  }
  if (const auto prefix = result.find("prefix"); prefix != result.end()) {
    *prefix = prefix_string(*prefix, name);
  }
  if (const auto cloud = result.find("cloud_properties");
      cloud != result.end() && cloud->is_null()) {
    result.erase(cloud);
  }
  return result;
}

json agent_networks(const json& networks) {
  if (networks.is_null()) {
    return json::object();
  }
  if (!networks.is_object()) {
    throw CpiError("networks: must be an object of network name => network");
  }
  json result = json::object();
  for (const auto& [name, network] : networks.items()) {
    result[name] = agent_network(name, network);
  }
  return result;
}

// A disk hint the agent accepts (docs/architecture.md, "Protocol"): a string, or an object whose values are
// all strings (other values panic the agent), or null where `nullable`.
void check_hint(const json& hint, const std::string& what, bool nullable) {
  if (hint.is_string() || (nullable && hint.is_null())) {
    return;
  }
  if (hint.is_object()) {
    for (const auto& [key, value] : hint.items()) {
      if (key == "iscsi_settings" && value.is_object()) {
        check_hint(value, what + ".iscsi_settings", false);
      } else if (!value.is_string()) {
        throw CpiError("disk hint " + what + ": '" + key + "' must be a string");
      }
    }
    return;
  }
  throw CpiError("disk hint " + what + ": must be a string or an object");
}

json agent_disks(const SettingsInput& input) {
  check_hint(input.ephemeral, "ephemeral", true);
  json persistent = input.persistent.is_null() ? json::object() : input.persistent;
  if (!persistent.is_object()) {
    throw CpiError("disk hints: persistent must be an object of disk cid => hint");
  }
  for (const auto& [cid, hint] : persistent.items()) {
    check_hint(hint, "'" + cid + "'", false);
  }
  return json{{"system", input.system_disk},
              {"ephemeral", input.ephemeral},
              {"persistent", std::move(persistent)}};
}

// The first of env.bosh.authorized_keys when that is a non-empty array of strings, else "".
std::string first_authorized_key(const json& env) {
  if (!env.is_object()) {
    return "";
  }
  const auto bosh = env.find("bosh");
  if (bosh == env.end() || !bosh->is_object()) {
    return "";
  }
  const auto keys = bosh->find("authorized_keys");
  if (keys == bosh->end() || !keys->is_array() || keys->empty()) {
    return "";
  }
  for (const json& key : *keys) {
    if (!key.is_string()) {
      return "";
    }
  }
  return keys->front().get<std::string>();
}

}  // namespace

json user_data(const SettingsInput& input) {
  if (input.agent == nullptr) {
    throw CpiError("agent settings: no agent configuration given");
  }
  const config::AgentConfig& agent = *input.agent;
  json settings = {
      {"agent_id", input.agent_id},
      {"vm", {{"name", input.vm_name}}},
      {"server", {{"name", input.vm_name}}},
      {"mbus", agent.require_mbus("the agent settings of vm '" + input.vm_name + "'")},
      {"ntp", agent.ntp},
  };
  if (!agent.blobstore.is_null()) {
    settings["blobstore"] = agent.blobstore;
  }
  settings["networks"] = agent_networks(input.networks);
  settings["disks"] = agent_disks(input);
  settings["env"] = input.env.is_null() ? json::object() : input.env;
  return settings;
}

json meta_data(const SettingsInput& input) {
  json meta = {
      {"instance-id", input.vm_name},
      {"public-keys", {{"0", {{"openssh-key", first_authorized_key(input.env)}}}}},
  };
  if (!input.agent_id.empty()) {
    meta["hostname"] = input.agent_id;
  }
  return meta;
}

}  // namespace cpi::agent
