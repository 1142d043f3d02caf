// A real fault: libvirtd is killed (SIGKILL) while a `cpi create_vm` process
// works, then restarted. The call must fail with Bosh::Clouds::VMCreationFailed
// and ok_to_retry: true, a retry must succeed with exactly one domain, and what
// the failed attempt could not roll back (the daemon was gone) must be flagged
// as orphans by `cpi inspect` and removed by `cpi cleanup --orphans --min-age
// 0`. Only a libvirtd this test run started is killed.

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <future>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_fixture.hpp"

namespace cpi::testing::e2e {
namespace {

class FaultTest : public E2eTest {
protected:
  CpiRun run_cpi(const std::vector<std::string> &args,
                 const std::string &input) {
    return run_process(CPI_BINARY, args, input,
                       director_env((env().root() / "tmp").string()),
                       std::chrono::seconds(180));
  }

  std::string create_vm_request(const std::string &stemcell) const {
    const nlohmann::json networks{
        {"private",
         {{"type", "dynamic"},
          {"cloud_properties", {{"name", env().network_name()}}}}}};
    const nlohmann::json args{
        "agent-fault",
        stemcell,
        nlohmann::json{{"cpu", 1}, {"ram", 128}, {"ephemeral_disk", 16}},
        networks,
        nlohmann::json::array(),
        nlohmann::json::object()};
    return cpi_request("create_vm", args, {{"director_uuid", "e2e-director"}},
                       2);
  }

  // The files of this test's VM volumes in the pool directory (seen without
  // libvirt).
  std::vector<std::string> vm_volume_files() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto &e :
         std::filesystem::directory_iterator(env().root() / "pool", ec)) {
      const auto name = e.path().filename().string();
      if (name.rfind(m_prefix + "vm-", 0) == 0)
        out.push_back(name);
    }
    return out;
  }

  std::vector<std::string> domains_of_test() {
    std::vector<std::string> out;
    for (const auto &what : leftovers()) {
      if (what.rfind("domain ", 0) == 0)
        out.push_back(what.substr(7));
    }
    return out;
  }
};

TEST_F(FaultTest,
       LibvirtdKilledDuringCreateVmGivesRetriableErrorAndRetryWorks) {
  if (!env().libvirtd().started_here()) {
    GTEST_SKIP() << "libvirtd was already running when the tier started; only "
                    "a libvirtd the "
                    "test started itself is killed";
  }
  const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
  const std::string stemcell =
      cpi("create_stemcell", {image, nlohmann::json::object()});
  const std::string request = create_vm_request(stemcell);

  // The call runs while this thread watches the pool directory for its first
  // volume.
  CpiRun failed;
  std::vector<std::string> seen;
  {
    Ipv6Guard quiet;
    auto call = std::async(std::launch::async, [&] {
      return run_cpi({"--config", m_config.string()}, request);
    });
    const auto start = Clock::now();
    while (seen.empty() && since(start) < 60 &&
           call.wait_for(std::chrono::milliseconds(0)) !=
               std::future_status::ready) {
      seen = vm_volume_files();
      if (seen.empty())
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    ASSERT_FALSE(seen.empty()) << "create_vm made no volume before it ended";
    for (pid_t pid : pids_named("libvirtd"))
      ::kill(pid, SIGKILL);
    failed = call.get();
  }
  std::printf("[e2e] libvirtd killed when %s existed\n", seen.front().c_str());
  std::string why;
  for (int i = 0; i < 100 && env().libvirtd().running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(env().libvirtd().ensure_running(why)) << why;
  env().reconnect();

  const auto response = parse_cpi_response(failed);
  ASSERT_FALSE(response["error"].is_null())
      << "create_vm succeeded although libvirtd died:\n"
      << response.dump();
  EXPECT_EQ(response["error"]["type"], "Bosh::Clouds::VMCreationFailed")
      << response["error"];
  EXPECT_EQ(response["error"]["ok_to_retry"], true) << response["error"] << "\n"
                                                    << failed.err;
  std::smatch match;
  const std::string message = response["error"].value("message", "");
  ASSERT_TRUE(std::regex_search(message, match, std::regex{"vm-[0-9a-f-]{36}"}))
      << message;
  const std::string failed_vm = match.str();
  std::printf("[e2e] create_vm answered: %s\n", response["error"].dump().c_str());
  EXPECT_EQ(domains_of_test(), std::vector<std::string>{})
      << "the failed attempt left a domain (killed after define?)";

  // The retry, as the director makes it.
  std::string vm;
  {
    Ipv6Guard quiet;
    const auto retry =
        parse_cpi_response(run_cpi({"--config", m_config.string()}, request));
    ASSERT_TRUE(retry["error"].is_null()) << retry.dump();
    vm = retry["result"][0].get<std::string>();
  }
  expect_silent_taps(vm);
  EXPECT_NE(vm, failed_vm);
  EXPECT_EQ(domains_of_test(), std::vector<std::string>{domain_name(vm)})
      << "exactly one domain";
  EXPECT_TRUE(domain_active(vm));

  // What the failed attempt left: its volumes, flagged as orphans, then
  // removed.
  std::set<std::string> left;
  for (const auto &what : leftovers()) {
    if (what.find(failed_vm) != std::string::npos)
      left.insert(what.substr(7));
  }
  std::printf("[e2e] the failed attempt left %zu volume(s)\n", left.size());
  const auto inspect =
      run_cpi({"inspect", "--config", m_config.string(), "--json"}, "");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.out << inspect.err;
  const auto inventory = nlohmann::json::parse(inspect.out);
  const std::set<std::string> orphans =
      inventory["orphans"].get<std::set<std::string>>();
  for (const auto &name : left)
    EXPECT_TRUE(orphans.count(name)) << name << " not flagged";
  for (const auto &name : orphans) {
    EXPECT_EQ(name.find(vm), std::string::npos)
        << "the retried VM's " << name << " is no orphan";
  }
  const auto cleanup = run_cpi(
      {"cleanup", "--config", m_config.string(), "--orphans", "--min-age", "0"},
      "");
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.out << cleanup.err;
  for (const auto &name : left)
    EXPECT_FALSE(volume_exists(name)) << name << " not removed";

  EXPECT_TRUE(cpi("delete_vm", {vm}).is_null());
  EXPECT_TRUE(cpi("delete_stemcell", {stemcell}).is_null());
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

} // namespace
} // namespace cpi::testing::e2e
