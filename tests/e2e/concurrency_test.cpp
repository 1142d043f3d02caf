// Many `cpi` processes at once against one real libvirtd (the concurrency
// target): 20 create_vm from one stemcell, then create_disk + attach_disk
// on each, then delete_vm and delete_disk, all in parallel; and two attach_disk
// calls racing on the same VM. Every call must succeed, no two VMs may share a
// MAC or a volume, and nothing may be left. The guests are small and are not
// waited for (2 TCG cores cannot boot 20 at once quickly; the CPI does not need
// it).

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_fixture.hpp"

namespace cpi::testing::e2e {
namespace {

constexpr int k_vms = 20;

class ConcurrencyTest : public E2eTest {
protected:
  // One CPI call, safe to make from many threads at once: returns the whole
  // response.
  nlohmann::json call(const std::string &method,
                      const nlohmann::json &arguments) {
    const nlohmann::json context{{"director_uuid", "e2e-director"},
                                 {"request_id", "cpi-conc"}};
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()},
                                 cpi_request(method, arguments, context, 2),
                                 director_env((env().root() / "tmp").string()));
    auto response = parse_cpi_response(run);
    if (!response["error"].is_null()) {
      std::lock_guard<std::mutex> hold{m_mutex};
      m_errors.push_back(method + ": " + response["error"].dump() + "\n" +
                         run.err);
    }
    return response;
  }

  // Runs fn(0..n-1) on n threads at once; returns the wall time.
  double parallel(int n, const std::function<void(int)> &fn) {
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        try {
          fn(i);
        } catch (const std::exception &e) {
          std::lock_guard<std::mutex> hold{m_mutex};
          m_errors.emplace_back(e.what());
        }
      });
    }
    for (auto &t : threads)
      t.join();
    return since(start);
  }

  std::string stemcell() {
    const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
    return cpi("create_stemcell", {image, nlohmann::json::object()})
        .get<std::string>();
  }

  nlohmann::json networks() const {
    return {{"private",
             {{"type", "dynamic"},
              {"cloud_properties", {{"name", env().network_name()}}}}}};
  }

  std::string create_vm(const std::string &sc, int i) {
    const nlohmann::json props{
        {"cpu", 1}, {"ram", 128}, {"ephemeral_disk", 16}};
    const auto r =
        call("create_vm", {"agent-" + std::to_string(i), sc, props, networks(),
                           nlohmann::json::array(), nlohmann::json::object()});
    return r["result"].is_array() ? r["result"][0].get<std::string>() : "";
  }

  // The source volumes of the domain (live definition).
  std::vector<std::string> volumes_of(const std::string &vm) {
    return xml_values(vm, "/domain/devices/disk/source/@volume");
  }

  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> hold{m_mutex};
    return m_errors;
  }

  std::mutex m_mutex;
  std::vector<std::string> m_errors;
};

TEST_F(ConcurrencyTest, TwentyVmsCreatedAttachedAndDeletedAtOnce) {
  const std::string sc = stemcell();
  std::vector<std::string> vms(k_vms), disks(k_vms);
  double seconds = 0;
  {
    Ipv6Guard quiet; // the taps are made while the domains start
    seconds = parallel(k_vms, [&](int i) {
      vms[static_cast<std::size_t>(i)] = create_vm(sc, i);
    });
  }
  phase("create_vm x20 in parallel", seconds);
  ASSERT_EQ(errors(), std::vector<std::string>{});

  std::set<std::string> all_macs, all_volumes, cids;
  for (const auto &vm : vms) {
    ASSERT_FALSE(vm.empty());
    EXPECT_TRUE(cids.insert(vm).second) << "vm cid twice: " << vm;
    EXPECT_TRUE(domain_active(vm)) << vm;
    expect_silent_taps(vm);
    for (const auto &mac : macs(vm))
      EXPECT_TRUE(all_macs.insert(mac).second) << "MAC twice: " << mac;
    for (const auto &v : volumes_of(vm))
      EXPECT_TRUE(all_volumes.insert(v).second) << "volume twice: " << v;
  }
  EXPECT_EQ(all_macs.size(), static_cast<std::size_t>(k_vms));
  EXPECT_EQ(all_volumes.size(), static_cast<std::size_t>(3 * k_vms))
      << "root, ephemeral, config";

  seconds = parallel(k_vms, [&](int i) {
    const auto n = static_cast<std::size_t>(i);
    const auto r = call("create_disk", {16, nlohmann::json::object(), vms[n]});
    if (!r["result"].is_string())
      return;
    disks[n] = r["result"].get<std::string>();
    call("attach_disk", {vms[n], disks[n]});
  });
  phase("create_disk + attach_disk x20 in parallel", seconds);
  ASSERT_EQ(errors(), std::vector<std::string>{});
  std::set<std::string> distinct_disks(disks.begin(), disks.end());
  EXPECT_EQ(distinct_disks.size(), static_cast<std::size_t>(k_vms));
  for (std::size_t i = 0; i < vms.size(); ++i) {
    EXPECT_EQ(call("get_disks", {vms[i]})["result"],
              nlohmann::json::array({disks[i]}))
        << vms[i];
  }

  seconds = parallel(k_vms, [&](int i) {
    const auto n = static_cast<std::size_t>(i);
    call("delete_vm", {vms[n]});
    call("delete_disk", {disks[n]});
  });
  phase("delete_vm + delete_disk x20 in parallel", seconds);
  EXPECT_EQ(errors(), std::vector<std::string>{});
  EXPECT_TRUE(cpi("delete_stemcell", {sc}).is_null());
  EXPECT_EQ(leftovers(), std::vector<std::string>{})
      << "nothing of the test may be left";
}

TEST_F(ConcurrencyTest, TwoAttachDiskCallsOnOneVmAtOnce) {
  const std::string sc = stemcell();
  std::string vm;
  {
    Ipv6Guard quiet;
    vm = create_vm(sc, 0);
  }
  ASSERT_EQ(errors(), std::vector<std::string>{});
  expect_silent_taps(vm);
  const std::string a = cpi("create_disk", {16, nlohmann::json::object(), vm});
  const std::string b = cpi("create_disk", {24, nlohmann::json::object(), vm});
  const std::vector<std::string> both{a, b};
  parallel(2, [&](int i) {
    call("attach_disk", {vm, both[static_cast<std::size_t>(i)]});
  });
  ASSERT_EQ(errors(), std::vector<std::string>{});

  for (bool inactive : {false, true}) {
    pugi::xml_document doc;
    domain_xml(vm, doc, inactive);
    std::set<std::string> targets;
    std::size_t count = 0, found = 0;
    for (const auto &n : doc.select_nodes("/domain/devices/disk")) {
      targets.insert(n.node().child("target").attribute("dev").value());
      ++count;
      const std::string serial = n.node().child_value("serial");
      if (serial == a || serial == b)
        ++found;
    }
    EXPECT_EQ(found, 2U) << (inactive ? "persistent" : "live")
                         << " definition has both disks";
    EXPECT_EQ(targets.size(), count) << "every disk has its own target";
  }
  auto listed = cpi("get_disks", {vm}).get<std::vector<std::string>>();
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()),
            std::set<std::string>(both.begin(), both.end()));

  EXPECT_TRUE(cpi("delete_vm", {vm}).is_null());
  EXPECT_TRUE(cpi("delete_disk", {a}).is_null());
  EXPECT_TRUE(cpi("delete_disk", {b}).is_null());
  EXPECT_TRUE(cpi("delete_stemcell", {sc}).is_null());
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

} // namespace
} // namespace cpi::testing::e2e
