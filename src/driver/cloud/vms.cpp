// LibvirtCloud's VM methods: create_vm as its steps (what differs for containers is the VmKind's),
// delete_vm, has_vm, reboot_vm, set_vm_metadata.

#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <pugixml.hpp>
#include <thread>

#include "cpi/agent/iso_image.hpp"
#include "cpi/agent/settings.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/cloud/vm_kinds.hpp"
#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "cpi/stemcell/fs_image.hpp"
#include "cpi/util/file_lock.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/util/uuid.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/xml/volume_xml.hpp"
#include "cpi/xml/xml_util.hpp"

namespace cpi::cloud {
namespace {

// Removes the serial console log of a deleted domain (and virtlogd's rotated copies), but only
// the file this CPI named for that domain: a path the domain XML says otherwise is left alone.
void remove_console_log(const std::string& ours, const std::string& in_xml) {
  if (ours.empty() || in_xml != ours) return;
  for (int i = -1; i < 10; ++i) {
    const std::string path = i < 0 ? ours : ours + "." + std::to_string(i);
    std::error_code ec;
    if (std::filesystem::remove(path, ec)) spdlog::info("removed console log {}", path);
    if (ec) spdlog::warn("removing console log {}: {}", path, ec.message());
  }
}

std::string random_mac() { return "52:54:00:" + [] {
  const auto hex = util::random_hex(6);
  return hex.substr(0, 2) + ":" + hex.substr(2, 2) + ":" + hex.substr(4, 2);
}(); }

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string title_of(const nlohmann::json& metadata) {
  auto get = [&](const char* key) -> std::string {
    auto it = metadata.find(key);
    if (it == metadata.end()) return "";
    return it->is_string() ? it->get<std::string>() : it->dump();
  };
  std::string group = get("instance_group");
  if (group.empty()) group = get("job");
  const std::string deployment = get("deployment");
  const std::string index = get("index");
  if (deployment.empty() && group.empty()) return get("name");
  return deployment + "/" + group + (index.empty() ? "" : "/" + index);
}

}  // namespace

std::string LibvirtCloud::virt_type() {
  if (m_virt_type) return *m_virt_type;
  const auto& wanted = m_config.libvirt.domain_type;
  if (wanted != "auto") {
    m_virt_type = wanted;
  } else {
    const auto caps = m_hv.domain_capabilities("kvm");
    m_virt_type = caps ? "kvm" : "qemu";
    spdlog::debug("domain_type auto: using {}", *m_virt_type);
  }
  return *m_virt_type;
}

// The director sends each call to the host of the instance's AZ (its cpi in the cpi-config), and
// every later call on the VM goes there too, so the VM cannot be placed on another host: a disk
// that is not on this one could never be attached to it. Refusing here, before anything is made,
// says so at once instead of leaving a VM whose attach_disk fails.
void LibvirtCloud::require_disks_here(const std::vector<DiskCid>& disks) {
  for (const auto& disk : disks) {
    if (!check_cid("create_vm", NameKind::disk, disk.value)) {
      throw VmCreationFailed("create_vm: disk_cids names " + quote_text(disk.value) +
                                 ", which is no disk CID of this CPI, so the VM could never "
                                 "attach it",
                             false);
    }
    if (!m_storage.locate(object_name(disk.value))) {
      throw VmCreationFailed(
          "create_vm: disk_cids: " + m_storage.not_on_this_host("disk '" + disk.value + "'") +
              "; the VM would be made where it cannot attach the disk. Deploy "
              "the instance to the AZ (cpi) of the host that holds the disk",
          false);
    }
  }
}

// The steps, under one Rollback: every one of them is undone when a later one fails.
CreatedVm LibvirtCloud::create_vm(const VmRequest& request) {
  const auto props = parse_vm_props(request.cloud_properties);
  m_config.agent.require_mbus("create_vm");
  if (!request.networks.is_object()) {
    throw CloudError("create_vm: networks must be an object");
  }
  if (!check_cid("create_vm", NameKind::stemcell, request.stemcell.value)) {
    throw CloudError("create_vm: stemcell " + quote_text(request.stemcell.value) +
                     " is no stemcell CID of this CPI (upload it again with bosh upload-stemcell)");
  }
  const VmCid cid = new_vm_cid();
  util::Rollback rollback;
  try {
    virStoragePool& target = m_storage.pool();
    require_disks_here(request.disk_cids);
    auto stemcell = require_stemcell(target, request.stemcell);
    const auto stemcell_facts = xml::read_volume_xml(m_hv.volume_xml(*stemcell));
    xml::DomainSpec spec;
    const auto networks = plan_networks(request.networks, spec.nics);
    NewVm vm{request,   cid,      props, target, m_config.libvirt.storage_pool,
             *stemcell, stemcell_facts, networks, spec, "", ""};
    m_kind->add_volumes(vm, rollback);
    describe_domain(vm);
    auto domain = define_and_start(vm, rollback);
    auto facts = vm_facts(*domain);  // the last step: the VM is complete
    facts.erase(xml::k_incomplete_since);
    write_vm_facts(*domain, facts);
    rollback.commit();
    return {cid, networks};
  } catch (...) {
    creation_failed(cid, rollback);
  }
}

// Rethrows what create_vm caught, after undoing what it made, as the director expects it:
// VMCreationFailed (retriable when the daemon or the connection was lost) for what went wrong on
// the host; CpiError and NoDiskSpace as they are (the request or the pool needs an operator).
void LibvirtCloud::creation_failed(const VmCid& cid, util::Rollback& rollback) {
  try {
    throw;
  } catch (const VmCreationFailed&) {
    rollback.run();
    throw;
  } catch (const virt::LibvirtError& e) {
    rollback.run();
    throw VmCreationFailed("creating vm '" + cid.value + "': " + e.what(),
                           transient_code(e.code()));
  } catch (const NetworkNotFound& e) {
    rollback.run();
    throw VmCreationFailed(std::string{"creating vm: "} + e.what(), false);
  } catch (const NoDiskSpace&) {  // the director's own type for a full pool, as create_disk says
    rollback.run();
    throw;
  } catch (const CpiError&) {
    rollback.run();
    throw;
  } catch (const std::exception& e) {
    rollback.run();
    throw VmCreationFailed(std::string{"creating vm '"} + cid.value + "': " + e.what(), false);
  }
}

// One NIC per BOSH network (a vip has none), with a MAC chosen here; the networks as the agent's
// settings get them. A libvirt network must exist, and be active or allowed to be started.
nlohmann::json LibvirtCloud::plan_networks(const nlohmann::json& requested,
                                           std::vector<xml::NicDevice>& nics) {
  nlohmann::json networks = nlohmann::json::object();
  for (const auto& [name, network] : requested.items()) {
    if (!network.is_object()) {
      throw CloudError("create_vm: networks." + name + " must be an object");
    }
    nlohmann::json copy = network;
    if (copy.value("type", "") == "vip") {
      networks[name] = copy;
      continue;
    }
    auto np = parse_network_props(name, network.value("cloud_properties", nlohmann::json()));
    if (np.source.empty()) np.source = m_config.libvirt.network;
    if (np.type == "network") require_network(np.source, name);
    const std::string mac = random_mac();
    copy["mac"] = mac;
    xml::NicDevice nic{mac, np.type, np.source, np.mode, m_flavour->nic_model()};
    m_kind->address_nic(copy, nic);
    networks[name] = copy;
    nics.push_back(nic);
  }
  return networks;
}

void LibvirtCloud::require_network(const std::string& network, const std::string& bosh_network) {
  auto net = m_hv.find_network(network);
  if (!net) {
    throw NetworkNotFound("libvirt network '" + network + "' (for BOSH network '" + bosh_network +
                          "') does not exist on " + m_hv.uri());
  }
  if (m_hv.network_active(**net)) return;
  if (!m_config.libvirt.auto_enable_networks) {
    throw CloudError("libvirt network '" + network + "' (for BOSH network '" + bosh_network +
                     "') is inactive: start it (virsh net-start " + network +
                     ") or set libvirt.auto_enable_networks");
  }
  m_hv.start_network(**net);
}

// The rest of the domain: name, CPU, memory, devices, console and our metadata.
void LibvirtCloud::describe_domain(NewVm& vm) {
  const VmProps& props = vm.props;
  xml::DomainSpec& spec = vm.spec;
  spec.name = object_name(vm.cid.value);
  spec.virt_type = m_flavour->domain_type([this] { return virt_type(); });
  spec.machine = m_config.libvirt.machine;
  spec.vcpus = props.cpu;
  spec.memory_mib = props.ram_mib;
  spec.host_passthrough = spec.virt_type == "kvm";
  spec.console_log = m_flavour->console_log(spec.name);
  for (const auto& device : props.host_devices) {
    spec.host_devices.push_back({device.pci, device.vendor, device.product});
  }
  spec.cpu = {props.cpu_mode, props.cpu_model, ""};
  if (props.nested_virtualization) {
    spec.cpu.nested_feature = xml::nested_virt_feature(m_hv.capabilities());
  }
  spec.hugepages = props.hugepages;
  for (const auto& disk : spec.disks) {  // host paths, for the flavours that write <source file>
    if (!m_flavour->needs_volume_paths()) break;
    if (auto volume = m_hv.find_volume(vm.pool, disk.volume)) {
      spec.volume_paths[disk.volume] = m_hv.volume_path(**volume);
    }
  }
  // "incomplete_since" (seconds since the epoch) is defined with the domain and cleared as
  // the last step: a domain that still has it was left by a create_vm that was killed or
  // whose daemon died, and `cpi cleanup --orphans` removes it once it is old enough. Its
  // absence means complete, so the VMs of older versions are complete.
  const auto started = static_cast<std::int64_t>(std::time(nullptr));
  spec.metadata = facts_xml({{"agent_id", vm.request.agent_id},
                             {"created_at", now_utc()},
                             {xml::k_incomplete_since, started},
                             {"stemcell", vm.request.stemcell.value},
                             {"ephemeral_serial", vm.ephemeral_serial},
                             {"bus", vm.bus},
                             {"api_version", vm.request.api_version},
                             {"container", m_kind->container()},
                             {"metadata", nlohmann::json::object()}});
}

virt::Domain LibvirtCloud::define_and_start(const NewVm& vm, util::Rollback& rollback) {
  const std::string& name = vm.spec.name;
  const std::string text = m_flavour->build(vm.spec);
  spdlog::debug("domain XML for {}:\n{}", name, text);
  auto domain = m_hv.define_domain(text);
  rollback.add("undefine domain '" + name + "'", [this, name] {
    if (auto d = m_hv.find_domain(name)) {
      if (m_hv.domain_active(**d)) m_hv.destroy_domain(**d);
      m_hv.undefine_domain(**d);
    }
  });
  m_hv.start_domain(*domain);
  m_hv.set_domain_autostart(*domain);
  return domain;
}

void LibvirtCloud::delete_vm(const VmCid& cid) {
  if (!deletable("delete_vm", NameKind::vm, cid.value)) return;
  const std::string name = object_name(cid.value);
  // The VM's lock first (then its disks', as attach and detach take them): an attach or detach
  // under way on this VM finishes before the domain goes, and none starts while it goes.
  util::FileLock vm_lock{m_names.vm_lock(cid)};
  xml::DomainFacts facts;  // the persistent definition: our mark, facts and disks in one read
  auto domain = find_our_domain(cid, facts);
  virStoragePool& target = m_storage.pool();
  std::string stemcell;
  if (domain) {
    stemcell = facts_json(facts.facts).value("stemcell", "");
    // With persistent disks attached, shut down gracefully first (bounded) so the guest
    // flushes and unmounts them; the VM's own disks are deleted anyway, so without persistent
    // disks there is nothing to protect and it is powered off at once.
    const bool has_persistent = std::any_of(facts.disks.begin(), facts.disks.end(),
                                            [](const auto& d) { return is_disk_cid(d.serial); });
    stop_domain(**domain, cid.value, has_persistent ? 5 : 0);
    m_hv.undefine_domain(**domain);
    // Its console log, unless the operator keeps them; a remote host's log stays on that host.
    if (!m_config.libvirt.keep_console_logs && host_is_local()) {
      remove_console_log(m_flavour->console_log(name),
                         facts.console_log);
    }
    for (const auto& disk : facts.disks) {  // a container's short links (stemcell/fs_image.hpp)
      if (!disk.mount.empty()) stemcell::remove_link(disk.path);
    }
    // Persistent disks stay; only their attachment record is cleared.
    for (const auto& disk : facts.disks) {
      if (is_disk_cid(disk.serial)) {
        try {
          util::FileLock disk_lock{m_names.disk_lock({disk.serial})};
          if (auto located = m_storage.locate(object_name(disk.serial))) {
            auto meta = m_storage.read_meta(*located->pool, object_name(disk.serial));
            if (meta.value("attached_to", "") == cid.value) {
              meta.erase("attached_to");
              m_storage.write_meta(*located->pool, object_name(disk.serial), meta);
            }
          }
        } catch (const std::exception& e) {
          spdlog::warn("clearing the attachment of disk {}: {}", disk.serial, e.what());
        }
      }
    }
    spdlog::info("deleted domain {}", name);
  } else {
    spdlog::info("vm {} is already gone; removing any volumes left", cid.value);
  }
  for (const auto& volume : {root_volume(cid), ephemeral_volume(cid), config_volume(cid),
                             meta_volume(config_volume(cid))}) {
    m_storage.delete_if_exists(target, volume);
  }
  vm_lock.remove();  // no longer needed; removed while held (util/file_lock.hpp)
  if (!stemcell.empty()) {
    try {
      collect_stemcell({stemcell});
    } catch (const std::exception& e) {
      spdlog::warn("checking whether stemcell {} can now be removed: {}", stemcell, e.what());
    }
  }
}

bool LibvirtCloud::has_vm(const VmCid& cid) {
  const auto parsed = parse_unprefixed(cid.value);
  if (!parsed || parsed->kind != NameKind::vm) return false;  // not a vm CID: no such vm
  try {
    return find_our_domain(cid).has_value();
  } catch (const CpiError& e) {  // a domain of that name that is not ours
    spdlog::warn("has_vm: {}", e.what());
    return false;
  }
}

void LibvirtCloud::reboot_vm(const VmCid& cid) {
  auto domain = require_domain(cid);
  // A power cycle the CPI sees through: the ACPI power button (a container: SIGTERM to its
  // init), up to reboot_timeout for the guest to power off, off by force past it, then on.
  // libvirt's own ACPI reboot returns at once and counts on the guest powering off: one that
  // halts, or ignores the button, would never come back and the call would not know.
  const int grace = m_kind->reboot_grace();
  stop_domain(*domain, cid.value, grace);
  m_hv.start_domain(*domain);
}

void LibvirtCloud::set_vm_metadata(const VmCid& cid, const nlohmann::json& metadata) {
  nlohmann::json facts;
  auto domain = require_domain(cid, &facts);  // the ownership check reads the facts
  facts["metadata"] = metadata;
  write_vm_facts(*domain, facts);
  const std::string title = title_of(metadata);
  if (!title.empty()) {
    m_hv.set_domain_title(*domain, title);
  }
}

}  // namespace cpi::cloud
