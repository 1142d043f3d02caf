#pragma once
// The config drive: an ISO9660 image with Rock Ridge and Joliet, volume id `config-2` (the
// Joliet volume id keeps the lowercase label blkid reports), written by libarchive in memory.

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>

namespace cpi::agent {

// The four files (ec2/latest/meta-data.json, ec2/latest/user-data,
// openstack/latest/meta_data.json, openstack/latest/user_data) as an ISO image.
// Throws CloudError when libarchive fails.
std::string config_drive_iso(const nlohmann::json& meta_data, const nlohmann::json& user_data);

// The regular files of an ISO image, path -> content (paths relative, no leading "./").
// Throws CloudError for something that is not a readable ISO image.
std::map<std::string, std::string> read_iso_files(std::string_view iso);

// The settings (user-data JSON) of a config drive image, from ec2/latest/user-data.
nlohmann::json read_user_data(std::string_view iso);

}  // namespace cpi::agent
