// Which domains hold a persistent disk, read from libvirt's domain definitions (the truth), and
// the disk's record kept in step with them.

#include <spdlog/spdlog.h>

#include <pugixml.hpp>

#include <chrono>
#include <thread>

#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/fs_image.hpp"

namespace cpi::cloud {
namespace {

// Whether a domain XML has a device that is `disk`. A <disk> (qemu, xen): by serial, by pool and
// volume name, or by the volume's path (a file or block source another tool may have written).
// A <filesystem> (a container, cloud/containers.cpp): by the mount point the CPI gives a
// persistent disk, by pool and volume name, by the volume's path, or by the short link in
// stemcell::k_link_dir that lxc_source_path() names a long volume path by.
bool xml_holds(const std::string& text, const LibvirtCloud::DiskRef& disk) {
  pugi::xml_document doc;
  if (!doc.load_string(text.c_str())) {
    throw CloudError("libvirt returned a domain definition that does not parse");
  }
  const auto devices = doc.child("domain").child("devices");
  auto same_volume = [&](pugi::xml_node source) {
    return disk.volume == source.attribute("volume").value() &&
           disk.pool_name == source.attribute("pool").value();
  };
  auto same_path = [&](const char* path) {
    return !disk.path.empty() && *path != '\0' && disk.path == path;
  };
  for (auto d : devices.children("disk")) {
    if (disk.cid == d.child_value("serial")) return true;
    const auto source = d.child("source");
    if (same_volume(source) || same_path(source.attribute("file").value()) ||
        same_path(source.attribute("dev").value())) {
      return true;
    }
  }
  const std::string mount = std::string{stemcell::k_disks_dir} + "/" + disk.cid;
  const std::string link = disk.path.empty() ? "" : stemcell::lxc_link_path(disk.path);
  for (auto f : devices.children("filesystem")) {
    if (mount == f.child("target").attribute("dir").value()) return true;
    const auto source = f.child("source");
    if (same_volume(source)) return true;
    for (const char* attribute : {"file", "dev", "dir"}) {
      const char* path = source.attribute(attribute).value();
      if (same_path(path) || (!link.empty() && link == path)) return true;
    }
  }
  return false;
}

}  // namespace

LibvirtCloud::DiskRef LibvirtCloud::disk_ref(const DiskCid& disk, Located& located) {
  DiskRef ref{disk.value, located.pool_name, object_name(disk.value), ""};
  ref.path = m_hv.volume_path(*located.volume);
  return ref;
}

bool LibvirtCloud::domain_holds(virDomain& domain, const DiskRef& disk) {
  if (xml_holds(m_hv.domain_xml(domain, true), disk)) return true;
  return m_hv.domain_active(domain) && xml_holds(m_hv.domain_xml(domain, false), disk);
}

bool LibvirtCloud::vm_holds(const std::string& vm, const DiskRef& disk) {
  if (vm.empty()) return false;
  auto domain = m_hv.find_domain(object_name(vm));
  return domain && domain_holds(**domain, disk);
}

// A scan over every domain on the host, not only the ones the record names: the record may be
// missing, stale or edited by hand, and a disk another domain (ours or not) has open must never
// be deleted. delete_disk is rare, so its cost (two XML reads per domain) is acceptable there;
// every other method looks domains up by name.
std::vector<std::string> LibvirtCloud::domains_holding(const DiskRef& disk) {
  std::vector<std::string> out;
  const auto names = m_hv.list_domain_names();
  for (const auto& name : names) {
    auto domain = m_hv.find_domain(name);
    if (!domain) continue;  // gone since the listing
    try {
      if (domain_holds(**domain, disk)) out.push_back(name);
    } catch (const CloudError&) {
      // Gone since the listing, or unreadable: an unreadable one counts as holding the disk.
      if (m_hv.find_domain(name)) {
        throw;
      }
    }
  }
  return out;
}

std::vector<std::string> LibvirtCloud::reconcile_record(Located& located, const DiskRef& disk,
                                                        nlohmann::json& meta) {
  std::vector<std::string> named;
  for (const char* key : {"attached_to", "attaching", "detaching"}) {
    const std::string vm = meta.value(key, "");
    if (!vm.empty() && std::find(named.begin(), named.end(), vm) == named.end()) {
      named.push_back(vm);
    }
  }
  std::vector<std::string> holders;
  for (const auto& vm : named) {
    if (vm_holds(vm, disk)) holders.push_back(vm);
  }
  nlohmann::json want = meta;
  want.erase("attaching");
  want.erase("detaching");
  if (holders.empty()) {
    want.erase("attached_to");
  } else if (std::find(holders.begin(), holders.end(), meta.value("attached_to", "")) ==
             holders.end()) {
    want["attached_to"] = holders.front();
  }
  if (want != meta) {
    spdlog::info("disk {}: record {} reconciled with the domain definitions to {}", disk.cid,
                 meta.dump(), want.dump());
    m_storage.write_meta(*located.pool, disk.volume, want);
    meta = std::move(want);
  }
  return holders;
}

bool LibvirtCloud::wait_released(virDomain& domain, const DiskRef& disk) {
  // Polls the live definition, which libvirt updates when qemu reports the device deleted.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(m_config.libvirt.detach_timeout);
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    const bool held = m_hv.domain_active(domain) && xml_holds(m_hv.domain_xml(domain, false), disk);
    if (!held) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(250));
  }
}

}  // namespace cpi::cloud
