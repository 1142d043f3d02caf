// Persistent disks and snapshots as volumes.

#include <libvirt/libvirt.h>
#include <spdlog/spdlog.h>

#include <pugixml.hpp>

#include <chrono>
#include <sstream>
#include <thread>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/util/file_lock.hpp"
#include "cpi/util/test_hook.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {
namespace {

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;
constexpr int k_copy_stall_seconds = 600;  // a live copy without progress this long is given up

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
    // Next to the VM: the pool its root disk lives in (the ownership check reads the definition).
    xml::DomainFacts vm;
    if (find_our_domain(*vm_locality, vm) && !vm.disks.empty() && !vm.disks.front().pool.empty()) {
      pool_name = vm.disks.front().pool;
    }
  }
  // The configured pool: its handle and its XML (type, capacity, free space), its state read
  // only when it refuses or seems full, for the error (in_pool). Another pool is checked first:
  // the disk's pool record is written before the disk.
  std::optional<virt::Pool> other;
  virStoragePool* target = nullptr;
  if (pool_name == m_config.libvirt.storage_pool) {
    target = &m_storage.pool_handle();
  } else {
    other = m_storage.require_active_pool(pool_name);
    target = other->get();
  }
  const auto facts = m_storage.pool_facts(*target);
  // Pools of block volumes (logical LVs, iSCSI LUNs ...) hold raw disks: a qcow2 there would
  // be an unformatted block device.
  const std::string format = m_kind->disk_format(props, facts.type, pool_name);
  const DiskCid cid = new_disk_cid();
  const std::string name = object_name(cid.value);
  const auto capacity = mib_to_bytes(size_mib, "create_disk: size");
  // Outside the configured pool the disk is found only through its pool record: written first,
  // so a disk never exists unrecorded (a record without its disk is harmless; cleanup removes it).
  util::Rollback rollback;
  if (pool_name != m_config.libvirt.storage_pool) {
    m_storage.write_pool_record(name, pool_name);
    rollback.add("delete the pool record of '" + name + "'",
                 [this, name] { m_storage.remove_pool_record(name); });
  }
  virt::PoolInfo room{true, facts.capacity.value_or(0), facts.available.value_or(0)};
  if (!facts.capacity || !facts.available) room = m_hv.pool_info(*target);
  try {
    m_storage.require_room(room, pool_name,
                           {{"disk '" + cid.value + "'", format, capacity, capacity}});
  } catch (const NoDiskSpace&) {
    m_storage.require_active(*target, pool_name);  // an inactive pool reports no room
    throw;
  }
  m_storage.in_pool(*target, pool_name,
                    [&] { m_kind->make_disk(*target, name, capacity, format); });
  rollback.commit();
  return cid;
}

// Refuses while any domain's definition holds the volume (a scan: domains_holding), whatever
// the record says; touches nothing then.
void LibvirtCloud::delete_disk(const DiskCid& cid) {
  if (!deletable("delete_disk", NameKind::disk, cid.value)) return;
  const std::string name = object_name(cid.value);
  util::FileLock lock{m_names.disk_lock(cid)};
  auto located = m_storage.locate(name);
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
  auto meta = m_storage.read_meta(*located->pool, name);
  remove_partial_snapshot(*located, name, meta);
  m_hv.delete_volume(*located->volume);
  m_storage.delete_if_exists(*located->pool, meta_volume(name));
  if (located->pool_name != m_config.libvirt.storage_pool) m_storage.remove_pool_record(name);
  lock.remove();  // the disk is gone; removed while held (util/file_lock.hpp)
  spdlog::info("deleted disk {}", cid.value);
}

bool LibvirtCloud::has_disk(const DiskCid& cid) {
  const auto parsed = parse_unprefixed(cid.value);
  if (!parsed || parsed->kind != NameKind::disk) return false;  // not a disk CID: no such disk
  return m_storage.locate(object_name(cid.value)).has_value();
}

void LibvirtCloud::resize_disk(const DiskCid& cid, std::int64_t new_size_mib) {
  if (!check_cid("resize_disk", NameKind::disk, cid.value)) {
    throw DiskNotFound("resize_disk: " + quote_text(cid.value) + " is no disk CID of this CPI");
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{m_names.disk_lock(cid)};
  auto located = m_storage.locate(name);
  if (!located) throw DiskNotFound(m_storage.not_on_this_host("disk '" + cid.value + "'"));
  const auto wanted = mib_to_bytes(new_size_mib, "resize_disk: new_size");
  const auto current = m_hv.volume_info(*located->volume).capacity;
  if (wanted == current) {
    spdlog::info("disk {} already has {} MiB", cid.value, new_size_mib);
    return;
  }
  if (m_storage.read_meta(*located->pool, name).value("filesystem", "") == "ext4") {
    throw NotImplemented("resize_disk: disk '" + cid.value + "' holds a container's ext4 "
                         "filesystem, which the CPI cannot grow; BOSH copies the data to a new "
                         "disk instead");
  }
  if (wanted < current) {
    throw NotSupported("resize_disk: disk '" + cid.value + "' has " +
                       std::to_string(current / k_mib) + " MiB; shrinking to " +
                       std::to_string(new_size_mib) + " MiB is not supported");
  }
  {
    const auto format = xml::read_volume_xml(m_hv.volume_xml(*located->volume)).format;
    m_storage.require_room(*located->pool, located->pool_name,
                           {{"growing disk '" + cid.value + "'", format.empty() ? "raw" : format,
                             wanted, wanted - current}});
  }
  // Attached to a running VM: grow it online so the guest sees the new size.
  auto meta = m_storage.read_meta(*located->pool, name);
  remove_partial_snapshot(*located, name, meta);  // a killed snapshot's copy job
  for (const auto& owner : reconcile_record(*located, disk_ref(cid, *located), meta)) {
    if (auto domain = m_hv.find_domain(object_name(owner)); domain && m_hv.domain_active(**domain)) {
      const auto facts = xml::read_domain_xml(m_hv.domain_xml(**domain, false));
      for (const auto& disk : facts.disks) {
        if (disk.serial == cid.value) {
          m_hv.block_resize(**domain, disk.target, wanted);
          spdlog::info("resized disk {} online to {} MiB", cid.value, new_size_mib);
          return;
        }
      }
    }
  }
  m_hv.resize_volume(*located->volume, wanted);
  spdlog::info("resized disk {} to {} MiB", cid.value, new_size_mib);
}

void LibvirtCloud::set_disk_metadata(const DiskCid& cid, const nlohmann::json& metadata) {
  if (!check_cid("set_disk_metadata", NameKind::disk, cid.value)) {
    throw DiskNotFound("set_disk_metadata: " + quote_text(cid.value) +
                       " is no disk CID of this CPI");
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{m_names.disk_lock(cid)};  // attach and detach write the same record
  auto located = m_storage.locate(name);
  if (!located) throw DiskNotFound(m_storage.not_on_this_host("disk '" + cid.value + "'"));
  auto meta = m_storage.read_meta(*located->pool, name);
  meta["metadata"] = metadata;
  m_storage.write_meta(*located->pool, name, meta);
}

// A full copy of the disk as its own volume. Attached to a running VM, the copy is taken while
// the VM runs where the hypervisor can (qemu/kvm: libvirt's block copy into the new volume,
// ended without a pivot once it mirrors, so the copy is the disk as it was at that instant,
// crash-consistent, and the VM never pauses); other hypervisors pause the VM for the copy.
// Intent first: the disk's record names the snapshot (and the VM copying or paused) and the VM's
// facts name the disk, before anything changes; the snapshot's own record is written after the
// copy, and both intents are cleared last. A call killed at any point leaves an intent that the
// next call on the disk (remove_partial_snapshot) or on the VM (require_domain) or `cpi cleanup`
// finishes: the copy job ended, the VM resumed when this CPI paused it, the partial snapshot
// deleted. While the intent is there, no caller has the snapshot, complete or not.
// A daemon or connection lost half-way answers TransientCloudError (ok_to_retry): the intent
// left behind is finished as above.
SnapshotCid LibvirtCloud::snapshot_disk(const DiskCid& cid, const nlohmann::json& metadata) {
  return retriable_when_daemon_lost([&] { return take_snapshot(cid, metadata); });
}

SnapshotCid LibvirtCloud::take_snapshot(const DiskCid& cid, const nlohmann::json& metadata) {
  if (!check_cid("snapshot_disk", NameKind::disk, cid.value)) {
    throw DiskNotFound("snapshot_disk: " + quote_text(cid.value) + " is no disk CID of this CPI");
  }
  const std::string name = object_name(cid.value);
  util::FileLock lock{m_names.disk_lock(cid)};
  auto located = m_storage.locate(name);
  if (!located) throw DiskNotFound(m_storage.not_on_this_host("disk '" + cid.value + "'"));
  auto meta = m_storage.read_meta(*located->pool, name);
  remove_partial_snapshot(*located, name, meta);
  const auto ref = disk_ref(cid, *located);
  const auto holders = reconcile_record(*located, ref, meta);
  const SnapshotCid snap = new_snapshot_cid();
  const std::string snap_name = object_name(snap.value);
  const auto facts = xml::read_volume_xml(m_hv.volume_xml(*located->volume));
  // The VM whose running qemu (or container) has the disk open: its live definition holds it.
  std::optional<virt::Domain> running;
  std::string owner;
  std::string target;
  for (const auto& vm : holders) {
    auto domain = m_hv.find_domain(object_name(vm));
    if (!domain) continue;
    if (!m_hv.domain_active(**domain)) continue;
    for (const auto& d : xml::read_domain_xml(m_hv.domain_xml(**domain, false)).disks) {
      if (d.serial == cid.value) {
        running = std::move(*domain);
        owner = vm;
        target = d.target;
        break;
      }
    }
    if (running) break;
  }
  const bool live_copy = running && !target.empty() &&
                         m_flavour->live_block_copy();
  nlohmann::json intent{{"snapshot", snap_name}};
  if (running) intent["vm"] = owner;
  if (running && !live_copy) intent["paused"] = owner;
  meta["snapshotting"] = intent;
  m_storage.write_meta(*located->pool, name, meta);
  try {
    if (running) {  // the VM's side of the intent, for the next call on the VM
      auto vm_facts_now = vm_facts(**running);
      vm_facts_now["snapshotting"] = {{"disk", cid.value}, {"snapshot", snap_name},
                                      {"paused", !live_copy}};
      write_vm_facts(**running, vm_facts_now);
    }
    // A snapshot lives in its disk's pool: outside the configured pool, recorded first.
    if (located->pool_name != m_config.libvirt.storage_pool) {
      m_storage.write_pool_record(snap_name, located->pool_name);
    }
    if (live_copy) {
      copy_running(**running, owner, target, *located, facts, snap_name);
    } else if (running) {
      m_hv.suspend_domain(**running);
      try {
        util::stop_point("snapshot:paused");
        copy_for_snapshot(*located, facts, snap_name, true);
        util::stop_point("snapshot:copied");
      } catch (...) {
        m_hv.resume_domain(**running);
        throw;
      }
      m_hv.resume_domain(**running);
    } else {
      copy_for_snapshot(*located, facts, snap_name, false);
    }
    m_storage.write_meta(*located->pool, snap_name,
                         {{"disk", cid.value}, {"metadata", metadata}, {"complete", true}});
    if (running) {
      auto vm_facts_now = vm_facts(**running);
      vm_facts_now.erase("snapshotting");
      write_vm_facts(**running, vm_facts_now);
    }
    meta.erase("snapshotting");
    m_storage.write_meta(*located->pool, name, meta);
  } catch (...) {
    try {
      meta["snapshotting"] = intent;  // whatever step failed, the intent is what to undo
      remove_partial_snapshot(*located, name, meta);
    } catch (const std::exception& e) {
      spdlog::warn("removing the unfinished snapshot {} of disk {} (the next call on the disk "
                   "or the vm, or cpi cleanup, will): {}",
                   snap_name, cid.value, e.what());
    }
    throw;
  }
  spdlog::info("snapshot {} of disk {} created{}", snap.value, cid.value,
               live_copy ? " while its vm ran" : running ? " (its vm paused for the copy)" : "");
  return snap;
}

// libvirt's block copy of disk `target` into the new volume `snap_name`, ended once it mirrors
// (ready) without a pivot: the VM keeps its disk and the copy stays, a crash-consistent image of
// the disk at the moment of the abort.
void LibvirtCloud::copy_running(virDomain& domain, const std::string& vm, const std::string& target,
                                Located& located, const xml::VolumeFacts& facts,
                                const std::string& snap_name) {
  const std::string format = facts.format.empty() ? "raw" : facts.format;
  auto copy = m_hv.create_volume(
      *located.pool, xml::volume_xml({snap_name, facts.capacity_bytes, format, "0600"}));
  const std::string path = m_hv.volume_path(*copy);
  pugi::xml_document doc;
  auto disk = doc.append_child("disk");
  disk.append_attribute("type") = "file";
  disk.append_child("source").append_attribute("file") = path.c_str();
  disk.append_child("driver").append_attribute("type") = format.c_str();
  std::ostringstream dest;
  doc.save(dest, "", pugi::format_raw | pugi::format_no_declaration);
  m_hv.block_copy(domain, target, dest.str());
  util::stop_point("snapshot:copying");
  // Ready when the copy has caught up (cur == end); a copy that makes no progress for
  // k_copy_stall is given up (the rollback ends it), so the call never hangs.
  const auto stall = std::chrono::seconds(k_copy_stall_seconds);
  auto last_progress = std::chrono::steady_clock::now();
  std::uint64_t last_cur = 0;
  auto pause = std::chrono::milliseconds(10);
  for (;;) {
    const auto job = m_hv.block_job(domain, target);
    if (!job) {
      throw CloudError("the copy of disk '" + target + "' of vm '" + vm +
                       "' ended before it was complete (did the vm stop?)");
    }
    if (job->ready()) break;
    const auto now = std::chrono::steady_clock::now();
    if (job->cur != last_cur) {
      last_cur = job->cur;
      last_progress = now;
    } else if (now - last_progress > stall) {
      throw DeviceBusy("the copy of disk '" + target + "' of vm '" + vm + "' made no progress for " +
                       std::to_string(k_copy_stall_seconds) + " s; retry later");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  m_hv.block_job_abort(domain, target);
  util::stop_point("snapshot:copied");
}

void LibvirtCloud::copy_for_snapshot(Located& located, const xml::VolumeFacts& facts,
                                     const std::string& snap_name, bool paused) {
  const std::string format = facts.format.empty() ? "raw" : facts.format;
  const auto snap_xml = xml::volume_xml({snap_name, facts.capacity_bytes, format, "0600"});
  if (paused && format != "raw") {
    // The running qemu holds the image locked, so qemu-img (what libvirt runs to clone a
    // qcow2 volume) cannot open it; the paused VM has flushed it, so its bytes are a copy.
    auto copy = m_hv.create_volume(*located.pool, snap_xml);
    m_hv.copy_volume_bytes(*located.volume, *copy);  // a partial copy is removed with the intent
  } else {
    m_hv.clone_volume(*located.pool, snap_xml, *located.volume);
  }
}

// The disk's record names a snapshot whose call never returned it (the process died during
// the copy or after, or the copy failed): end the copy job that still writes into it, resume
// the VM this CPI paused for it, clear the VM's side of the intent, delete the partial snapshot
// (and its records), and last clear the intent. Each step is idempotent, so a kill here leaves
// the intent for the next call. Callers hold the disk's lock.
void LibvirtCloud::remove_partial_snapshot(Located& located, const std::string& name,
                                           nlohmann::json& meta) {
  const auto intent = meta.find("snapshotting");
  if (intent == meta.end()) return;
  std::string snap_name;
  std::string vm;
  std::string paused;
  if (intent->is_object()) {
    snap_name = intent->value("snapshot", "");
    paused = intent->value("paused", "");
    vm = intent->value("vm", paused);
  }
  const auto parsed = m_names.parse(snap_name);
  if (!parsed || parsed->kind != NameKind::snapshot) snap_name.clear();  // never another kind
  std::string snap_path;
  if (!snap_name.empty()) {
    if (auto volume = m_hv.find_volume(*located.pool, snap_name)) {
      snap_path = m_hv.volume_path(**volume);
    }
  }
  if (is_vm_cid(vm)) {
    if (auto domain = m_hv.find_domain(object_name(vm))) {
      finish_vm_snapshot_side(**domain, vm, snap_path, !paused.empty(), name);
    }
  }
  if (!snap_name.empty()) {
    m_storage.delete_if_exists(*located.pool, snap_name);
    m_storage.delete_if_exists(*located.pool, meta_volume(snap_name));
    if (located.pool_name != m_config.libvirt.storage_pool) m_storage.remove_pool_record(snap_name);
    spdlog::info("removed the unfinished snapshot {}", snap_name);
  }
  meta.erase("snapshotting");
  m_storage.write_meta(*located.pool, name, meta);
}

// The VM's side of a snapshot intent on disk volume `disk_volume`: the copy job into
// `snap_path` ended, the VM resumed when `resume` (this CPI paused it) and it is paused, and
// the VM's fact removed when it names that disk.
void LibvirtCloud::finish_vm_snapshot_side(virDomain& domain, const std::string& vm,
                                           const std::string& snap_path, bool resume,
                                           const std::string& disk_volume) {
  if (!snap_path.empty() && m_hv.domain_active(domain)) {
    pugi::xml_document doc;
    const std::string live = m_hv.domain_xml(domain, false);
    if (doc.load_string(live.c_str())) {
      for (auto d : doc.child("domain").child("devices").children("disk")) {
        const auto mirror = d.child("mirror");
        if (!mirror || (snap_path != mirror.attribute("file").value() &&
                        snap_path != mirror.child("source").attribute("file").value())) {
          continue;
        }
        const std::string dev = d.child("target").attribute("dev").value();
        if (m_hv.block_job(domain, dev)) {
          m_hv.block_job_abort(domain, dev);
          spdlog::info("ended the copy of disk {} of vm {} into an unfinished snapshot", dev, vm);
        }
      }
    }
  }
  if (resume && m_hv.domain_state(domain) == VIR_DOMAIN_PAUSED) {
    m_hv.resume_domain(domain);
    spdlog::info("resumed vm {}, paused for an unfinished snapshot", vm);
  }
  auto facts = vm_facts(domain);
  const auto fact = facts.find("snapshotting");
  const std::string named = fact != facts.end() && fact->is_object() ? fact->value("disk", "") : "";
  if (fact != facts.end() && (!is_disk_cid(named) || object_name(named) == disk_volume)) {
    facts.erase("snapshotting");
    write_vm_facts(domain, facts);
  }
}

std::optional<std::string> LibvirtCloud::finish_interrupted_snapshot(
    const std::optional<DiskCid>& disk_cid, const std::optional<VmCid>& vm) {
  std::optional<virt::Domain> domain;
  nlohmann::json fact;  // the VM's side of the intent
  std::optional<DiskCid> disk = disk_cid;
  if (vm) {
    domain = find_our_domain(*vm);
    if (domain) {
      const auto facts = vm_facts(**domain);
      if (const auto it = facts.find("snapshotting"); it != facts.end()) fact = *it;
      const std::string named = fact.is_object() ? fact.value("disk", "") : "";
      if (!disk && is_disk_cid(named)) disk = DiskCid{named};
    }
  }
  const bool paused = fact.is_object() && fact.value("paused", false);
  if (!disk) {
    if (fact.is_null()) return std::nullopt;
    finish_vm_snapshot_side(**domain, vm->value, "", paused, "");  // names no disk: dropped
    return "vm " + vm->value + ": removed a snapshot intent naming no disk";
  }
  util::FileLock lock{m_names.disk_lock(*disk), util::FileLock::Wait::no};
  if (!lock.held()) return std::nullopt;  // a call on the disk runs: it finishes the intent
  const std::string name = object_name(disk->value);
  std::string done;
  if (auto located = m_storage.locate(name)) {
    auto meta = m_storage.read_meta(*located->pool, name);
    if (meta.contains("snapshotting")) {
      const auto& intent = meta["snapshotting"];
      const std::string snap = intent.is_object() ? intent.value("snapshot", "") : "";
      remove_partial_snapshot(*located, name, meta);
      done = "disk " + disk->value + ": finished its interrupted snapshot" +
             (snap.empty() ? "" : " (removed " + snap + ")");
    }
  }
  if (domain && vm_facts(**domain).contains("snapshotting")) {
    // The VM's side alone (the disk's intent was gone): resume it if this CPI paused it.
    finish_vm_snapshot_side(**domain, vm->value, "", paused, name);
    done += (done.empty() ? "" : "; ") + std::string{"vm "} + vm->value +
            ": cleared its interrupted snapshot of disk " + disk->value;
  }
  if (done.empty()) return std::nullopt;
  spdlog::info("{}", done);
  return done;
}

void LibvirtCloud::delete_snapshot(const SnapshotCid& cid) {
  if (!deletable("delete_snapshot", NameKind::snapshot, cid.value)) return;
  const std::string name = object_name(cid.value);
  auto located = m_storage.locate(name);
  if (!located) {
    spdlog::info("snapshot {} is already gone", cid.value);
    return;
  }
  m_hv.delete_volume(*located->volume);
  m_storage.delete_if_exists(*located->pool, meta_volume(name));
  if (located->pool_name != m_config.libvirt.storage_pool) m_storage.remove_pool_record(name);
}

}  // namespace cpi::cloud
