// Containers (the lxc flavour): stemcells are root filesystems, every volume is an ext4
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

}  // namespace

bool LibvirtCloud::host_is_local() {
  const std::string uri = m_hv.uri();  // "lxc:///", "lxc+unix:///": no host part
  const auto scheme_end = uri.find("://");
  return scheme_end != std::string::npos && uri.compare(scheme_end + 3, 1, "/") == 0;
}

bool LibvirtCloud::container() const {
  return xml::make_flavour(m_config.libvirt.hypervisor)->container();
}

void LibvirtCloud::stop_domain(virDomain& domain, const std::string& what, int grace_seconds) {
  if (!m_hv.domain_active(domain)) return;
  if (grace_seconds > 0) {
    try {
      m_hv.shutdown_domain(domain);
      for (int i = 0; i < grace_seconds * 4 && m_hv.domain_active(domain); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    } catch (const virt::LibvirtError& e) {
      spdlog::info("graceful shutdown of {} not possible: {}", what, e.what());
    }
    if (!m_hv.domain_active(domain)) return;
  }
  m_hv.destroy_domain(domain);
}

virt::Volume LibvirtCloud::upload_ext4(virStoragePool& target, const std::string& name,
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
  return upload_new_volume(target, xml::volume_xml({name, bytes, "raw", mode}), name, source,
                           source.size(), true);
}

// The warden-tar stemcell's root filesystem, unpacked and made into one ext4 image, uploaded as a
// sparse raw volume. Its .meta volume says it is a root filesystem and which init to run.
StemcellCid LibvirtCloud::create_rootfs_stemcell(const std::string& image_path) {
  const StemcellCid cid = new_stemcell_cid();
  const std::string name = object_name(cid.value);
  virStoragePool& target = pool();
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
  auto volume = m_hv.create_volume(target, xml::volume_xml({name, capacity, "raw", ""}));
  rollback.add("delete volume '" + name + "'",
               [this, &target, name] { delete_if_exists(target, name); });
  rollback.add("delete '" + meta_volume(name) + "'",
               [this, &target, name] { delete_if_exists(target, meta_volume(name)); });
  spdlog::info("uploading the {} MiB root filesystem image into {}", capacity / k_mib, name);
  m_hv.upload_volume(*volume, source, source.size(), true);
  write_meta(target, name, {{"rootfs", true}, {"init", rootfs.init}});
  rollback.commit();
  return cid;
}

virt::Volume LibvirtCloud::write_container_settings(virStoragePool& target, const std::string& name,
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
  write_meta(target, name, {{"user_data", settings}, {"meta_data", meta}});
  if (auto old = m_hv.find_volume(target, name)) m_hv.delete_volume(**old);
  return upload_ext4(target, name, k_settings_bytes, stemcell::k_config_label, "0600", fill);
}

void LibvirtCloud::add_container_volumes(const VmRequest& request, const VmCid& cid,
                                         std::uint64_t ephemeral_mib, virStorageVol& stemcell,
                                         const nlohmann::json& networks, xml::DomainSpec& spec,
                                         util::Rollback& rollback) {
  virStoragePool& target = pool();
  const std::string pool_name = m_config.libvirt.storage_pool;
  const std::string stemcell_name = object_name(request.stemcell.value);
  const auto stemcell_meta = read_meta(target, stemcell_name);
  if (!stemcell_meta.value("rootfs", false)) {
    throw NotSupported("hypervisor 'lxc' does not support disk image stemcells: stemcell '" +
                       request.stemcell.value +
                       "' was not uploaded as a root filesystem (stemcell_formats warden-tar) "
                       "while libvirt.hypervisor was lxc");
  }
  spec.init = stemcell_meta.value("init", "/sbin/init");
  const auto stemcell_facts = xml::read_volume_xml(m_hv.volume_xml(stemcell));
  // The pool-room rule of create_disk: every volume of a container is a raw ext4 image (a copy of
  // the stemcell's, the settings, the ephemeral filesystem), so together they need their size free.
  std::vector<RoomNeed> needs{
      {"the root filesystem of vm '" + cid.value + "'", "raw", stemcell_facts.capacity_bytes,
       stemcell_facts.capacity_bytes},
      {"the settings of vm '" + cid.value + "'", "raw", k_settings_bytes, k_settings_bytes}};
  if (ephemeral_mib > 0) {
    needs.push_back({"the ephemeral filesystem of vm '" + cid.value + "'", "raw",
                     ephemeral_mib * k_mib, ephemeral_mib * k_mib});
  }
  require_room(target, pool_name, needs);
  const bool local = host_is_local();
  auto source_of = [this, local](virStorageVol& volume) {
    return stemcell::lxc_source_path(m_hv.volume_path(volume), local);
  };

  // Root: a full copy of the stemcell's filesystem, sparse (holes stay holes).
  const std::string root_name = root_volume(cid);
  rollback.add("delete volume '" + root_name + "'",
               [this, &target, root_name] { delete_if_exists(target, root_name); });
  xml::DiskDevice root{pool_name, root_name, "raw", "", "", "", false};
  root.mount = "/";
  {
    auto volume = m_hv.create_volume(
        target, xml::volume_xml({root_name, stemcell_facts.capacity_bytes, "raw", ""}));
    m_hv.copy_volume_bytes(stemcell, *volume);
    root.path = source_of(*volume);
  }
  spec.disks.push_back(root);

  // Settings, read-only, where the stemcell's settings link points.
  agent::SettingsInput input;
  input.agent_id = request.agent_id;
  input.vm_name = cid.value;
  input.agent = &m_config.agent;
  input.networks = networks;
  input.env = request.env.is_object() ? request.env : nlohmann::json::object();
  input.system_disk = "";
  const std::string config_name = config_volume(cid);
  rollback.add("delete volume '" + config_name + "'", [this, &target, config_name] {
    delete_if_exists(target, config_name);
    delete_if_exists(target, meta_volume(config_name));
  });
  xml::DiskDevice config{pool_name, config_name, "raw", "", "", "", true};
  config.mount = stemcell::k_config_dir;
  config.path = source_of(*write_container_settings(target, config_name, agent::user_data(input),
                                                    agent::meta_data(input)));
  spec.disks.push_back(config);

  // Ephemeral: an empty filesystem at /var/vcap/data.
  if (ephemeral_mib > 0) {
    const std::string eph_name = ephemeral_volume(cid);
    rollback.add("delete volume '" + eph_name + "'",
                 [this, &target, eph_name] { delete_if_exists(target, eph_name); });
    xml::DiskDevice eph{pool_name, eph_name, "raw", "", "", "", false};
    eph.mount = stemcell::k_ephemeral_dir;
    eph.path =
        source_of(*upload_ext4(target, eph_name, ephemeral_mib * k_mib, "bosh-ephemeral", ""));
    spec.disks.push_back(eph);
  }
}

void LibvirtCloud::set_container_disk_setting(const VmCid& vm, const std::string& disk,
                                              const nlohmann::json& hint) {
  virStoragePool& target = pool();
  const std::string name = config_volume(vm);
  auto stored = read_meta(target, name);
  if (!stored.contains("user_data")) {
    throw CloudError("the settings of vm '" + vm.value + "' are missing ('" + meta_volume(name) +
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
  write_container_settings(target, name, stored["user_data"],
                           stored.value("meta_data", nlohmann::json::object()));
}

void LibvirtCloud::redefine_container(virDomain& domain, const VmCid& vm,
                                      const std::string& old_xml, const std::string& new_xml,
                                      const std::string& disk, const nlohmann::json& hint,
                                      int api_version) {
  const bool was_active = m_hv.domain_active(domain);
  stop_domain(domain, vm.value, k_grace_seconds);
  try {
    m_hv.define_domain(new_xml);
    if (api_version < 2) set_container_disk_setting(vm, disk, hint);
    if (was_active) {
      m_hv.start_domain(domain);
    }
  } catch (...) {
    try {
      m_hv.define_domain(old_xml);
      if (api_version < 2) {  // back to what the settings said before
        set_container_disk_setting(vm, disk, hint.is_null() ? nlohmann::json(disk_mount(disk))
                                                            : nlohmann::json());
      }
      if (was_active && !m_hv.domain_active(domain)) m_hv.start_domain(domain);
    } catch (const std::exception& e) {
      spdlog::warn("restoring container {}: {}", vm.value, e.what());
    }
    throw;
  }
}

// Under the VM's and the disk's locks, after attach_disk checked that no other domain holds the
// disk. As for a VM: the intent `attaching` before the redefinition, `attached_to` after it.
nlohmann::json LibvirtCloud::attach_container_disk(virDomain& domain, const VmCid& vm,
                                                   const DiskCid& disk, Located& located,
                                                   const DiskRef& ref, nlohmann::json& meta,
                                                   int api_version) {
  const nlohmann::json hint = disk_mount(disk.value);
  const std::string old_xml = m_hv.domain_xml(domain, true);
  const auto facts = xml::read_domain_xml(old_xml);
  if (find_mount(facts, disk.value) != nullptr) {
    if (meta.value("attached_to", "") != vm.value) {
      meta["attached_to"] = vm.value;
      write_meta(*located.pool, ref.volume, meta);
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
  device.path = stemcell::lxc_source_path(m_hv.volume_path(*located.volume), host_is_local());
  const auto flavour = xml::make_flavour(m_config.libvirt.hypervisor);
  const std::string new_xml = xml::with_device(old_xml, flavour->disk_device(device));
  meta["attaching"] = vm.value;
  write_meta(*located.pool, ref.volume, meta);
  try {
    redefine_container(domain, vm, old_xml, new_xml, disk.value, hint, api_version);
    meta.erase("attaching");
    meta["attached_to"] = vm.value;
    write_meta(*located.pool, ref.volume, meta);
  } catch (...) {
    try {  // the record follows the definitions (redefine_container restored the old one)
      auto now = read_meta(*located.pool, ref.volume);
      now["attaching"] = vm.value;
      reconcile_record(located, ref, now);
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
void LibvirtCloud::detach_container_disk(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                                         std::optional<Located>& located, const DiskRef& ref,
                                         int api_version) {
  const std::string old_xml = m_hv.domain_xml(domain, true);
  const auto facts = xml::read_domain_xml(old_xml);  // owns what `mounted` points into
  const auto* mounted = find_mount(facts, disk.value);
  auto settle = [&] {
    if (located) {
      auto meta = read_meta(*located->pool, ref.volume);
      reconcile_record(*located, ref, meta);
    }
    if (api_version < 2) set_container_disk_setting(vm, disk.value, nullptr);
  };
  if (mounted == nullptr && !domain_holds(domain, ref)) {
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
    auto meta = read_meta(*located->pool, ref.volume);
    meta["detaching"] = vm.value;
    write_meta(*located->pool, ref.volume, meta);
  }
  const std::string source = mounted != nullptr ? mounted->path : "";
  try {
    // Only the running container still has it (its persistent definition no longer does): a
    // restart from the persistent definition lets it go.
    redefine_container(domain, vm, old_xml,
                       mounted != nullptr
                           ? xml::without_filesystem(old_xml, disk_mount(disk.value))
                           : old_xml,
                       disk.value, nullptr, api_version);
  } catch (...) {
    try {
      if (located) {
        auto meta = read_meta(*located->pool, ref.volume);
        reconcile_record(*located, ref, meta);
      }
    } catch (const std::exception& e) {
      spdlog::warn("recording the attachment of {}: {}", disk.value, e.what());
    }
    throw;
  }
  if (domain_holds(domain, ref)) {  // a <filesystem> the CPI did not add names the volume
    settle();
    throw CloudError("container '" + vm.value + "' still holds disk '" + disk.value +
                     "' after its redefinition (a filesystem of its definition names the "
                     "volume): remove that filesystem by hand");
  }
  if (!source.empty()) stemcell::remove_link(source);
  settle();
  spdlog::info("detached disk {} from container {}", disk.value, vm.value);
}

}  // namespace cpi::cloud
