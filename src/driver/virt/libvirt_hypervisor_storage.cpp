// LibvirtHypervisor: storage pools and volumes (the byte streams into and out of volumes are in
// libvirt_hypervisor_streams.cpp).

#include <libvirt/virterror.h>

#include <cstdlib>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"
#include "object_names.hpp"

namespace cpi::virt {

std::optional<Pool> LibvirtHypervisor::find_pool(const std::string& name) {
  return found_or_none(Pool{virStoragePoolLookupByName(&m_conn, name.c_str())},
                       VIR_ERR_NO_STORAGE_POOL,
                       [&] { return "looking up storage pool '" + name + "'"; });
}

std::vector<std::string> LibvirtHypervisor::active_pool_names() {
  virStoragePoolPtr* pools = nullptr;
  const int count =
      virConnectListAllStoragePools(&m_conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
  return listed_names<Pool>(pools, count, "listing storage pools");
}

Pool LibvirtHypervisor::define_pool(const std::string& xml) {
  Pool pool{virStoragePoolDefineXML(&m_conn, xml.c_str(), 0)};
  if (!pool) fail([&] { return "defining storage pool '" + name_in(xml) + "'"; });
  return pool;
}

void LibvirtHypervisor::build_pool(virStoragePool& pool) {
  check(virStoragePoolBuild(&pool, 0),
        [&] { return "building storage pool '" + name_of(pool) + "'"; });
}

void LibvirtHypervisor::start_pool(virStoragePool& pool) {
  check(virStoragePoolCreate(&pool, 0),
        [&] { return "starting storage pool '" + name_of(pool) + "'"; });
}

void LibvirtHypervisor::set_pool_autostart(virStoragePool& pool) {
  check(virStoragePoolSetAutostart(&pool, 1),
        [&] { return "setting autostart on storage pool '" + name_of(pool) + "'"; });
}

void LibvirtHypervisor::undefine_pool(virStoragePool& pool) {
  if (virStoragePoolIsActive(&pool) == 1) {
    check(virStoragePoolDestroy(&pool),
          [&] { return "stopping storage pool '" + name_of(pool) + "'"; });
  }
  check(virStoragePoolUndefine(&pool),
        [&] { return "undefining storage pool '" + name_of(pool) + "'"; });
}

PoolInfo LibvirtHypervisor::pool_info(virStoragePool& pool) {
  virStoragePoolInfo info{};
  check(virStoragePoolGetInfo(&pool, &info),
        [&] { return "reading storage pool '" + name_of(pool) + "'"; });
  return {info.state == VIR_STORAGE_POOL_RUNNING, info.capacity, info.available};
}

std::string LibvirtHypervisor::pool_xml(virStoragePool& pool) {
  return take_string(virStoragePoolGetXMLDesc(&pool, 0),
                     [&] { return "reading storage pool '" + name_of(pool) + "'"; });
}

std::optional<Volume> LibvirtHypervisor::find_volume(virStoragePool& pool,
                                                     const std::string& name) {
  return found_or_none(
      Volume{virStorageVolLookupByName(&pool, name.c_str())}, VIR_ERR_NO_STORAGE_VOL,
      [&] { return "looking up volume '" + name + "' in pool '" + name_of(pool) + "'"; });
}

std::vector<std::string> LibvirtHypervisor::list_volume_names(virStoragePool& pool) {
  virStorageVolPtr* volumes = nullptr;
  const int count = virStoragePoolListAllVolumes(&pool, &volumes, 0);
  return listed_names<Volume>(
      volumes, count, [&] { return "listing the volumes of pool '" + name_of(pool) + "'"; });
}

Volume LibvirtHypervisor::create_volume(virStoragePool& pool, const std::string& xml) {
  Volume volume{virStorageVolCreateXML(&pool, xml.c_str(), 0)};
  if (!volume) {
    fail([&] { return "creating volume '" + name_in(xml) + "' in pool '" + name_of(pool) + "'"; });
  }
  return volume;
}

Volume LibvirtHypervisor::clone_volume(virStoragePool& pool, const std::string& xml,
                                       virStorageVol& from) {
  Volume volume{virStorageVolCreateXMLFrom(&pool, xml.c_str(), &from, 0)};
  if (!volume) {
    fail([&] {
      return "cloning volume '" + name_of(from) + "' into '" + name_in(xml) + "' in pool '" +
             name_of(pool) + "'";
    });
  }
  return volume;
}

void LibvirtHypervisor::resize_volume(virStorageVol& volume, std::uint64_t capacity_bytes) {
  check(virStorageVolResize(&volume, capacity_bytes, 0),
        [&] { return "resizing volume '" + name_of(volume) + "'"; });
}

void LibvirtHypervisor::delete_volume(virStorageVol& volume) {
  check(virStorageVolDelete(&volume, 0),
        [&] { return "deleting volume '" + name_of(volume) + "'"; });
}

std::string LibvirtHypervisor::volume_xml(virStorageVol& volume) {
  return take_string(virStorageVolGetXMLDesc(&volume, 0),
                     [&] { return "reading volume '" + name_of(volume) + "'"; });
}

std::string LibvirtHypervisor::volume_path(virStorageVol& volume) {
  return take_string(virStorageVolGetPath(&volume),
                     [&] { return "reading the path of volume '" + name_of(volume) + "'"; });
}

VolumeInfo LibvirtHypervisor::volume_info(virStorageVol& volume) {
  virStorageVolInfo info{};
  check(virStorageVolGetInfo(&volume, &info),
        [&] { return "reading volume '" + name_of(volume) + "'"; });
  return {info.capacity, info.allocation};
}

}  // namespace cpi::virt
