// take_inventory: every object this CPI owns on the host, and the helpers the tools share.

#include <pugixml.hpp>

#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "cpi/cloud/meta_record.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::tools {
namespace {

constexpr std::uint64_t k_meta_bytes = 64U << 10;  // what a .meta volume holds at most

// The newest of the volume's mtime/ctime ("1700000000.123456789"), when libvirt reports them.
std::optional<std::int64_t> changed_at(const std::string& volume_xml) {
  pugi::xml_document doc;
  if (!doc.load_string(volume_xml.c_str())) {
    return std::nullopt;
  }
  const auto stamps = doc.child("volume").child("target").child("timestamps");
  std::optional<std::int64_t> newest;
  for (const char* which : {"mtime", "ctime"}) {
    const std::string text = stamps.child_value(which);
    if (text.empty()) continue;
    const auto seconds = static_cast<std::int64_t>(std::strtoll(text.c_str(), nullptr, 10));
    newest = std::max(newest.value_or(seconds), seconds);
  }
  return newest;
}

// Groups: VMs with their volumes, then disks with their .meta, snapshots, stemcells.
int group_of(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::vm:
    case ObjectKind::vm_volume:
      return 0;
    case ObjectKind::disk:
    case ObjectKind::disk_meta:
      return 1;
    case ObjectKind::snapshot:
    case ObjectKind::snapshot_meta:
      return 2;
    case ObjectKind::stemcell:
    case ObjectKind::stemcell_meta:
      return 3;
  }
  return 4;
}

void add_volumes(virt::Hypervisor& hv, const std::string& pool_name, const std::string& prefix,
                 std::vector<OwnedObject>& out) {
  auto pool = hv.find_pool(pool_name);
  if (!pool) return;  // went away while we looked
  for (const auto& name : hv.list_volume_names(**pool)) {
    const auto parsed = parse_object_name(name, prefix, false);
    if (!parsed) continue;
    auto volume = hv.find_volume(**pool, name);
    if (!volume) continue;
    OwnedObject object;
    object.kind = parsed->kind;
    object.name = name;
    object.cid = parsed->cid;
    object.role = parsed->role;
    object.pool = pool_name;
    const auto info = hv.volume_info(**volume);
    object.capacity = info.capacity;
    object.allocation = info.allocation;
    const std::string text = hv.volume_xml(**volume);
    object.format = xml::read_volume_xml(text).format;
    object.changed_at = changed_at(text);
    if (object.kind == ObjectKind::disk || object.kind == ObjectKind::stemcell) {
      try {
        if (auto meta = hv.find_volume(**pool, name + ".meta")) {
          const auto facts = read_meta_volume(hv, **meta);
          object.attached_to = facts.value("attached_to", "");
          if (facts.value("deleted", false)) {
            object.notes.push_back("deleted by BOSH; kept while VM root disks are based on it");
          }
        }
      } catch (const std::exception& e) {
        object.notes.push_back(std::string{"cannot read its .meta: "} + e.what());
      }
    }
    out.push_back(std::move(object));
  }
}

}  // namespace

std::string domain_state_name(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "shutting down";
    case VIR_DOMAIN_SHUTOFF:
      return "shut off";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "suspended";
    default:
      return "no state";
  }
}

nlohmann::json read_meta_volume(virt::Hypervisor& hv, virStorageVol& meta) {
  return cloud::decode_meta(hv.download_volume(meta, k_meta_bytes)).record;  // meta_record.hpp
}

std::vector<OwnedObject> take_inventory(virt::Hypervisor& hv, const config::Config& config,
                                        const InventoryOptions& options) {
  const std::string& prefix = config.libvirt.name_prefix;
  std::vector<OwnedObject> objects;
  for (const auto& name : hv.list_domain_names()) {
    const auto parsed = parse_object_name(name, prefix, true);
    if (!parsed) continue;
    auto domain = hv.find_domain(name);
    if (!domain) continue;
    OwnedObject object;
    object.kind = ObjectKind::vm;
    object.name = name;
    object.cid = parsed->cid;
    object.state = domain_state_name(hv.domain_state(**domain));
    objects.push_back(std::move(object));
  }
  auto pools = hv.active_pool_names();
  std::sort(pools.begin(), pools.end());
  for (const auto& pool_name : pools) {
    add_volumes(hv, pool_name, prefix, objects);
  }
  std::sort(objects.begin(), objects.end(), [](const OwnedObject& a, const OwnedObject& b) {
    return std::make_tuple(group_of(a.kind), a.cid, static_cast<int>(a.kind), a.pool, a.name) <
           std::make_tuple(group_of(b.kind), b.cid, static_cast<int>(b.kind), b.pool, b.name);
  });
  flag_orphans(objects, options.now, options.min_age_seconds);
  return objects;
}

}  // namespace cpi::tools
