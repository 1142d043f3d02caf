// The handlers of the disk and snapshot methods. Each reads every argument before it opens the
// cloud (Call::cloud()), so a request with a bad argument is refused without a connection.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "cpi/actions/call.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/virt/hypervisor.hpp"
#include "cpi/xml/volume_xml.hpp"

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

// update_disk(disk_cid, new_size, cloud_properties) -> null: the disk now has `new_size` MiB,
// grown in place, and keeps its CID. What the disk type's cloud_properties name (storage_pool,
// format) must be what the disk already is: moving or converting it is NotSupported, as is
// shrinking it, and BOSH then copies the data to a new disk itself. The director calls it for a
// detached disk (director.enable_cpi_update_disk); an attached one is grown online as
// resize_disk grows it.
nlohmann::json update_disk(Call& call) {
  const cloud::DiskCid cid{call.cid_arg(0, "disk_cid")};
  const auto new_size = call.int_arg(1, "new_size", 1);
  const auto wanted = cloud::mib_to_bytes(new_size, "update_disk: new_size");
  const auto props = cloud::parse_disk_props(call.object_arg(2, "cloud_properties"));
  auto& host = call.cloud();  // the cloud on this call's libvirt host
  if (!host.check_cid("update_disk", cloud::NameKind::disk, cid.value)) {
    throw DiskNotFound("update_disk: " + cloud::quote_text(cid.value) +
                       " is no disk CID of this CPI");
  }
  // Where the disk is and what it is; neither ever changes (resize_disk re-reads the size under
  // the disk's lock).
  const auto located = host.storage().locate(host.object_name(cid.value));
  if (!located) {
    throw DiskNotFound(host.storage().not_on_this_host("disk '" + cid.value + "'"));
  }
  const auto volume = xml::read_volume_xml(host.hypervisor().volume_xml(*located->volume));
  const std::string what = "update_disk: disk '" + cid.value + "'";
  if (props.storage_pool && *props.storage_pool != located->pool_name) {
    throw NotSupported(what + " is in storage pool '" + located->pool_name +
                       "'; cloud_properties name '" + *props.storage_pool +
                       "' (BOSH copies the data to a new disk there)");
  }
  const std::string format = volume.format.empty() ? "raw" : volume.format;
  if (props.format_set && props.format != format) {
    throw NotSupported(what + " is " + format + "; cloud_properties ask for " + props.format +
                       " (BOSH copies the data to a new disk)");
  }
  if (wanted < volume.capacity_bytes) {
    throw NotSupported(what + " has " + std::to_string(volume.capacity_bytes >> 20U) +
                       " MiB; shrinking it to " + std::to_string(new_size) +
                       " MiB is not supported (BOSH copies the data to a new disk)");
  }
  host.resize_disk(cid, new_size);  // the lock, the room check, online when attached
  return nullptr;
}

}  // namespace cpi::actions
