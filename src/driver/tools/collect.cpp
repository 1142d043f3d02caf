// take_inventory: every object this CPI owns on the host, and the helpers the tools share.

#include <pugixml.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>

#include "cpi/cloud/names.hpp"
#include "cpi/cloud/meta_record.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::tools {
namespace {

constexpr std::uint64_t k_meta_bytes = 64U << 10;  // what a .meta volume holds at most
constexpr std::uint64_t k_record_bytes = 4096;     // a pool record is one short JSON object

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
    case ObjectKind::pool_record:
      return 4;
    case ObjectKind::stemcell:
    case ObjectKind::stemcell_meta:
    case ObjectKind::stemcell_incomplete:
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
        if (auto meta = hv.find_volume(**pool, cloud::Names{prefix}.meta(name))) {
          const auto facts = read_meta_volume(hv, **meta);
          object.attached_to = facts.value("attached_to", "");
          if (object.kind == ObjectKind::disk && facts.contains("snapshotting")) {
            const auto& intent = facts["snapshotting"];
            object.snapshotting = intent.is_object() ? intent.value("snapshot", "?") : "?";
            object.notes.push_back("its snapshot_disk did not finish (snapshot " +
                                   object.snapshotting + "): the next call on it or cpi "
                                   "cleanup finishes it");
          }
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

// A record-shaped name minus its ".meta" / ".pool" suffix; `name` itself for the rest.
std::string base_name(const OwnedObject& object) {
  const bool record = object.kind == ObjectKind::disk_meta ||
                      object.kind == ObjectKind::snapshot_meta ||
                      object.kind == ObjectKind::stemcell_meta || object.kind == ObjectKind::pool_record;
  return record ? object.name.substr(0, object.name.size() - 5) : object.name;
}

// The volumes of the CPI's own pools: the configured pool, and in the pools its pool records
// name only the disks and snapshots recorded there (with their .meta). A pool record whose
// object is gone from an active recorded pool is an orphan.
void add_owned_volumes(virt::Hypervisor& hv, const config::Config& config,
                       std::vector<OwnedObject>& objects) {
  const std::string& prefix = config.libvirt.name_prefix;
  const std::string& configured = config.libvirt.storage_pool;
  const auto active_list = hv.active_pool_names();
  const std::set<std::string> active(active_list.begin(), active_list.end());
  const std::size_t first = objects.size();
  if (active.count(configured) != 0) add_volumes(hv, configured, prefix, objects);
  std::map<std::string, std::set<std::string>> recorded;  // pool -> volume names
  for (std::size_t i = first; i < objects.size(); ++i) {
    auto& object = objects[i];
    if (object.kind != ObjectKind::pool_record) continue;
    try {
      if (auto pool = read_pool_record(hv, config, base_name(object))) {
        object.record_pool = *pool;
        recorded[*pool].insert(base_name(object));
      } else {
        object.notes.push_back("not a well-formed pool record");
      }
    } catch (const std::exception& e) {
      object.notes.push_back(std::string{"cannot read it: "} + e.what());
    }
  }
  std::set<std::pair<std::string, std::string>> present;  // (pool, name) of recorded objects
  for (const auto& [pool_name, names] : recorded) {
    if (pool_name == configured || active.count(pool_name) == 0) continue;
    std::vector<OwnedObject> found;
    add_volumes(hv, pool_name, prefix, found);
    for (auto& object : found) {
      if (names.count(base_name(object)) == 0) continue;  // not recorded there: not ours
      if (object.kind == ObjectKind::disk || object.kind == ObjectKind::snapshot) {
        present.insert({pool_name, object.name});
      }
      objects.push_back(std::move(object));
    }
  }
  for (auto& object : objects) {
    if (object.kind != ObjectKind::pool_record || object.record_pool.empty()) continue;
    if (active.count(object.record_pool) == 0) {
      object.notes.push_back("records pool '" + object.record_pool + "', which is not active");
    } else if (object.record_pool != configured &&
               present.count({object.record_pool, base_name(object)}) == 0) {
      object.orphan = true;
      object.orphan_reason = "'" + base_name(object) + "' does not exist in pool '" +
                             object.record_pool + "'";
    }
  }
}

}  // namespace

std::optional<std::int64_t> incomplete_since(virt::Hypervisor& hv, virDomain& domain) {
  const auto text = hv.domain_metadata(domain, xml::k_metadata_ns);
  pugi::xml_document doc;
  if (!text || !doc.load_string(text->c_str())) return std::nullopt;
  const auto facts =
      nlohmann::json::parse(doc.document_element().child_value("facts"), nullptr, false);
  if (!facts.is_object()) return std::nullopt;
  const auto it = facts.find(xml::k_incomplete_since);
  if (it == facts.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

std::string snapshot_intent(virt::Hypervisor& hv, virDomain& domain) {
  const auto text = hv.domain_metadata(domain, xml::k_metadata_ns);
  pugi::xml_document doc;
  if (!text || !doc.load_string(text->c_str())) return "";
  const auto facts =
      nlohmann::json::parse(doc.document_element().child_value("facts"), nullptr, false);
  if (!facts.is_object() || !facts.contains("snapshotting")) return "";
  const auto& fact = facts["snapshotting"];
  const std::string disk = fact.is_object() ? fact.value("disk", "") : "";
  return disk.empty() ? "?" : disk;
}

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

std::optional<std::string> read_pool_record(virt::Hypervisor& hv, const config::Config& config,
                                            const std::string& name) {
  const cloud::Names names{config.libvirt.name_prefix};
  const auto parsed = names.parse(name);
  if (!parsed || (parsed->kind != cloud::NameKind::disk && parsed->kind != cloud::NameKind::snapshot)) {
    return std::nullopt;
  }
  auto pool = hv.find_pool(config.libvirt.storage_pool);
  if (!pool) return std::nullopt;
  auto record = hv.find_volume(**pool, names.pool_record(name));
  if (!record) return std::nullopt;
  return cloud::read_pool_record_json(hv.download_volume(**record, k_record_bytes), parsed->cid);
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
    try {
      if (!hv.domain_metadata(**domain, xml::k_metadata_ns)) {
        object.notes.push_back("carries no metadata of this CPI: not made by it, never touched");
      } else {
        object.incomplete_since = incomplete_since(hv, **domain);
        object.snapshotting = snapshot_intent(hv, **domain);
        if (!object.snapshotting.empty()) {
          object.notes.push_back("a snapshot_disk of disk " + object.snapshotting +
                                 " did not finish on it: the next call on it or cpi cleanup "
                                 "finishes it");
        }
      }
    } catch (const std::exception& e) {
      object.notes.push_back(std::string{"cannot read its CPI metadata: "} + e.what());
    }
    objects.push_back(std::move(object));
  }
  add_owned_volumes(hv, config, objects);
  std::sort(objects.begin(), objects.end(), [](const OwnedObject& a, const OwnedObject& b) {
    return std::make_tuple(group_of(a.kind), a.cid, static_cast<int>(a.kind), a.pool, a.name) <
           std::make_tuple(group_of(b.kind), b.cid, static_cast<int>(b.kind), b.pool, b.name);
  });
  flag_orphans(objects, options.now, options.min_age_seconds);
  flag_incomplete_vms(objects, options.now, options.incomplete_age_seconds);
  flag_unfinished_snapshots(objects, options.now, options.min_age_seconds);
  return objects;
}

}  // namespace cpi::tools
