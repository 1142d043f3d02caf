// The handlers of the disk and snapshot methods. Each reads every argument before it opens the
// cloud (Call::cloud()), so a request with a bad argument is refused without a connection.

#include <spdlog/spdlog.h>

#include "cpi/actions/call.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"

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

// delete_disk(disk_cid) -> null; succeeds when it is already gone; refuses an attached disk.
nlohmann::json delete_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  call.cloud().delete_disk(cid);
  return nullptr;
}

nlohmann::json has_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  return call.cloud().has_disk(cid);
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
  const cloud::DiskCid disk{call.cid_arg(1, "disk_cid")};
  call.cloud().detach_disk(vm, disk, call.api_version());
  return nullptr;
}

// get_disks(vm_cid) -> the persistent disks attached, [] when none.
nlohmann::json get_disks(Call& call) {
  const cloud::VmCid vm{call.cid_arg(0, "vm_cid")};
  nlohmann::json out = nlohmann::json::array();
  for (const auto& cid : call.cloud().get_disks(vm)) {
    out.push_back(cid.value);
  }
  return out;
}

nlohmann::json resize_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  const auto new_size = call.int_arg(1, "new_size", 1);
  call.cloud().resize_disk(cid, new_size);
  return nullptr;
}

nlohmann::json set_disk_metadata(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  const auto metadata = call.object_arg(1, "metadata");
  call.cloud().set_disk_metadata(cid, metadata);
  return nullptr;
}

nlohmann::json snapshot_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  const auto metadata = call.object_arg(1, "metadata");
  return call.cloud().snapshot_disk(cid, metadata).value;
}

// delete_snapshot(snapshot_cid) -> null; succeeds when it is already gone.
nlohmann::json delete_snapshot(Call& call) {
  const cloud::SnapshotCid cid{call.cid_arg(0, "snapshot_cid")};
  call.cloud().delete_snapshot(cid);
  return nullptr;
}

}  // namespace cpi::actions
