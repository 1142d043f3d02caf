// `cpi doctor` (src/tools/doctor*.cpp) against broken setups on test:///default. The fixture keeps
// a connection to the test driver open, so doctor's own connection sees the same state: a pool or
// network removed or stopped here is missing or inactive for doctor.

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <string>

#include "cpi/tools/doctor.hpp"
#include "cpi/tools/local_checks.hpp"
#include "support/temp_dir.hpp"
#include "support/test_driver.hpp"

namespace cpi::testing {
namespace {

using tools::Verdict;

class DoctorTest : public TestDriver {
 protected:
  // Runs doctor on a config file whose libvirt section is the test driver's plus `overrides`.
  tools::DoctorReport doctor(const nlohmann::json& overrides = nlohmann::json::object()) {
    nlohmann::json libvirt = {
        {"uri", "test:///default"}, {"storage_pool", k_pool}, {"network", "default"}};
    for (const auto& [key, value] : overrides.items()) {
      if (value.is_null()) {
        libvirt.erase(key);  // null: leave the key out
      } else {
        libvirt[key] = value;
      }
    }
    const auto file = m_files.write("cpi.json", nlohmann::json{{"libvirt", libvirt}}.dump());
    return tools::run_doctor(file, std::time(nullptr));
  }

  static Verdict verdict(const tools::DoctorReport& report, const std::string& check) {
    const auto* found = report.find(check);
    if (found == nullptr) throw std::runtime_error("no check '" + check + "' in the report");
    return found->verdict;
  }

  static std::string detail(const tools::DoctorReport& report, const std::string& check) {
    const auto* found = report.find(check);
    return found != nullptr ? found->detail + " | hint: " + found->hint : "(no such check)";
  }

  void stop_pool() {
    auto p = pool();
    ASSERT_EQ(virStoragePoolDestroy(p.get()), 0);
  }

  void remove_pool() {
    stop_pool();
    auto p = pool();
    ASSERT_EQ(virStoragePoolUndefine(p.get()), 0);
  }

  virt::Network network(const std::string& name = "default") {
    virt::Network net{virNetworkLookupByName(&conn(), name.c_str())};
    if (!net) throw std::runtime_error("no network '" + name + "'");
    return net;
  }

  TempDir m_files;
};

TEST_F(DoctorTest, HealthyTestDriverHasNoFailure) {
  const auto report = doctor();
  EXPECT_FALSE(report.failed()) << report.table();
  EXPECT_EQ(verdict(report, "config"), Verdict::ok);
  EXPECT_EQ(verdict(report, "connection"), Verdict::ok);
  EXPECT_NE(report.find("connection")->detail.find("libvirt "), std::string::npos)
      << detail(report, "connection");
  EXPECT_EQ(verdict(report, "guest"), Verdict::ok) << detail(report, "guest");
  EXPECT_EQ(verdict(report, "storage_pool"), Verdict::ok) << detail(report, "storage_pool");
  EXPECT_EQ(verdict(report, "network"), Verdict::ok) << detail(report, "network");
  EXPECT_EQ(verdict(report, "volume"), Verdict::ok) << detail(report, "volume");
  // The test driver has no KVM and no volume streams: warnings, not failures.
  EXPECT_EQ(verdict(report, "kvm"), Verdict::warn) << detail(report, "kvm");
  EXPECT_EQ(verdict(report, "stream"), Verdict::warn) << detail(report, "stream");
  EXPECT_NE(report.find("stream")->detail.find("not supported by this driver"), std::string::npos)
      << detail(report, "stream");
}

// hypervisor lxc: no KVM needed, container (exe) guests required, and the host checks of the
// lxc line (mke2fs, cgroups, root) are there. The test driver offers no exe guests.
TEST_F(DoctorTest, LxcNeedsContainerGuestsNotKvm) {
  const auto report = doctor({{"hypervisor", "lxc"}});
  EXPECT_EQ(verdict(report, "kvm"), Verdict::ok) << detail(report, "kvm");
  EXPECT_EQ(verdict(report, "guest"), Verdict::fail) << detail(report, "guest");
  EXPECT_NE(detail(report, "guest").find("lxc:///"), std::string::npos) << detail(report, "guest");
  ASSERT_NE(report.find("lxc"), nullptr) << report.table();
  if (verdict(report, "lxc") != Verdict::ok) {  // a host that cannot run containers says how
    EXPECT_FALSE(report.find("lxc")->hint.empty()) << detail(report, "lxc");
  }
  EXPECT_EQ(doctor().find("lxc"), nullptr) << "only for hypervisor lxc";
}

TEST_F(DoctorTest, LeavesNoTestVolumeBehind) {
  const auto before = volume_names();
  doctor();
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DoctorTest, MissingPoolWarnsThatTheCpiWillCreateItAndSkipsVolumeChecks) {
  remove_pool();
  const auto report = doctor();
  EXPECT_EQ(verdict(report, "storage_pool"), Verdict::warn) << detail(report, "storage_pool");
  EXPECT_NE(report.find("storage_pool")->detail.find("does not exist"), std::string::npos);
  EXPECT_NE(report.find("storage_pool")->hint.find("virsh pool-define-as"), std::string::npos);
  EXPECT_EQ(verdict(report, "volume"), Verdict::warn) << detail(report, "volume");
  EXPECT_EQ(report.find("stream"), nullptr);
}

TEST_F(DoctorTest, InactivePoolFails) {
  stop_pool();
  const auto report = doctor();
  EXPECT_TRUE(report.failed());
  EXPECT_EQ(verdict(report, "storage_pool"), Verdict::fail) << detail(report, "storage_pool");
  EXPECT_NE(report.find("storage_pool")->detail.find("inactive"), std::string::npos);
  EXPECT_NE(report.find("storage_pool")->hint.find("virsh pool-start " + std::string{k_pool}),
            std::string::npos);
}

TEST_F(DoctorTest, InactiveNetworkFails) {
  ASSERT_EQ(virNetworkDestroy(network().get()), 0);
  const auto report = doctor();
  EXPECT_TRUE(report.failed());
  EXPECT_EQ(verdict(report, "network"), Verdict::fail) << detail(report, "network");
  EXPECT_NE(report.find("network")->hint.find("virsh net-start default"), std::string::npos);
  EXPECT_EQ(verdict(report, "storage_pool"), Verdict::ok) << "other checks still run";
}

TEST_F(DoctorTest, InactiveNetworkOnlyWarnsWithAutoEnable) {
  ASSERT_EQ(virNetworkDestroy(network().get()), 0);
  const auto report = doctor({{"auto_enable_networks", true}});
  EXPECT_FALSE(report.failed()) << report.table();
  EXPECT_EQ(verdict(report, "network"), Verdict::warn) << detail(report, "network");
}

TEST_F(DoctorTest, MissingNetworkFails) {
  const auto report = doctor({{"network", "no-such-net"}});
  EXPECT_EQ(verdict(report, "network"), Verdict::fail) << detail(report, "network");
  EXPECT_NE(report.find("network")->detail.find("'no-such-net' does not exist"), std::string::npos);
}

TEST_F(DoctorTest, BadUriFailsTheConnectionAndStops) {
  const auto report = doctor({{"uri", "test:///no/such/file.xml"}});
  EXPECT_TRUE(report.failed());
  EXPECT_EQ(verdict(report, "connection"), Verdict::fail) << detail(report, "connection");
  EXPECT_NE(report.find("connection")->detail.find("test:///no/such/file.xml"), std::string::npos);
  EXPECT_FALSE(report.find("connection")->hint.empty());
  EXPECT_EQ(report.find("storage_pool"), nullptr);
}

TEST_F(DoctorTest, UnknownDriverFailsWithAHint) {
  const auto report = doctor({{"uri", "nosuchdriver:///x"}});
  EXPECT_EQ(verdict(report, "connection"), Verdict::fail) << detail(report, "connection");
  EXPECT_EQ(report.find("connection")->hint.rfind("check ", 0), 0U) << detail(report, "connection");
}

TEST_F(DoctorTest, BadConfigFailsAndStops) {
  const auto report = doctor({{"no_such_key", 1}});
  EXPECT_EQ(verdict(report, "config"), Verdict::fail) << detail(report, "config");
  EXPECT_NE(report.find("config")->detail.find("no_such_key"), std::string::npos);
  EXPECT_EQ(report.checks().size(), 1U);
}

TEST_F(DoctorTest, ConfigFileMissingFails) {
  const auto report = tools::run_doctor(m_files / "absent.json", std::time(nullptr));
  EXPECT_EQ(verdict(report, "config"), Verdict::fail);
}

TEST_F(DoctorTest, TlsCertificatesAreCheckedEvenWhenTheConnectionFails) {
  if (!tools::find_program("openssl")) GTEST_SKIP() << "no openssl command";
  const auto made =
      tools::run_command("cd " + tools::shell_quote(m_files.path().string()) +
                         " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes -keyout key.pem -out cert.pem -days 365 -subj /CN=cpi-test");
  ASSERT_EQ(made.status, 0);
  m_files.write("garbage.pem", "not a certificate");
  const auto report = doctor(
      {{"uri", nullptr},
       {"transport", "tls"},
       {"host", "127.0.0.1"},
       {"port", 1},
       {"tls",
        {{"ca_cert", "cert.pem"}, {"client_cert", "garbage.pem"}, {"client_key", "key.pem"}}}});
  EXPECT_EQ(verdict(report, "tls_ca_cert"), Verdict::ok) << detail(report, "tls_ca_cert");
  EXPECT_EQ(verdict(report, "tls_client_cert"), Verdict::fail) << detail(report, "tls_client_cert");
  EXPECT_EQ(verdict(report, "connection"), Verdict::fail) << detail(report, "connection");
}

TEST_F(DoctorTest, JsonListsEveryCheckWithVerdictAndHint) {
  stop_pool();
  const auto json = doctor().to_json();
  EXPECT_EQ(json["verdict"], "fail");
  bool found = false;
  for (const auto& check : json["checks"]) {
    EXPECT_TRUE(check.contains("name") && check.contains("detail") && check.contains("hint"));
    if (check["name"] == "storage_pool") {
      found = true;
      EXPECT_EQ(check["verdict"], "fail");
    }
  }
  EXPECT_TRUE(found);
}

// The built binary: `cpi doctor` loads the driver module and exits 1 on a failed check.
int run_binary(const std::string& args, std::string& output) {
  const std::string command = std::string{CPI_BINARY} + " " + args + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(DoctorTest, BinaryRunsTheToolsAndExitsOneWhenACheckFails) {
  const auto good = m_files.write(
      "good.json", R"({"libvirt":{"uri":"test:///default","storage_pool":"default-pool"}})");
  std::string output;
  EXPECT_EQ(run_binary("doctor --config " + good.string(), output), 0) << output;
  EXPECT_NE(output.find("storage_pool"), std::string::npos) << output;

  // inspect and cleanup go through the same module entry point (the binary's own test driver
  // holds none of our objects).
  output.clear();
  EXPECT_EQ(run_binary("inspect --config " + good.string(), output), 0) << output;
  EXPECT_NE(output.find("0 objects, 0 orphans"), std::string::npos) << output;
  output.clear();
  EXPECT_EQ(run_binary("cleanup --orphans --dry-run --config " + good.string(), output), 0);
  EXPECT_NE(output.find("no orphans"), std::string::npos) << output;
  output.clear();
  EXPECT_NE(run_binary("cleanup --config " + good.string(), output), 0) << "--orphans is required";

  const auto bad = m_files.write("bad.json", R"({"libvirt":{"uri":"test:///no/such.xml"}})");
  output.clear();
  EXPECT_EQ(run_binary("doctor --json --config " + bad.string(), output), 1) << output;
  const auto json = nlohmann::json::parse(output, nullptr, false);
  ASSERT_TRUE(json.is_object()) << output;
  EXPECT_EQ(json["verdict"], "fail");
}

TEST_F(DoctorTest, ConfigWithSecretsReadableByOthersIsAFinding) {
  const std::string text =
      R"({"libvirt":{"uri":"test:///default","storage_pool":"default-pool","network":"default"},)"
      R"("agent":{"mbus":"nats://nats:D0ctorSecret@10.0.0.6:4222"}})";
  const auto file = m_files.write("secret.json", text);
  ::chmod(file.c_str(), 0644);
  const auto open = tools::run_doctor(file, std::time(nullptr));
  EXPECT_EQ(verdict(open, "config_permissions"), Verdict::warn) << open.table();
  EXPECT_NE(detail(open, "config_permissions").find("agent.mbus (password)"), std::string::npos);
  EXPECT_EQ(open.table().find("D0ctorSecret"), std::string::npos) << open.table();
  ::chmod(file.c_str(), 0600);
  const auto closed = tools::run_doctor(file, std::time(nullptr));
  EXPECT_EQ(closed.find("config_permissions"), nullptr) << closed.table();
}

}  // namespace
}  // namespace cpi::testing
