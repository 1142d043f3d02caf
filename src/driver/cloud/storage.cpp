// Storage (storage.hpp): the configured pool, volume lookup, the small `.meta` volumes, pool
// records and the pool-room rule.

#include "cpi/cloud/storage.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

#include "cpi/cloud/meta_record.hpp"
#include "cpi/errors.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {
virStoragePool& Storage::pool_handle() {
  if (m_pool) {
    return **m_pool;
  }
  const auto& name = m_config.storage_pool;
  const auto& dir = m_config.store_dir;
  auto found = m_hv.find_pool(name);
  if (!found) {
    spdlog::info("storage pool '{}' does not exist: creating it as a dir pool at '{}'", name, dir);
    // The likely fix is in the config: the message says where to look, with libvirt's error.
    const std::string what = "creating storage pool '" + name + "' at '" + dir +
                             "' (check libvirt.store_dir and that libvirtd may write there)";
    try {
      auto made = m_hv.define_pool(xml::dir_pool_xml(name, dir));
      try {
        m_hv.build_pool(*made);
        m_hv.start_pool(*made);
        m_hv.set_pool_autostart(*made);
      } catch (...) {
        try {
          m_hv.undefine_pool(*made);
        } catch (const std::exception& e) {
          spdlog::warn("removing half-made pool '{}': {}", name, e.what());
        }
        throw;
      }
      found = std::move(made);
    } catch (const virt::LibvirtError& e) {
      throw virt::LibvirtError(e.code(), what + ": " + e.what());
    }
  }
  m_pool = std::move(*found);
  return **m_pool;
}

virStoragePool& Storage::pool() {
  virStoragePool& found = pool_handle();
  if (!m_pool_active) {
    require_active(found, m_config.storage_pool);
    m_pool_active = true;
  }
  return found;
}

void Storage::require_active(virStoragePool& target, const std::string& name) {
  if (!m_hv.pool_info(target).active) {
    throw CloudError("storage pool '" + name +
                     "' is inactive: start it (virsh pool-start " + name + ") or set autostart");
  }
}

virt::Pool Storage::require_active_pool(const std::string& name) {
  auto found = m_hv.find_pool(name);
  if (!found) {
    throw CloudError("storage pool '" + name + "' does not exist on " + m_hv.uri());
  }
  require_active(**found, name);
  return std::move(*found);
}

// Lookups in the configured pool use its handle alone (pool_handle: its state is not read first):
// only a lookup the pool refuses reads it, for the error.
std::optional<Located> Storage::locate(const std::string& volume_name) {
  if (!m_names.is(volume_name, NameKind::disk) && !m_names.is(volume_name, NameKind::snapshot)) {
    throw CpiError("internal: locate(" + quote_text(volume_name) + ") is no disk or snapshot");
  }
  const auto& configured = m_config.storage_pool;
  virStoragePool& ours = pool_handle();
  if (auto volume =
          in_pool(ours, configured, [&] { return m_hv.find_volume(ours, volume_name); })) {
    return Located{configured, virt::another_reference(ours), std::move(*volume)};
  }
  // Disks created with cloud_properties.storage_pool (or next to a VM) live elsewhere: only
  // the pool this CPI recorded for the volume is looked at, by name.
  const auto recorded = recorded_pool(volume_name);
  if (!recorded || *recorded == configured) return std::nullopt;
  auto other = m_hv.find_pool(*recorded);
  if (!other) {
    throw CloudError("'" + volume_name + "' is recorded in storage pool '" + *recorded +
                     "', which does not exist on " + m_hv.uri() + " (define it again)");
  }
  if (auto volume =
          in_pool(**other, *recorded, [&] { return m_hv.find_volume(**other, volume_name); })) {
    return Located{*recorded, std::move(*other), std::move(*volume)};
  }
  return std::nullopt;
}

std::string Storage::not_on_this_host(const std::string& what) {
  return what + " is not on " + m_hv.uri() + " (storage pool '" + m_config.storage_pool +
         "', or the pool its record names): it was deleted, or it lives on another libvirt host "
         "(with a cpi-config each host is its own cpi, and a call only sees the host its context "
         "names)";
}

namespace {

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;
constexpr std::uint64_t k_record_bytes = 4096;  // a pool record is one short JSON object

std::string mib(std::uint64_t bytes) { return std::to_string(bytes / k_mib) + " MiB"; }

}  // namespace

// Thin provisioning: raw volumes need all of their growth free in the pool now; a qcow2 volume
// (allocated as the guest writes) may be as large as the pool's whole capacity, never larger,
// since it could never be filled (README "Disk sizes").
void Storage::require_room(virStoragePool& target, const std::string& pool_name,
                           const std::vector<RoomNeed>& needs) {
  require_room(m_hv.pool_info(target), pool_name, needs);
}

void Storage::require_room(const virt::PoolInfo& info, const std::string& pool_name,
                           const std::vector<RoomNeed>& needs) {
  std::uint64_t raw_growth = 0;
  std::vector<const RoomNeed*> raw;
  for (const auto& need : needs) {
    if (need.format != "raw") continue;
    raw_growth += need.growth;  // each at most 64 TiB (k_max_size_mib): the sum cannot wrap
    raw.push_back(&need);
  }
  if (info.available < raw_growth) {
    std::string what;
    for (const auto* need : raw) {
      if (!what.empty()) what += " and ";
      what += raw.size() == 1 ? need->what : need->what + " (" + mib(need->growth) + ")";
    }
    throw NoDiskSpace("storage pool '" + pool_name + "' has " + mib(info.available) + " free, " +
                      what + (raw.size() == 1 ? " needs " : " need ") + mib(raw_growth) +
                      " more (raw disks are allocated whole)");
  }
  for (const auto& need : needs) {
    if (need.format == "raw" || info.capacity >= need.capacity) continue;
    throw NoDiskSpace("storage pool '" + pool_name + "' holds " + mib(info.capacity) + " in all (" +
                      mib(info.available) + " free), " + need.what + " of " + mib(need.capacity) +
                      " could never be filled: a " + need.format +
                      " disk may be at most the pool's capacity");
  }
}

bool Storage::supports_backing_store(const std::string& pool_type) {
  return pool_type == "dir" || pool_type == "fs" || pool_type == "netfs";
}

bool Storage::pool_has_overlays(virStoragePool& target) {
  return supports_backing_store(pool_facts(target).type);
}

xml::PoolFacts Storage::pool_facts(virStoragePool& target) {
  return xml::read_pool_xml(m_hv.pool_xml(target));
}

void Storage::delete_if_exists(virStoragePool& target, const std::string& volume_name) {
  if (auto volume = m_hv.find_volume(target, volume_name)) {
    m_hv.delete_volume(**volume);
    spdlog::info("deleted volume {}", volume_name);
  }
}

virt::Volume Storage::upload_bytes(virStoragePool& target, const std::string& name,
                                   const std::string& bytes, const std::string& mode) {
  virt::StringSource source{bytes};
  return upload_new_volume(
      target, xml::volume_xml({name, std::max<std::uint64_t>(bytes.size(), 512), "raw", mode}),
      name, source, bytes.size(), false);
}

virt::Volume Storage::upload_new_volume(virStoragePool& target, const std::string& volume_xml,
                                        const std::string& name, virt::ByteSource& source,
                                        std::uint64_t length, bool sparse) {
  auto volume = m_hv.create_volume(target, volume_xml);
  try {
    m_hv.upload_volume(*volume, source, length, sparse);
  } catch (...) {
    try {
      m_hv.delete_volume(*volume);
    } catch (const std::exception& e) {
      spdlog::warn("removing half-written volume '{}': {}", name, e.what());
    }
    throw;
  }
  return volume;
}

nlohmann::json Storage::read_meta(virStoragePool& target, const std::string& name) {
  const auto meta_name = m_names.meta(name);
  auto volume = m_hv.find_volume(target, meta_name);
  if (!volume) return nlohmann::json::object();
  const auto decoded = decode_meta(m_hv.download_volume(**volume, k_meta_volume_bytes));
  if (decoded.slot < 0) {
    spdlog::warn("'{}' holds no valid record; treating it as empty", meta_name);
  }
  return decoded.record;
}

// Crash-safe (meta_record.hpp): the new record goes into the slot that does not hold the newest.
void Storage::write_meta(virStoragePool& target, const std::string& name,
                         const nlohmann::json& meta) {
  const auto meta_name = m_names.meta(name);
  auto volume = m_hv.find_volume(target, meta_name);
  std::string old_bytes;
  if (volume) {
    old_bytes = m_hv.download_volume(**volume, k_meta_volume_bytes);
  } else {
    volume = m_hv.create_volume(target,
                                xml::volume_xml({meta_name, k_meta_volume_bytes, "raw", "0600"}));
  }
  std::string bytes;
  try {
    bytes = encode_meta(meta, decode_meta(old_bytes), old_bytes);
  } catch (const std::length_error& e) {
    throw CloudError("metadata of '" + name + "' is too large: " + e.what());
  }
  virt::StringSource source{bytes};
  m_hv.upload_volume(**volume, source, bytes.size(), false);
}

std::optional<std::string> Storage::recorded_pool(const std::string& volume_name) {
  const std::string record = m_names.pool_record(volume_name);
  const auto cid = m_names.parse(volume_name)->cid;
  virStoragePool& ours = pool_handle();
  auto volume =
      in_pool(ours, m_config.storage_pool, [&] { return m_hv.find_volume(ours, record); });
  if (!volume) return std::nullopt;
  auto found = read_pool_record_json(m_hv.download_volume(**volume, k_record_bytes), cid);
  if (!found) spdlog::warn("'{}' is not a pool record of {}; ignoring it", record, cid);
  return found;
}

void Storage::write_pool_record(const std::string& volume_name, const std::string& pool_name) {
  const std::string record = m_names.pool_record(volume_name);
  const auto cid = m_names.parse(volume_name)->cid;
  upload_bytes(pool(), record, pool_record_json(cid, pool_name), "0600");
}

void Storage::remove_pool_record(const std::string& volume_name) {
  delete_if_exists(pool(), m_names.pool_record(volume_name));
}

}  // namespace cpi::cloud
