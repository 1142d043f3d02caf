// Persistent disks and snapshots as volumes.

#include <spdlog/spdlog.h>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/util/file_lock.hpp"
#include "cpi/util/test_hook.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {
namespace {

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;

}  // namespace

DiskCid LibvirtCloud::create_disk(std::int64_t size_mib, const nlohmann::json& cloud_properties,
                                  const std::optional<VmCid>& vm_locality) {
  const auto props = parse_disk_props(cloud_properties);
  std::string pool_name = props.storage_pool.value_or(m_config.libvirt.storage_pool);
  if (!props.storage_pool && vm_locality &&
      !check_cid("create_disk", NameKind::vm, vm_locality->value)) {
    spdlog::warn("create_disk: vm_locality {} is no vm CID of this CPI; ignored",
                 quote_text(vm_locality->value));
  } else if (!props.storage_pool && vm_locality) {
    // Next to the VM: the pool its root disk lives in.
    translate("reading the pool of vm '" + vm_locality->value + "'", [&] {
      if (auto domain = find_our_domain(*vm_locality)) {
        const auto facts = xml::read_domain_xml(m_hv.domain_xml(**domain, true));
        if (!facts.disks.empty() && !facts.disks.front().pool.empty()) {
          pool_name = facts.disks.front().pool;
        }
      }
    });
  }
  std::optional<virt::Pool> other;
  virStoragePool* target = nullptr;
  if (pool_name == m_config.libvirt.storage_pool) {
    target = &pool();
  } else {
    other = require_active_pool(pool_name);
    target = other->get();
  }
  // Pools of block volumes (logical LVs, iSCSI LUNs ...) hold raw disks: a qcow2 there would
  // be an unformatted block device.
  std::string format = props.format;
  if (!container() && !pool_has_overlays(*target)) {
    if (props.format_set && props.format == "qcow2") {
      throw CloudError("create_disk: cloud_properties.format qcow2 needs a pool of files (dir, fs, "
                       "netfs); storage pool '" + pool_name + "' holds block volumes: use raw");
    }
    format = "raw";
  }
  const DiskCid cid = new_disk_cid();
  const std::string name = object_name(cid.value);
  const auto capacity = mib_to_bytes(size_mib, "create_disk: size");
  // Outside the configured pool the disk is found only through its pool record: written first,
  // so a disk never exists unrecorded (a record without its disk is harmless; cleanup removes it).
  util::Rollback rollback;
  if (pool_name != m_config.libvirt.storage_pool) {
    write_pool_record(name, pool_name);
    rollback.add("delete the pool record of '" + name + "'",
                 [this, name] { remove_pool_record(name); });
  }
  translate("creating disk '" + cid.value + "' (" + std::to_string(size_mib) + " MiB) in pool '" +
                pool_name + "'",
            [&] {
              require_room(*target, pool_name,
                           {{"disk '" + cid.value + "'", format, capacity, capacity}});
              if (container()) {  // an ext4 filesystem the container mounts
                upload_ext4(*target, name, capacity, "", "0600");
                return;
              }
              m_hv.create_volume(*target, xml::volume_xml({name, capacity, format, "0600"}));
            });
  if (container()) {
    try {
      write_meta(*target, name, {{"filesystem", "ext4"}});
    } catch (...) {
      delete_if_exists(*target, name);
      throw;
    }
  }
  rollback.commit();
  return cid;
}

// Refuses while any domain's definition holds the volume (a scan: domains_holding), whatever
// the record says; touches nothing then.
void LibvirtCloud::delete_disk(const DiskCid& cid) {
  if (!check_cid("delete_disk", NameKind::disk, cid.value)) {
    spdlog::info("delete_disk: {} is no disk CID of this CPI: nothing to delete",
                 quote_text(cid.value));
    return;
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{name};
  auto located = locate(name);
  if (!located) {
    spdlog::info("disk {} is already gone", cid.value);
    return;
  }
  const auto holders = domains_holding(disk_ref(cid, *located));
  if (!holders.empty()) {
    std::string names;
    for (const auto& h : holders) names += (names.empty() ? "'" : ", '") + h + "'";
    throw CloudError("disk '" + cid.value + "' is attached to domain " + names +
                     " (its live or persistent definition holds the volume): detach it before "
                     "deleting it");
  }
  auto meta = read_meta(*located->pool, name);
  remove_partial_snapshot(*located, name, meta);
  translate("deleting disk '" + cid.value + "'", [&] { m_hv.delete_volume(*located->volume); });
  delete_if_exists(*located->pool, meta_volume(name));
  if (located->pool_name != m_config.libvirt.storage_pool) remove_pool_record(name);
  spdlog::info("deleted disk {}", cid.value);
}

bool LibvirtCloud::has_disk(const DiskCid& cid) {
  const auto parsed = parse_unprefixed(cid.value);
  if (!parsed || parsed->kind != NameKind::disk) return false;  // not a disk CID: no such disk
  return locate(object_name(cid.value)).has_value();
}

void LibvirtCloud::resize_disk(const DiskCid& cid, std::int64_t new_size_mib) {
  if (!check_cid("resize_disk", NameKind::disk, cid.value)) {
    throw DiskNotFound("resize_disk: " + quote_text(cid.value) + " is no disk CID of this CPI");
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{name};
  auto located = locate(name);
  if (!located) throw DiskNotFound(not_on_this_host("disk '" + cid.value + "'"));
  const auto wanted = mib_to_bytes(new_size_mib, "resize_disk: new_size");
  const auto current = translate("reading disk '" + cid.value + "'",
                                 [&] { return m_hv.volume_info(*located->volume).capacity; });
  if (wanted == current) {
    spdlog::info("disk {} already has {} MiB", cid.value, new_size_mib);
    return;
  }
  if (read_meta(*located->pool, name).value("filesystem", "") == "ext4") {
    throw NotImplemented("resize_disk: disk '" + cid.value + "' holds a container's ext4 "
                         "filesystem, which the CPI cannot grow; BOSH copies the data to a new "
                         "disk instead");
  }
  if (wanted < current) {
    throw NotSupported("resize_disk: disk '" + cid.value + "' has " +
                       std::to_string(current / k_mib) + " MiB; shrinking to " +
                       std::to_string(new_size_mib) + " MiB is not supported");
  }
  translate("checking the room for disk '" + cid.value + "'", [&] {
    const auto format = xml::read_volume_xml(m_hv.volume_xml(*located->volume)).format;
    require_room(*located->pool, located->pool_name,
                 {{"growing disk '" + cid.value + "'", format.empty() ? "raw" : format, wanted,
                   wanted - current}});
  });
  // Attached to a running VM: grow it online so the guest sees the new size.
  auto meta = read_meta(*located->pool, name);
  for (const auto& owner : reconcile_record(*located, disk_ref(cid, *located), meta)) {
    if (auto domain = m_hv.find_domain(object_name(owner)); domain && m_hv.domain_active(**domain)) {
      const auto facts = xml::read_domain_xml(m_hv.domain_xml(**domain, false));
      for (const auto& disk : facts.disks) {
        if (disk.serial == cid.value) {
          translate("resizing attached disk '" + cid.value + "'",
                    [&] { m_hv.block_resize(**domain, disk.target, wanted); });
          spdlog::info("resized disk {} online to {} MiB", cid.value, new_size_mib);
          return;
        }
      }
    }
  }
  translate("resizing disk '" + cid.value + "'",
            [&] { m_hv.resize_volume(*located->volume, wanted); });
  spdlog::info("resized disk {} to {} MiB", cid.value, new_size_mib);
}

void LibvirtCloud::set_disk_metadata(const DiskCid& cid, const nlohmann::json& metadata) {
  if (!check_cid("set_disk_metadata", NameKind::disk, cid.value)) {
    throw DiskNotFound("set_disk_metadata: " + quote_text(cid.value) +
                       " is no disk CID of this CPI");
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{name};  // attach and detach write the same record
  auto located = locate(name);
  if (!located) throw DiskNotFound(not_on_this_host("disk '" + cid.value + "'"));
  auto meta = read_meta(*located->pool, name);
  meta["metadata"] = metadata;
  write_meta(*located->pool, name, meta);
}

// A full copy of the disk as its own volume (virStorageVolCreateXMLFrom). When the disk is
// attached to a running VM, the VM is paused for the copy so the snapshot is crash-consistent.
// The disk's record names the snapshot (and the VM paused for it) before the copy starts, and
// the snapshot's own record is written only after it: a killed copy leaves an intent that the
// next call on the disk (remove_partial_snapshot) finishes, resuming the VM and deleting the
// partial volume.
// A daemon or connection lost half-way answers TransientCloudError (ok_to_retry): the disk is
// untouched, and the intent left in its record makes the next call on it resume a VM paused for
// the copy and delete the partial snapshot.
SnapshotCid LibvirtCloud::snapshot_disk(const DiskCid& cid, const nlohmann::json& metadata) {
  return retriable_when_daemon_lost([&] { return take_snapshot(cid, metadata); });
}

SnapshotCid LibvirtCloud::take_snapshot(const DiskCid& cid, const nlohmann::json& metadata) {
  if (!check_cid("snapshot_disk", NameKind::disk, cid.value)) {
    throw DiskNotFound("snapshot_disk: " + quote_text(cid.value) + " is no disk CID of this CPI");
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{name};
  auto located = locate(name);
  if (!located) throw DiskNotFound(not_on_this_host("disk '" + cid.value + "'"));
  auto meta = read_meta(*located->pool, name);
  remove_partial_snapshot(*located, name, meta);
  const auto holders = reconcile_record(*located, disk_ref(cid, *located), meta);
  const SnapshotCid snap = new_snapshot_cid();
  const std::string snap_name = object_name(snap.value);
  const auto facts = xml::read_volume_xml(
      translate("reading disk '" + cid.value + "'", [&] { return m_hv.volume_xml(*located->volume); }));
  std::optional<virt::Domain> running;
  for (const auto& owner : holders) {
    auto domain = translate("looking up vm '" + owner + "'",
                            [&] { return m_hv.find_domain(object_name(owner)); });
    if (domain && translate("reading vm '" + owner + "'",
                            [&] { return m_hv.domain_active(**domain); })) {
      running = std::move(*domain);
      meta["snapshotting"] = {{"snapshot", snap_name}, {"paused", owner}};
    }
  }
  if (!meta.contains("snapshotting")) meta["snapshotting"] = {{"snapshot", snap_name}};
  write_meta(*located->pool, name, meta);
  util::Rollback rollback;
  // A snapshot lives in its disk's pool: outside the configured pool, recorded first (as a disk).
  if (located->pool_name != m_config.libvirt.storage_pool) {
    write_pool_record(snap_name, located->pool_name);
    rollback.add("delete the pool record of '" + snap_name + "'",
                 [this, snap_name] { remove_pool_record(snap_name); });
  }
  rollback.add("clear the snapshot intent of disk '" + cid.value + "'", [&] {
    meta.erase("snapshotting");
    write_meta(*located->pool, name, meta);
  });
  rollback.add("delete snapshot '" + snap_name + "'",
               [this, &located, snap_name] { delete_if_exists(*located->pool, snap_name); });
  rollback.add("delete '" + meta_volume(snap_name) + "'", [this, &located, snap_name] {
    delete_if_exists(*located->pool, meta_volume(snap_name));  // write_meta may fail half-way
  });
  translate("snapshotting disk '" + cid.value + "'", [&] {
    if (running) m_hv.suspend_domain(**running);
    try {
      util::stop_point("snapshot:paused");
      copy_for_snapshot(*located, facts, snap_name, running.has_value());
      util::stop_point("snapshot:copied");
    } catch (...) {
      if (running) m_hv.resume_domain(**running);
      throw;
    }
    if (running) m_hv.resume_domain(**running);
  });
  write_meta(*located->pool, snap_name,
             {{"disk", cid.value}, {"metadata", metadata}, {"complete", true}});
  meta.erase("snapshotting");
  write_meta(*located->pool, name, meta);
  rollback.commit();
  spdlog::info("snapshot {} of disk {} created", snap.value, cid.value);
  return snap;
}

void LibvirtCloud::copy_for_snapshot(Located& located, const xml::VolumeFacts& facts,
                                     const std::string& snap_name, bool paused) {
  const std::string format = facts.format.empty() ? "raw" : facts.format;
  const auto snap_xml = xml::volume_xml({snap_name, facts.capacity_bytes, format, "0600"});
  if (paused && format != "raw") {
    // The running qemu holds the image locked, so qemu-img (what libvirt runs to clone a
    // qcow2 volume) cannot open it; the paused VM has flushed it, so its bytes are a copy.
    auto copy = m_hv.create_volume(*located.pool, snap_xml);
    m_hv.copy_volume_bytes(*located.volume, *copy);  // the rollback deletes a partial copy
  } else {
    m_hv.clone_volume(*located.pool, snap_xml, *located.volume);
  }
}

// The disk's record names a snapshot whose call never returned it (the process died during
// the copy or after): resume the VM it paused, when still paused, and delete the partial snapshot.
void LibvirtCloud::remove_partial_snapshot(Located& located, const std::string& name,
                                           nlohmann::json& meta) {
  const auto intent = meta.find("snapshotting");
  if (intent == meta.end() || !intent->is_object()) return;
  const std::string snap_name = intent->value("snapshot", "");
  const std::string paused = intent->value("paused", "");
  if (!paused.empty()) {
    translate("resuming vm '" + paused + "' paused for a snapshot", [&] {
      auto domain = m_hv.find_domain(object_name(paused));
      if (domain && m_hv.domain_state(**domain) == VIR_DOMAIN_PAUSED) {
        m_hv.resume_domain(**domain);
        spdlog::info("resumed vm {}, paused for an unfinished snapshot", paused);
      }
    });
  }
  // The intent is cleared before snapshot_disk returns: while it is there, no caller has the
  // snapshot, complete or not.
  if (!snap_name.empty()) {
    delete_if_exists(*located.pool, snap_name);
    delete_if_exists(*located.pool, meta_volume(snap_name));
    spdlog::info("removed the unfinished snapshot {}", snap_name);
  }
  meta.erase("snapshotting");
  write_meta(*located.pool, name, meta);
}

void LibvirtCloud::delete_snapshot(const SnapshotCid& cid) {
  if (!check_cid("delete_snapshot", NameKind::snapshot, cid.value)) {
    spdlog::info("delete_snapshot: {} is no snapshot CID of this CPI: nothing to delete",
                 quote_text(cid.value));
    return;
  }
  const std::string name = object_name(cid.value);
  auto located = locate(name);
  if (!located) {
    spdlog::info("snapshot {} is already gone", cid.value);
    return;
  }
  translate("deleting snapshot '" + cid.value + "'", [&] { m_hv.delete_volume(*located->volume); });
  delete_if_exists(*located->pool, meta_volume(name));
  if (located->pool_name != m_config.libvirt.storage_pool) remove_pool_record(name);
}

}  // namespace cpi::cloud
