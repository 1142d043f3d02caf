// inspect_cid: what the host knows about one VM, disk, snapshot or stemcell.

#include <pugixml.hpp>

#include <optional>
#include <set>
#include <system_error>

#include "cpi/cloud/names.hpp"
#include "cpi/tools/inspect.hpp"
#include "cpi/tools/local_checks.hpp"
#include "cpi/util/redact.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::tools {
namespace {

struct Found {
  std::string pool_name;
  virt::Pool pool;
  virt::Volume volume;
};

// The volume `name` in the configured pool, else (a disk or snapshot) in the pool its pool
// record names: the CPI's own pools only, as the CPI itself looks.
std::optional<Found> locate(virt::Hypervisor& hv, const config::Config& config,
                            const std::string& name) {
  std::vector<std::string> pools{config.libvirt.storage_pool};
  if (auto recorded = read_pool_record(hv, config, name)) pools.push_back(*recorded);
  for (const auto& pool_name : pools) {
    auto pool = hv.find_pool(pool_name);
    if (!pool) continue;
    if (auto volume = hv.find_volume(**pool, name)) {
      return Found{pool_name, std::move(*pool), std::move(*volume)};
    }
  }
  return std::nullopt;
}

nlohmann::json volume_json(virt::Hypervisor& hv, const std::string& pool_name,
                           virStorageVol& volume) {
  const auto facts = xml::read_volume_xml(hv.volume_xml(volume));
  const auto info = hv.volume_info(volume);
  nlohmann::json out = {{"pool", pool_name},         {"name", facts.name},
                        {"format", facts.format},    {"path", facts.path},
                        {"capacity", info.capacity}, {"allocation", info.allocation}};
  if (facts.backing_path) out["backing_path"] = *facts.backing_path;
  return out;
}

nlohmann::json meta_of(virt::Hypervisor& hv, virStoragePool& pool, const std::string& name,
                       const cloud::Names& names) {
  try {
    auto meta = hv.find_volume(pool, names.meta(name));
    return meta ? read_meta_volume(hv, **meta) : nlohmann::json::object();
  } catch (const std::exception& e) {
    return {{"error", std::string{"cannot read "} + name + ".meta: " + e.what()}};
  }
}

std::uint64_t memory_mib(const pugi::xml_node& memory) {
  const std::string unit = memory.attribute("unit").value();
  const auto value = memory.text().as_ullong();
  if (unit == "b" || unit == "bytes") return value >> 20U;
  if (unit == "MiB" || unit == "M") return value;
  if (unit == "GiB" || unit == "G") return value << 10U;
  return value >> 10U;  // KiB, libvirt's default
}

nlohmann::json console_json(const HostContext& host, const std::string& path, int lines) {
  nlohmann::json out = {{"path", path}};
  if (path.empty()) {
    out["note"] = "the domain logs no serial console to a file";
  } else if (!host.local()) {
    out["note"] = "the log is on the libvirt host of " + host.display_uri +
                  ": read it there (sudo tail -n " + std::to_string(lines) + " " + path + ")";
  } else {
    try {
      out["tail"] = tail_file(path, lines);
    } catch (const std::system_error& e) {
      out["note"] = std::string{e.what()} + (e.code() == std::errc::permission_denied
                                                 ? " (run as root: libvirt writes it owned by root)"
                                                 : "");
    }
  }
  return out;
}

nlohmann::json inspect_vm(virt::Hypervisor& hv, const config::Config& config,
                          const HostContext& host, const std::string& cid, int lines) {
  const std::string& prefix = config.libvirt.name_prefix;
  const std::string own_name = cloud::Names{prefix}.domain({cid});
  nlohmann::json out = {{"kind", "vm"}, {"cid", cid}, {"name", own_name}};
  auto domain = hv.find_domain(own_name);
  out["found"] = domain.has_value();
  if (!domain) {
    nlohmann::json leftovers = nlohmann::json::array();
    const cloud::Names names{prefix};
    const cloud::VmCid vm{cid};
    for (const auto& volume_name :
         {names.root_volume(vm), names.ephemeral_volume(vm), names.config_volume(vm)}) {
      if (auto found = locate(hv, config, volume_name)) {
        leftovers.push_back(volume_json(hv, found->pool_name, *found->volume));
      }
    }
    out["leftover_volumes"] = leftovers;
    return out;
  }
  const bool active = hv.domain_active(**domain);
  out["state"] = domain_state_name(hv.domain_state(**domain));
  // The persistent definition is what the CPI keeps (attach/detach change it and the live one); a
  // running VM's live definition tells whether each volume is really plugged in.
  const std::string text = hv.domain_xml(**domain, true);
  std::set<std::string> live;
  if (active) {
    for (const auto& disk : xml::read_domain_xml(hv.domain_xml(**domain, false)).disks) {
      live.insert(disk.pool + "/" + disk.volume);
    }
  }
  pugi::xml_document doc;
  doc.load_string(text.c_str());
  out["vcpus"] = doc.child("domain").child("vcpu").text().as_uint();
  out["memory_mib"] = memory_mib(doc.child("domain").child("memory"));
  const auto facts = xml::read_domain_xml(text);
  nlohmann::json volumes = nlohmann::json::array();
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& disk : facts.disks) {
    const auto parsed = parse_object_name(disk.volume, prefix, false);
    const bool persistent = cloud::is_disk_cid(disk.serial);
    nlohmann::json item = {{"role", persistent ? "persistent"
                                    : parsed   ? parsed->role
                                               : "other"},
                           {"pool", disk.pool},
                           {"name", disk.volume},
                           {"target", disk.target},
                           {"bus", disk.bus},
                           {"serial", disk.serial}};
    auto pool = disk.pool.empty() ? std::nullopt : hv.find_pool(disk.pool);
    auto volume = pool ? hv.find_volume(**pool, disk.volume) : std::nullopt;
    item["present"] = volume.has_value();
    if (active) item["live"] = live.count(disk.pool + "/" + disk.volume) > 0;
    if (volume) item.update(volume_json(hv, disk.pool, **volume));
    if (persistent) disks.push_back(disk.serial);
    volumes.push_back(std::move(item));
  }
  out["volumes"] = volumes;
  out["persistent_disks"] = disks;
  nlohmann::json nics = nlohmann::json::array();
  for (const auto& nic : facts.nics) {
    nics.push_back({{"mac", nic.mac}, {"type", nic.type}, {"source", nic.source}});
  }
  out["nics"] = nics;
  out["facts"] = nlohmann::json::object();
  if (auto meta = hv.domain_metadata(**domain, xml::k_metadata_ns)) {
    pugi::xml_document facts_doc;
    facts_doc.load_string(meta->c_str());
    auto parsed =
        nlohmann::json::parse(facts_doc.document_element().child_value("facts"), nullptr, false);
    if (parsed.is_object()) out["facts"] = util::mask_secret_values(parsed);
  }
  out["console_log"] = console_json(host, facts.console_log, lines);
  return out;
}

nlohmann::json inspect_disk(virt::Hypervisor& hv, const config::Config& config,
                            const std::string& cid) {
  const std::string& prefix = config.libvirt.name_prefix;
  const cloud::Names names{prefix};
  const std::string own_name = names.disk({cid});
  nlohmann::json out = {{"kind", "disk"}, {"cid", cid}, {"name", own_name}};
  auto found = locate(hv, config, own_name);
  out["found"] = found.has_value();
  if (!found) return out;
  out["volume"] = volume_json(hv, found->pool_name, *found->volume);
  const auto meta = meta_of(hv, *found->pool, own_name, names);
  out["metadata"] = util::mask_secret_values(meta.value("metadata", nlohmann::json::object()));
  out["attached_to"] = meta.contains("attached_to") ? meta["attached_to"] : nlohmann::json();
  if (meta.contains("error")) out["meta_error"] = meta["error"];
  // Which domains really have it (by serial), whatever the .meta says.
  nlohmann::json in_domains = nlohmann::json::array();
  for (const auto& name : hv.list_domain_names()) {
    const auto parsed = parse_object_name(name, prefix, true);
    auto domain = parsed ? hv.find_domain(name) : std::nullopt;
    if (!domain) continue;
    for (const auto& disk : xml::read_domain_xml(hv.domain_xml(**domain, true)).disks) {
      if (disk.serial == cid) in_domains.push_back(parsed->cid);
    }
  }
  out["attached_in"] = in_domains;
  nlohmann::json snapshots = nlohmann::json::array();
  for (const auto& name : hv.list_volume_names(*found->pool)) {
    const auto parsed = parse_object_name(name, prefix, false);
    if (!parsed || parsed->kind != ObjectKind::snapshot) continue;
    const auto snap_meta = meta_of(hv, *found->pool, name, cloud::Names{prefix});
    if (snap_meta.value("disk", "") != cid) continue;
    auto volume = hv.find_volume(*found->pool, name);
    if (!volume) continue;
    auto item = volume_json(hv, found->pool_name, **volume);
    item["cid"] = parsed->cid;
    item["metadata"] =
        util::mask_secret_values(snap_meta.value("metadata", nlohmann::json::object()));
    snapshots.push_back(std::move(item));
  }
  out["snapshots"] = snapshots;
  return out;
}

nlohmann::json inspect_volume(virt::Hypervisor& hv, const config::Config& config,
                              const std::string& kind, const std::string& cid) {
  const std::string& prefix = config.libvirt.name_prefix;
  const cloud::Names names{prefix};
  const std::string own_name = kind == "snapshot" ? names.snapshot({cid}) : names.stemcell({cid});
  nlohmann::json out = {{"kind", kind}, {"cid", cid}, {"name", own_name}};
  auto found = locate(hv, config, own_name);
  out["found"] = found.has_value();
  if (!found) return out;
  out["volume"] = volume_json(hv, found->pool_name, *found->volume);
  if (kind == "snapshot") {
    const auto meta = meta_of(hv, *found->pool, own_name, names);
    out["disk"] = meta.value("disk", "");
    out["metadata"] = util::mask_secret_values(meta.value("metadata", nlohmann::json::object()));
  } else {  // stemcell: the VMs whose root overlay it backs
    out["deleted"] = meta_of(hv, *found->pool, own_name, names).value("deleted", false);
    const std::string path = out["volume"].value("path", "");
    nlohmann::json used_by = nlohmann::json::array();
    for (const auto& name : hv.list_volume_names(*found->pool)) {
      const auto parsed = parse_object_name(name, prefix, false);
      if (!parsed || parsed->role != "root") continue;
      auto volume = hv.find_volume(*found->pool, name);
      if (!volume) continue;
      const auto facts = xml::read_volume_xml(hv.volume_xml(**volume));
      if (facts.backing_path == path) used_by.push_back(parsed->cid);
    }
    out["used_by"] = used_by;
  }
  return out;
}

}  // namespace

nlohmann::json inspect_cid(virt::Hypervisor& hv, const config::Config& config,
                           const HostContext& host, const std::string& cid, int log_lines) {
  const auto parsed = cloud::parse_unprefixed(cid);
  const auto kind = parsed && parsed->cid == cid ? std::optional{parsed->kind} : std::nullopt;
  if (kind == cloud::NameKind::vm) return inspect_vm(hv, config, host, cid, log_lines);
  if (kind == cloud::NameKind::disk) return inspect_disk(hv, config, cid);
  if (kind == cloud::NameKind::snapshot) return inspect_volume(hv, config, "snapshot", cid);
  if (kind == cloud::NameKind::stemcell) return inspect_volume(hv, config, "stemcell", cid);
  return {{"kind", "unknown"},
          {"cid", cid},
          {"found", false},
          {"error", cloud::quote_text(cid) + " is " +
                        (parsed ? cloud::describe(*parsed) + ", not a CID" : "not a CID") +
                        " of this CPI (vm-<uuid>, disk-<15 hex>, snap-<uuid> or sc-<uuid>)"}};
}

}  // namespace cpi::tools
