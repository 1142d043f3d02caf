#pragma once
// TestDriver: the driver-tier GoogleTest fixture (docs/architecture.md, "Tests"). LibvirtCloud runs on a
// FakeHypervisor wrapping a LibvirtHypervisor on libvirt's in-process test:///default driver
// (pool `default-pool`, network `default`). The state of test:///default lives as long as one
// connection to it is open, so every test starts from the driver's defaults. TearDown frees the
// cloud and the hypervisors first and then expects virConnectClose to return 0: a libvirt handle
// leaked by the code under test (or by the test) fails the test.

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cpi/agent/iso_image.hpp"
#include "cpi/cloud/libvirt_cloud.hpp"
#include "cpi/config/config.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/handles.hpp"
#include "cpi/virt/libvirt_hypervisor.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "support/fake_hypervisor.hpp"
#include "support/stemcell_fixture.hpp"
#include "support/temp_dir.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing {

constexpr const char* k_pool = "default-pool";
constexpr const char* k_mbus = "https://mbus:secret-pw@0.0.0.0:6868";
constexpr std::uint64_t k_mib = 1024ULL * 1024ULL;

class TestDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);  // the default logger writes to stdout
    shared_image();  // made under the real $TMPDIR, kept for the whole process
    // Scratch files of the code under test (attach locks) go to a directory removed after the test.
    const char* tmp = std::getenv("TMPDIR");
    m_saved_tmpdir = tmp != nullptr ? std::optional<std::string>{tmp} : std::nullopt;
    m_tmpdir = std::make_unique<TempDir>();
    ::setenv("TMPDIR", m_tmpdir->path().c_str(), 1);
    virt::install_quiet_error_handler();
    m_conn.reset(virConnectOpen("test:///default"));
    ASSERT_TRUE(m_conn) << "cannot open test:///default";
    m_libvirt = std::make_unique<virt::LibvirtHypervisor>(*m_conn);
    m_fake = std::make_unique<FakeHypervisor>(*m_libvirt);
    m_config = make_config();
    m_cloud = std::make_unique<cloud::LibvirtCloud>(*m_fake, m_config);
  }

  void TearDown() override {
    m_cloud.reset();
    m_fake.reset();
    m_libvirt.reset();
    if (m_conn) {
      EXPECT_EQ(virConnectClose(m_conn.release()), 0) << "a libvirt handle was leaked";
    }
    if (m_saved_tmpdir) {
      ::setenv("TMPDIR", m_saved_tmpdir->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
    m_tmpdir.reset();
  }

  static config::Config make_config() {
    config::Config config = config::default_config();
    config.libvirt.uri = "test:///default";
    config.libvirt.storage_pool = k_pool;
    config.libvirt.network = "default";
    config.libvirt.domain_type = "auto";
    config.agent.mbus = k_mbus;
    return config;
  }

  cloud::LibvirtCloud& cloud() { return *m_cloud; }
  FakeHypervisor& fake() { return *m_fake; }

  // --- the failing-step loop: every mutating libvirt call of a CPI method, failed in turn
  // How a step fails: only that call (the code's own clean-up runs), or that call and every one
  // after it, as after kill -9 (nothing of the call's clean-up runs).
  enum class Failure { the_call, kill };
  using Arm = std::function<void()>;

  // The mutating calls `call` makes (counted by the fake); the test fails when there are none.
  template <typename F>
  int count_mutating_calls(F&& call) {
    fake().disarm();
    fake().reset_calls();
    call();
    const int steps = fake().mutating_calls();
    EXPECT_GT(steps, 0) << "the call made no mutating libvirt call: no step to fail";
    return steps;
  }

  // For each step n of `steps`: fails the n-th mutating call, runs `attempt` (which makes the
  // call again and checks what it left; the fake stays armed until it returns), then disarms.
  // `attempt` takes the step n or not, and an Arm or not: one that takes an Arm prepares first
  // (new VMs and disks are mutating calls too) and calls arm() right before the call under test.
  // It calls fake().disarm() before any mutating call after the failed one. The test
  // fails when `steps` is 0 or a step was never reached, so the loop cannot pass without
  // failing every step.
  template <typename Attempt>
  void for_each_failing_step(int steps, Attempt&& attempt, Failure failure = Failure::the_call) {
    ASSERT_GT(steps, 0) << "no step to fail";
    for (int n = 1; n <= steps; ++n) {
      SCOPED_TRACE(std::string{failure == Failure::kill ? "killed" : "failed"} +
                   " at mutating step " + std::to_string(n) + " of " + std::to_string(steps));
      bool armed = false;
      const Arm arm = [&] {
        armed = true;
        if (failure == Failure::kill) {
          fake().kill_at(n);
        } else {
          fake().fail_at(n);
        }
      };
      if constexpr (std::is_invocable_v<Attempt&, int, const Arm&>) {
        attempt(n, arm);
      } else if constexpr (std::is_invocable_v<Attempt&, const Arm&>) {
        attempt(arm);
      } else if constexpr (std::is_invocable_v<Attempt&, int>) {
        arm();
        attempt(n);
      } else {
        arm();
        attempt();
      }
      EXPECT_TRUE(armed) << "the attempt never armed the failure";
      EXPECT_TRUE(fake().injected()) << "step " << n << " was never reached";
      fake().disarm();
    }
  }
  virConnect& conn() { return *m_conn; }
  const config::Config& config() const { return m_config; }

  // A second, independent cloud on the same hypervisor (what a later CPI process would see).
  std::unique_ptr<cloud::LibvirtCloud> new_cloud() { return new_cloud(m_config); }
  std::unique_ptr<cloud::LibvirtCloud> new_cloud(const config::Config& config) {
    return std::make_unique<cloud::LibvirtCloud>(*m_fake, config);
  }

  std::vector<std::string> pool_names() {
    virStoragePoolPtr* list = nullptr;
    const int count = virConnectListAllStoragePools(m_conn.get(), &list, 0);
    return sorted_names<virt::Pool>(list, count, virStoragePoolGetName, "storage pools");
  }

  // --- libvirt state, read with the raw API
  virt::Pool pool(const std::string& name = k_pool) {
    virt::Pool pool{virStoragePoolLookupByName(m_conn.get(), name.c_str())};
    if (!pool) throw std::runtime_error("no storage pool '" + name + "'");
    return pool;
  }

  // A 1 MiB raw volume `name` made in pool `pool_name` with the raw API, not through the CPI.
  void make_volume(const std::string& name, const std::string& pool_name) {
    const std::string xml = "<volume><name>" + name +
                            "</name><capacity>1048576</capacity><target><format type='raw'/>"
                            "</target></volume>";
    auto p = pool(pool_name);
    virt::Volume volume{virStorageVolCreateXML(p.get(), xml.c_str(), 0)};
    ASSERT_TRUE(volume) << name;
  }

  std::vector<std::string> volume_names(const std::string& pool_name = k_pool) {
    auto p = pool(pool_name);
    virStorageVolPtr* list = nullptr;
    const int count = virStoragePoolListAllVolumes(p.get(), &list, 0);
    return sorted_names<virt::Volume>(list, count, virStorageVolGetName,
                                      "volumes of '" + pool_name + "'");
  }

  std::vector<std::string> domain_names() {
    virDomainPtr* list = nullptr;
    const int count = virConnectListAllDomains(m_conn.get(), &list, 0);
    return sorted_names<virt::Domain>(list, count, virDomainGetName, "domains");
  }

  // The sorted names of what a virConnectListAll* call returned (`count` handles in `list`, each
  // owned as a `Handle` and freed); throws naming `what` when the listing failed (count < 0).
  template <typename Handle, typename Raw, typename NameOf>
  static std::vector<std::string> sorted_names(Raw* list, int count, NameOf name_of,
                                               const std::string& what) {
    if (count < 0) throw std::runtime_error("cannot list " + what);
    std::vector<std::string> names;
    for (auto& handle : owned_list<Handle>(list, count)) names.emplace_back(name_of(handle.get()));
    std::sort(names.begin(), names.end());
    return names;
  }

  bool volume_exists(const std::string& name, const std::string& pool_name = k_pool) {
    const auto names = volume_names(pool_name);
    return std::find(names.begin(), names.end(), name) != names.end();
  }

  std::optional<virt::Volume> find_volume(const std::string& name,
                                          const std::string& pool_name = k_pool) {
    auto p = pool(pool_name);
    virt::Volume volume{virStorageVolLookupByName(p.get(), name.c_str())};
    if (!volume) {
      virResetLastError();
      return std::nullopt;
    }
    return volume;
  }

  virt::Volume volume(const std::string& name, const std::string& pool_name = k_pool) {
    auto found = find_volume(name, pool_name);
    if (!found) throw std::runtime_error("no volume '" + name + "' in '" + pool_name + "'");
    return std::move(*found);
  }

  std::string volume_xml(const std::string& name, const std::string& pool_name = k_pool) {
    auto v = volume(name, pool_name);
    virt::OwnedCString text{virStorageVolGetXMLDesc(v.get(), 0)};
    if (!text) throw std::runtime_error("cannot read volume '" + name + "'");
    return text.get();
  }

  std::string volume_path(const std::string& name, const std::string& pool_name = k_pool) {
    auto v = volume(name, pool_name);
    virt::OwnedCString text{virStorageVolGetPath(v.get())};
    return text ? text.get() : "";
  }

  virt::Domain domain(const std::string& name) {
    virt::Domain d{virDomainLookupByName(m_conn.get(), name.c_str())};
    if (!d) throw std::runtime_error("no domain '" + name + "'");
    return d;
  }

  std::string domain_xml(const std::string& name, bool inactive = true) {
    auto d = domain(name);
    virt::OwnedCString text{virDomainGetXMLDesc(
        d.get(), inactive ? static_cast<unsigned int>(VIR_DOMAIN_XML_INACTIVE) : 0U)};
    if (!text) throw std::runtime_error("cannot read domain '" + name + "'");
    return text.get();
  }

  bool domain_active(const std::string& name) { return virDomainIsActive(domain(name).get()) == 1; }

  // Parses `text` into `doc`, failing the test when it is not XML.
  static void parse_xml(pugi::xml_document& doc, const std::string& text) {
    const auto result = doc.load_string(text.c_str());
    ASSERT_TRUE(result) << result.description() << "\n" << text;
  }

  // The <disk> of the inactive definition whose source volume is `volume` (empty when none).
  static pugi::xml_node disk_with_volume(const pugi::xml_document& doc, const std::string& volume) {
    for (auto disk : doc.child("domain").child("devices").children("disk")) {
      if (volume == disk.child("source").attribute("volume").value()) return disk;
    }
    return {};
  }

  // --- our <metadata> element
  // Our element in <metadata>: the child whose namespace is xml::k_metadata_ns.
  static pugi::xml_node our_metadata(const pugi::xml_document& doc) {
    for (auto element : doc.child("domain").child("metadata").children()) {
      for (auto attribute : element.attributes()) {
        const std::string name = attribute.name();
        if ((name == "xmlns" || name.rfind("xmlns:", 0) == 0) &&
            std::string{attribute.value()} == xml::k_metadata_ns) {
          return element;
        }
      }
    }
    return {};
  }

  // The facts JSON of our metadata element, read with the raw libvirt API.
  nlohmann::json metadata_facts(const cloud::VmCid& vm) {
    auto d = domain(vm.value);
    virt::OwnedCString text{virDomainGetMetadata(d.get(), VIR_DOMAIN_METADATA_ELEMENT,
                                                 xml::k_metadata_ns, VIR_DOMAIN_AFFECT_CONFIG)};
    if (!text) return nullptr;
    pugi::xml_document doc;
    doc.load_string(text.get());
    return nlohmann::json::parse(doc.document_element().child_value("facts"), nullptr, false);
  }

  // --- the config drive as the fake stores it
  std::string config_drive(const cloud::VmCid& vm) {
    const auto upload = fake().uploaded(volume_path(cloud().config_volume(vm)));
    if (!upload) throw std::runtime_error("no config drive uploaded for " + vm.value);
    return upload->bytes;
  }
  nlohmann::json user_data(const cloud::VmCid& vm) {
    return agent::read_user_data(config_drive(vm));
  }

  // --- common steps
  // A stemcell from a small raw image, packed once per process.
  cloud::StemcellCid create_stemcell() {
    return cloud().create_stemcell(shared_image(), nlohmann::json::object());
  }
  static const std::string& shared_image() {
    static StemcellImages shared;
    static const std::string image = shared.raw(1 * k_mib).string();
    return image;
  }

  static cloud::VmRequest vm_request(const cloud::StemcellCid& stemcell) {
    cloud::VmRequest request;
    request.agent_id = "agent-1";
    request.stemcell = stemcell;
    request.cloud_properties = {{"cpu", 2}, {"ram", 512}, {"ephemeral_disk", 1024}};
    request.networks = {{"private",
                         {{"type", "manual"},
                          {"ip", "10.0.0.10"},
                          {"netmask", "255.255.255.0"},
                          {"gateway", "10.0.0.1"},
                          {"default", {"dns", "gateway"}},
                          {"cloud_properties", {{"name", "default"}}}}}};
    request.env = {{"bosh", {{"password", "$6$salt$hash"}, {"group", "g"}}}};
    return request;
  }

  cloud::VmCid create_vm(const cloud::StemcellCid& stemcell) {
    return cloud().create_vm(vm_request(stemcell)).cid;
  }

  StemcellImages& images() { return m_images; }

 private:
  std::optional<std::string> m_saved_tmpdir;
  std::unique_ptr<TempDir> m_tmpdir;
  virt::Connection m_conn;
  std::unique_ptr<virt::LibvirtHypervisor> m_libvirt;
  std::unique_ptr<FakeHypervisor> m_fake;
  config::Config m_config;
  std::unique_ptr<cloud::LibvirtCloud> m_cloud;
  StemcellImages m_images;
};

}  // namespace cpi::testing
