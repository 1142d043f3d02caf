#include "cpi/tools/inventory.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "cpi/cloud/names.hpp"

namespace cpi::tools {
namespace {

// What a .meta volume belongs to.
std::string owner_word(ObjectKind meta_kind) {
  switch (meta_kind) {
    case ObjectKind::disk_meta:
      return "disk";
    case ObjectKind::snapshot_meta:
      return "snapshot";
    default:
      return "stemcell";
  }
}

std::string size_column(const OwnedObject& object) {
  if (object.kind == ObjectKind::vm) {
    return "-";
  }
  return human_size(object.capacity);
}

std::string state_column(const OwnedObject& object) {
  switch (object.kind) {
    case ObjectKind::vm:
      return object.state;
    case ObjectKind::disk:
      return object.attached_to.empty() ? "detached" : "attached to " + object.attached_to;
    case ObjectKind::vm_volume:
      return object.role;
    case ObjectKind::pool_record:
      return object.record_pool.empty() ? "" : "in pool " + object.record_pool;
    default:
      return "";
  }
}

std::string notes_column(const OwnedObject& object) {
  std::string out;
  if (object.orphan) {
    out = "ORPHAN: " + object.orphan_reason;
    if (object.recent) {
      out += " (changed recently: cleanup spares it for now)";
    }
  }
  for (const auto& note : object.notes) {
    out += (out.empty() ? "" : "; ") + note;
  }
  return out;
}

}  // namespace

const char* kind_name(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::vm:
      return "vm";
    case ObjectKind::vm_volume:
      return "vm_volume";
    case ObjectKind::disk:
      return "disk";
    case ObjectKind::disk_meta:
      return "disk_meta";
    case ObjectKind::snapshot:
      return "snapshot";
    case ObjectKind::snapshot_meta:
      return "snapshot_meta";
    case ObjectKind::stemcell:
      return "stemcell";
    case ObjectKind::stemcell_meta:
      return "stemcell_meta";
    case ObjectKind::pool_record:
      return "pool_record";
    case ObjectKind::stemcell_incomplete:
      return "stemcell_incomplete";
  }
  return "?";
}

std::optional<ParsedName> parse_object_name(const std::string& name, const std::string& prefix,
                                            bool domain) {
  const auto parsed = cloud::Names{prefix}.parse(name);
  if (!parsed) return std::nullopt;
  using cloud::NameKind;
  if (domain) {
    if (parsed->kind == NameKind::vm) return ParsedName{ObjectKind::vm, parsed->cid, ""};
    return std::nullopt;
  }
  switch (parsed->kind) {
    case NameKind::vm:
      return std::nullopt;  // a volume named like a domain is not one of ours
    case NameKind::vm_root:
      return ParsedName{ObjectKind::vm_volume, parsed->cid, "root"};
    case NameKind::vm_ephemeral:
      return ParsedName{ObjectKind::vm_volume, parsed->cid, "ephemeral"};
    case NameKind::vm_config:
      return ParsedName{ObjectKind::vm_volume, parsed->cid, "config"};
    case NameKind::vm_config_meta:  // a container's settings, kept beside its settings volume
      return ParsedName{ObjectKind::vm_volume, parsed->cid, "settings"};
    case NameKind::disk:
      return ParsedName{ObjectKind::disk, parsed->cid, ""};
    case NameKind::disk_meta:
      return ParsedName{ObjectKind::disk_meta, parsed->cid, ""};
    case NameKind::snapshot:
      return ParsedName{ObjectKind::snapshot, parsed->cid, ""};
    case NameKind::snapshot_meta:
      return ParsedName{ObjectKind::snapshot_meta, parsed->cid, ""};
    case NameKind::stemcell:
      return ParsedName{ObjectKind::stemcell, parsed->cid, ""};
    case NameKind::stemcell_meta:
      return ParsedName{ObjectKind::stemcell_meta, parsed->cid, ""};
    case NameKind::stemcell_incomplete:
      return ParsedName{ObjectKind::stemcell_incomplete, parsed->cid, ""};
    case NameKind::disk_pool:
    case NameKind::snapshot_pool:
      return ParsedName{ObjectKind::pool_record, parsed->cid, ""};
    case NameKind::doctor_probe:  // deleted by doctor itself; a leak is reported there
      return std::nullopt;
  }
  return std::nullopt;
}

void flag_orphans(std::vector<OwnedObject>& objects, std::int64_t now,
                  std::int64_t min_age_seconds) {
  std::set<std::string> vms;
  std::set<std::string> vms_with_root;
  std::set<std::pair<std::string, std::string>> volumes;  // (pool, name)
  // (pool, stemcell cid) -> when its incomplete marker changed
  std::map<std::pair<std::string, std::string>, std::optional<std::int64_t>> incomplete;
  for (const auto& object : objects) {
    if (object.kind == ObjectKind::stemcell_incomplete) {
      incomplete[{object.pool, object.cid}] = object.changed_at;
    }
    if (object.kind == ObjectKind::vm) {
      vms.insert(object.cid);
    } else {
      volumes.insert({object.pool, object.name});
      if (object.kind == ObjectKind::vm_volume && object.role == "root") {
        vms_with_root.insert(object.cid);
      }
    }
  }
  for (auto& object : objects) {
    std::optional<std::int64_t> changed_at = object.changed_at;
    switch (object.kind) {
      case ObjectKind::stemcell_incomplete:
        object.orphan = true;
        object.orphan_reason = "the import of stemcell '" + object.cid + "' did not finish";
        break;
      case ObjectKind::stemcell:
        if (auto it = incomplete.find({object.pool, object.cid}); it != incomplete.end()) {
          object.orphan = true;
          object.orphan_reason = "its import did not finish (create_stemcell was interrupted)";
          // An upload under way keeps writing the volume: its age is that of the newest write.
          if (it->second && (!changed_at || *it->second > *changed_at)) changed_at = it->second;
        }
        break;
      case ObjectKind::vm_volume:
        if (vms.count(object.cid) == 0) {
          object.orphan = true;
          object.orphan_reason = "vm '" + object.cid + "' (its domain) does not exist";
        }
        break;
      case ObjectKind::disk_meta:
      case ObjectKind::snapshot_meta:
      case ObjectKind::stemcell_meta: {
        const std::string base = object.name.substr(0, object.name.size() - 5);
        if (volumes.count({object.pool, base}) == 0) {
          object.orphan = true;
          object.orphan_reason = owner_word(object.kind) + " '" + object.cid +
                                 "' does not exist in pool '" + object.pool + "'";
        }
        break;
      }
      case ObjectKind::vm:
        if (vms_with_root.count(object.cid) == 0) {
          object.notes.push_back("no root volume");
        }
        break;
      case ObjectKind::disk:
        if (!object.attached_to.empty() && vms.count(object.attached_to) == 0) {
          object.notes.push_back("its .meta names vm '" + object.attached_to +
                                 "', which does not exist");
        }
        break;
      default:
        break;
    }
    if (object.orphan && changed_at && now - *changed_at < min_age_seconds) {
      object.recent = true;
    }
  }
}

void flag_incomplete_vms(std::vector<OwnedObject>& objects, std::int64_t now,
                         std::int64_t incomplete_age_seconds) {
  std::set<std::string> unfinished;
  std::set<std::string> young;
  for (auto& object : objects) {
    if (object.kind != ObjectKind::vm || !object.incomplete_since) continue;
    object.orphan = true;
    object.orphan_reason = "create_vm did not finish (incomplete since " +
                           std::to_string(*object.incomplete_since) + ")";
    object.recent = now - *object.incomplete_since < incomplete_age_seconds;
    unfinished.insert(object.cid);
    if (object.recent) young.insert(object.cid);
  }
  for (auto& object : objects) {
    if (object.kind != ObjectKind::vm_volume || unfinished.count(object.cid) == 0) continue;
    object.orphan = true;
    object.orphan_reason = "vm '" + object.cid + "' is an unfinished create_vm";
    object.recent = young.count(object.cid) > 0;
  }
}

void flag_unfinished_snapshots(std::vector<OwnedObject>& objects, std::int64_t now,
                               std::int64_t min_age_seconds) {
  std::set<std::pair<std::string, std::string>> metas;  // (pool, snapshot cid)
  std::map<std::string, std::string> intents;           // snapshot volume name -> disk cid
  for (const auto& object : objects) {
    if (object.kind == ObjectKind::snapshot_meta) metas.insert({object.pool, object.cid});
    if (object.kind == ObjectKind::disk && !object.snapshotting.empty()) {
      intents[object.snapshotting] = object.cid;
    }
  }
  for (auto& object : objects) {
    if (object.kind != ObjectKind::snapshot) continue;
    const auto intent = intents.find(object.name);
    if (intent != intents.end()) {
      object.orphan_reason = "snapshot '" + object.cid + "' is named by the unfinished "
                             "snapshot_disk of disk '" + intent->second + "'";
    } else if (metas.count({object.pool, object.cid}) == 0) {
      object.orphan_reason =
          "snapshot '" + object.cid + "' has no .meta: snapshot_disk did not finish";
    } else {
      continue;
    }
    object.orphan = true;
    object.recent = object.changed_at && now - *object.changed_at < min_age_seconds;
  }
}

nlohmann::json inventory_json(const std::vector<OwnedObject>& objects) {
  nlohmann::json list = nlohmann::json::array();
  nlohmann::json orphans = nlohmann::json::array();
  for (const auto& object : objects) {
    nlohmann::json item = {
        {"kind", kind_name(object.kind)}, {"name", object.name}, {"cid", object.cid}};
    if (!object.role.empty()) item["role"] = object.role;
    if (object.kind == ObjectKind::vm) {
      item["state"] = object.state;
    } else {
      item["pool"] = object.pool;
      item["capacity"] = object.capacity;
      item["allocation"] = object.allocation;
      item["format"] = object.format;
    }
    if (object.kind == ObjectKind::disk) {
      item["attached_to"] =
          object.attached_to.empty() ? nlohmann::json() : nlohmann::json(object.attached_to);
    }
    if (!object.snapshotting.empty()) item["snapshotting"] = object.snapshotting;
    item["notes"] = object.notes;
    item["orphan"] = object.orphan;
    if (object.orphan) {
      item["orphan_reason"] = object.orphan_reason;
      item["recent"] = object.recent;
      orphans.push_back(object.name);
    }
    list.push_back(std::move(item));
  }
  return {{"objects", list}, {"orphans", orphans}};
}

std::string inventory_table(const std::vector<OwnedObject>& objects) {
  std::vector<std::array<std::string, 6>> rows;
  rows.push_back({"KIND", "NAME", "POOL", "SIZE", "STATE", "NOTES"});
  std::size_t orphan_count = 0;
  for (const auto& object : objects) {
    orphan_count += object.orphan ? 1 : 0;
    rows.push_back({kind_name(object.kind), object.name, object.pool, size_column(object),
                    state_column(object), notes_column(object)});
  }
  std::array<std::size_t, 6> widths{};
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i];
      if (i + 1 < row.size()) cell.resize(widths[i] + 2, ' ');
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
  out << '\n' << objects.size() << " objects, " << orphan_count << " orphans";
  out << (orphan_count > 0 ? " (remove them with: cpi cleanup --orphans --config FILE)\n" : "\n");
  return out.str();
}

std::string human_size(std::uint64_t bytes) {
  static const std::array<const char*, 5> k_units{"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t unit = 0;
  std::uint64_t whole = bytes;
  std::uint64_t rest = 0;  // tenths
  while (whole >= 1024 && unit + 1 < k_units.size()) {
    rest = (whole % 1024) * 10 / 1024;
    whole /= 1024;
    ++unit;
  }
  std::string out = std::to_string(whole);
  if (rest > 0 && unit > 0) out += "." + std::to_string(rest);
  return out + " " + k_units[unit];
}

}  // namespace cpi::tools
