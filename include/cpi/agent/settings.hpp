#pragma once
// The BOSH agent's settings as the config drive carries them (docs/architecture.md, "Protocol"):
// user-data = the full settings JSON, meta-data = instance id and the public key.

#include <nlohmann/json.hpp>

#include <string>

#include "cpi/config/config.hpp"

namespace cpi::agent {

struct SettingsInput {
  std::string agent_id;
  std::string vm_name;             // the VM CID
  const config::AgentConfig* agent = nullptr;  // mbus, ntp, blobstore (required, not owned)
  nlohmann::json networks = nlohmann::json::object();  // BOSH networks, each with its "mac"
  nlohmann::json ephemeral = nullptr;  // disk hint object ({"path": ...}) or null
  nlohmann::json persistent = nlohmann::json::object();  // disk cid -> hint (API v1 only)
  nlohmann::json env = nlohmann::json::object();         // create_vm env, verbatim
  std::string system_disk = "/dev/vda";
};

// The user-data document (§3.4): agent_id, vm.name, server.name, mbus, ntp, blobstore (only
// when configured), networks (each with lowercase "mac"; "prefix" kept a string; null
// cloud_properties dropped), disks {system, ephemeral, persistent}, env.
// Throws CpiError when agent->mbus is missing.
nlohmann::json user_data(const SettingsInput& input);

// {"instance-id": vm_name, "hostname": agent_id?, "public-keys": {"0": {"openssh-key": key}}};
// the key is the first of env.bosh.authorized_keys, or "" (the agent requires the key to exist).
nlohmann::json meta_data(const SettingsInput& input);

}  // namespace cpi::agent
