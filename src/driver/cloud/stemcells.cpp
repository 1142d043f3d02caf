// LibvirtCloud's stemcell methods: create_stemcell (the import is the VmKind's), delete_stemcell,
// and the stemcells kept for the VMs built on them.

#include <spdlog/spdlog.h>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/image_reader.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {

// A daemon or connection lost half-way answers TransientCloudError (ok_to_retry): the rollback
// removes what it can, and what it could not reach is an incomplete stemcell (its marker is still
// there) that create_vm refuses and `cpi cleanup --orphans` removes.
StemcellCid LibvirtCloud::create_stemcell(const std::string& image_path,
                                          const nlohmann::json& cloud_properties) {
  const auto props = parse_stemcell_props(cloud_properties);
  return retriable_when_daemon_lost([&] { return m_kind->import_stemcell(image_path, props); });
}

virt::Volume LibvirtCloud::require_stemcell(virStoragePool& target, const StemcellCid& cid) {
  const std::string name = object_name(cid.value);
  const std::string again = "upload the stemcell again (bosh upload-stemcell --fix) and retry";
  auto volume = m_hv.find_volume(target, name);
  if (!volume) {
    throw CloudError("stemcell '" + cid.value + "' is not in storage pool '" +
                     m_config.libvirt.storage_pool + "' on " + m_hv.uri() +
                     ": it was deleted (or never uploaded to this host); " + again);
  }
  if (m_hv.find_volume(target, incomplete_marker(name))) {
    throw CloudError("stemcell '" + cid.value + "' is incomplete: its create_stemcell did "
                     "not finish (the upload was interrupted), so its volume cannot be used; " +
                     again + " (cpi cleanup --orphans removes the incomplete one)");
  }
  if (m_hv.find_volume(target, meta_volume(name)) &&
      m_storage.read_meta(target, name).value("deleted", false)) {
    throw CloudError("stemcell '" + cid.value + "' was deleted (delete_stemcell keeps its "
                     "volume only until the VMs built on it are gone); " + again);
  }
  return std::move(*volume);
}

// VMs' root disks are qcow2 overlays on the stemcell volume: deleting it under them would break
// them at their next start. A stemcell still in use is only marked deleted (in its .meta
// volume) and removed by delete_vm once its last VM is gone.
void LibvirtCloud::delete_stemcell(const StemcellCid& cid) {
  if (!deletable("delete_stemcell", NameKind::stemcell, cid.value)) return;
  const std::string name = object_name(cid.value);
  virStoragePool& target = m_storage.pool();
  auto volume = m_hv.find_volume(target, name);
  if (!volume) {
    spdlog::info("stemcell {} is already gone", cid.value);
    m_storage.delete_if_exists(target, meta_volume(name));
    m_storage.delete_if_exists(target, incomplete_marker(name));
    return;
  }
  const auto users = stemcell_users(target, m_hv.volume_path(**volume));
  if (users > 0) {
    m_storage.write_meta(target, name, {{"deleted", true}});
    spdlog::info("stemcell {} is still the base of {} VM root disk(s): kept until they are "
                 "deleted",
                 cid.value, users);
    return;
  }
  m_hv.delete_volume(**volume);
  m_storage.delete_if_exists(target, meta_volume(name));
  m_storage.delete_if_exists(target, incomplete_marker(name));
  spdlog::info("deleted stemcell {}", cid.value);
}

std::size_t LibvirtCloud::stemcell_users(virStoragePool& target, const std::string& path) {
  std::size_t users = 0;
  for (const auto& volume_name : m_hv.list_volume_names(target)) {
    if (!m_names.is(volume_name, NameKind::vm_root)) continue;
    auto volume = m_hv.find_volume(target, volume_name);
    if (!volume) continue;
    const auto facts = xml::read_volume_xml(m_hv.volume_xml(**volume));
    if (facts.backing_path && *facts.backing_path == path) ++users;
  }
  return users;
}

void LibvirtCloud::collect_stemcell(const StemcellCid& cid) {
  const std::string name = object_name(cid.value);
  virStoragePool& target = m_storage.pool();
  if (!m_hv.find_volume(target, meta_volume(name))) return;  // not marked deleted
  if (!m_storage.read_meta(target, name).value("deleted", false)) return;
  auto volume = m_hv.find_volume(target, name);
  if (volume && stemcell_users(target, m_hv.volume_path(**volume)) == 0) {
    m_hv.delete_volume(**volume);
    spdlog::info("deleted stemcell {} (its last VM is gone)", cid.value);
  }
  if (!volume || !m_hv.find_volume(target, name)) {
    m_storage.delete_if_exists(target, meta_volume(name));
  }
}

}  // namespace cpi::cloud
