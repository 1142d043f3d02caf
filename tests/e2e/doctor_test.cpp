// `cpi doctor` and `cpi inspect` against the real libvirtd of the e2e environment.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "e2e/e2e_fixture.hpp"

namespace cpi::testing::e2e {
namespace {

class DoctorTest : public E2eTest {
 protected:
  CpiRun tool(const std::vector<std::string>& args) {
    return run_process(CPI_BINARY, args, "", director_env((env().root() / "tmp").string()));
  }
  std::string config_path() const { return m_config.string(); }
  nlohmann::json read_config() const { return nlohmann::json::parse(read_whole_file(m_config.string())); }
  void write_config(const nlohmann::json& config) const { std::ofstream{m_config} << config.dump(2); }
};

TEST_F(DoctorTest, HealthyHostPassesEveryCheck) {
  const auto run = tool({"doctor", "--config", config_path(), "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto report = nlohmann::json::parse(run.out);
  std::map<std::string, std::string> verdicts;
  for (const auto& check : report["checks"]) {
    verdicts[check["name"].get<std::string>()] = check["verdict"].get<std::string>();
  }
  for (const char* name : {"config", "connection", "guest", "storage_pool", "network", "volume",
                           "stream"}) {
    EXPECT_EQ(verdicts[name], "ok") << name << "\n" << run.out;
  }
  // KVM is a warning at most: this host may only offer TCG.
  EXPECT_NE(verdicts["kvm"], "fail") << run.out;
  EXPECT_TRUE(leftovers().empty()) << "doctor left its test volume behind";
}

TEST_F(DoctorTest, InactiveNetworkFailsWithAHint) {
  auto config = read_config();
  config["libvirt"]["network"] = "cpi-e2e-no-such-network";
  write_config(config);
  const auto run = tool({"doctor", "--config", config_path(), "--json"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  const auto report = nlohmann::json::parse(run.out);
  bool seen = false;
  for (const auto& check : report["checks"]) {
    if (check["name"] == "network") {
      seen = true;
      EXPECT_EQ(check["verdict"], "fail") << check.dump();
      EXPECT_FALSE(check["hint"].get<std::string>().empty()) << check.dump();
    }
  }
  EXPECT_TRUE(seen) << run.out;
}

TEST_F(DoctorTest, InspectListsAVmAndItsVolumes) {
  const auto stemcell = cpi("create_stemcell", {(env().stemcell_dir() / "qcow2" / "image").string(), nlohmann::json::object()});
  const auto created = cpi("create_vm", {"agent-doctor", stemcell, {{"ram", 128}},
                                         {{"private", {{"type", "dynamic"}, {"cloud_properties", {{"name", env().network_name()}}}}}},
                                         nullptr, nullptr});
  const std::string vm = created[0];
  const auto run = tool({"inspect", "--config", config_path(), "--json", vm});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find(vm + "-root"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(vm + "-config"), std::string::npos) << run.out;
  cpi("delete_vm", nlohmann::json::array({vm}));
  cpi("delete_stemcell", nlohmann::json::array({stemcell}));
}

}  // namespace
}  // namespace cpi::testing::e2e
