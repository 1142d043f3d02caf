// The handlers of the VM methods. Each reads every argument before it opens the cloud
// (Call::cloud()), so a request with a bad argument is refused without a connection.

#include <spdlog/spdlog.h>

#include "cpi/actions/call.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"

namespace cpi::actions {

// create_vm(agent_id, stemcell_cid, cloud_properties, networks, disk_cids, env)
//   api_version 1 -> vm_cid; api_version >= 2 -> [vm_cid, networks]
nlohmann::json create_vm(Call& call) {
  cloud::VmRequest request;
  request.agent_id = call.cid_arg(0, "agent_id");
  request.stemcell = {call.cid_arg(1, "stemcell_cid")};
  request.cloud_properties = call.object_arg(2, "cloud_properties");
  request.networks = call.object_arg(3, "networks");
  for (auto& cid : call.string_list_arg(4, "disk_cids")) {
    request.disk_cids.push_back({std::move(cid)});
  }
  request.env = call.object_arg(5, "env");
  request.api_version = call.api_version();

  const auto created = call.cloud().create_vm(request);
  spdlog::info("created vm {}", created.cid.value);
  if (call.api_version() < 2) {
    return created.cid.value;
  }
  return nlohmann::json::array({created.cid.value, created.networks});
}

// delete_vm(vm_cid) -> null; succeeds when the VM is already gone; keeps persistent disks.
nlohmann::json delete_vm(Call& call) {
  const cloud::VmCid cid{call.cid_arg(0, "vm_cid")};
  call.cloud().delete_vm(cid);
  return nullptr;
}

nlohmann::json has_vm(Call& call) {
  const cloud::VmCid cid{call.cid_arg(0, "vm_cid")};
  return call.cloud().has_vm(cid);
}

nlohmann::json reboot_vm(Call& call) {
  const cloud::VmCid cid{call.cid_arg(0, "vm_cid")};
  call.cloud().reboot_vm(cid);
  return nullptr;
}

nlohmann::json set_vm_metadata(Call& call) {
  const cloud::VmCid cid{call.cid_arg(0, "vm_cid")};
  const auto metadata = call.object_arg(1, "metadata");
  call.cloud().set_vm_metadata(cid, metadata);
  return nullptr;
}

}  // namespace cpi::actions
