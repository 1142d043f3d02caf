#pragma once
// The CPI operations in cloud terms: what the action handlers call. LibvirtCloud implements it
// on a Hypervisor; unit tests use a fake. Every method throws cpi::Error subclasses only.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/config/config.hpp"

namespace cpi::cloud {

struct VmRequest {
  std::string agent_id;
  StemcellCid stemcell;
  nlohmann::json cloud_properties = nlohmann::json::object();
  nlohmann::json networks = nlohmann::json::object();
  std::vector<DiskCid> disk_cids;  // must be on the host of the call (locality); never attached
  nlohmann::json env = nlohmann::json::object();
  int api_version = 2;
};

struct CreatedVm {
  VmCid cid;
  nlohmann::json networks;  // the networks as configured (each with its "mac")
};

class Cloud {
 public:
  virtual ~Cloud() = default;

  virtual StemcellCid create_stemcell(const std::string& image_path,
                                      const nlohmann::json& cloud_properties) = 0;
  // Succeeds when the stemcell is already gone.
  virtual void delete_stemcell(const StemcellCid& cid) = 0;

  // Throws VmCreationFailed (after removing all it created) on failure.
  virtual CreatedVm create_vm(const VmRequest& request) = 0;
  // Succeeds when the VM is already gone; never deletes a persistent disk.
  virtual void delete_vm(const VmCid& cid) = 0;
  virtual bool has_vm(const VmCid& cid) = 0;
  virtual void reboot_vm(const VmCid& cid) = 0;
  virtual void set_vm_metadata(const VmCid& cid, const nlohmann::json& metadata) = 0;

  virtual DiskCid create_disk(std::int64_t size_mib, const nlohmann::json& cloud_properties,
                              const std::optional<VmCid>& vm_locality) = 0;
  virtual void delete_disk(const DiskCid& cid) = 0;
  virtual bool has_disk(const DiskCid& cid) = 0;
  // Returns the agent's disk hint ({"path": "/dev/disk/by-id/virtio-<cid>"}).
  virtual nlohmann::json attach_disk(const VmCid& vm, const DiskCid& disk, int api_version) = 0;
  virtual void detach_disk(const VmCid& vm, const DiskCid& disk, int api_version) = 0;
  virtual std::vector<DiskCid> get_disks(const VmCid& vm) = 0;
  virtual void resize_disk(const DiskCid& cid, std::int64_t new_size_mib) = 0;
  virtual void set_disk_metadata(const DiskCid& cid, const nlohmann::json& metadata) = 0;
  virtual SnapshotCid snapshot_disk(const DiskCid& cid, const nlohmann::json& metadata) = 0;
  // Succeeds when the snapshot is already gone.
  virtual void delete_snapshot(const SnapshotCid& cid) = 0;
};

// Opens the cloud for a call (the executable: the driver module's, see driver_loader.hpp); may
// throw cpi::Error (connection failures).
using CloudFactory =
    std::function<std::unique_ptr<Cloud>(const config::Config& effective_config)>;

}  // namespace cpi::cloud
