// After a restart of the domain, of libvirtd, or of the whole host (simulated), the VM is back
// with its persistent disk attached: attach changes the persistent definition, and the CPI sets
// autostart on its domains (README.md "Hypervisors, pool types and many hosts"). Against a private libvirtd
// (e2e/private_host.hpp), which the test may restart: it runs wherever the e2e tier runs.

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "e2e/private_host.hpp"

namespace cpi::testing::e2e {
namespace {

// libvirt's marker that the autostart of this host boot is done (/run is empty after a boot),
// under the daemon's /run/libvirt.
constexpr const char* k_autostarted = "qemu/autostarted";

class HostRestartTest : public PrivateHostTest {
 protected:
  // A running VM with one persistent disk attached that the guest sees.
  void boot_vm_with_disk() {
    const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
    m_stemcell = cpi("create_stemcell", {image, nlohmann::json::object()}).get<std::string>();
    const nlohmann::json networks{{"private",
                                   {{"type", "manual"},
                                    {"ip", "10.244.1.10"},
                                    {"netmask", "255.255.255.0"},
                                    {"gateway", "10.244.1.1"},
                                    {"cloud_properties", {{"name", network_name()}}}}}};
    {
      Ipv6Guard quiet;
      m_vm = cpi("create_vm",
                 {"agent-restart",
                  m_stemcell,
                  {{"cpu", 1}, {"ram", 256}},
                  networks,
                  nlohmann::json::array(),
                  nlohmann::json::object()},
                 2, {{"stemcell", {{"api_version", 2}}}})
                 .at(0)
                 .get<std::string>();
    }
    expect_silent_taps(m_vm);
    m_log = console_log(m_vm);
    wait_report(m_log, 0);
    m_disk = cpi("create_disk", {40, nlohmann::json::object(), m_vm}).get<std::string>();
    const int before = last_tick(m_log);
    cpi("attach_disk", {m_vm, m_disk});
    wait_tick(m_log, before, [&](const GuestTick& t) { return tick_has(t, m_disk, 40 * k_mib); });
  }

  // The domain has the disk in its live and persistent definition, and the CPI lists it.
  void expect_disk_attached() {
    EXPECT_TRUE(domain_active(m_vm));
    for (bool inactive : {false, true}) {
      const auto serials = disk_serials(m_vm, inactive);
      EXPECT_NE(std::find(serials.begin(), serials.end(), m_disk), serials.end())
          << (inactive ? "persistent" : "live") << " definition";
    }
    EXPECT_EQ(cpi("has_vm", {m_vm}), true);
    EXPECT_EQ(cpi("get_disks", {m_vm}), nlohmann::json::array({m_disk}));
  }

  // The guest boots once more (boot number `index`) and sees the disk.
  void expect_guest_boots_with_disk(std::size_t index, const std::string& what) {
    const auto start = Clock::now();
    const GuestBoot boot = wait_report(m_log, index);
    phase(what + " to guest report", since(start));
    const GuestBlock* disk = boot.block_with_serial(m_disk);
    ASSERT_NE(disk, nullptr) << ::testing::PrintToString(boot.lines);
    EXPECT_EQ(disk->size, 40 * k_mib);
  }

  void delete_everything() {
    EXPECT_TRUE(cpi("delete_vm", {m_vm}).is_null());
    EXPECT_TRUE(cpi("delete_disk", {m_disk}).is_null());
    EXPECT_TRUE(cpi("delete_stemcell", {m_stemcell}).is_null());
    EXPECT_EQ(leftovers(), std::vector<std::string>{});
  }

  std::string m_stemcell, m_vm, m_disk, m_log;
};

TEST_F(HostRestartTest, DomainDestroyAndStartKeepsTheDisk) {
  boot_vm_with_disk();
  {
    auto domain = find_domain(m_vm);
    ASSERT_TRUE(domain);
    ASSERT_EQ(virDomainDestroy(domain->get()), 0);
    Ipv6Guard quiet;
    ASSERT_EQ(virDomainCreate(domain->get()), 0);
  }
  expect_silent_taps(m_vm);
  expect_guest_boots_with_disk(1, "destroy + start");
  expect_disk_attached();
  delete_everything();
}

TEST_F(HostRestartTest, LibvirtdRestartKeepsTheVmAndTheDisk) {
  boot_vm_with_disk();
  std::string why;
  PrivateLibvirtd& daemon = m_host->daemon();

  // The daemon restarts under a running VM: it reconnects to qemu, the guest runs on.
  const int before = last_tick(m_log);
  auto start = Clock::now();
  daemon.stop_libvirtd();
  ASSERT_TRUE(daemon.start_libvirtd(why)) << why;
  m_host->reconnect();
  std::printf("[e2e] libvirtd restarted: %s\n", daemon.describe().c_str());
  phase("libvirtd restart", since(start));
  expect_disk_attached();
  wait_tick(m_log, before, [&](const GuestTick& t) { return tick_has(t, m_disk); });

  // A host reboot: the VM is off when libvirtd starts on a fresh /run, and autostart brings it
  // back (the private daemon has no other domains that would start too).
  {
    auto domain = find_domain(m_vm);
    ASSERT_TRUE(domain);
    ASSERT_EQ(virDomainDestroy(domain->get()), 0);
  }
  daemon.stop_libvirtd();
  ::unlink((daemon.run_dir() / k_autostarted).c_str());
  start = Clock::now();
  {
    Ipv6Guard quiet;  // autostart makes the tap
    ASSERT_TRUE(daemon.start_libvirtd(why)) << why;
    m_host->reconnect();
    for (int i = 0; i < 300 && !domain_active(m_vm); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_TRUE(domain_active(m_vm)) << "autostart did not start the VM";
  expect_silent_taps(m_vm);
  phase("libvirtd start to VM autostarted", since(start));
  expect_guest_boots_with_disk(1, "autostart");
  expect_disk_attached();
  delete_everything();
}

}  // namespace
}  // namespace cpi::testing::e2e
