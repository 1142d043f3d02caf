#pragma once
// FakeHypervisor: a HypervisorWrapper over libvirt's test:///default driver that emulates what
// that driver lacks (docs/architecture.md, "Tests") and injects failures.
//
// Emulated (the test driver answers VIR_ERR_NO_SUPPORT):
//   upload_volume    reads `length` bytes from the source into memory, keyed by volume path
//   download_volume  the stored bytes, or zeros of the capacity when never uploaded (up to max)
//   resize_volume    a capacity override that volume_info reports
//   attach_device / detach_device  edit the persistent definition (inactive XML) and re-define it;
//                    with `live` on a running domain they also add/remove the disk in an emulated
//                    live definition (domain_xml(d, false)), which detach leaves alone while
//                    ignore_unplug(true) (a guest that never acknowledges the unplug)
//   detach_live_device             the live part of that alone; start/destroy reset it
//   update_device / block_resize   recorded only
//   shutdown_domain  passed on (the test driver powers off at once) unless ignore_power_button
//   block_copy / block_job / block_job_abort  a copy job per running domain and disk target,
//                    ready at once; the live definition shows it as libvirt does (<mirror>);
//                    the abort copies the disk's stored bytes into the target, as the copy at
//                    that instant; destroy/start end it
//   domain_capabilities            nullopt, as the test driver
// delete_volume forgets what was stored for the volume; clone_volume copies it.
//
// Requests: every Hypervisor method the code under test calls is logged by name (requests()),
// except uri(), which libvirt answers from the connection without asking the daemon. On a
// remote connection each is one request to libvirtd (a stream: one upload or download), with
// the exceptions LibvirtHypervisor documents; the driver tests count them per CPI method.
//
// Fault injection: fail_at(n) makes the n-th mutating call from now throw
// LibvirtError(VIR_ERR_INTERNAL_ERROR, "injected failure at step n") before it does anything.
// Mutating: define/build/start/autostart pool, create/clone/upload/resize/delete volume,
// define/start domain, domain autostart, metadata and title, attach/detach/update device,
// suspend, resume, block resize, block copy, block job abort.

#include <libvirt/virterror.h>

#include <pugixml.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/hypervisor.hpp"
#include "support/hypervisor_wrapper.hpp"

namespace cpi::testing {

class FakeHypervisor final : public virt::HypervisorWrapper {
 public:
  struct Upload {
    std::string bytes;
    bool sparse = false;
  };
  struct DeviceCall {
    std::string domain;
    std::string xml;
    bool live = false;
  };
  struct BlockResize {
    std::string domain;
    std::string target;
    std::uint64_t bytes = 0;
  };

  explicit FakeHypervisor(virt::Hypervisor& target) : HypervisorWrapper(target) {}

  // --- fault injection
  // Fails the n-th mutating call counted from now (n >= 1); resets mutating_calls() to 0.
  void fail_at(int n) {
    m_calls = 0;
    m_fail_at = n;
    m_failed = false;
  }
  // A "kill" at the n-th mutating call: it and every mutating call after it fail, so the code's
  // own clean-up cannot run either (as after kill -9); disarm() revives the host.
  void kill_at(int n) {
    fail_at(n);
    m_kill = true;
  }
  void disarm() {
    m_fail_at = 0;
    m_kill = false;
    m_tear_keep.reset();
  }
  // The next upload_volume writes only the first `keep` bytes of its data over what the volume
  // held, then fails: a write cut off by a crash.
  void tear_next_upload(std::size_t keep) { m_tear_keep = keep; }
  void reset_calls() { m_calls = 0; }
  int mutating_calls() const { return m_calls; }
  bool injected() const { return m_failed; }

  // --- requests: the Hypervisor methods called since reset_requests(), in order
  const std::vector<std::string>& requests() const { return m_requests; }
  void reset_requests() { m_requests.clear(); }

  // --- what the emulation recorded
  std::optional<Upload> uploaded(const std::string& volume_path) const {
    auto it = m_uploads.find(volume_path);
    if (it == m_uploads.end()) return std::nullopt;
    return it->second;
  }
  const std::vector<DeviceCall>& updates() const { return m_updates; }
  const std::vector<BlockResize>& block_resizes() const { return m_block_resizes; }
  int upload_count() const { return m_upload_count; }
  // Copy jobs under way: "<domain>/<target>" -> the file they copy into.
  std::map<std::string, std::string> copy_jobs() const {
    std::map<std::string, std::string> out;
    for (const auto& [domain, jobs] : m_jobs) {
      for (const auto& [dev, path] : jobs) out[domain + "/" + dev] = path;
    }
    return out;
  }
  int suspends() const { return m_suspends; }
  // A guest that ignores unplug requests: live detaches are accepted and never complete.
  void ignore_unplug(bool ignore) { m_ignore_unplug = ignore; }
  // A guest that ignores the ACPI power button (hung, or halts without powering off): shutdown
  // requests are accepted and change nothing. The domains that got one, in order.
  void ignore_power_button(bool ignore) { m_ignore_power_button = ignore; }
  const std::vector<std::string>& power_button_presses() const { return m_power_button_presses; }
  // Bytes stored for a volume path, as an upload left them (tests write patterns this way).
  void store(const std::string& volume_path, std::string bytes) {
    m_uploads[volume_path] = Upload{std::move(bytes), false};
  }

  // --- host
  std::optional<std::string> domain_capabilities(const std::string&) override {
    note("domain_capabilities");
    return std::nullopt;
  }

  // --- pools
  virt::Pool define_pool(const std::string& xml) override {
    note("define_pool");
    step();
    return HypervisorWrapper::define_pool(xml);
  }
  void build_pool(virStoragePool& pool) override {
    note("build_pool");
    step();
    HypervisorWrapper::build_pool(pool);
  }
  void start_pool(virStoragePool& pool) override {
    note("start_pool");
    step();
    HypervisorWrapper::start_pool(pool);
  }
  void set_pool_autostart(virStoragePool& pool) override {
    note("set_pool_autostart");
    step();
    HypervisorWrapper::set_pool_autostart(pool);
  }

  // --- volumes
  virt::Volume create_volume(virStoragePool& pool, const std::string& xml) override {
    note("create_volume");
    step();
    auto volume = HypervisorWrapper::create_volume(pool, xml);
    forget(target().volume_path(*volume));  // a new volume starts empty
    return volume;
  }

  virt::Volume clone_volume(virStoragePool& pool, const std::string& xml,
                            virStorageVol& from) override {
    note("clone_volume");
    step();
    auto volume = HypervisorWrapper::clone_volume(pool, xml, from);
    const std::string path = target().volume_path(*volume);
    forget(path);
    if (auto it = m_uploads.find(target().volume_path(from)); it != m_uploads.end()) {
      m_uploads[path] = it->second;
    }
    return volume;
  }

  // Emulated: the test driver can neither download nor upload.
  void copy_volume_bytes(virStorageVol& from, virStorageVol& to) override {
    note("copy_volume_bytes");
    step();
    const std::string path = target().volume_path(to);
    forget(path);
    if (auto it = m_uploads.find(target().volume_path(from)); it != m_uploads.end()) {
      m_uploads[path] = it->second;
    }
  }

  void upload_volume(virStorageVol& volume, virt::ByteSource& source, std::uint64_t length,
                     bool sparse) override {
    note("upload_volume");
    step();  // a failure here reads nothing from the source
    const std::string path = target().volume_path(volume);
    if (m_tear_keep) {
      std::string data(static_cast<std::size_t>(length), '\0');
      data.resize(source.read(data.data(), data.size()));
      std::string& stored = m_uploads[path].bytes;
      const std::size_t keep = std::min(*m_tear_keep, data.size());
      if (stored.size() < keep) stored.resize(keep, '\0');
      stored.replace(0, keep, data, 0, keep);
      m_tear_keep.reset();
      throw virt::LibvirtError(VIR_ERR_INTERNAL_ERROR, "upload torn (emulated crash)");
    }
    Upload upload;
    upload.sparse = sparse;
    try {
      std::vector<char> buffer(1U << 20);
      while (upload.bytes.size() < length) {
        const auto want = static_cast<std::size_t>(
            std::min<std::uint64_t>(buffer.size(), length - upload.bytes.size()));
        const std::size_t got = source.read(buffer.data(), want);
        if (got == 0) break;
        upload.bytes.append(buffer.data(), got);
      }
    } catch (const std::exception& e) {  // as LibvirtHypervisor reports a failing source
      throw virt::LibvirtError(VIR_ERR_INTERNAL_ERROR,
                               "uploading into '" + path + "': " + e.what());
    }
    ++m_upload_count;
    m_uploads[path] = std::move(upload);
  }

  std::string download_volume(virStorageVol& volume, std::uint64_t max_bytes) override {
    note("download_volume");
    const auto capacity = volume_info(volume).capacity;
    const auto length = static_cast<std::size_t>(std::min(capacity, max_bytes));
    std::string bytes;
    if (auto it = m_uploads.find(target().volume_path(volume)); it != m_uploads.end()) {
      bytes = it->second.bytes;
    }
    bytes.resize(std::max(bytes.size(), length), '\0');
    bytes.resize(length);
    return bytes;
  }

  void resize_volume(virStorageVol& volume, std::uint64_t capacity_bytes) override {
    note("resize_volume");
    step();
    m_capacity[target().volume_path(volume)] = capacity_bytes;
  }

  void delete_volume(virStorageVol& volume) override {
    note("delete_volume");
    step();
    const std::string path = target().volume_path(volume);
    HypervisorWrapper::delete_volume(volume);
    forget(path);
  }

  virt::VolumeInfo volume_info(virStorageVol& volume) override {
    note("volume_info");
    auto info = HypervisorWrapper::volume_info(volume);
    if (auto it = m_capacity.find(target().volume_path(volume)); it != m_capacity.end()) {
      info.capacity = it->second;
    }
    return info;
  }

  std::string volume_xml(virStorageVol& volume) override {
    note("volume_xml");
    auto text = HypervisorWrapper::volume_xml(volume);
    auto it = m_capacity.find(target().volume_path(volume));
    if (it == m_capacity.end()) return text;
    pugi::xml_document doc;
    doc.load_string(text.c_str());
    auto capacity = doc.child("volume").child("capacity");
    capacity.attribute("unit").set_value("bytes");
    capacity.text() = static_cast<unsigned long long>(it->second);
    return serialize(doc);
  }

  // --- domains
  virt::Domain define_domain(const std::string& xml) override {
    note("define_domain");
    step();
    return HypervisorWrapper::define_domain(xml);
  }
  void start_domain(virDomain& domain) override {
    note("start_domain");
    step();
    HypervisorWrapper::start_domain(domain);
    m_live.erase(virDomainGetName(&domain));  // a new qemu starts from the persistent definition
    m_jobs.erase(virDomainGetName(&domain));
  }
  void shutdown_domain(virDomain& domain) override {
    note("shutdown_domain");
    m_power_button_presses.emplace_back(virDomainGetName(&domain));
    if (!m_ignore_power_button) HypervisorWrapper::shutdown_domain(domain);
  }
  void destroy_domain(virDomain& domain) override {
    note("destroy_domain");
    HypervisorWrapper::destroy_domain(domain);
    m_live.erase(virDomainGetName(&domain));
    m_jobs.erase(virDomainGetName(&domain));
  }
  // The live definition with the disks hot-plugged through this fake.
  std::string domain_xml(virDomain& domain, bool inactive) override {
    note("domain_xml");
    return emulated_xml(domain, inactive);
  }
  std::string emulated_xml(virDomain& domain, bool inactive) {  // domain_xml, not logged
    auto text = HypervisorWrapper::domain_xml(domain, inactive);
    if (inactive || !target().domain_active(domain)) return text;
    pugi::xml_document doc;
    parse(doc, text);
    auto devices = doc.child("domain").child("devices");
    const auto it = m_live.find(virDomainGetName(&domain));
    if (it != m_live.end()) add_live_disks(devices, it->second);
    if (const auto jobs = m_jobs.find(virDomainGetName(&domain)); jobs != m_jobs.end()) {
      for (auto disk : devices.children("disk")) {
        const auto job = jobs->second.find(disk.child("target").attribute("dev").value());
        if (job == jobs->second.end()) continue;
        auto mirror = disk.insert_child_before("mirror", disk.child("target"));
        mirror.append_attribute("type") = "file";
        mirror.append_attribute("file") = job->second.c_str();
        mirror.append_attribute("job") = "copy";
        mirror.append_attribute("ready") = "yes";
        mirror.append_child("source").append_attribute("file") = job->second.c_str();
      }
    }
    return serialize(doc);
  }
  void add_live_disks(pugi::xml_node devices, const std::map<std::string, std::string>& live) {
    for (const auto& [dev, xml] : live) {
      bool present = false;
      for (auto disk : devices.children("disk")) {
        present = present || dev == disk.child("target").attribute("dev").value();
      }
      if (present) continue;
      pugi::xml_document device;
      parse(device, xml);
      devices.append_copy(device.child("disk"));
    }
  }
  void detach_live_device(virDomain& domain, const std::string& xml) override {
    note("detach_live_device");
    step();
    if (!unplug_live(domain, xml)) {
      throw virt::LibvirtError(VIR_ERR_DEVICE_MISSING, "no such disk in the live domain (emulated)");
    }
  }
  void suspend_domain(virDomain& domain) override {
    note("suspend_domain");
    step();
    HypervisorWrapper::suspend_domain(domain);
    ++m_suspends;
  }
  void resume_domain(virDomain& domain) override {
    note("resume_domain");
    step();
    HypervisorWrapper::resume_domain(domain);
  }
  void set_domain_autostart(virDomain& domain) override {
    note("set_domain_autostart");
    step();
    HypervisorWrapper::set_domain_autostart(domain);
  }
  void set_domain_metadata(virDomain& domain, const std::string& xml, const std::string& key,
                           const std::string& ns_uri) override {
    note("set_domain_metadata");
    step();
    HypervisorWrapper::set_domain_metadata(domain, xml, key, ns_uri);
  }
  void set_domain_title(virDomain& domain, const std::string& title) override {
    note("set_domain_title");
    step();
    HypervisorWrapper::set_domain_title(domain, title);
  }

  // Appends the <disk> to the persistent definition (the live one of the test driver stays as
  // it is until the domain restarts).
  void attach_device(virDomain& domain, const std::string& xml, bool live) override {
    note("attach_device");
    step();
    if (live && target().domain_active(domain)) {
      m_live[virDomainGetName(&domain)][target_of(xml)] = xml;
    }
    pugi::xml_document device;
    parse(device, xml);
    const std::string dev = device.child("disk").child("target").attribute("dev").value();
    pugi::xml_document doc;
    parse(doc, target().domain_xml(domain, true));
    auto devices = doc.child("domain").child("devices");
    for (auto disk : devices.children("disk")) {
      if (dev == disk.child("target").attribute("dev").value()) {
        throw virt::LibvirtError(VIR_ERR_OPERATION_FAILED,
                                 "target " + dev + " already exists (emulated attach)");
      }
    }
    // libvirt keeps disks together: insert after the last one.
    auto last = devices.last_child();
    for (auto disk : devices.children("disk")) last = disk;
    if (last) {
      devices.insert_copy_after(device.child("disk"), last);
    } else {
      devices.append_copy(device.child("disk"));
    }
    HypervisorWrapper::define_domain(serialize(doc));
  }

  // Removes the <disk> whose target dev matches from the persistent definition.
  void detach_device(virDomain& domain, const std::string& xml, bool live) override {
    note("detach_device");
    step();
    if (live) unplug_live(domain, xml);
    pugi::xml_document device;
    parse(device, xml);
    const std::string dev = device.child("disk").child("target").attribute("dev").value();
    pugi::xml_document doc;
    parse(doc, target().domain_xml(domain, true));
    auto devices = doc.child("domain").child("devices");
    for (auto disk : devices.children("disk")) {
      if (dev == disk.child("target").attribute("dev").value()) {
        devices.remove_child(disk);
        HypervisorWrapper::define_domain(serialize(doc));
        return;
      }
    }
    throw virt::LibvirtError(VIR_ERR_DEVICE_MISSING,
                             "no disk with target " + dev + " (emulated detach)");
  }

  void update_device(virDomain& domain, const std::string& xml, bool live) override {
    note("update_device");
    step();
    m_updates.push_back({virDomainGetName(&domain), xml, live});
  }

  void block_resize(virDomain& domain, const std::string& target_dev,
                    std::uint64_t bytes) override {
    note("block_resize");
    step();
    m_block_resizes.push_back({virDomainGetName(&domain), target_dev, bytes});
  }

  void block_copy(virDomain& domain, const std::string& dev, const std::string& dest_xml) override {
    note("block_copy");
    step();
    if (!target().domain_active(domain)) {
      throw virt::LibvirtError(VIR_ERR_OPERATION_INVALID, "domain is not running (emulated copy)");
    }
    pugi::xml_document dest;
    parse(dest, dest_xml);
    const std::string path = dest.child("disk").child("source").attribute("file").value();
    auto& jobs = m_jobs[virDomainGetName(&domain)];
    if (path.empty() || jobs.count(dev) != 0 || source_path(domain, dev).empty()) {
      throw virt::LibvirtError(VIR_ERR_OPERATION_INVALID,
                               "cannot copy disk " + dev + " (emulated copy)");
    }
    jobs[dev] = path;
  }
  std::optional<virt::BlockJob> block_job(virDomain& domain, const std::string& dev) override {
    note("block_job");
    const auto it = m_jobs.find(virDomainGetName(&domain));
    if (it == m_jobs.end() || it->second.count(dev) == 0) return std::nullopt;
    return virt::BlockJob{1, 1};  // ready at once
  }
  void block_job_abort(virDomain& domain, const std::string& dev) override {
    note("block_job_abort");
    step();
    const auto it = m_jobs.find(virDomainGetName(&domain));
    if (it == m_jobs.end() || it->second.count(dev) == 0) {
      throw virt::LibvirtError(VIR_ERR_OPERATION_INVALID,
                               "no block job on disk " + dev + " (emulated copy)");
    }
    const std::string dest = it->second.at(dev);
    forget(dest);
    if (auto bytes = m_uploads.find(source_path(domain, dev)); bytes != m_uploads.end()) {
      m_uploads[dest] = bytes->second;
    }
    it->second.erase(dev);
  }

  // --- the methods only logged (forwarded as they are)
  virt::HostVersions host_versions() override {
    note("host_versions");
    return HypervisorWrapper::host_versions();
  }
  std::string capabilities() override {
    note("capabilities");
    return HypervisorWrapper::capabilities();
  }
  int domain_state(virDomain& d) override {
    note("domain_state");
    return HypervisorWrapper::domain_state(d);
  }
  std::optional<virt::Pool> find_pool(const std::string& n) override {
    note("find_pool");
    return HypervisorWrapper::find_pool(n);
  }
  std::vector<std::string> active_pool_names() override {
    note("active_pool_names");
    return HypervisorWrapper::active_pool_names();
  }
  void undefine_pool(virStoragePool& p) override {
    note("undefine_pool");
    HypervisorWrapper::undefine_pool(p);
  }
  virt::PoolInfo pool_info(virStoragePool& p) override {
    note("pool_info");
    return HypervisorWrapper::pool_info(p);
  }
  std::string pool_xml(virStoragePool& p) override {
    note("pool_xml");
    return HypervisorWrapper::pool_xml(p);
  }
  std::optional<virt::Volume> find_volume(virStoragePool& p, const std::string& n) override {
    note("find_volume");
    return HypervisorWrapper::find_volume(p, n);
  }
  std::vector<std::string> list_volume_names(virStoragePool& p) override {
    note("list_volume_names");
    return HypervisorWrapper::list_volume_names(p);
  }
  std::string volume_path(virStorageVol& v) override {
    note("volume_path");
    return HypervisorWrapper::volume_path(v);
  }
  std::optional<virt::Domain> find_domain(const std::string& n) override {
    note("find_domain");
    return HypervisorWrapper::find_domain(n);
  }
  std::vector<std::string> list_domain_names() override {
    note("list_domain_names");
    return HypervisorWrapper::list_domain_names();
  }
  void undefine_domain(virDomain& d) override {
    note("undefine_domain");
    HypervisorWrapper::undefine_domain(d);
  }
  bool domain_active(virDomain& d) override {
    note("domain_active");
    return HypervisorWrapper::domain_active(d);
  }
  std::optional<std::string> domain_metadata(virDomain& d, const std::string& u) override {
    note("domain_metadata");
    return HypervisorWrapper::domain_metadata(d, u);
  }
  std::optional<virt::Network> find_network(const std::string& n) override {
    note("find_network");
    return HypervisorWrapper::find_network(n);
  }
  bool network_active(virNetwork& n) override {
    note("network_active");
    return HypervisorWrapper::network_active(n);
  }
  void start_network(virNetwork& n) override {
    note("start_network");
    HypervisorWrapper::start_network(n);
  }

 private:
  void note(const char* name) { m_requests.emplace_back(name); }
  // The path of the volume disk `dev` of the running domain names ("" when none).
  std::string source_path(virDomain& domain, const std::string& dev) {
    pugi::xml_document doc;
    parse(doc, emulated_xml(domain, false));
    for (auto disk : doc.child("domain").child("devices").children("disk")) {
      if (dev != disk.child("target").attribute("dev").value()) continue;
      const auto source = disk.child("source");
      if (source.attribute("file")) return source.attribute("file").value();
      auto pool = target().find_pool(source.attribute("pool").value());
      if (!pool) return "";
      auto volume = target().find_volume(**pool, source.attribute("volume").value());
      return volume ? target().volume_path(**volume) : "";
    }
    return "";
  }

  static std::string target_of(const std::string& xml) {
    pugi::xml_document device;
    parse(device, xml);
    return device.child("disk").child("target").attribute("dev").value();
  }

  // Whether the emulated live definition had the disk; it keeps it while ignoring unplugs.
  bool unplug_live(virDomain& domain, const std::string& xml) {
    const auto it = m_live.find(virDomainGetName(&domain));
    if (it == m_live.end() || it->second.count(target_of(xml)) == 0) return false;
    if (!m_ignore_unplug) it->second.erase(target_of(xml));
    return true;
  }

  void step() {
    ++m_calls;
    if (m_fail_at > 0 && (m_calls == m_fail_at || (m_kill && m_calls > m_fail_at))) {
      m_failed = true;
      throw virt::LibvirtError(VIR_ERR_INTERNAL_ERROR,
                               "injected failure at step " + std::to_string(m_calls));
    }
  }

  void forget(const std::string& path) {
    m_uploads.erase(path);
    m_capacity.erase(path);
  }

  static void parse(pugi::xml_document& doc, const std::string& text) {
    if (!doc.load_string(text.c_str())) {
      throw virt::LibvirtError(VIR_ERR_XML_ERROR, "unparsable XML given to the fake: " + text);
    }
  }

  static std::string serialize(const pugi::xml_document& doc) {
    std::ostringstream out;
    doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration);
    return out.str();
  }

  int m_calls = 0;
  int m_fail_at = 0;
  bool m_failed = false;
  int m_upload_count = 0;
  bool m_ignore_unplug = false;
  bool m_ignore_power_button = false;
  std::vector<std::string> m_power_button_presses;
  bool m_kill = false;
  int m_suspends = 0;
  std::map<std::string, std::map<std::string, std::string>> m_jobs;  // domain -> target -> file
  std::optional<std::size_t> m_tear_keep;
  std::map<std::string, std::map<std::string, std::string>> m_live;  // domain -> target -> xml
  std::map<std::string, Upload> m_uploads;
  std::map<std::string, std::uint64_t> m_capacity;
  std::vector<DeviceCall> m_updates;
  std::vector<BlockResize> m_block_resizes;
  std::vector<std::string> m_requests;
};

}  // namespace cpi::testing
