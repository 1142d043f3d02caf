// Many hosts for real (BOSH cpi-config): two private libvirtds side by side
// (e2e/private_host.hpp); each request's `context` names one of them (uri, storage_pool,
// network) and the call goes there. VMs and disks land on the host of the context; a VM whose
// disk_cids name a disk of the other host is refused by create_vm (it could never attach it) and
// that disk by attach_disk, each with an error naming the disk and the host asked; calls for one
// host leave the other's objects untouched.

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "e2e/private_host.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing::e2e {
namespace {

class ManyHostsTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped()) return;
    m_a = std::make_unique<PrivateHost>(m_prefix + "a-");
    ASSERT_TRUE(m_a->unavailable().empty()) << m_a->unavailable();
    m_b = std::make_unique<PrivateHost>(m_prefix + "b-");
    ASSERT_TRUE(m_b->unavailable().empty()) << m_b->unavailable();
    auto config = nlohmann::json::parse(read_whole_file(m_config.string()));
    config["libvirt"] = m_a->libvirt_config(m_prefix);
    std::ofstream{m_config} << config.dump(2);
    std::printf("[e2e] ManyHostsTest host A: %s\n[e2e] ManyHostsTest host B: %s\n",
                m_a->daemon().describe().c_str(), m_b->daemon().describe().c_str());
    std::fflush(stdout);
  }
  // Stopping a daemon removes its pool with everything in it: what the test left is named first.
  void TearDown() override {
    for (auto* host : {m_a.get(), m_b.get()}) {
      if (host == nullptr || !host->daemon().libvirtd_running()) continue;
      try {
        for (const auto& name : objects_on(*host)) {
          if (name.rfind(m_prefix, 0) == 0) {
            std::printf("[e2e] left by the test on %s: %s\n", host->pool_name().c_str(),
                        name.c_str());
          }
        }
      } catch (const std::exception& e) {
        std::printf("[e2e] listing what the test left failed: %s\n", e.what());
      }
    }
    if (m_b) m_b->stop();
    if (m_a) m_a->stop();
    E2eTest::TearDown();
  }
  virConnect& conn() override { return m_a->conn(); }
  std::string pool_name() const override { return m_a->pool_name(); }

  nlohmann::json context(PrivateHost& host) const {
    return {{"director_uuid", "e2e-director"},
            {"uri", host.daemon().uri()},
            {"storage_pool", host.pool_name()},
            {"network", host.network_name()}};
  }

  nlohmann::json call(const std::string& method, const nlohmann::json& arguments,
                      const nlohmann::json& ctx) {
    Ipv6Guard quiet;
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()},
                                 cpi_request(method, arguments, ctx, 2),
                                 director_env((env().root() / "tmp").string()));
    std::printf("[cpi] %-16s on %s  %6.2f s\n", method.c_str(),
                ctx["uri"].get<std::string>().c_str(), run.seconds);
    return parse_cpi_response(run);
  }
  nlohmann::json ok(const std::string& method, const nlohmann::json& arguments,
                    const nlohmann::json& ctx) {
    const auto response = call(method, arguments, ctx);
    if (!response["error"].is_null()) {
      throw std::runtime_error(method + " failed: " + response["error"].dump());
    }
    return response["result"];
  }

  // Names of the domains and volumes of this test on `host`.
  std::set<std::string> objects_on(PrivateHost& host) {
    std::set<std::string> out;
    for (auto& d : all_domains(host.conn())) out.insert(virDomainGetName(d.get()));
    virt::Pool pool{virStoragePoolLookupByName(&host.conn(), host.pool_name().c_str())};
    if (!pool) return out;
    virStoragePoolRefresh(pool.get(), 0);
    for (auto& vol : all_volumes(*pool)) out.insert(virStorageVolGetName(vol.get()));
    return out;
  }

  nlohmann::json create_vm_args(PrivateHost& host, const std::string& stemcell,
                                const nlohmann::json& disk_cids) {
    const nlohmann::json networks{
        {"private",
         {{"type", "dynamic"}, {"cloud_properties", {{"name", host.network_name()}}}}}};
    return {"agent-hosts", stemcell, {{"cpu", 1}, {"ram", 128}}, networks, disk_cids,
            nlohmann::json::object()};
  }
  std::string create_vm_on(PrivateHost& host, const std::string& stemcell,
                           const nlohmann::json& disk_cids = nlohmann::json::array()) {
    return ok("create_vm", create_vm_args(host, stemcell, disk_cids), context(host))
        .at(0)
        .get<std::string>();
  }

  // Checks an error that must name the disk, the host that was asked and the other-host cause.
  static void expect_names_disk_and_host(const nlohmann::json& error, const std::string& disk,
                                         const std::string& uri) {
    const std::string message = error.value("message", "");
    EXPECT_NE(message.find("disk '" + disk + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("is not on " + uri), std::string::npos) << message;
    EXPECT_NE(message.find("another libvirt host"), std::string::npos) << message;
  }

  std::unique_ptr<PrivateHost> m_a, m_b;
};

TEST_F(ManyHostsTest, EachCallGoesToTheHostItsContextNames) {
  const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
  const std::string sc_a = ok("create_stemcell", {image, nlohmann::json::object()}, context(*m_a));
  const std::string sc_b = ok("create_stemcell", {image, nlohmann::json::object()}, context(*m_b));
  const std::string vm_a = create_vm_on(*m_a, sc_a);
  const std::string disk_a = ok("create_disk", {32, nlohmann::json::object(), vm_a}, context(*m_a));
  const std::string disk_b =
      ok("create_disk", {32, nlohmann::json::object(), nullptr}, context(*m_b));

  // Disk locality: a VM for host B's disk is refused on host A before anything is made there...
  const auto before_a = objects_on(*m_a);
  const auto before_b = objects_on(*m_b);
  const auto placed = call("create_vm", create_vm_args(*m_a, sc_a, {disk_b}), context(*m_a));
  ASSERT_FALSE(placed["error"].is_null()) << placed.dump();
  std::printf("[e2e] create_vm on host A for host B's disk: %s\n", placed["error"].dump().c_str());
  EXPECT_EQ(placed["error"]["type"], "Bosh::Clouds::VMCreationFailed");
  EXPECT_EQ(placed["error"]["ok_to_retry"], false);
  expect_names_disk_and_host(placed["error"], disk_b, m_a->daemon().uri());
  EXPECT_EQ(objects_on(*m_a), before_a);
  EXPECT_EQ(objects_on(*m_b), before_b);
  // ... and made on host B, where the disk is.
  const std::string vm_b = create_vm_on(*m_b, sc_b, {disk_b});

  auto on_a = objects_on(*m_a);
  auto on_b = objects_on(*m_b);
  for (const auto& cid : {sc_a, vm_a, vm_a + "-root", disk_a}) {
    EXPECT_TRUE(on_a.count(m_prefix + cid)) << cid << " not on host A";
    EXPECT_FALSE(on_b.count(m_prefix + cid)) << cid << " on host B";
  }
  for (const auto& cid : {sc_b, vm_b, vm_b + "-root", disk_b}) {
    EXPECT_TRUE(on_b.count(m_prefix + cid)) << cid << " not on host B";
    EXPECT_FALSE(on_a.count(m_prefix + cid)) << cid << " on host A";
  }
  EXPECT_EQ(ok("has_vm", {vm_b}, context(*m_b)), true);
  EXPECT_EQ(ok("has_vm", {vm_b}, context(*m_a)), false);

  // A disk of the other host cannot be attached: a clear error, nothing changes on either host.
  const auto refused = call("attach_disk", {vm_a, disk_b}, context(*m_a));
  ASSERT_FALSE(refused["error"].is_null()) << refused.dump();
  std::printf("[e2e] attach of host B's disk on host A: %s\n", refused["error"].dump().c_str());
  EXPECT_EQ(refused["error"]["type"], "Bosh::Clouds::DiskNotFound");
  expect_names_disk_and_host(refused["error"], disk_b, m_a->daemon().uri());
  EXPECT_NE(refused["error"].value("message", "").find(vm_a), std::string::npos);
  EXPECT_EQ(objects_on(*m_a), on_a);
  EXPECT_EQ(objects_on(*m_b), on_b);
  EXPECT_EQ(ok("get_disks", {vm_a}, context(*m_a)), nlohmann::json::array());

  // Attach on its own host works; deleting everything on B leaves A alone.
  ok("attach_disk", {vm_b, disk_b}, context(*m_b));
  EXPECT_EQ(ok("get_disks", {vm_b}, context(*m_b)), nlohmann::json::array({disk_b}));
  ok("delete_vm", {vm_b}, context(*m_b));
  ok("delete_disk", {disk_b}, context(*m_b));
  ok("delete_stemcell", {sc_b}, context(*m_b));
  EXPECT_EQ(objects_on(*m_a), on_a);
  for (const auto& name : objects_on(*m_b)) {
    EXPECT_NE(name.rfind(m_prefix, 0), 0U) << name << " left on host B";
  }
  ok("delete_vm", {vm_a}, context(*m_a));
  ok("delete_disk", {disk_a}, context(*m_a));
  ok("delete_stemcell", {sc_a}, context(*m_a));
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

}  // namespace
}  // namespace cpi::testing::e2e
