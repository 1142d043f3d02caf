#include "cpi/tools/inventory.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "cpi/cloud/ids.hpp"

namespace cpi::tools {
namespace {

constexpr const char* k_meta_suffix = ".meta";
constexpr const char* k_incomplete_suffix = ".incomplete";
constexpr std::array<const char*, 3> k_vm_roles{"root", "ephemeral", "config"};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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
    case ObjectKind::stemcell_incomplete:
      return "stemcell_incomplete";
  }
  return "?";
}

std::optional<ParsedName> parse_object_name(const std::string& name, const std::string& prefix,
                                            bool domain) {
  if (name.compare(0, prefix.size(), prefix) != 0) {
    return std::nullopt;
  }
  const std::string rest = name.substr(prefix.size());
  if (domain) {
    if (cloud::is_vm_cid(rest)) {
      return ParsedName{ObjectKind::vm, rest, ""};
    }
    return std::nullopt;
  }
  if (ends_with(rest, k_meta_suffix)) {
    const std::string base = rest.substr(0, rest.size() - std::string{k_meta_suffix}.size());
    if (cloud::is_disk_cid(base)) {
      return ParsedName{ObjectKind::disk_meta, base, ""};
    }
    if (cloud::is_snapshot_cid(base)) {
      return ParsedName{ObjectKind::snapshot_meta, base, ""};
    }
    if (cloud::is_stemcell_cid(base)) {
      return ParsedName{ObjectKind::stemcell_meta, base, ""};
    }
    // A container's settings, kept beside its settings volume (lxc).
    if (ends_with(base, "-config") && cloud::is_vm_cid(base.substr(0, base.size() - 7))) {
      return ParsedName{ObjectKind::vm_volume, base.substr(0, base.size() - 7), "settings"};
    }
    return std::nullopt;
  }
  if (ends_with(rest, k_incomplete_suffix)) {
    const std::string base = rest.substr(0, rest.size() - std::string{k_incomplete_suffix}.size());
    if (cloud::is_stemcell_cid(base)) {
      return ParsedName{ObjectKind::stemcell_incomplete, base, ""};
    }
    return std::nullopt;
  }
  if (cloud::is_disk_cid(rest)) {
    return ParsedName{ObjectKind::disk, rest, ""};
  }
  if (cloud::is_snapshot_cid(rest)) {
    return ParsedName{ObjectKind::snapshot, rest, ""};
  }
  if (cloud::is_stemcell_cid(rest)) {
    return ParsedName{ObjectKind::stemcell, rest, ""};
  }
  for (const char* role : k_vm_roles) {
    const std::string suffix = std::string{"-"} + role;
    if (ends_with(rest, suffix)) {
      const std::string vm = rest.substr(0, rest.size() - suffix.size());
      if (cloud::is_vm_cid(vm)) {
        return ParsedName{ObjectKind::vm_volume, vm, role};
      }
    }
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
          changed_at = it->second;
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
