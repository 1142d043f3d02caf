#pragma once
// Strong CID types. A CID is what BOSH stores; the libvirt object name is the configured
// name_prefix followed by the CID (cloud::Names).
//   stemcell  sc-<uuid>
//   vm        vm-<uuid>
//   disk      disk-<15 hex>      exactly 20 characters: it is also the virtio <serial>
//   snapshot  snap-<uuid>

#include <string>

namespace cpi::cloud {

template <typename Tag>
struct Cid {
  std::string value;
  bool operator==(const Cid& other) const { return value == other.value; }
  bool operator<(const Cid& other) const { return value < other.value; }
};

struct StemcellTag {};
struct VmTag {};
struct DiskTag {};
struct SnapshotTag {};
using StemcellCid = Cid<StemcellTag>;
using VmCid = Cid<VmTag>;
using DiskCid = Cid<DiskTag>;
using SnapshotCid = Cid<SnapshotTag>;

constexpr std::size_t k_disk_cid_length = 20;

StemcellCid new_stemcell_cid();
VmCid new_vm_cid();
DiskCid new_disk_cid();
SnapshotCid new_snapshot_cid();
// A 20-character serial for a VM's ephemeral disk ("eph-" + 16 hex).
std::string new_ephemeral_serial();

// Whether a string has the shape of one of our CIDs (anything else cannot name our objects).
bool is_stemcell_cid(const std::string& text);
bool is_vm_cid(const std::string& text);
bool is_disk_cid(const std::string& text);
bool is_snapshot_cid(const std::string& text);

}  // namespace cpi::cloud
