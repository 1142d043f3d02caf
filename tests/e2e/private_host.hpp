#pragma once
// PrivateHostTest: an E2eTest whose CPI talks to a libvirtd of the test's own
// (e2e/support/private_libvirtd.hpp) with its own dir pool and isolated network, so a test may kill
// or restart that daemon. The tests run wherever the e2e tier runs (a system libvirtd, if any,
// is never touched); one line per test names the daemon it used (socket, PIDs).

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "e2e/e2e_fixture.hpp"
#include "e2e/support/private_libvirtd.hpp"

namespace cpi::testing::e2e {

// One private daemon with a pool and a network named after `prefix`.
class PrivateHost {
 public:
  PrivateHost(const std::string& prefix, PrivateLibvirtd::Options options = {})
      : m_daemon(std::move(options)), m_pool(prefix + "pool"), m_network(prefix + "net") {
    if (!m_daemon.unavailable().empty()) {
      m_why = m_daemon.unavailable();
      return;
    }
    reconnect();
    if (!m_conn) {
      m_why = "cannot connect to " + m_daemon.uri();
      return;
    }
    const std::string xml = "<pool type='dir'><name>" + m_pool + "</name><target><path>" +
                            m_daemon.pool_dir().string() + "</path></target></pool>";
    virt::Pool pool{virStoragePoolDefineXML(m_conn.get(), xml.c_str(), 0)};
    if (!pool || virStoragePoolCreate(pool.get(), 0) != 0 ||
        virStoragePoolSetAutostart(pool.get(), 1) != 0) {
      m_why = "making pool " + m_pool + " on " + m_daemon.uri() + " failed";
      return;
    }
    m_daemon.make_isolated_network(*m_conn, m_network, "cpip" + random_hex(8), m_why);
  }

  const std::string& unavailable() const { return m_why; }
  PrivateLibvirtd& daemon() { return m_daemon; }
  const std::string& pool_name() const { return m_pool; }
  const std::string& network_name() const { return m_network; }

  // A live connection (reopened after the daemon was killed or restarted).
  virConnect& conn() {
    if (!m_conn || virConnectIsAlive(m_conn.get()) != 1) reconnect();
    if (!m_conn) throw std::runtime_error("cannot connect to " + m_daemon.uri());
    return *m_conn;
  }
  void reconnect() {
    m_conn.reset();
    m_conn = m_daemon.connect();
  }

  // The `libvirt` block of a CPI config for this host.
  nlohmann::json libvirt_config(const std::string& name_prefix) const {
    return {{"uri", m_daemon.uri()},
            {"storage_pool", m_pool},
            {"store_dir", m_daemon.pool_dir().string()},
            {"network", m_network},
            {"domain_type", env().domain_type()},
            {"name_prefix", name_prefix}};
  }

  // Drops the connection first, then stops the daemon and removes its files.
  void stop() {
    m_conn.reset();
    m_daemon.stop();
  }

 private:
  PrivateLibvirtd m_daemon;
  virt::Connection m_conn;
  std::string m_pool, m_network, m_why;
};

class PrivateHostTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped()) return;
    m_host = std::make_unique<PrivateHost>(m_prefix, options());
    ASSERT_TRUE(m_host->unavailable().empty()) << m_host->unavailable();
    auto config = nlohmann::json::parse(read_whole_file(m_config.string()));
    config["libvirt"] = m_host->libvirt_config(m_prefix);
    std::ofstream{m_config} << config.dump(2);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::printf("[e2e] %s.%s uses a private libvirtd: %s\n", info->test_suite_name(),
                info->name(), m_host->daemon().describe().c_str());
    std::fflush(stdout);
  }
  // Stopping the daemon removes its pool with everything in it: what the test left there is
  // named first, so a leftover is never hidden (tests assert leftovers() themselves).
  void TearDown() override {
    if (m_host && m_host->daemon().libvirtd_running()) {
      try {
        for (const auto& what : leftovers()) {
          std::printf("[e2e] left by the test on its private libvirtd: %s\n", what.c_str());
        }
      } catch (const std::exception& e) {
        std::printf("[e2e] listing what the test left failed: %s\n", e.what());
      }
    }
    if (m_host) m_host->stop();
    m_host.reset();
    E2eTest::TearDown();  // also the console logs named after the test's prefix
  }

  virtual PrivateLibvirtd::Options options() const { return {}; }
  virConnect& conn() override { return m_host->conn(); }
  std::string pool_name() const override { return m_host->pool_name(); }
  std::string network_name() const { return m_host->network_name(); }

  std::unique_ptr<PrivateHost> m_host;
};

}  // namespace cpi::testing::e2e
