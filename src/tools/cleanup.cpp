// cleanup_orphans: removes what take_inventory flags, and nothing else.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

#include "cpi/tools/inspect.hpp"

namespace cpi::tools {
namespace {

// Only these kinds can be orphans; a disk or snapshot is never deleted here, and a stemcell
// only while its incomplete marker says that its import never finished.
bool deletable_kind(ObjectKind kind) {
  return kind == ObjectKind::vm_volume || kind == ObjectKind::disk_meta ||
         kind == ObjectKind::snapshot_meta || kind == ObjectKind::stemcell_meta ||
         kind == ObjectKind::stemcell || kind == ObjectKind::stemcell_incomplete;
}

// Whether `object` is still an orphan now (a concurrent CPI call may have changed that).
bool still_orphan(virt::Hypervisor& hv, const config::Config& config, const OwnedObject& object,
                  virStoragePool& pool) {
  if (object.kind == ObjectKind::vm_volume) {
    return !hv.find_domain(config.libvirt.name_prefix + object.cid).has_value();
  }
  if (object.kind == ObjectKind::stemcell) {  // still marked incomplete
    return hv.find_volume(pool, object.name + ".incomplete").has_value();
  }
  // A .meta or a marker: an orphan once the volume it belongs to is gone.
  const std::string base = object.name.substr(0, object.name.rfind('.'));
  return !hv.find_volume(pool, base).has_value();
}

}  // namespace

CleanupResult cleanup_orphans(virt::Hypervisor& hv, const config::Config& config,
                              const InventoryOptions& options, bool dry_run) {
  CleanupResult result;
  auto objects = take_inventory(hv, config, options);
  // Incomplete markers last: each is removed only after the stemcell it marks.
  std::stable_partition(objects.begin(), objects.end(), [](const OwnedObject& object) {
    return object.kind != ObjectKind::stemcell_incomplete;
  });
  for (const auto& object : objects) {
    if (!object.orphan || !deletable_kind(object.kind)) {
      continue;
    }
    if (object.recent) {
      result.spared.push_back(object.name);
      continue;
    }
    if (dry_run) {
      result.would_delete.push_back(object.name);
      continue;
    }
    try {
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
  return {{"deleted", deleted},
          {"would_delete", would_delete},
          {"spared", spared},
          {"failed", failures}};
}

std::string CleanupResult::text() const {
  std::ostringstream out;
  for (const auto& name : would_delete) out << "would delete  " << name << '\n';
  for (const auto& name : deleted) out << "deleted       " << name << '\n';
  for (const auto& name : spared) {
    out << "spared        " << name << " (changed recently; rerun later or lower --min-age)\n";
  }
  for (const auto& [name, why] : failed) out << "FAILED        " << name << ": " << why << '\n';
  if (would_delete.empty() && deleted.empty() && spared.empty() && failed.empty()) {
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
