// ContainerVms (vm_kinds.hpp), the lxc flavour: stemcells are root filesystems, every volume is an ext4
// filesystem the container mounts, and the agent reads its settings from a file
// (cpi/stemcell/fs_image.hpp has the layout). libvirt's LXC driver cannot hot-plug filesystems,
// so attaching or detaching a persistent disk redefines the container and restarts it.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "cpi/agent/settings.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/fs_image.hpp"
#include "cpi/util/private_dir.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;
constexpr std::uint64_t k_settings_bytes = 8 * k_mib;  // the settings filesystem
constexpr int k_grace_seconds = 5;

std::string disk_mount(const std::string& disk) {
  return std::string{stemcell::k_disks_dir} + "/" + disk;
}

const xml::DiskDevice* find_mount(const xml::DomainFacts& facts, const std::string& disk) {
  for (const auto& d : facts.disks) {
    if (d.serial == disk && !d.mount.empty()) return &d;
  }
  return nullptr;
}
// The answer points into `facts`: never into a temporary.
const xml::DiskDevice* find_mount(xml::DomainFacts&& facts, const std::string& disk) = delete;

// A file of the settings filesystem, mode 0600 (it holds the mbus credentials).
void write_tree_file(const fs::path& root, const std::string& relative, const std::string& text) {
  const fs::path file = root / relative;
  fs::create_directories(file.parent_path());
  std::ofstream out{file, std::ios::binary | std::ios::trunc};
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  out << text;
  if (!out.flush()) throw CloudError("writing '" + file.string() + "' failed");
}

// "255.255.255.0" -> "24"; "" when it is no contiguous IPv4 netmask.
std::string netmask_prefix(const std::string& netmask) {
  unsigned int parts[4] = {0, 0, 0, 0};
  char tail = 0;
  if (std::sscanf(netmask.c_str(), "%u.%u.%u.%u%c", &parts[0], &parts[1], &parts[2], &parts[3],
                  &tail) != 4) {
    return "";
  }
  std::uint32_t mask = 0;
  for (unsigned int part : parts) {
    if (part > 255) return "";
    mask = (mask << 8) | part;
  }
  int bits = 0;
  while (bits < 32 && (mask & (0x80000000U >> bits)) != 0) ++bits;
  if (bits < 32 && (mask << bits) != 0) return "";
  return std::to_string(bits);
}


}  // namespace

virt::Volume LibvirtCloud::ContainerVms::upload_ext4(virStoragePool& target, const std::string& name,
                                       std::uint64_t bytes, const std::string& label,
                                       const std::string& mode,
                                       const std::function<void(const fs::path&)>& tree) {
  util::PrivateDir scratch{"cpi-ext4"};
  fs::path from;
  if (tree) {
    from = scratch.path() / "tree";
    fs::create_directory(from);
    tree(from);
  }
  const fs::path image = scratch.path() / "image";
  stemcell::make_ext4(image, bytes, label, from);
  stemcell::FileSource source{image};
  return m_cloud.m_storage.upload_new_volume(target, xml::volume_xml({name, bytes, "raw", mode}),
                                             name, source, source.size(), true);
}

// The warden-tar stemcell's root filesystem, unpacked and made into one ext4 image, uploaded as a
// sparse raw volume. Its .meta volume says it is a root filesystem and which init to run.
StemcellCid LibvirtCloud::ContainerVms::import_stemcell(const std::string& image_path,
                                                         const StemcellProps& /*props*/) {
  const StemcellCid cid = new_stemcell_cid();
  const std::string name = m_cloud.object_name(cid.value);
  virStoragePool& target = m_cloud.m_storage.pool();
  util::PrivateDir scratch{"cpi-rootfs"};
  const fs::path tree = scratch.path() / "rootfs";
  fs::create_directory(tree);
  const auto rootfs = stemcell::extract_rootfs(image_path, tree);
  const auto capacity = stemcell::rootfs_capacity(rootfs, 0);
  const fs::path image = scratch.path() / "root.ext4";
  stemcell::make_ext4(image, capacity, "bosh-root", tree);
  fs::remove_all(tree);  // the image holds it now: give the scratch space back early
  stemcell::FileSource source{image};
  util::Rollback rollback;
  auto volume = m_cloud.m_hv.create_volume(target, xml::volume_xml({name, capacity, "raw", ""}));
  rollback.add("delete volume '" + name + "'",
               [this, &target, name] { m_cloud.m_storage.delete_if_exists(target, name); });
  rollback.add("delete '" + m_cloud.meta_volume(name) + "'", [this, &target, name] {
    m_cloud.m_storage.delete_if_exists(target, m_cloud.meta_volume(name));
  });
  spdlog::info("uploading the {} MiB root filesystem image into {}", capacity / k_mib, name);
  m_cloud.m_hv.upload_volume(*volume, source, source.size(), true);
  m_cloud.m_storage.write_meta(target, name, {{"rootfs", true}, {"init", rootfs.init}});
  rollback.commit();
  return cid;
}

virt::Volume LibvirtCloud::ContainerVms::write_settings(virStoragePool& target, const std::string& name,
                                            const nlohmann::json& settings,
                                            const nlohmann::json& meta) {
  const std::string user_data = settings.dump();
  const std::string meta_data = meta.dump();
  auto fill = [&](const fs::path& root) {
    write_tree_file(root, stemcell::k_settings_file, user_data);
    write_tree_file(root, "openstack/latest/user_data", user_data);
    write_tree_file(root, "openstack/latest/meta_data.json", meta_data);
  };
  // The settings are also kept in `<name>.meta` (mode 0600): the CPI cannot read ext4 back.
  m_cloud.m_storage.write_meta(target, name, {{"user_data", settings}, {"meta_data", meta}});
  if (auto old = m_cloud.m_hv.find_volume(target, name)) m_cloud.m_hv.delete_volume(**old);
  return upload_ext4(target, name, k_settings_bytes, stemcell::k_config_label, "0600", fill);
}

void LibvirtCloud::ContainerVms::add_volumes(NewVm& vm, util::Rollback& rollback) {
  const VmRequest& request = vm.request;
  const VmCid& cid = vm.cid;
  const std::uint64_t ephemeral_mib = vm.props.ephemeral_disk_mib;
  virStoragePool& target = vm.pool;
  const std::string& pool_name = vm.pool_name;
  const auto& stemcell_facts = vm.stemcell_facts;
  xml::DomainSpec& spec = vm.spec;
  const std::string stemcell_name = m_cloud.object_name(request.stemcell.value);
  const auto stemcell_meta = m_cloud.m_storage.read_meta(target, stemcell_name);
  if (!stemcell_meta.value("rootfs", false)) {
    throw NotSupported("hypervisor 'lxc' does not support disk image stemcells: stemcell '" +
                       request.stemcell.value +
                       "' was not uploaded as a root filesystem (stemcell_formats warden-tar) "
                       "while libvirt.hypervisor was lxc");
  }
  spec.init = stemcell_meta.value("init", "/sbin/init");
  // The pool-room rule of create_disk: every volume of a container is a raw ext4 image (a copy of
  // the stemcell's, the settings, the ephemeral filesystem), so together they need their size free.
  std::vector<Storage::RoomNeed> needs{
      {"the root filesystem of vm '" + cid.value + "'", "raw", stemcell_facts.capacity_bytes,
       stemcell_facts.capacity_bytes},
      {"the settings of vm '" + cid.value + "'", "raw", k_settings_bytes, k_settings_bytes}};
  if (ephemeral_mib > 0) {
    needs.push_back({"the ephemeral filesystem of vm '" + cid.value + "'", "raw",
                     ephemeral_mib * k_mib, ephemeral_mib * k_mib});
  }
  m_cloud.m_storage.require_room(target, pool_name, needs);
  const bool local = m_cloud.host_is_local();
  auto source_of = [this, local](virStorageVol& volume) {
    return stemcell::lxc_source_path(m_cloud.m_hv.volume_path(volume), local);
  };

  // Root: a full copy of the stemcell's filesystem, sparse (holes stay holes).
  const std::string root_name = m_cloud.root_volume(cid);
  rollback.add("delete volume '" + root_name + "'", [this, &target, root_name] {
    m_cloud.m_storage.delete_if_exists(target, root_name);
  });
  xml::DiskDevice root{pool_name, root_name, "raw", "", "", "", false};
  root.mount = "/";
  {
    auto volume = m_cloud.m_hv.create_volume(
        target, xml::volume_xml({root_name, stemcell_facts.capacity_bytes, "raw", ""}));
    m_cloud.m_hv.copy_volume_bytes(vm.stemcell, *volume);
    root.path = source_of(*volume);
  }
  spec.disks.push_back(root);

  // Settings, read-only, where the stemcell's settings link points.
  agent::SettingsInput input;
  input.agent_id = request.agent_id;
  input.vm_name = cid.value;
  input.agent = &m_cloud.m_config.agent;
  input.networks = vm.networks;
  input.env = request.env.is_object() ? request.env : nlohmann::json::object();
  input.system_disk = "";
  const std::string config_name = m_cloud.config_volume(cid);
  rollback.add("delete volume '" + config_name + "'", [this, &target, config_name] {
    m_cloud.m_storage.delete_if_exists(target, config_name);
    m_cloud.m_storage.delete_if_exists(target, m_cloud.meta_volume(config_name));
  });
  xml::DiskDevice config{pool_name, config_name, "raw", "", "", "", true};
  config.mount = stemcell::k_config_dir;
  config.path = source_of(*write_settings(target, config_name, agent::user_data(input),
                                                    agent::meta_data(input)));
  spec.disks.push_back(config);

  // Ephemeral: an empty filesystem at /var/vcap/data.
  if (ephemeral_mib > 0) {
    const std::string eph_name = m_cloud.ephemeral_volume(cid);
    rollback.add("delete volume '" + eph_name + "'", [this, &target, eph_name] {
      m_cloud.m_storage.delete_if_exists(target, eph_name);
    });
    xml::DiskDevice eph{pool_name, eph_name, "raw", "", "", "", false};
    eph.mount = stemcell::k_ephemeral_dir;
    eph.path =
        source_of(*upload_ext4(target, eph_name, ephemeral_mib * k_mib, "bosh-ephemeral", ""));
    spec.disks.push_back(eph);
  }
}

void LibvirtCloud::ContainerVms::set_disk_setting(const VmCid& vm, const std::string& disk,
                                              const nlohmann::json& hint) {
  virStoragePool& target = m_cloud.m_storage.pool();
  const std::string name = m_cloud.config_volume(vm);
  auto stored = m_cloud.m_storage.read_meta(target, name);
  if (!stored.contains("user_data")) {
    throw CloudError("the settings of vm '" + vm.value + "' are missing ('" + m_cloud.meta_volume(name) +
                     "')");
  }
  auto& persistent = stored["user_data"]["disks"]["persistent"];
  if (!persistent.is_object()) persistent = nlohmann::json::object();
  if (hint.is_null()) {
    if (!persistent.contains(disk)) return;
    persistent.erase(disk);
  } else {
    if (persistent.contains(disk) && persistent[disk] == hint) return;
    persistent[disk] = hint;
  }
  write_settings(target, name, stored["user_data"],
                           stored.value("meta_data", nlohmann::json::object()));
}

void LibvirtCloud::ContainerVms::redefine(virDomain& domain, const VmCid& vm,
                                      const std::string& old_xml, const std::string& new_xml,
                                      const std::string& disk, const nlohmann::json& hint,
                                      int api_version) {
  const bool was_active = m_cloud.m_hv.domain_active(domain);
  m_cloud.stop_domain(domain, vm.value, k_grace_seconds);
  try {
    m_cloud.m_hv.define_domain(new_xml);
    if (api_version < 2) set_disk_setting(vm, disk, hint);
    if (was_active) {
      m_cloud.m_hv.start_domain(domain);
    }
  } catch (...) {
    try {
      m_cloud.m_hv.define_domain(old_xml);
      if (api_version < 2) {  // back to what the settings said before
        set_disk_setting(vm, disk, hint.is_null() ? nlohmann::json(disk_mount(disk))
                                                            : nlohmann::json());
      }
      if (was_active && !m_cloud.m_hv.domain_active(domain)) m_cloud.m_hv.start_domain(domain);
    } catch (const std::exception& e) {
      spdlog::warn("restoring container {}: {}", vm.value, e.what());
    }
    throw;
  }
}

// Under the VM's and the disk's locks, after attach_disk checked that no other domain holds the
// disk. As for a VM: the intent `attaching` before the redefinition, `attached_to` after it.
nlohmann::json LibvirtCloud::ContainerVms::attach(virDomain& domain, const VmCid& vm,
                                                   const DiskCid& disk, Located& located,
                                                   const DiskRef& ref, nlohmann::json& meta,
                                                   int api_version) {
  const nlohmann::json hint = disk_mount(disk.value);
  const std::string old_xml = m_cloud.m_hv.domain_xml(domain, true);
  const auto facts = xml::read_domain_xml(old_xml);
  if (find_mount(facts, disk.value) != nullptr) {
    if (meta.value("attached_to", "") != vm.value) {
      meta["attached_to"] = vm.value;
      m_cloud.m_storage.write_meta(*located.pool, ref.volume, meta);
    }
    spdlog::info("disk {} is already mounted in container {}", disk.value, vm.value);
    return hint;
  }
  if (meta.value("filesystem", "") != "ext4") {
    throw CloudError("disk '" + disk.value + "' holds no filesystem for containers: it was "
                     "created while libvirt.hypervisor was not lxc (create a new disk)");
  }
  xml::DiskDevice device{located.pool_name, ref.volume, "raw", "", "", disk.value, false};
  device.mount = hint.get<std::string>();
  device.path = stemcell::lxc_source_path(m_cloud.m_hv.volume_path(*located.volume), m_cloud.host_is_local());
  const xml::Flavour& flavour = *m_cloud.m_flavour;
  const std::string new_xml = xml::with_device(old_xml, flavour.disk_device(device));
  meta["attaching"] = vm.value;
  m_cloud.m_storage.write_meta(*located.pool, ref.volume, meta);
  try {
    redefine(domain, vm, old_xml, new_xml, disk.value, hint, api_version);
    meta.erase("attaching");
    meta["attached_to"] = vm.value;
    m_cloud.m_storage.write_meta(*located.pool, ref.volume, meta);
  } catch (...) {
    try {  // the record follows the definitions (redefine_container restored the old one)
      auto now = m_cloud.m_storage.read_meta(*located.pool, ref.volume);
      now["attaching"] = vm.value;
      m_cloud.reconcile_record(located, ref, now);
    } catch (const std::exception& e) {
      spdlog::warn("recording the attachment of {}: {}", disk.value, e.what());
    }
    throw;
  }
  spdlog::info("attached disk {} to container {} at {}", disk.value, vm.value, device.mount);
  return hint;
}

// Under the VM's and the disk's locks. Not attached (neither definition holds it): the record
// follows the definitions, the v1 settings drop the disk, and DiskNotAttached, as for a VM.
void LibvirtCloud::ContainerVms::detach(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                                         std::optional<Located>& located, const DiskRef& ref,
                                         int api_version) {
  const std::string old_xml = m_cloud.m_hv.domain_xml(domain, true);
  const auto facts = xml::read_domain_xml(old_xml);  // owns what `mounted` points into
  const auto* mounted = find_mount(facts, disk.value);
  auto settle = [&] {
    if (located) {
      auto meta = m_cloud.m_storage.read_meta(*located->pool, ref.volume);
      m_cloud.reconcile_record(*located, ref, meta);
    }
    if (api_version < 2) set_disk_setting(vm, disk.value, nullptr);
  };
  if (mounted == nullptr && !m_cloud.domain_holds(domain, ref)) {
    try {
      settle();
    } catch (const std::exception& e) {
      spdlog::warn("tidying up after disk {}, which is not attached to {}: {}", disk.value,
                   vm.value, e.what());
    }
    throw DiskNotAttached("disk '" + disk.value + "' is not attached to container '" + vm.value +
                          "'");
  }
  if (located) {
    auto meta = m_cloud.m_storage.read_meta(*located->pool, ref.volume);
    meta["detaching"] = vm.value;
    m_cloud.m_storage.write_meta(*located->pool, ref.volume, meta);
  }
  const std::string source = mounted != nullptr ? mounted->path : "";
  try {
    // Only the running container still has it (its persistent definition no longer does): a
    // restart from the persistent definition lets it go.
    redefine(domain, vm, old_xml,
                       mounted != nullptr
                           ? xml::without_filesystem(old_xml, disk_mount(disk.value))
                           : old_xml,
                       disk.value, nullptr, api_version);
  } catch (...) {
    try {
      if (located) {
        auto meta = m_cloud.m_storage.read_meta(*located->pool, ref.volume);
        m_cloud.reconcile_record(*located, ref, meta);
      }
    } catch (const std::exception& e) {
      spdlog::warn("recording the attachment of {}: {}", disk.value, e.what());
    }
    throw;
  }
  if (m_cloud.domain_holds(domain, ref)) {  // a <filesystem> the CPI did not add names the volume
    settle();
    throw CloudError("container '" + vm.value + "' still holds disk '" + disk.value +
                     "' after its redefinition (a filesystem of its definition names the "
                     "volume): remove that filesystem by hand");
  }
  if (!source.empty()) stemcell::remove_link(source);
  settle();
  spdlog::info("detached disk {} from container {}", disk.value, vm.value);
}

// A container's NIC gets its address from libvirt (manual networks) and the agent is told not
// to configure it: warden stemcells' agents never configure networks.
void LibvirtCloud::ContainerVms::address_nic(nlohmann::json& network, xml::NicDevice& nic) {
  network["preconfigured"] = true;
  const std::string type = network.value("type", "manual");
  const auto ip = network.find("ip");
  if (type != "manual" || ip == network.end() || !ip->is_string()) return;
  nic.ip = ip->get<std::string>();
  if (auto prefix = network.find("prefix"); prefix != network.end() && prefix->is_string()) {
    nic.prefix = prefix->get<std::string>();
  } else if (prefix != network.end() && prefix->is_number_unsigned()) {
    nic.prefix = std::to_string(prefix->get<unsigned int>());
  } else {
    nic.prefix = netmask_prefix(network.value("netmask", ""));
  }
  if (nic.prefix.empty()) {
    throw CloudError("create_vm: manual network with ip " + nic.ip +
                     " needs a netmask (or prefix) for the container's address");
  }
  const auto defaults = network.find("default");
  const bool is_default =
      defaults != network.end() && defaults->is_array() &&
      std::find(defaults->begin(), defaults->end(), nlohmann::json("gateway")) != defaults->end();
  if (is_default && network.value("gateway", "") != "") nic.gateway = network.value("gateway", "");
}

// Every volume of a container is an ext4 filesystem in a raw volume, whatever the pool.
std::string LibvirtCloud::ContainerVms::disk_format(const DiskProps& /*props*/,
                                                    const std::string& /*pool_type*/,
                                                    const std::string& /*pool_name*/) {
  return "raw";
}

// An empty ext4 filesystem the container mounts; its record says so (attach refuses a disk
// made for machines).
void LibvirtCloud::ContainerVms::make_disk(virStoragePool& target, const std::string& name,
                                           std::uint64_t capacity, const std::string& /*format*/) {
  upload_ext4(target, name, capacity, "", "0600");
  try {
    m_cloud.m_storage.write_meta(target, name, {{"filesystem", "ext4"}});
  } catch (...) {
    m_cloud.m_storage.delete_if_exists(target, name);
    throw;
  }
}

// SIGTERM to the container's init, which the agent's runit stops on.
int LibvirtCloud::ContainerVms::reboot_grace() const { return k_grace_seconds; }

}  // namespace cpi::cloud
