#include "cpi/cloud/names.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <cstdio>
#include <utility>

#include "cpi/errors.hpp"

namespace cpi::cloud {
namespace {

constexpr const char* k_meta = ".meta";
constexpr const char* k_pool = ".pool";
constexpr const char* k_incomplete = ".incomplete";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() > suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string cut(const std::string& text, const std::string& suffix) {
  return text.substr(0, text.size() - suffix.size());
}

// A bare CID: stemcell, vm, disk or snapshot.
std::optional<NameKind> cid_kind(const std::string& text) {
  if (is_stemcell_cid(text)) return NameKind::stemcell;
  if (is_vm_cid(text)) return NameKind::vm;
  if (is_disk_cid(text)) return NameKind::disk;
  if (is_snapshot_cid(text)) return NameKind::snapshot;
  return std::nullopt;
}

std::optional<ParsedName> parse_record(const std::string& base, bool meta) {
  if (meta && ends_with(base, "-config") && is_vm_cid(cut(base, "-config"))) {
    return ParsedName{NameKind::vm_config_meta, cut(base, "-config")};
  }
  const auto kind = cid_kind(base);
  if (!kind) return std::nullopt;
  switch (*kind) {
    case NameKind::stemcell:
      if (meta) return ParsedName{NameKind::stemcell_meta, base};
      return std::nullopt;
    case NameKind::disk:
      return ParsedName{meta ? NameKind::disk_meta : NameKind::disk_pool, base};
    case NameKind::snapshot:
      return ParsedName{meta ? NameKind::snapshot_meta : NameKind::snapshot_pool, base};
    default:
      return std::nullopt;
  }
}

bool is_lower_hex(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

[[noreturn]] void malformed(const std::string& cid, const char* what) {
  throw CpiError(quote_text(cid) + " is not a " + what + " CID of this CPI (" + what +
                 " CIDs look like " +
                 (std::string{what} == "stemcell" ? "sc-<uuid>"
                  : std::string{what} == "vm"     ? "vm-<uuid>"
                  : std::string{what} == "disk"   ? "disk-<15 hex digits>"
                                                  : "snap-<uuid>") +
                 "); nothing was touched");
}

}  // namespace

const char* kind_name(NameKind kind) {
  static constexpr std::array<const char*, 15> k_names{
      "stemcell",   "stemcell_meta",  "stemcell_incomplete", "vm",        "vm_root",
      "vm_ephemeral", "vm_config",    "vm_config_meta",      "disk",      "disk_meta",
      "disk_pool",  "snapshot",       "snapshot_meta",       "snapshot_pool", "doctor_probe"};
  return k_names.at(static_cast<std::size_t>(kind));
}

std::string quote_text(const std::string& text) {
  constexpr std::size_t k_max = 80;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < k_max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += "'";
  if (text.size() > k_max) out += " (" + std::to_string(text.size()) + " bytes, cut)";
  return out;
}

std::string describe(const ParsedName& parsed) {
  const std::string id = "'" + parsed.cid + "'";
  switch (parsed.kind) {
    case NameKind::stemcell:
      return "stemcell " + id;
    case NameKind::stemcell_meta:
      return "the .meta record of stemcell " + id;
    case NameKind::stemcell_incomplete:
      return "the import marker of stemcell " + id;
    case NameKind::vm:
      return "vm " + id;
    case NameKind::vm_root:
      return "the root volume of vm " + id;
    case NameKind::vm_ephemeral:
      return "the ephemeral volume of vm " + id;
    case NameKind::vm_config:
      return "the config drive of vm " + id;
    case NameKind::vm_config_meta:
      return "the settings record of vm " + id;
    case NameKind::disk:
      return "persistent disk " + id;
    case NameKind::disk_meta:
      return "the .meta record of disk " + id;
    case NameKind::disk_pool:
      return "the pool record of disk " + id;
    case NameKind::snapshot:
      return "snapshot " + id;
    case NameKind::snapshot_meta:
      return "the .meta record of snapshot " + id;
    case NameKind::snapshot_pool:
      return "the pool record of snapshot " + id;
    case NameKind::doctor_probe:
      return "the cpi doctor test volume " + id;
  }
  return id;
}

std::optional<ParsedName> parse_unprefixed(const std::string& text) {
  if (const auto kind = cid_kind(text)) return ParsedName{*kind, text};
  for (const char* format : {".qcow2", ".raw"}) {
    const std::string probe = "cpi-doctor-";
    if (ends_with(text, format) && text.size() == probe.size() + 8 + std::strlen(format) &&
        text.compare(0, probe.size(), probe) == 0 && is_lower_hex(text.substr(probe.size(), 8))) {
      return ParsedName{NameKind::doctor_probe, cut(text, format)};
    }
  }
  if (ends_with(text, k_meta)) return parse_record(cut(text, k_meta), true);
  if (ends_with(text, k_pool)) return parse_record(cut(text, k_pool), false);
  if (ends_with(text, k_incomplete) && is_stemcell_cid(cut(text, k_incomplete))) {
    return ParsedName{NameKind::stemcell_incomplete, cut(text, k_incomplete)};
  }
  static const std::array<std::pair<const char*, NameKind>, 3> k_roles{
      {{"-root", NameKind::vm_root},
       {"-ephemeral", NameKind::vm_ephemeral},
       {"-config", NameKind::vm_config}}};
  for (const auto& [suffix, kind] : k_roles) {
    if (ends_with(text, suffix) && is_vm_cid(cut(text, suffix))) {
      return ParsedName{kind, cut(text, suffix)};
    }
  }
  return std::nullopt;
}

Names::Names(std::string prefix) : m_prefix(std::move(prefix)) {}

std::string Names::stemcell(const StemcellCid& cid) const {
  if (!is_stemcell_cid(cid.value)) malformed(cid.value, "stemcell");
  return m_prefix + cid.value;
}

std::string Names::domain(const VmCid& cid) const {
  if (!is_vm_cid(cid.value)) malformed(cid.value, "vm");
  return m_prefix + cid.value;
}

std::string Names::root_volume(const VmCid& cid) const { return domain(cid) + "-root"; }
std::string Names::ephemeral_volume(const VmCid& cid) const { return domain(cid) + "-ephemeral"; }
std::string Names::config_volume(const VmCid& cid) const { return domain(cid) + "-config"; }

std::string Names::disk(const DiskCid& cid) const {
  if (!is_disk_cid(cid.value)) malformed(cid.value, "disk");
  return m_prefix + cid.value;
}

std::string Names::snapshot(const SnapshotCid& cid) const {
  if (!is_snapshot_cid(cid.value)) malformed(cid.value, "snapshot");
  return m_prefix + cid.value;
}

std::string Names::doctor_volume(const std::string& hex8, const std::string& format) const {
  if (hex8.size() != 8 || !is_lower_hex(hex8) || (format != "qcow2" && format != "raw")) {
    throw CpiError("internal: no doctor test volume from " + quote_text(hex8) + "/" + format);
  }
  return m_prefix + "cpi-doctor-" + hex8 + "." + format;
}

std::string Names::meta(const std::string& object) const {
  const auto parsed = parse(object);
  if (!parsed || (parsed->kind != NameKind::stemcell && parsed->kind != NameKind::vm_config &&
                  parsed->kind != NameKind::disk && parsed->kind != NameKind::snapshot)) {
    throw CpiError("internal: " + quote_text(object) + " has no .meta record");
  }
  return object + k_meta;
}

std::string Names::incomplete_marker(const std::string& object) const {
  if (!is(object, NameKind::stemcell)) {
    throw CpiError("internal: " + quote_text(object) + " has no import marker");
  }
  return object + k_incomplete;
}

std::string Names::pool_record(const std::string& object) const {
  const auto parsed = parse(object);
  if (!parsed || (parsed->kind != NameKind::disk && parsed->kind != NameKind::snapshot)) {
    throw CpiError("internal: " + quote_text(object) + " has no pool record");
  }
  return object + k_pool;
}

std::optional<ParsedName> Names::parse(const std::string& name) const {
  if (name.size() <= m_prefix.size() || name.compare(0, m_prefix.size(), m_prefix) != 0) {
    return std::nullopt;
  }
  return parse_unprefixed(name.substr(m_prefix.size()));
}

bool Names::is(const std::string& name, NameKind kind) const {
  const auto parsed = parse(name);
  return parsed && parsed->kind == kind;
}

std::string pool_record_json(const std::string& cid, const std::string& pool) {
  return nlohmann::json{{"cid", cid}, {"pool", pool}}.dump();
}

std::optional<std::string> read_pool_record_json(const std::string& text, const std::string& cid) {
  const auto end = text.find('\0');
  const auto parsed = nlohmann::json::parse(text.substr(0, end), nullptr, false);
  if (!parsed.is_object()) return std::nullopt;
  const auto found_cid = parsed.find("cid");
  const auto pool = parsed.find("pool");
  if (found_cid == parsed.end() || !found_cid->is_string() || *found_cid != cid ||
      pool == parsed.end() || !pool->is_string() || pool->get<std::string>().empty()) {
    return std::nullopt;
  }
  return pool->get<std::string>();
}

}  // namespace cpi::cloud
