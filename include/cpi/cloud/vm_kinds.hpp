#pragma once
// The two kinds of guest, chosen once from libvirt.hypervisor when the cloud is made:
//
//   MachineVms    qemu, kvm, xen, vbox, vmware: stemcells are disk images, a VM's volumes are
//                 block devices, the agent reads its settings from a config-2 ISO, persistent
//                 disks are hot-plugged (machines.cpp).
//   ContainerVms  lxc: stemcells are root filesystems, every volume is an ext4 filesystem the
//                 container mounts, the settings are files on a settings volume, and a disk
//                 change redefines the container and restarts it (containers.cpp).
//
// What both share (names, ownership, locks, the domain) stays in LibvirtCloud, the pools and
// records in its Storage (m_cloud.m_storage); a kind does only what differs, with the cloud's
// helpers (they are nested classes of it).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {

// A VM create_vm is making: what the kind reads, and what it fills in.
struct LibvirtCloud::NewVm {
  const VmRequest& request;
  const VmCid& cid;
  const VmProps& props;
  virStoragePool& pool;  // the configured pool
  const std::string& pool_name;
  virStorageVol& stemcell;
  const xml::VolumeFacts& stemcell_facts;
  const nlohmann::json& networks;  // as the agent's settings get them (with MACs)
  xml::DomainSpec& spec;     // add_volumes adds the disks (and a container's init)
  std::string bus;               // machines: the bus of their disks (the VM's facts)
  std::string ephemeral_serial;  // machines: the ephemeral disk's serial, when it has one
};

class LibvirtCloud::VmKind {
 public:
  virtual ~VmKind() = default;
  virtual bool container() const = 0;  // recorded in the VM's facts

  // create_stemcell: `image_path` into a new stemcell volume; crash-safe (stemcells.cpp).
  virtual StemcellCid import_stemcell(const std::string& image_path,
                                      const StemcellProps& props) = 0;
  // The NIC of BOSH network `network` (the settings' copy, with its MAC): a container gets its
  // address from libvirt and the agent is told not to configure it.
  virtual void address_nic(nlohmann::json& network, xml::NicDevice& nic) = 0;
  // The new VM's own volumes (root, ephemeral, settings) into `vm.spec`, each undone by
  // `rollback`; throws NoDiskSpace before making any when the pool lacks room.
  virtual void add_volumes(NewVm& vm, util::Rollback& rollback) = 0;

  // create_disk: the format of a new disk in pool `pool_name` of type `pool_type` (CloudError
  // for a format the pool cannot hold), then the volume itself.
  virtual std::string disk_format(const DiskProps& props, const std::string& pool_type,
                                  const std::string& pool_name) = 0;
  virtual void make_disk(virStoragePool& pool, const std::string& name, std::uint64_t capacity,
                         const std::string& format) = 0;

  // attach_disk and detach_disk past their common checks, under the VM's and the disk's locks
  // (vm_disks.cpp): the intent recorded before the device change, the record after it.
  virtual nlohmann::json attach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                                Located& located, const DiskRef& ref, nlohmann::json& meta,
                                int api_version) = 0;
  virtual void detach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                      std::optional<Located>& located, const DiskRef& ref, int api_version) = 0;

  // reboot_vm: how long the guest gets to power off before it is powered off by force.
  virtual int reboot_grace() const = 0;
};

class LibvirtCloud::MachineVms final : public LibvirtCloud::VmKind {
 public:
  explicit MachineVms(LibvirtCloud& cloud) : m_cloud(cloud) {}
  bool container() const override { return false; }
  StemcellCid import_stemcell(const std::string& image_path, const StemcellProps& props) override;
  void address_nic(nlohmann::json& /*network*/, xml::NicDevice& /*nic*/) override {}
  void add_volumes(NewVm& vm, util::Rollback& rollback) override;
  std::string disk_format(const DiskProps& props, const std::string& pool_type,
                          const std::string& pool_name) override;
  void make_disk(virStoragePool& pool, const std::string& name, std::uint64_t capacity,
                 const std::string& format) override;
  nlohmann::json attach(virDomain& domain, const VmCid& vm, const DiskCid& disk, Located& located,
                        const DiskRef& ref, nlohmann::json& meta, int api_version) override;
  void detach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
              std::optional<Located>& located, const DiskRef& ref, int api_version) override;
  int reboot_grace() const override;

 private:
  // The config drive: the agent's settings on an ISO, private to root (mbus credentials).
  void add_config_drive(NewVm& vm, std::vector<xml::DiskDevice>& disks,
                        const nlohmann::json& ephemeral_hint, util::Rollback& rollback);

  LibvirtCloud& m_cloud;
};

class LibvirtCloud::ContainerVms final : public LibvirtCloud::VmKind {
 public:
  explicit ContainerVms(LibvirtCloud& cloud) : m_cloud(cloud) {}
  bool container() const override { return true; }
  StemcellCid import_stemcell(const std::string& image_path, const StemcellProps& props) override;
  void address_nic(nlohmann::json& network, xml::NicDevice& nic) override;
  void add_volumes(NewVm& vm, util::Rollback& rollback) override;
  std::string disk_format(const DiskProps& props, const std::string& pool_type,
                          const std::string& pool_name) override;
  void make_disk(virStoragePool& pool, const std::string& name, std::uint64_t capacity,
                 const std::string& format) override;
  nlohmann::json attach(virDomain& domain, const VmCid& vm, const DiskCid& disk, Located& located,
                        const DiskRef& ref, nlohmann::json& meta, int api_version) override;
  void detach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
              std::optional<Located>& located, const DiskRef& ref, int api_version) override;
  int reboot_grace() const override;

 private:
  // Builds an ext4 image (from `tree` when not empty) and uploads it as a new raw volume.
  virt::Volume upload_ext4(virStoragePool& pool, const std::string& name, std::uint64_t bytes,
                           const std::string& label, const std::string& mode,
                           const std::function<void(const std::filesystem::path&)>& tree = {});
  // Writes the settings volume of a container (`settings` and `meta` as files), creating it.
  virt::Volume write_settings(virStoragePool& pool, const std::string& name,
                              const nlohmann::json& settings, const nlohmann::json& meta);
  // Redefines a container with `new_xml`, with the settings' persistent disk `disk` set to
  // `hint` (null: removed) when `api_version` < 2, restarting it when it runs; undone on error.
  void redefine(virDomain& domain, const VmCid& vm, const std::string& old_xml,
                const std::string& new_xml, const std::string& disk, const nlohmann::json& hint,
                int api_version);
  void set_disk_setting(const VmCid& vm, const std::string& disk, const nlohmann::json& hint);

  LibvirtCloud& m_cloud;
};

}  // namespace cpi::cloud
