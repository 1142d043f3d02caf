// `bosh create-env` and `bosh delete-env` with the real bosh CLI (v7.1.2, ../shared/tools), as an
// operator runs them on a libvirt host: this repository's BOSH release (made by
// scripts/create-release.sh, its libvirt_cpi job installed and its packages compiled by the CLI
// on this machine), the real-agent test stemcell (tests/e2e/agent-stemcell) and a tiny release
// of one job and one package (tests/e2e/create-env/tiny-release) that the agent compiles inside
// the VM. create-env must end with the job running (the CLI waits for it; the test asks the
// agent too), and delete-env must leave nothing in libvirt.
//
// NETWORK RULE: as in agent_test.cpp, the VM's NIC is the CPI's own, on the tier's isolated
// network; the CLI runs inside a network namespace made by the test whose veth is the only other
// port of that bridge, so the CLI's mbus traffic (and the agent's answers) never leave the test.
// The CPI the CLI runs reaches libvirtd through its UNIX socket, which a namespace does not hide.
//
// The CLI compiles the CPI release's packages (libvirt and its libraries among them) on this
// machine, which takes many minutes. delete-env removes that installation, so the test keeps a
// copy of the CLI's compiled packages (its installation's index and blobs) under
// /var/cache/bosh-libvirt-cpi/create-env-installation and hands them back to the next run's
// installation, under the same HOME: the CLI looks packages up there by name, fingerprint and dependencies, so any
// change under packages/ or in the CPI's sources is compiled again.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.hpp"
#include "e2e/support/e2e_agent.hpp"

namespace cpi::testing::e2e {
namespace {

namespace fs = std::filesystem;

constexpr auto k_create_env_timeout = std::chrono::seconds(4800);  // a cold compile: long
constexpr int k_vm_host = 10;                                        // .10 of the test's subnet
const fs::path k_installation_cache = "/var/cache/bosh-libvirt-cpi/create-env-installation";
// The CLI's HOME, the same path on every run: compiled packages hold absolute paths into their
// installation (pkg-config files, RPATHs), as on an operator's machine, so the cached ones are
// only good at the path they were compiled for. Emptied before and after each run.
const fs::path k_home = "/var/cache/bosh-libvirt-cpi/create-env-home";
constexpr std::size_t k_cache_blob_limit = 40;  // past it the cache starts again from nothing

std::string bosh_cli() {
  if (const char* tools = std::getenv("BOSH_TOOLS")) return std::string{tools} + "/bosh";
  return std::string{CPI_SOURCE_DIR} + "/../shared/tools/bosh";
}

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

class CreateEnvTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(::access(bosh_cli().c_str(), X_OK), 0) << "no bosh CLI at " << bosh_cli();
    const auto stemcell = build_agent_stemcell(CPI_SOURCE_DIR, CPI_E2E_AGENT_STEMCELL_DIR);
    ASSERT_EQ(stemcell.exit_code, 0) << "tests/e2e/agent-stemcell/build.sh failed:\n"
                                     << stemcell.err;
    phase("agent stemcell build (cached)", stemcell.seconds);
    remove_stale_namespaces();
    ASSERT_NO_THROW(m_subnet = subnet_on_network(env().conn(), env().network_name()));
    m_work = env().root() / (m_prefix + "create-env");
    fs::create_directories(m_work);
    fs::permissions(m_work, fs::perms::owner_all);  // the vars store holds the mbus credentials
    fs::remove_all(k_home);  // what a killed run left
    fs::create_directories(k_home);
    fs::permissions(k_home, fs::perms::owner_all);
  }

  void TearDown() override {
    // A failed run: delete-env with the state it left, so that the VM and disks go the way an
    // operator's would (E2eTest::TearDown removes whatever that leaves).
    if (m_deployed && fs::exists(m_work / "state.json")) {
      const auto run = cli({"delete-env", manifest(), "--state", (m_work / "state.json").string(),
                            "--vars-store", (m_work / "creds.yml").string()},
                           k_create_env_timeout, vars());
      if (run.exit_code != 0) {
        std::printf("[e2e] delete-env after a failure: %s%s\n", run.out.c_str(), run.err.c_str());
      }
    }
    m_subnet.reset();
    if (!m_work.empty()) fs::remove_all(m_work);
    if (!m_work.empty()) fs::remove_all(k_home);
    E2eTest::TearDown();
  }

  std::string manifest() const {
    return std::string{CPI_SOURCE_DIR} + "/tests/e2e/create-env/manifest.yml";
  }

  // The bosh CLI inside the test's namespace, with its own HOME (~/.bosh of this run).
  CpiRun cli(std::vector<std::string> args, std::chrono::seconds timeout,
             std::vector<std::string> vars = {}) const {
    std::vector<std::string> argv{"/usr/bin/env",
                                  "HOME=" + k_home.string(),
                                  "TMPDIR=" + k_home.string(),
                                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                  "LC_ALL=C",
                                  bosh_cli(),
                                  "--non-interactive",
                                  "--tty"};  // without a terminal the CLI prints no stages
    argv.insert(argv.end(), args.begin(), args.end());
    for (const auto& v : vars) {
      argv.push_back("-v");
      argv.push_back(v);
    }
    return m_subnet->exec(argv, "", timeout);
  }

  // A value of the vars store, read with the CLI (`bosh int --path`).
  std::string credential(const std::string& path) const {
    const auto run = run_process(bosh_cli(), {"int", (m_work / "creds.yml").string(), "--path", path},
                                 "", cli_env());
    if (run.exit_code != 0) throw std::runtime_error("bosh int " + path + ": " + run.err + run.out);
    std::string value = run.out;
    while (!value.empty() && value.back() == '\n') value.pop_back();
    return value;
  }

  // PATH, LC_ALL and this run's HOME (the bosh CLI wants one).
  std::vector<std::string> cli_env() const {
    auto env = tool_env();
    env.push_back("HOME=" + k_home.string());
    return env;
  }

  // The two releases: this repository's (the same script an operator runs) and the tiny one.
  void make_releases() {
    const auto cpi_release = run_process(
        "/bin/bash",
        {std::string{CPI_SOURCE_DIR} + "/scripts/create-release.sh", "--working-tree", "--tarball",
         (m_work / "cpi-release.tgz").string()},
        "", cli_env(), std::chrono::seconds(1800));
    ASSERT_EQ(cpi_release.exit_code, 0) << "scripts/create-release.sh:\n"
                                        << cpi_release.out << cpi_release.err;
    phase("create-env: bosh create-release (this CPI)", cpi_release.seconds);
    const fs::path tiny = m_work / "tiny-release";
    copy_tree(fs::path{CPI_SOURCE_DIR} / "tests/e2e/create-env/tiny-release", tiny);
    const auto tiny_release =
        run_process(bosh_cli(),
                    {"create-release", "--dir", tiny.string(), "--force",
                     "--tarball=" + (m_work / "tiny-release.tgz").string()},
                    "", cli_env(), std::chrono::seconds(300));
    ASSERT_EQ(tiny_release.exit_code, 0) << "bosh create-release (tiny):\n"
                                         << tiny_release.out << tiny_release.err;
  }

  // The compiled packages of an earlier run, handed to this run's installation.
  void seed_installation() {
    const fs::path id_file = k_installation_cache / "installation_id";
    if (!fs::exists(id_file) || !fs::exists(k_installation_cache / "compiled_packages.json")) {
      std::printf("[e2e] create-env: no compiled CPI packages cached; the CLI compiles them all\n");
      return;
    }
    const std::string id = read_whole_file(id_file.string());
    ASSERT_TRUE(std::regex_match(id, std::regex{"[0-9a-f-]{36}"})) << "cached id: " << id;
    const fs::path target = k_home / ".bosh/installations" / id;
    fs::create_directories(target);
    fs::copy_file(k_installation_cache / "compiled_packages.json",
                  target / "compiled_packages.json");
    if (fs::exists(k_installation_cache / "blobs")) {
      copy_tree(k_installation_cache / "blobs", target / "blobs");
    }
    std::ofstream{m_work / "state.json"} << nlohmann::json{{"installation_id", id}}.dump();
    std::printf("[e2e] create-env: compiled CPI packages from %s\n",
                k_installation_cache.c_str());
  }

  // Keeps this run's compiled packages for the next one.
  void save_installation() {
    if (!fs::exists(m_work / "state.json")) return;
    const auto state = nlohmann::json::parse(read_whole_file((m_work / "state.json").string()));
    const std::string id = state.value("installation_id", "");
    const fs::path source = k_home / ".bosh/installations" / id;
    if (id.empty() || !fs::exists(source / "compiled_packages.json")) return;
    std::size_t blobs = 0;
    if (fs::exists(source / "blobs")) {
      for ([[maybe_unused]] const auto& e : fs::directory_iterator(source / "blobs")) ++blobs;
    }
    fs::remove_all(k_installation_cache.string() + ".part");
    if (blobs > k_cache_blob_limit) {  // compiled packages of many older sources: start again
      fs::remove_all(k_installation_cache);
      return;
    }
    const fs::path part = k_installation_cache.string() + ".part";
    fs::create_directories(part);
    fs::copy_file(source / "compiled_packages.json", part / "compiled_packages.json");
    if (fs::exists(source / "blobs")) copy_tree(source / "blobs", part / "blobs");
    std::ofstream{part / "installation_id"} << id;
    fs::remove_all(k_installation_cache);
    fs::rename(part, k_installation_cache);
  }

  std::vector<std::string> vars() const {
    return {"cpi_release=" + (m_work / "cpi-release.tgz").string(),
            "tiny_release=" + (m_work / "tiny-release.tgz").string(),
            "stemcell=" + std::string{CPI_E2E_AGENT_STEMCELL_DIR} + "/stemcell.tgz",
            "subnet_range=" + m_subnet->address(0) + "/24",
            "gateway=" + m_subnet->gateway(),
            "internal_ip=" + m_subnet->address(k_vm_host),
            "greeting=" + m_greeting,
            "libvirt_uri=" + std::string{k_uri},
            "libvirt_storage_pool=" + env().pool_name(),
            "libvirt_store_dir=" + (env().root() / "pool").string(),
            "libvirt_network=" + env().network_name(),
            "libvirt_domain_type=" + env().domain_type(),
            "libvirt_name_prefix=" + m_prefix};
  }

  std::vector<std::string> our_domains() {
    std::vector<std::string> out;
    for (const auto& what : leftovers()) {
      if (what.rfind("domain ", 0) == 0) out.push_back(what.substr(7));
    }
    return out;
  }

  std::unique_ptr<GuestSubnet> m_subnet;
  fs::path m_work;
  std::string m_greeting = "hello-" + random_hex(6);
  bool m_deployed = false;
};

TEST_F(CreateEnvTest, TinyReleaseRunsAndDeleteEnvLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(make_releases());
  ASSERT_NO_FATAL_FAILURE(seed_installation());
  const std::string state = (m_work / "state.json").string();
  const std::string creds = (m_work / "creds.yml").string();

  CpiRun created;
  {
    Ipv6Guard quiet;  // the VM's tap is made while the CLI runs create_vm
    m_deployed = true;
    created = cli({"create-env", manifest(), "--state", state, "--vars-store", creds},
                  k_create_env_timeout, vars());
  }
  // The CPI's compiled packages are good whatever happened after the CLI compiled them.
  ASSERT_NO_FATAL_FAILURE(save_installation());
  ASSERT_EQ(created.exit_code, 0) << "bosh create-env failed:\n" << created.out << created.err;
  phase("create-env: bosh create-env (CPI compiled here, hello compiled in the VM)",
        created.seconds);
  const std::string out = created.out + created.err;  // the CLI's stages, wherever it writes them
  EXPECT_NE(out.find("Compiling package 'hello/"), std::string::npos) << out;
  EXPECT_NE(out.find("Waiting for instance 'tiny/0' to be running"), std::string::npos) << out;
  EXPECT_NE(out.find("Finished deploying"), std::string::npos) << out;

  // One VM of ours, made through the job's bin/cpi, its tap silent.
  const auto domains = our_domains();
  ASSERT_EQ(domains.size(), 1u) << ::testing::PrintToString(leftovers());
  const std::string vm = domains[0].substr(m_prefix.size());
  expect_silent_taps(vm);

  // The agent, asked as the CLI asks it: the job runs, compiled on the VM.
  const std::string ip = m_subnet->address(k_vm_host);
  std::ofstream{m_work / "mbus-ca.pem"} << credential("/default_ca/ca");
  Mbus mbus{*m_subnet, ip, "mbus", credential("/mbus_bootstrap_password"), m_work,
            (m_work / "mbus-ca.pem").string()};
  const auto agent_state = mbus.value("get_state", nlohmann::json::array({"full"}));
  EXPECT_EQ(agent_state.value("job_state", ""), "running") << agent_state.dump(2);
  bool hello_running = false;
  for (const auto& p : agent_state.value("processes", nlohmann::json::array())) {
    if (p.value("name", "") == "hello" && p.value("state", "") == "running") hello_running = true;
  }
  EXPECT_TRUE(hello_running) << agent_state.dump(2);

  // delete-env: the VM, its disks and its console log go; nothing of ours stays in libvirt.
  const std::string log = console_log(vm);
  const auto deleted = cli({"delete-env", manifest(), "--state", state, "--vars-store", creds},
                           k_create_env_timeout, vars());
  ASSERT_EQ(deleted.exit_code, 0) << "bosh delete-env failed:\n" << deleted.out << deleted.err;
  m_deployed = false;
  phase("create-env: bosh delete-env", deleted.seconds);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(log)) << "delete_vm left the console log " << log;
  EXPECT_FALSE(fs::exists(state)) << "delete-env keeps the state file only when it failed";
}

}  // namespace
}  // namespace cpi::testing::e2e
