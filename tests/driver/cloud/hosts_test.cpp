// Many hosts (BOSH cpi-config): each request's `context` names the host (uri, storage_pool,
// network) and overrides the config's libvirt section for that call. Two libvirt endpoints side by
// side, driven through rpc::dispatch: host A is test:///default (the fixture's connection), host B
// a second test driver node loaded from a generated XML file with its own pool and network.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "cpi/rpc/dispatcher.hpp"
#include "support/test_driver.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing {
namespace {

class HostsTest : public TestDriver {
 protected:
  void SetUp() override {
    TestDriver::SetUp();
    m_dir = std::make_unique<TempDir>();
    const auto node = m_dir->path() / "node-b.xml";
    std::ofstream{node} << "<node>\n"
                           "  <pool type='dir'><name>pool-b</name>"
                           "<target><path>/pool-b</path></target></pool>\n"
                           "  <network><name>net-b</name><bridge name='virbr9'/></network>\n"
                           "</node>\n";
    m_uri_b = "test://" + node.string();
    m_conn_b.reset(virConnectOpen(m_uri_b.c_str()));
    ASSERT_TRUE(m_conn_b) << "cannot open " << m_uri_b;
    m_libvirt_b = std::make_unique<virt::LibvirtHypervisor>(*m_conn_b);
    m_fake_b = std::make_unique<FakeHypervisor>(*m_libvirt_b);

    m_config_file = m_dir->path() / "cpi.json";
    std::ofstream{m_config_file} << nlohmann::json{
        {"libvirt", {{"uri", "test:///default"}, {"storage_pool", k_pool}, {"network", "default"}}},
        {"agent", {{"mbus", k_mbus}}}};
  }

  void TearDown() override {
    m_fake_b.reset();
    m_libvirt_b.reset();
    if (m_conn_b) {
      EXPECT_EQ(virConnectClose(m_conn_b.release()), 0) << "a libvirt handle was leaked on host B";
    }
    m_dir.reset();
    TestDriver::TearDown();
  }

  // The context BOSH's cpi-config sends for each host.
  nlohmann::json context_a() const {
    return {{"director_uuid", "d-1"}, {"uri", "test:///default"}, {"storage_pool", k_pool},
            {"network", "default"}};
  }
  nlohmann::json context_b() const {
    return {{"director_uuid", "d-1"}, {"uri", m_uri_b}, {"storage_pool", "pool-b"},
            {"network", "net-b"}};
  }

  // One CPI call as the director makes it; returns `result` and fails the test on an error.
  nlohmann::json call(const std::string& method, const nlohmann::json& arguments,
                      const nlohmann::json& context) {
    const auto response = respond(method, arguments, context);
    EXPECT_TRUE(response["error"].is_null()) << method << ": " << response.dump();
    return response["result"];
  }
  // The whole response of a call that must fail: its `error`.
  nlohmann::json error_of(const std::string& method, const nlohmann::json& arguments,
                          const nlohmann::json& context) {
    const auto response = respond(method, arguments, context);
    EXPECT_FALSE(response["error"].is_null()) << method << " succeeded: " << response.dump();
    return response["error"];
  }
  nlohmann::json respond(const std::string& method, const nlohmann::json& arguments,
                         const nlohmann::json& context) {
    rpc::DispatchOptions options;
    options.config_path = m_config_file;
    options.tables = {&actions::local_actions(), &actions::driver_actions()};
    options.cloud_factory = [this](const config::Config& effective) {
      FakeHypervisor& host = effective.libvirt.uri == m_uri_b ? *m_fake_b : fake();
      ++m_opened[effective.libvirt.uri];
      return std::make_shared<cloud::LibvirtCloud>(host, effective);
    };
    const nlohmann::json request{
        {"method", method}, {"arguments", arguments}, {"context", context}, {"api_version", 2}};
    return nlohmann::json::parse(rpc::dispatch(request.dump(), options));
  }

  nlohmann::json create_vm_args(const std::string& stemcell, const std::string& network,
                                const nlohmann::json& disk_cids = nlohmann::json::array()) {
    const nlohmann::json networks{
        {"private",
         {{"type", "manual"}, {"ip", "10.0.0.10"}, {"netmask", "255.255.255.0"},
          {"gateway", "10.0.0.1"}, {"default", {"dns", "gateway"}},
          {"cloud_properties", {{"name", network}}}}}};
    return {"agent-1", stemcell, {{"cpu", 1}, {"ram", 256}, {"ephemeral_disk", 64}}, networks,
            disk_cids, nlohmann::json::object()};
  }

  std::string create_vm_on(const nlohmann::json& context, const std::string& stemcell,
                           const std::string& network,
                           const nlohmann::json& disk_cids = nlohmann::json::array()) {
    const auto result = call("create_vm", create_vm_args(stemcell, network, disk_cids), context);
    return result.is_array() ? result[0].get<std::string>() : result.get<std::string>();
  }

  // Volume names of a pool on host B, read with the raw API.
  std::vector<std::string> volumes_b() {
    virt::Pool p{virStoragePoolLookupByName(m_conn_b.get(), "pool-b")};
    EXPECT_TRUE(p);
    std::vector<std::string> names;
    if (!p) return names;
    for (auto& v : all_volumes(*p)) names.emplace_back(virStorageVolGetName(v.get()));
    return names;
  }

  bool domain_on_b(const std::string& name) {
    virt::Domain d{virDomainLookupByName(m_conn_b.get(), name.c_str())};
    virResetLastError();
    return static_cast<bool>(d);
  }

  static bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  }

  std::string m_uri_b;
  std::map<std::string, int> m_opened;

 private:
  std::unique_ptr<TempDir> m_dir;
  std::filesystem::path m_config_file;
  virt::Connection m_conn_b;
  std::unique_ptr<virt::LibvirtHypervisor> m_libvirt_b;
  std::unique_ptr<FakeHypervisor> m_fake_b;
};

TEST_F(HostsTest, VmsAndDisksLandOnTheHostTheContextNames) {
  // The director uploads the stemcell once per CPI (host).
  const auto stemcell_a = call("create_stemcell", {shared_image(), nlohmann::json::object()},
                               context_a()).get<std::string>();
  const auto stemcell_b = call("create_stemcell", {shared_image(), nlohmann::json::object()},
                               context_b()).get<std::string>();
  EXPECT_TRUE(volume_exists(stemcell_a));
  EXPECT_TRUE(contains(volumes_b(), stemcell_b));
  EXPECT_FALSE(volume_exists(stemcell_b));

  const auto vm_a = create_vm_on(context_a(), stemcell_a, "default");
  const auto vm_b = create_vm_on(context_b(), stemcell_b, "net-b");
  EXPECT_TRUE(contains(domain_names(), vm_a));
  EXPECT_FALSE(contains(domain_names(), vm_b));
  EXPECT_TRUE(domain_on_b(vm_b));
  EXPECT_FALSE(domain_on_b(vm_a));
  EXPECT_TRUE(contains(volumes_b(), vm_b + "-root"));
  EXPECT_TRUE(contains(volumes_b(), vm_b + "-config"));

  // has_vm asks the host of the context.
  EXPECT_EQ(call("has_vm", {vm_b}, context_b()), true);
  EXPECT_EQ(call("has_vm", {vm_b}, context_a()), false);
  EXPECT_EQ(call("has_vm", {vm_a}, context_a()), true);

  // A persistent disk with vm_locality lands next to its VM, in that host's pool.
  const auto disk_b = call("create_disk", {64, nlohmann::json::object(), vm_b}, context_b())
                          .get<std::string>();
  EXPECT_TRUE(contains(volumes_b(), disk_b));
  EXPECT_FALSE(volume_exists(disk_b));
  const auto disk_a = call("create_disk", {64, nlohmann::json::object(), vm_a}, context_a())
                          .get<std::string>();
  EXPECT_TRUE(volume_exists(disk_a));
  EXPECT_FALSE(contains(volumes_b(), disk_a));
  EXPECT_EQ(call("has_disk", {disk_b}, context_b()), true);
  EXPECT_EQ(call("has_disk", {disk_b}, context_a()), false);

  // Deleting on B leaves A alone.
  call("delete_vm", {vm_b}, context_b());
  call("delete_disk", {disk_b}, context_b());
  EXPECT_FALSE(domain_on_b(vm_b));
  EXPECT_FALSE(contains(volumes_b(), disk_b));
  EXPECT_TRUE(contains(domain_names(), vm_a));
  EXPECT_TRUE(volume_exists(disk_a));
  EXPECT_GT(m_opened[m_uri_b], 0);
  EXPECT_GT(m_opened["test:///default"], 0);
}

// create_vm honours disk locality: a VM whose disk_cids name a disk of host B is made on B when
// the context names B; with the context of host A it is refused at once (the VM could never
// attach the disk, and every later call on it would go to A), naming the disk and host A, and
// nothing is made on either host. attach_disk of B's disk to a VM on A says the same.
TEST_F(HostsTest, CreateVmGoesWhereItsDisksAreAndRefusesAnotherHostsDisk) {
  const auto stemcell_a = call("create_stemcell", {shared_image(), nlohmann::json::object()},
                               context_a()).get<std::string>();
  const auto stemcell_b = call("create_stemcell", {shared_image(), nlohmann::json::object()},
                               context_b()).get<std::string>();
  const auto disk_b = call("create_disk", {64, nlohmann::json::object(), nullptr}, context_b())
                          .get<std::string>();
  const auto vm_a = create_vm_on(context_a(), stemcell_a, "default");
  const auto domains_a = domain_names();
  const auto volumes_a = volume_names();
  const auto on_b = volumes_b();

  const auto refused = error_of("create_vm", create_vm_args(stemcell_a, "default", {disk_b}),
                                context_a());
  const std::string message = refused.value("message", "");
  EXPECT_EQ(refused["type"], "Bosh::Clouds::VMCreationFailed") << refused;
  EXPECT_EQ(refused["ok_to_retry"], false) << refused;
  EXPECT_NE(message.find("disk '" + disk_b + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("is not on test:///default"), std::string::npos) << message;
  EXPECT_NE(message.find("another libvirt host"), std::string::npos) << message;
  EXPECT_EQ(domain_names(), domains_a);
  EXPECT_EQ(volume_names(), volumes_a);
  EXPECT_EQ(volumes_b(), on_b);

  // On the disk's own host it is placed and can attach it.
  const auto vm_b = create_vm_on(context_b(), stemcell_b, "net-b", {disk_b});
  EXPECT_TRUE(domain_on_b(vm_b));
  EXPECT_TRUE(call("attach_disk", {vm_b, disk_b}, context_b()).is_object());

  const auto attach = error_of("attach_disk", {vm_a, disk_b}, context_a());
  const std::string attach_message = attach.value("message", "");
  EXPECT_EQ(attach["type"], "Bosh::Clouds::DiskNotFound") << attach;
  EXPECT_NE(attach_message.find("disk '" + disk_b + "'"), std::string::npos) << attach_message;
  EXPECT_NE(attach_message.find("is not on test:///default"), std::string::npos) << attach_message;
  EXPECT_NE(attach_message.find("another libvirt host"), std::string::npos) << attach_message;
  EXPECT_NE(attach_message.find(vm_a), std::string::npos) << attach_message;
  EXPECT_EQ(call("get_disks", {vm_a}, context_a()), nlohmann::json::array());
  EXPECT_EQ(call("get_disks", {vm_b}, context_b()), nlohmann::json::array({disk_b}));
}

TEST_F(HostsTest, WithoutContextTheConfigsHostIsUsed) {
  const auto stemcell = call("create_stemcell", {shared_image(), nlohmann::json::object()},
                             {{"director_uuid", "d-1"}}).get<std::string>();
  EXPECT_TRUE(volume_exists(stemcell));
  EXPECT_FALSE(contains(volumes_b(), stemcell));
  EXPECT_EQ(m_opened.count(m_uri_b), 0U);
}

}  // namespace
}  // namespace cpi::testing
