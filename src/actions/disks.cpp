#include <spdlog/spdlog.h>

#include "cpi/actions/call.hpp"

namespace cpi::actions {

// create_disk(size_mib, cloud_properties, vm_locality) -> disk CID
nlohmann::json create_disk(Call& call) {
  const auto size = call.int_arg(0, "size", 1);
  const auto props = call.object_arg(1, "cloud_properties");
  std::optional<cloud::VmCid> locality;
  if (auto vm = call.optional_cid_arg(2, "vm_locality")) {
    locality = cloud::VmCid{*vm};
  }
  const auto cid = call.cloud().create_disk(size, props, locality);
  spdlog::info("created disk {} ({} MiB)", cid.value, size);
  return cid.value;
}

nlohmann::json delete_disk(Call& call) {
  call.cloud().delete_disk({call.cid_arg(0, "disk_cid")});
  return nullptr;
}

nlohmann::json has_disk(Call& call) {
  return call.cloud().has_disk({call.cid_arg(0, "disk_cid")});
}

// attach_disk(vm_cid, disk_cid): api_version 1 -> null; 2 -> the disk hint.
nlohmann::json attach_disk(Call& call) {
  const cloud::VmCid vm{call.cid_arg(0, "vm_cid")};
  const cloud::DiskCid disk{call.cid_arg(1, "disk_cid")};
  auto hint = call.cloud().attach_disk(vm, disk, call.api_version());
  if (call.api_version() < 2) {
    return nullptr;
  }
  return hint;
}

nlohmann::json detach_disk(Call& call) {
  const cloud::VmCid vm{call.cid_arg(0, "vm_cid")};
  call.cloud().detach_disk(vm, {call.cid_arg(1, "disk_cid")}, call.api_version());
  return nullptr;
}

nlohmann::json get_disks(Call& call) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& cid : call.cloud().get_disks({call.cid_arg(0, "vm_cid")})) {
    out.push_back(cid.value);
  }
  return out;
}

nlohmann::json resize_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  const auto new_size = call.int_arg(1, "new_size", 1);  // decoded before the cloud opens
  call.cloud().resize_disk(cid, new_size);
  return nullptr;
}

nlohmann::json set_disk_metadata(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  call.cloud().set_disk_metadata(cid, call.object_arg(1, "metadata"));
  return nullptr;
}

nlohmann::json snapshot_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  return call.cloud().snapshot_disk(cid, call.object_arg(1, "metadata")).value;
}

nlohmann::json delete_snapshot(Call& call) {
  call.cloud().delete_snapshot({call.cid_arg(0, "snapshot_cid")});
  return nullptr;
}

}  // namespace cpi::actions
