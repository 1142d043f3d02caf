#pragma once
// Where things are inside a container (the lxc flavour), as the agent of a warden stemcell
// expects them: its agent.json reads the settings from k_agent_settings_path (a File settings
// source), and a persistent disk <cid> is mounted at k_disks_dir/<cid>, which stands in for the
// serial a VM's disk carries.

namespace cpi::agent {

inline constexpr const char* k_config_dir = "/var/vcap/bosh/libvirt-config";
inline constexpr const char* k_settings_file = "settings.json";
inline constexpr const char* k_agent_settings_path = "/var/vcap/bosh/warden-cpi-agent-env.json";
inline constexpr const char* k_ephemeral_dir = "/var/vcap/data";
inline constexpr const char* k_disks_dir = "/warden-cpi-dev";
inline constexpr const char* k_config_label = "config-2";

}  // namespace cpi::agent
