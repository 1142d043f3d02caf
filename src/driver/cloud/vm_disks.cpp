// LibvirtCloud's attach_disk, detach_disk and get_disks (the checks every guest shares), and
// MachineVms' side of attach and detach: hot-plugged disks and the config drive rewrite for API
// v1. ContainerVms' side: containers.cpp.

#include <spdlog/spdlog.h>

#include "cpi/agent/iso_image.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/errors.hpp"
#include "cpi/util/file_lock.hpp"
#include "cpi/util/test_hook.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {
namespace {

constexpr std::uint64_t k_max_iso = 16U << 20;

const xml::DiskDevice* find_serial(const xml::DomainFacts& facts, const std::string& serial) {
  for (const auto& disk : facts.disks) {
    if (disk.serial == serial) return &disk;
  }
  return nullptr;
}
// The answer points into `facts`: never into a temporary.
const xml::DiskDevice* find_serial(xml::DomainFacts&& facts, const std::string& serial) = delete;

}  // namespace

// Two sources, because the record may be missing, stale or edited by hand: the VMs the record
// names (reconciled with their definitions) and every domain on the host (domains_holding, a
// scan: attach_disk is rare, and one disk attached to two VMs is the worst thing a CPI can do).
void LibvirtCloud::require_free_for(const VmCid& vm, const DiskCid& disk, Located& located,
                                    const DiskRef& ref, nlohmann::json& meta) {
  for (const auto& holder : reconcile_record(located, ref, meta)) {
    if (holder != vm.value) {
      throw CloudError("disk '" + disk.value + "' is attached to vm '" + holder +
                       "': detach it there first");
    }
  }
  const std::string own = object_name(vm.value);
  for (const auto& name : domains_holding(ref)) {
    if (name != own) {
      throw CloudError("disk '" + disk.value + "' is held by domain '" + name +
                       "' (its live or persistent definition names the volume), whatever the "
                       "disk's record says: detach it there first");
    }
  }
}

std::string LibvirtCloud::disk_bus() const { return m_config.libvirt.storage_controller; }

std::string LibvirtCloud::cdrom_bus() const {
  return m_config.libvirt.machine.find("q35") != std::string::npos ? "sata" : "ide";
}

nlohmann::json LibvirtCloud::disk_hint(const std::string& serial, const std::string& bus,
                                       const std::string& target) const {
  // Xen's block frontend has no serial: the guest names the disk after its target (xvdb).
  if (bus == "xen") return {{"path", "/dev/" + target}};
  if (bus == "scsi") return {{"path", "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_" + serial}};
  if (bus == "sata" || bus == "ide") return {{"path", "/dev/disk/by-id/ata-QEMU_HARDDISK_" + serial}};
  return {{"path", "/dev/disk/by-id/virtio-" + serial}};
}

// Locks: the VM's (one device change per VM at a time), then the disk's (its record, and one
// VM per disk); always in this order. The record gets `attaching` before the hot-plug and
// `attached_to` after it, so a kill in between leaves an intent the next call reconciles.
nlohmann::json LibvirtCloud::attach_disk(const VmCid& vm, const DiskCid& disk, int api_version) {
  if (!check_cid("attach_disk", NameKind::disk, disk.value)) {
    throw DiskNotFound("attach_disk: " + quote_text(disk.value) + " is no disk CID of this CPI");
  }
  auto domain = require_domain(vm);
  const std::string disk_name = object_name(disk.value);
  util::FileLock vm_lock{m_names.vm_lock(vm)};
  util::FileLock disk_lock{m_names.disk_lock(disk)};
  auto located = m_storage.locate(disk_name);
  if (!located) {
    throw DiskNotFound("attach_disk: " + m_storage.not_on_this_host("disk '" + disk.value + "'") +
                       "; vm '" + vm.value + "' can only get a disk of its own host");
  }
  const auto ref = disk_ref(disk, *located);
  auto meta = m_storage.read_meta(*located->pool, disk_name);
  remove_partial_snapshot(*located, disk_name, meta);
  require_free_for(vm, disk, *located, ref, meta);
  return m_kind->attach(*domain, vm, disk, *located, ref, meta, api_version);
}

void LibvirtCloud::undo_attach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                               Located& located, const DiskRef& ref, const std::string& device,
                               int api_version) {
  try {
    if (domain_holds(domain, ref)) m_hv.detach_device(domain, device, true);
  } catch (const std::exception& e) {
    spdlog::warn("undoing the attachment of {}: {}", disk.value, e.what());
  }
  if (api_version < 2) {  // the settings may already name the disk: an agent would wait for it
    try {
      rewrite_config_drive(domain, vm, disk.value, nullptr);
    } catch (const std::exception& e) {
      spdlog::warn("removing {} from the settings of {}: {}", disk.value, vm.value, e.what());
    }
  }
  try {  // the record follows what the definitions say now (a live unplug may still be pending)
    auto meta = m_storage.read_meta(*located.pool, ref.volume);
    meta["attaching"] = vm.value;
    reconcile_record(located, ref, meta);
  } catch (const std::exception& e) {
    spdlog::warn("recording the attachment of {}: {}", disk.value, e.what());
  }
}

// Succeeds only when neither the persistent nor the live definition holds the disk any more;
// the guest must release it from the running domain, which it may never do (hung, booting):
// past libvirt.detach_timeout, DeviceBusy and the attachment still recorded.
void LibvirtCloud::detach_disk(const VmCid& vm, const DiskCid& disk, int api_version) {
  if (!check_cid("detach_disk", NameKind::disk, disk.value)) {
    throw DiskNotAttached("detach_disk: " + quote_text(disk.value) +
                          " is no disk CID of this CPI, so it is attached to no vm");
  }
  auto domain = require_domain(vm);
  util::FileLock lock{m_names.vm_lock(vm)};  // one device change per VM at a time
  const std::string disk_name = object_name(disk.value);
  util::FileLock disk_lock{m_names.disk_lock(disk)};
  auto located = m_storage.locate(disk_name);
  DiskRef ref{disk.value, "", disk_name, ""};
  if (located) {
    ref = disk_ref(disk, *located);
    auto meta = m_storage.read_meta(*located->pool, disk_name);
    remove_partial_snapshot(*located, disk_name, meta);  // a copy job of a killed snapshot
  }
  m_kind->detach(*domain, vm, disk, located, ref, api_version);
}

// After a detach (or when there was nothing to detach): the record follows the definitions,
// and for API v1 the disk leaves the settings (a detach that failed after the device was gone
// may have left it there).
void LibvirtCloud::detach_settle(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                                 std::optional<Located>& located, const DiskRef& ref,
                                 int api_version) {
  if (located) {
    auto meta = m_storage.read_meta(*located->pool, ref.volume);
    reconcile_record(*located, ref, meta);
  }
  if (api_version < 2) rewrite_config_drive(domain, vm, disk.value, nullptr);
}

std::vector<DiskCid> LibvirtCloud::get_disks(const VmCid& vm) {
  xml::DomainFacts facts;  // the persistent definition, also our mark on it
  require_domain(vm, facts);
  std::vector<DiskCid> out;
  for (const auto& disk : facts.disks) {
    if (!disk.cdrom && is_disk_cid(disk.serial)) out.push_back({disk.serial});
  }
  return out;
}

// API v1 agents read persistent disks from the settings: rewrite the ISO in place (grown when
// needed) and swap the CD-ROM media so the guest sees the new content.
void LibvirtCloud::rewrite_config_drive(virDomain& domain, const VmCid& vm,
                                        const std::string& disk, const nlohmann::json& hint) {
  virStoragePool& target = m_storage.pool();
  const std::string name = config_volume(vm);
  auto volume = m_hv.find_volume(target, name);
  if (!volume) throw CloudError("config drive volume '" + name + "' is missing");
  const std::string old_iso = m_hv.download_volume(**volume, k_max_iso);
  const auto files = agent::read_iso_files(old_iso);
  auto settings = agent::read_user_data(old_iso);
  auto meta = nlohmann::json::parse(files.at("ec2/latest/meta-data.json"), nullptr, false);
  auto& persistent = settings["disks"]["persistent"];
  if (!persistent.is_object()) persistent = nlohmann::json::object();
  if (hint.is_null() ? !persistent.contains(disk)
                     : persistent.contains(disk) && persistent[disk] == hint) {
    return;  // the settings already say so
  }
  if (hint.is_null()) {
    persistent.erase(disk);
  } else {
    persistent[disk] = hint;
  }
  std::string iso = agent::config_drive_iso(meta, settings);
  const auto capacity = m_hv.volume_info(**volume).capacity;
  if (iso.size() > capacity) m_hv.resize_volume(**volume, iso.size());
  if (iso.size() < capacity) iso.resize(capacity, '\0');
  virt::StringSource source{iso};
  m_hv.upload_volume(**volume, source, iso.size(), false);
  // Media change: eject and insert, so the guest re-reads the drive.
  const auto facts = xml::read_domain_xml(m_hv.domain_xml(domain, true));
  for (const auto& d : facts.disks) {
    if (d.cdrom && d.volume == name) {
      m_hv.update_device(domain, xml::disk_device_xml(d), true);
    }
  }
}

// A machine's disk: hot-plugged, with its CID as serial; the intent `attaching` first,
// `attached_to` once the device is on (a kill in between leaves an intent the next call
// reconciles).
nlohmann::json LibvirtCloud::MachineVms::attach(virDomain& domain, const VmCid& vm,
                                                const DiskCid& disk, Located& located,
                                                const DiskRef& ref, nlohmann::json& meta,
                                                int api_version) {
  const std::string disk_name = ref.volume;
  const auto facts = xml::read_domain_xml(m_cloud.m_hv.domain_xml(domain, true));
  if (const auto* existing = find_serial(facts, disk.value)) {
    if (meta.value("attached_to", "") != vm.value) {
      meta["attached_to"] = vm.value;
      m_cloud.m_storage.write_meta(*located.pool, disk_name, meta);
    }
    spdlog::info("disk {} is already attached to {} as {}", disk.value, vm.value, existing->target);
    return m_cloud.disk_hint(disk.value, existing->bus, existing->target);
  }
  const auto volume = xml::read_volume_xml(m_cloud.m_hv.volume_xml(*located.volume));
  std::vector<std::string> used = facts.targets;
  if (m_cloud.m_hv.domain_active(domain)) {
    for (const auto& t : xml::read_domain_xml(m_cloud.m_hv.domain_xml(domain, false)).targets) {
      used.push_back(t);
    }
  }
  const xml::Flavour& flavour = *m_cloud.m_flavour;
  const std::string bus = flavour.disk_bus(m_cloud.disk_bus());
  xml::DiskDevice device{located.pool_name, disk_name, volume.format.empty() ? "raw" : volume.format,
                         xml::next_target(bus, used), bus, disk.value, false};
  meta["attaching"] = vm.value;
  m_cloud.m_storage.write_meta(*located.pool, disk_name, meta);
  util::stop_point("attach:after-intent");
  const auto hint = m_cloud.disk_hint(disk.value, bus, device.target);
  try {
    m_cloud.m_hv.attach_device(domain, flavour.disk_device(device), true);
    util::stop_point("attach:after-hotplug");
    meta.erase("attaching");
    meta["attached_to"] = vm.value;
    m_cloud.m_storage.write_meta(*located.pool, disk_name, meta);
    util::stop_point("attach:after-record");
    if (api_version < 2) m_cloud.rewrite_config_drive(domain, vm, disk.value, hint);
  } catch (...) {
    m_cloud.undo_attach(domain, vm, disk, located, ref, flavour.disk_device(device), api_version);
    throw;
  }
  spdlog::info("attached disk {} to {} as {}", disk.value, vm.value, device.target);
  return hint;
}

void LibvirtCloud::MachineVms::detach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                                      std::optional<Located>& located, const DiskRef& ref,
                                      int api_version) {
  const std::string disk_name = ref.volume;
  const auto persistent = xml::read_domain_xml(m_cloud.m_hv.domain_xml(domain, true));
  const auto live = xml::read_domain_xml(
      m_cloud.m_hv.domain_active(domain) ? m_cloud.m_hv.domain_xml(domain, false) : std::string{"<domain/>"});
  const auto* in_persistent = find_serial(persistent, disk.value);
  const auto* in_live = find_serial(live, disk.value);
  if (in_persistent == nullptr && in_live == nullptr) {
    try {
      m_cloud.detach_settle(domain, vm, disk, located, ref, api_version);
    } catch (const std::exception& e) {
      spdlog::warn("tidying up after disk {}, which is not attached to {}: {}", disk.value,
                   vm.value, e.what());
    }
    throw DiskNotAttached("disk '" + disk.value + "' is not attached to vm '" + vm.value + "'");
  }
  if (located) {
    auto meta = m_cloud.m_storage.read_meta(*located->pool, disk_name);
    meta["detaching"] = vm.value;
    m_cloud.m_storage.write_meta(*located->pool, disk_name, meta);
  }
  util::stop_point("detach:after-intent");
  const xml::Flavour& flavour = *m_cloud.m_flavour;
  if (in_persistent != nullptr) {
    m_cloud.m_hv.detach_device(domain, flavour.disk_device(*in_persistent), in_live != nullptr);
  } else {
    try {  // asked before: the guest may still be working on it
      m_cloud.m_hv.detach_live_device(domain, flavour.disk_device(*in_live));
    } catch (const virt::LibvirtError& e) {
      spdlog::info("asking vm {} again to release disk {}: {}", vm.value, disk.value, e.what());
    }
  }
  util::stop_point("detach:after-unplug");
  if (in_live != nullptr && !m_cloud.wait_released(domain, ref)) {
    throw DeviceBusy("detaching disk '" + disk.value + "' from vm '" + vm.value +
                     "': the guest did not release the device within " +
                     std::to_string(m_cloud.m_config.libvirt.detach_timeout) +
                     " s (libvirt.detach_timeout); it is still attached to the running vm. "
                     "Retry once the guest runs normally, or stop the vm");
  }
  m_cloud.detach_settle(domain, vm, disk, located, ref, api_version);
  spdlog::info("detached disk {} from {}", disk.value, vm.value);
}

}  // namespace cpi::cloud
