#pragma once
// The CPI's storage, for LibvirtCloud and its VmKind (one per cloud). What it owns:
//
//   the configured pool   libvirt.storage_pool: its handle (looked up once, or created as a dir
//                         pool at libvirt.store_dir when absent) and whether it was checked
//                         active (once; lookups alone go through in_pool instead).
//   volume lookup         locate(): a disk or snapshot volume is looked for in the configured
//                         pool, else only in the pool its pool record names, never in any other
//                         pool (a pool that is named there but gone is a CloudError).
//   `.meta` records       read_meta / write_meta: the record of a stemcell, disk, snapshot or
//                         settings volume in `<name>.meta`, written crash-safe into one of two
//                         slots (meta_record.hpp). A read-modify-write needs the object's lock,
//                         which the caller holds: Storage takes no locks.
//   pool records          `<name>.pool` in the configured pool (names.hpp pool_record_json): the
//                         pool a disk or snapshot outside the configured pool lives in, written
//                         before that volume is made, removed after it is deleted.
//   the pool-room rule    require_room (README "Disk sizes"): raw volumes need all of their
//                         growth free now; a thin volume may be at most the pool's capacity.
//
// It makes no names (names.hpp does) and decides nothing about attachment (libvirt's domain
// definitions do; attachment.cpp). Errors: libvirt's pass through as virt::LibvirtError, except
// that an operation an inactive pool refuses becomes require_active's CloudError (in_pool).

#include <libvirt/virterror.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpi/cloud/names.hpp"
#include "cpi/config/config.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/hypervisor.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {

// A disk or snapshot volume as locate() found it, with the pool it is in.
struct Located {
  std::string pool_name;
  virt::Pool pool;
  virt::Volume volume;
};

class Storage {
 public:
  // `hypervisor`, `config` and `names` must outlive this object (LibvirtCloud holds them and it).
  Storage(virt::Hypervisor& hypervisor, const config::LibvirtConfig& config, const Names& names)
      : m_hv(hypervisor), m_config(config), m_names(names) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // The configured pool, created as a dir pool when absent, and checked to be active (once).
  virStoragePool& pool();
  // Its handle alone (one lookup, or the creation): for calls that only look volumes up in it,
  // through in_pool(), so that an inactive pool still gets require_active's error.
  virStoragePool& pool_handle();
  // Throws CloudError (how to start it) when pool `name` is inactive.
  void require_active(virStoragePool& target, const std::string& name);
  // The pool `name`, which must exist and be active (CloudError).
  virt::Pool require_active_pool(const std::string& name);
  // Runs `action`, an operation on pool `name` whose state was not read; a libvirt refusal
  // (VIR_ERR_OPERATION_INVALID) because the pool is inactive becomes require_active's error.
  template <typename F>
  auto in_pool(virStoragePool& target, const std::string& name, F&& action) -> decltype(action());
  xml::PoolFacts pool_facts(virStoragePool& target);  // its XML: type, capacity, available
  // Whether volumes in a pool of this type (pool XML <pool type>) can have a qcow2 backing store:
  // dir, fs and netfs; logical, disk, iscsi, rbd ... get full copies instead.
  static bool supports_backing_store(const std::string& pool_type);
  bool pool_has_overlays(virStoragePool& pool);  // supports_backing_store of its type

  // The disk or snapshot volume `volume_name` (a name of kind disk or snapshot): in the
  // configured pool, else in the pool its pool record names; never in any other pool.
  std::optional<Located> locate(const std::string& volume_name);
  // "<what> is not on <uri> (...): it may live on another libvirt host ...": for a disk or
  // snapshot that locate() did not find, so the message names the host that was asked.
  std::string not_on_this_host(const std::string& what);
  void delete_if_exists(virStoragePool& pool, const std::string& volume_name);

  // A volume a call is about to create or grow, for require_room.
  struct RoomNeed {
    std::string what;            // "disk 'disk-...'", "the root disk of vm 'vm-...'"
    std::string format;          // raw: allocated whole; any other format is thin
    std::uint64_t capacity = 0;  // its size once made
    std::uint64_t growth = 0;    // what it adds now (a new volume: its capacity)
  };
  // The pool-room rule (README "Disk sizes"): the raw volumes' growth together must be free in
  // the pool now; each thin volume may be at most the pool's whole capacity. Throws NoDiskSpace.
  // This one reads the pool's room (pool_info); the other takes it as read already (create_disk:
  // from the pool's XML).
  void require_room(virStoragePool& pool, const std::string& pool_name,
                    const std::vector<RoomNeed>& needs);
  void require_room(const virt::PoolInfo& info, const std::string& pool_name,
                    const std::vector<RoomNeed>& needs);

  // The record of `name` ({} when it has none, or no valid slot) and its crash-safe rewrite;
  // both in `pool`, where the volume `name` is. Callers hold the object's lock.
  nlohmann::json read_meta(virStoragePool& pool, const std::string& name);
  void write_meta(virStoragePool& pool, const std::string& name, const nlohmann::json& meta);

  // The pool the pool record of `volume_name` names (nullopt: no record, or a malformed one).
  std::optional<std::string> recorded_pool(const std::string& volume_name);
  // Records that `volume_name` lives in `pool_name` (not the configured pool), before creating it.
  void write_pool_record(const std::string& volume_name, const std::string& pool_name);
  void remove_pool_record(const std::string& volume_name);

  // A new raw volume `name` holding `bytes`, with file mode `mode`.
  virt::Volume upload_bytes(virStoragePool& pool, const std::string& name, const std::string& bytes,
                            const std::string& mode);
  // A new volume (`volume_xml`) filled from `source`; deleted again when the upload fails.
  virt::Volume upload_new_volume(virStoragePool& pool, const std::string& volume_xml,
                                 const std::string& name, virt::ByteSource& source,
                                 std::uint64_t length, bool sparse);

 private:
  virt::Hypervisor& m_hv;
  const config::LibvirtConfig& m_config;
  const Names& m_names;
  std::optional<virt::Pool> m_pool;
  bool m_pool_active = false;  // pool() read its state
};

template <typename F>
auto Storage::in_pool(virStoragePool& target, const std::string& name, F&& action)
    -> decltype(action()) {
  try {
    return action();
  } catch (const virt::LibvirtError& e) {
    if (e.code() == VIR_ERR_OPERATION_INVALID) require_active(target, name);
    throw;
  }
}

}  // namespace cpi::cloud
