// cleanup_orphans: removes what take_inventory flags, and nothing else.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <pugixml.hpp>
#include <sstream>
#include <stdexcept>

#include "cpi/cloud/ids.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"

#include "cpi/cloud/names.hpp"
#include "cpi/tools/inspect.hpp"

namespace cpi::tools {
namespace {

// Only these kinds can be orphans; a disk is never deleted here, a snapshot only when
// snapshot_disk never finished it (no .meta), and a stemcell only while its incomplete marker
// says that its import never finished.
bool deletable_kind(ObjectKind kind) {
  return kind == ObjectKind::vm || kind == ObjectKind::vm_volume || kind == ObjectKind::disk_meta ||
         kind == ObjectKind::snapshot || kind == ObjectKind::snapshot_meta ||
         kind == ObjectKind::stemcell_meta || kind == ObjectKind::pool_record ||
         kind == ObjectKind::stemcell || kind == ObjectKind::stemcell_incomplete;
}

// Whether `object` is still an orphan now (a concurrent CPI call may have changed that).
bool still_orphan(virt::Hypervisor& hv, const config::Config& config, const OwnedObject& object,
                  virStoragePool& pool) {
  if (object.kind == ObjectKind::vm_volume) {
    return !hv.find_domain(cloud::Names{config.libvirt.name_prefix}.domain({object.cid}))
                .has_value();
  }
  if (object.kind == ObjectKind::snapshot) {  // snapshot_disk writes its .meta once it is done
    return !hv.find_volume(pool, cloud::Names{config.libvirt.name_prefix}.meta(object.name))
                .has_value();
  }
  const cloud::Names names{config.libvirt.name_prefix};
  if (object.kind == ObjectKind::stemcell) {  // still marked incomplete
    return hv.find_volume(pool, names.incomplete_marker(object.name)).has_value();
  }
  // A .meta, .pool or .incomplete record: an orphan once the volume it belongs to is gone.
  const std::string base = object.name.substr(0, object.name.rfind('.'));
  if (object.kind == ObjectKind::pool_record) {  // its disk or snapshot is gone from that pool
    const auto recorded = read_pool_record(hv, config, base);
    if (!recorded || *recorded != object.record_pool) return false;
    auto target = hv.find_pool(*recorded);
    return target && hv.pool_info(**target).active && !hv.find_volume(**target, base).has_value();
  }
  return !hv.find_volume(pool, base).has_value();
}

// Whether `text` (a domain's persistent XML) names a persistent disk of ours (by its serial).
bool has_persistent_disk(const std::string& text) {
  pugi::xml_document doc;
  if (!doc.load_string(text.c_str())) return true;  // unreadable: assume the worst
  for (const auto& serial : doc.select_nodes("/domain/devices/disk/serial")) {
    if (cloud::is_disk_cid(serial.node().child_value())) return true;
  }
  return false;
}

// Removes an unfinished VM (its volumes follow as orphans). Re-checks under the same rules:
// still incomplete, older than the bound, and no persistent disk in its definition.
bool remove_unfinished_vm(virt::Hypervisor& hv, const OwnedObject& object,
                          const InventoryOptions& options) {
  auto domain = hv.find_domain(object.name);
  if (!domain) return false;
  const auto since = incomplete_since(hv, **domain);
  if (!since || options.now - *since < options.incomplete_age_seconds) return false;
  if (has_persistent_disk(hv.domain_xml(**domain, true))) {
    throw std::runtime_error("it has a persistent disk in its definition: kept; detach it first");
  }
  if (hv.domain_active(**domain)) hv.destroy_domain(**domain);
  hv.undefine_domain(**domain);
  return true;
}

// Finishes the snapshot_disk calls that never did, before any orphan is deleted (a copy job may
// still write into a partial snapshot). `keep` gets the snapshot volumes of those still under
// way or not finished, which the orphan pass then leaves alone.
void finish_snapshots(virt::Hypervisor& hv, const config::Config& config,
                      const std::vector<OwnedObject>& objects, bool dry_run,
                      CleanupResult& result, std::set<std::string>& keep) {
  std::map<std::string, const OwnedObject*> snapshots;  // volume name -> snapshot
  std::map<std::string, std::string> intents;           // disk cid -> snapshot volume name
  for (const auto& object : objects) {
    if (object.kind == ObjectKind::snapshot) snapshots[object.name] = &object;
    if (object.kind == ObjectKind::disk && !object.snapshotting.empty()) {
      intents[object.cid] = object.snapshotting;
    }
  }
  std::optional<cloud::LibvirtCloud> cloud;
  for (const bool disks : {true, false}) {  // disks first: their intent names everything
    for (const auto& object : objects) {
      if (object.snapshotting.empty() ||
          object.kind != (disks ? ObjectKind::disk : ObjectKind::vm)) {
        continue;
      }
      const auto intent = intents.find(disks ? object.cid : object.snapshotting);
      const std::string snap = intent == intents.end() ? "" : intent->second;
      const auto copy = snapshots.find(snap);
      if (copy != snapshots.end() && copy->second->recent) {  // a copy under way keeps changing
        keep.insert(snap);
        continue;
      }
      const std::string what = std::string{disks ? "disk " : "vm "} + object.cid;
      if (dry_run) {
        result.would_finish.push_back(what);
        continue;
      }
      try {
        if (!cloud) cloud.emplace(hv, config);
        const auto done =
            disks ? cloud->finish_interrupted_snapshot(cloud::DiskCid{object.cid}, std::nullopt)
                  : cloud->finish_interrupted_snapshot(std::nullopt, cloud::VmCid{object.cid});
        if (done) {
          result.finished.push_back(*done);
        } else if (disks) {  // its lock is held: a call on the disk runs and finishes it
          keep.insert(snap);
        }
      } catch (const std::exception& e) {
        keep.insert(snap);
        result.failed.emplace_back(object.name, std::string{"finishing its snapshot: "} + e.what());
      }
    }
  }
}

}  // namespace

CleanupResult cleanup_orphans(virt::Hypervisor& hv, const config::Config& config,
                              const InventoryOptions& options, bool dry_run) {
  CleanupResult result;
  auto objects = take_inventory(hv, config, options);
  std::set<std::string> keep;
  finish_snapshots(hv, config, objects, dry_run, result, keep);
  // Incomplete markers last: each is removed only after the stemcell it marks.
  std::stable_partition(objects.begin(), objects.end(), [](const OwnedObject& object) {
    return object.kind != ObjectKind::stemcell_incomplete;
  });
  for (const auto& object : objects) {
    if (!object.orphan || !deletable_kind(object.kind)) {
      continue;
    }
    if (object.recent || keep.count(object.name) != 0) {  // keep: a snapshot under way
      result.spared.push_back(object.name);
      continue;
    }
    if (dry_run) {
      result.would_delete.push_back(object.name);
      continue;
    }
    try {
      if (object.kind == ObjectKind::vm) {
        if (remove_unfinished_vm(hv, object, options)) {
          spdlog::info("deleted unfinished vm {} ({})", object.name, object.orphan_reason);
          result.deleted.push_back(object.name);
        } else {
          spdlog::info("{} is no longer an orphan; kept", object.name);
        }
        continue;
      }
      auto pool = hv.find_pool(object.pool);
      if (!pool) continue;
      auto volume = hv.find_volume(**pool, object.name);
      if (!volume) continue;  // someone else removed it
      if (!still_orphan(hv, config, object, **pool)) {
        spdlog::info("{} is no longer an orphan; kept", object.name);
        continue;
      }
      hv.delete_volume(**volume);
      spdlog::info("deleted orphan volume {} from pool {} ({})", object.name, object.pool,
                   object.orphan_reason);
      result.deleted.push_back(object.name);
    } catch (const std::exception& e) {
      result.failed.emplace_back(object.name, e.what());
    }
  }
  return result;
}

nlohmann::json CleanupResult::to_json() const {
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [name, why] : failed) {
    failures.push_back({{"name", name}, {"error", why}});
  }
  return {{"finished", finished},
          {"would_finish", would_finish},
          {"deleted", deleted},
          {"would_delete", would_delete},
          {"spared", spared},
          {"failed", failures}};
}

std::string CleanupResult::text() const {
  std::ostringstream out;
  for (const auto& what : would_finish) out << "would finish  the interrupted snapshot of " << what << '\n';
  for (const auto& what : finished) out << "finished      " << what << '\n';
  for (const auto& name : would_delete) out << "would delete  " << name << '\n';
  for (const auto& name : deleted) out << "deleted       " << name << '\n';
  for (const auto& name : spared) {
    out << "spared        " << name
        << " (changed recently, or its create_vm may still run; rerun later or lower --min-age"
           " / --incomplete-age)\n";
  }
  for (const auto& [name, why] : failed) out << "FAILED        " << name << ": " << why << '\n';
  if (would_delete.empty() && deleted.empty() && spared.empty() && failed.empty() &&
      finished.empty() && would_finish.empty()) {
    out << "no orphans\n";
  } else {
    out << '\n'
        << (would_delete.empty() ? ""
                                 : std::to_string(would_delete.size()) + " to delete (dry run), ")
        << deleted.size() << " deleted, " << spared.size() << " spared, " << failed.size()
        << " failed\n";
  }
  return out.str();
}

}  // namespace cpi::tools
