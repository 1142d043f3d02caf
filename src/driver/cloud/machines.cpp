// MachineVms (vm_kinds.hpp): the guests of qemu, kvm, xen, vbox and vmware. Stemcells are disk
// images, a VM's root is an overlay on (or a copy of) its stemcell, and the agent reads its
// settings from a config-2 ISO. Their persistent disks: vm_disks.cpp.

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cpi/agent/iso_image.hpp"
#include "cpi/agent/settings.hpp"
#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/image_reader.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {
namespace {

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;

}  // namespace

// Streams root.img from the image tgz straight into a new volume: one pass, no temporary copy.
// Raw images go up as a sparse stream, so zero runs and the archive's holes are not sent and the
// volume stays sparse. Crash-safe: a marker volume (incomplete_marker) exists from before the
// stemcell volume is made until its upload and checks are done, so a killed call leaves a
// stemcell that require_stemcell refuses and `cpi cleanup --orphans` removes.
StemcellCid LibvirtCloud::MachineVms::import_stemcell(const std::string& image_path,
                                                      const StemcellProps& props) {
  stemcell::ImageReader image{image_path};  // refuses images that name host files
  const std::string format = props.disk_format.value_or(image.detected_format());
  if (format != image.detected_format()) {
    throw CloudError("create_stemcell: cloud_properties.disk_format is '" + format +
                     "' but root.img in '" + image_path + "' is " + image.detected_format());
  }
  const StemcellCid cid = new_stemcell_cid();
  const std::string name = m_cloud.object_name(cid.value);
  const std::string marker = m_cloud.incomplete_marker(name);
  virStoragePool& target = m_cloud.m_storage.pool();

  util::Rollback rollback;
  m_cloud.m_hv.create_volume(target, xml::volume_xml({marker, 512, "raw", "0600"}));
  rollback.add("delete volume '" + marker + "'",
               [this, &target, marker] { m_cloud.m_storage.delete_if_exists(target, marker); });
  const auto capacity = format == "qcow2" ? image.virtual_size() : image.size();
  auto volume = m_cloud.m_hv.create_volume(target, xml::volume_xml({name, capacity, format, ""}));
  rollback.add("delete volume '" + name + "'",
               [this, &target, name] { m_cloud.m_storage.delete_if_exists(target, name); });
  spdlog::info("uploading {} image ({} bytes, virtual size {}) into {}", format, image.size(),
               image.virtual_size(), name);
  m_cloud.m_hv.upload_volume(*volume, image, image.size(), format == "raw");
  m_cloud.m_storage.delete_if_exists(target, marker);  // the stemcell is complete from here on
  rollback.commit();
  return cid;
}

void LibvirtCloud::MachineVms::add_volumes(NewVm& vm, util::Rollback& rollback) {
  const VmRequest& request = vm.request;
  const VmCid& cid = vm.cid;
  const VmProps& props = vm.props;
  virStoragePool& target = vm.pool;
  const std::string& pool_name = vm.pool_name;
  const auto& stemcell_facts = vm.stemcell_facts;
  vm.bus = m_cloud.m_flavour->disk_bus(m_cloud.disk_bus());
  const std::string& bus = vm.bus;
  std::vector<xml::DiskDevice> disks;

  // Root: a qcow2 overlay on the stemcell (O(1) in the image size) where the pool type has
  // backing stores (dir, fs, netfs), else a full copy in the stemcell's format (logical: LVs).
  const bool overlays = m_cloud.m_storage.pool_has_overlays(target);
  const std::string stemcell_format =
      stemcell_facts.format.empty() ? "raw" : stemcell_facts.format;
  const std::string root_format = overlays ? "qcow2" : stemcell_format;
  const std::string volume_format = overlays ? "qcow2" : "raw";
  m_cloud.m_flavour->require_format(root_format, "root disk of stemcell '" + request.stemcell.value + "'");
  const std::string root_name = m_cloud.root_volume(cid);
  std::uint64_t root_capacity = stemcell_facts.capacity_bytes;
  if (props.root_disk_mib) root_capacity = std::max(root_capacity, *props.root_disk_mib * k_mib);
  // The pool-room rule of create_disk: an overlay root and a qcow2 ephemeral disk are thin;
  // a full copy of the stemcell (pools of block volumes) and a raw ephemeral disk need their
  // size free. The config drive (a few hundred KiB) is not counted.
  std::vector<Storage::RoomNeed> needs{{"the root disk of vm '" + cid.value + "'", volume_format,
                                        root_capacity, overlays ? 0 : root_capacity}};
  if (props.ephemeral_disk_mib > 0) {
    const auto bytes = props.ephemeral_disk_mib * k_mib;
    needs.push_back({"the ephemeral disk of vm '" + cid.value + "'", volume_format, bytes,
                     volume_format == "raw" ? bytes : 0});
  }
  m_cloud.m_storage.require_room(target, pool_name, needs);
  if (overlays) {
    m_cloud.m_hv.create_volume(target, xml::overlay_volume_xml({root_name, root_capacity,
                                                        stemcell_facts.path, stemcell_format}));
  } else {
    m_cloud.m_hv.clone_volume(target, xml::volume_xml({root_name, root_capacity, root_format, ""}),
                      vm.stemcell);
  }
  rollback.add("delete volume '" + root_name + "'", [this, &target, root_name] {
    m_cloud.m_storage.delete_if_exists(target, root_name);
  });
  disks.push_back({pool_name, root_name, root_format, xml::next_target(bus, {}), bus, "", false});
  disks.back().backing_chain.emplace();  // a clone is self-contained; an overlay has one layer
  if (overlays) disks.back().backing_chain->push_back({stemcell_facts.path, stemcell_format});

  // Ephemeral disk, with its own serial.
  nlohmann::json ephemeral_hint = nullptr;
  if (props.ephemeral_disk_mib > 0) {
    const std::string eph_name = m_cloud.ephemeral_volume(cid);
    vm.ephemeral_serial = new_ephemeral_serial();
    m_cloud.m_hv.create_volume(target, xml::volume_xml({eph_name, props.ephemeral_disk_mib * k_mib,
                                                volume_format, ""}));
    rollback.add("delete volume '" + eph_name + "'", [this, &target, eph_name] {
      m_cloud.m_storage.delete_if_exists(target, eph_name);
    });
    disks.push_back({pool_name, eph_name, volume_format, xml::next_target(bus, {disks[0].target}),
                     bus, vm.ephemeral_serial, false});
    ephemeral_hint = m_cloud.disk_hint(vm.ephemeral_serial, bus, disks.back().target);
  }

  add_config_drive(vm, disks, ephemeral_hint, rollback);
}

void LibvirtCloud::MachineVms::add_config_drive(NewVm& vm, std::vector<xml::DiskDevice>& disks,
                                                const nlohmann::json& ephemeral_hint,
                                                util::Rollback& rollback) {
  const VmRequest& request = vm.request;
  const VmCid& cid = vm.cid;
  virStoragePool& target = vm.pool;
  const std::string& pool_name = vm.pool_name;
  // Config drive: the agent settings on an ISO, private to root (it holds mbus credentials).
  agent::SettingsInput settings;
  settings.agent_id = request.agent_id;
  settings.vm_name = cid.value;
  settings.agent = &m_cloud.m_config.agent;
  settings.networks = vm.networks;
  settings.ephemeral = ephemeral_hint;
  settings.env = request.env.is_object() ? request.env : nlohmann::json::object();
  settings.system_disk = "/dev/" + disks[0].target;
  const std::string iso =
      agent::config_drive_iso(agent::meta_data(settings), agent::user_data(settings));
  const std::string config_name = m_cloud.config_volume(cid);
  m_cloud.m_storage.upload_bytes(target, config_name, iso, "0600");
  rollback.add("delete volume '" + config_name + "'", [this, &target, config_name] {
    m_cloud.m_storage.delete_if_exists(target, config_name);
  });
  const std::string cd_bus = m_cloud.m_flavour->cdrom_bus(m_cloud.cdrom_bus());
  std::vector<std::string> used;
  for (const auto& d : disks) used.push_back(d.target);
  disks.push_back({pool_name, config_name, "raw", xml::next_target(cd_bus, used), cd_bus, "",
                   true});
  vm.spec.disks = disks;
}

// Pools of block volumes (logical LVs, iSCSI LUNs ...) hold raw disks: a qcow2 there would be an
// unformatted block device.
std::string LibvirtCloud::MachineVms::disk_format(const DiskProps& props,
                                                  const std::string& pool_type,
                                                  const std::string& pool_name) {
  if (Storage::supports_backing_store(pool_type)) return props.format;
  if (props.format_set && props.format == "qcow2") {
    throw CloudError("create_disk: cloud_properties.format qcow2 needs a pool of files (dir, fs, "
                     "netfs); storage pool '" + pool_name + "' holds block volumes: use raw");
  }
  return "raw";
}

void LibvirtCloud::MachineVms::make_disk(virStoragePool& target, const std::string& name,
                                         std::uint64_t capacity, const std::string& format) {
  m_cloud.m_hv.create_volume(target, xml::volume_xml({name, capacity, format, "0600"}));
}

// An ACPI power button: reboot_timeout seconds for the guest to power off.
int LibvirtCloud::MachineVms::reboot_grace() const {
  return static_cast<int>(m_cloud.m_config.libvirt.reboot_timeout);
}

}  // namespace cpi::cloud
