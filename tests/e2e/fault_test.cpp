// Real faults against a private libvirtd (e2e/private_host.hpp), so they run wherever the e2e
// tier runs: libvirtd killed (SIGKILL) while a `cpi` call works, and the `cpi` itself killed
// after create_vm defined its domain. Every call that loses its daemon must answer one JSON error
// (never die of SIGPIPE) that is retriable (create_vm: VMCreationFailed with ok_to_retry;
// create_stemcell, snapshot_disk: CloudError with ok_to_retry); what could not be rolled back is
// removed by the next call or by `cpi cleanup --orphans`. Only PIDs the test started are
// signalled.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/private_host.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing::e2e {
namespace {

namespace fs = std::filesystem;

// Polls `done` every 2 ms for up to `seconds`; true once it holds.
template <class F>
bool poll_until(F done, double seconds) {
  const auto start = Clock::now();
  while (since(start) < seconds) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

class FaultTest : public PrivateHostTest {
 protected:
  CpiRun run_cpi(const std::vector<std::string>& args, const std::string& input) {
    return run_process(CPI_BINARY, args, input, director_env((env().root() / "tmp").string()),
                       std::chrono::seconds(180));
  }
  nlohmann::json call(const std::string& method, const nlohmann::json& arguments) {
    return parse_cpi_response(
        run_cpi({"--config", m_config.string()},
                cpi_request(method, arguments, {{"director_uuid", "e2e-director"}}, 2)));
  }

  std::string create_vm_request(const std::string& stemcell) const {
    const nlohmann::json networks{
        {"private", {{"type", "dynamic"}, {"cloud_properties", {{"name", network_name()}}}}}};
    const nlohmann::json args{"agent-fault",
                              stemcell,
                              nlohmann::json{{"cpu", 1}, {"ram", 128}, {"ephemeral_disk", 16}},
                              networks,
                              nlohmann::json::array(),
                              nlohmann::json::object()};
    return cpi_request("create_vm", args, {{"director_uuid", "e2e-director"}}, 2);
  }

  // A raw stemcell image (an uncompressed tar holding root.img) of `mib` MiB of non-zero bytes,
  // in a directory of the test: its upload takes long enough for libvirtd to be killed while it
  // runs (the test stemcell, mostly holes, goes up in a blink). Empty when it cannot be made.
  std::string big_raw_image(std::size_t mib) {
    const auto dir = env().root() / (m_prefix + "big-image");
    fs::create_directories(dir);
    {
      std::ofstream out{dir / "root.img", std::ios::binary};
      const std::string chunk(1U << 20U, '\x5a');
      for (std::size_t i = 0; i < mib; ++i) out.write(chunk.data(), std::streamsize(chunk.size()));
      if (!out.flush()) return "";
    }
    const auto run = run_process("/bin/tar", {"-cf", (dir / "image").string(), "-C", dir.string(),
                                              "root.img"},
                                 "", {"PATH=/usr/bin:/bin"});
    fs::remove(dir / "root.img");
    return run.exit_code == 0 ? (dir / "image").string() : "";
  }

  std::string upload_stemcell() {
    const auto image = (env().stemcell_dir() / "qcow2" / "image").string();
    return cpi("create_stemcell", {image, nlohmann::json::object()}).get<std::string>();
  }

  // Files in the private pool directory whose names start with the test's prefix + `kind`.
  std::vector<std::string> pool_files(const std::string& kind) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_host->daemon().pool_dir(), ec)) {
      const auto name = e.path().filename().string();
      if (name.rfind(m_prefix + kind, 0) == 0) out.push_back(name);
    }
    return out;
  }

  std::vector<std::string> domains_of_test() {
    std::vector<std::string> out;
    for (const auto& what : leftovers()) {
      if (what.rfind("domain ", 0) == 0) out.push_back(what.substr(7));
    }
    return out;
  }

  // Whether a domain of this test is defined (cheap enough to poll).
  bool has_test_domain() {
    bool found = false;
    for (auto& d : all_domains(conn())) {
      found = found || std::string{virDomainGetName(d.get())}.rfind(m_prefix, 0) == 0;
    }
    return found;
  }

  // Runs `request` through a `cpi` while this thread waits for `trigger`, then kills libvirtd
  // and starts it again. Returns the call's run (its exit and output).
  CpiRun kill_libvirtd_during(const std::string& request, const std::function<bool()>& trigger,
                              const std::string& what) {
    Ipv6Guard quiet;
    auto running = std::async(std::launch::async,
                              [&] { return run_cpi({"--config", m_config.string()}, request); });
    const bool seen = poll_until(
        [&] {
          return trigger() ||
                 running.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready;
        },
        120);
    const bool in_time = seen && running.wait_for(std::chrono::milliseconds(0)) !=
                                     std::future_status::ready;
    m_host->daemon().kill_libvirtd();
    std::printf("[e2e] libvirtd killed when %s\n", what.c_str());
    const CpiRun run = running.get();
    std::string why;
    EXPECT_TRUE(m_host->daemon().start_libvirtd(why)) << why;
    m_host->reconnect();
    EXPECT_TRUE(in_time) << "the call ended before " << what << ":\n" << run.out << run.err;
    return run;
  }

  // The response of a call that lost its daemon: exit 0 (no SIGPIPE), one JSON error.
  nlohmann::json lost_daemon_error(const CpiRun& run, const std::string& method) {
    EXPECT_EQ(run.exit_code, 0) << method << " died (signal 13 is SIGPIPE):\n" << run.err;
    auto response = parse_cpi_response(run);
    EXPECT_FALSE(response["error"].is_null())
        << method << " succeeded although libvirtd died:\n" << response.dump();
    std::printf("[e2e] %s answered: %s\n", method.c_str(), response["error"].dump().c_str());
    return response["error"];
  }

  nlohmann::json inspect_json(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"inspect", "--config", m_config.string(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto run = run_cpi(args, "");
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    return nlohmann::json::parse(run.out, nullptr, false);
  }
  CpiRun cleanup(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"cleanup", "--config", m_config.string(), "--orphans"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto run = run_cpi(args, "");
    std::printf("[e2e] cpi cleanup %s:\n%s", ::testing::PrintToString(extra).c_str(),
                run.out.c_str());
    return run;
  }

  // The facts of a domain's CPI metadata ({} when it has none).
  nlohmann::json vm_facts(const std::string& vm) {
    auto d = find_domain(vm);
    if (!d) return nlohmann::json::object();
    virt::OwnedCString text{virDomainGetMetadata(d->get(), VIR_DOMAIN_METADATA_ELEMENT,
                                                 "https://github.com/bosh-libvirt-cpi/xmlns/vm/1",
                                                 VIR_DOMAIN_AFFECT_CONFIG)};
    pugi::xml_document doc;
    if (!text || !doc.load_string(text.get())) return nlohmann::json::object();
    return nlohmann::json::parse(doc.document_element().child_value("facts"), nullptr, false);
  }

  std::string vm_in(const std::string& message) {
    std::smatch match;
    EXPECT_TRUE(std::regex_search(message, match, std::regex{"vm-[0-9a-f-]{36}"})) << message;
    return match.empty() ? "" : match.str();
  }
};

TEST_F(FaultTest, LibvirtdKilledDuringCreateVmGivesRetriableErrorAndRetryWorks) {
  const std::string stemcell = upload_stemcell();
  const std::string request = create_vm_request(stemcell);
  const auto failed = kill_libvirtd_during(
      request, [&] { return !pool_files("vm-").empty(); }, "create_vm's first volume existed");
  const auto error = lost_daemon_error(failed, "create_vm");
  EXPECT_EQ(error["type"], "Bosh::Clouds::VMCreationFailed") << error;
  EXPECT_EQ(error["ok_to_retry"], true) << error << "\n" << failed.err;
  const std::string failed_vm = vm_in(error.value("message", ""));
  EXPECT_EQ(domains_of_test(), std::vector<std::string>{}) << "no domain was defined yet";

  // The retry, as the director makes it.
  std::string vm;
  {
    Ipv6Guard quiet;
    const auto retry = parse_cpi_response(run_cpi({"--config", m_config.string()}, request));
    ASSERT_TRUE(retry["error"].is_null()) << retry.dump();
    vm = retry["result"][0].get<std::string>();
  }
  expect_silent_taps(vm);
  EXPECT_NE(vm, failed_vm);
  EXPECT_EQ(domains_of_test(), std::vector<std::string>{domain_name(vm)}) << "exactly one domain";
  EXPECT_TRUE(domain_active(vm));
  EXPECT_FALSE(vm_facts(vm).contains("incomplete_since")) << "a finished VM is complete";

  // What the failed attempt left (rollback could not reach the daemon): flagged, then removed.
  std::set<std::string> left;
  for (const auto& what : leftovers()) {
    if (what.find(failed_vm) != std::string::npos) left.insert(what.substr(7));
  }
  std::printf("[e2e] the failed attempt left %zu volume(s)\n", left.size());
  const auto inventory = inspect_json();
  const auto orphans = inventory["orphans"].get<std::set<std::string>>();
  for (const auto& name : left) EXPECT_TRUE(orphans.count(name)) << name << " not flagged";
  for (const auto& name : orphans) {
    EXPECT_EQ(name.find(vm), std::string::npos) << "the retried VM's " << name << " is no orphan";
  }
  EXPECT_EQ(cleanup({"--min-age", "0"}).exit_code, 0);
  for (const auto& name : left) EXPECT_FALSE(volume_exists(name)) << name << " not removed";

  EXPECT_TRUE(cpi("delete_vm", {vm}).is_null());
  EXPECT_TRUE(cpi("delete_stemcell", {stemcell}).is_null());
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

// libvirtd dies while create_vm starts the defined domain: the answer is retriable, the domain
// stays (the daemon was gone for the rollback) marked incomplete, and cleanup removes it with its
// volumes once it is older than the bound (here lowered to 0).
TEST_F(FaultTest, LibvirtdKilledAfterDefineLeavesAnIncompleteVmThatCleanupRemoves) {
  const std::string stemcell = upload_stemcell();
  const auto failed = kill_libvirtd_during(
      create_vm_request(stemcell), [&] { return has_test_domain(); },
      "create_vm's domain was defined");
  const auto error = lost_daemon_error(failed, "create_vm");
  EXPECT_EQ(error["type"], "Bosh::Clouds::VMCreationFailed") << error;
  EXPECT_EQ(error["ok_to_retry"], true) << error << "\n" << failed.err;
  const std::string vm = vm_in(error.value("message", ""));

  ASSERT_TRUE(find_domain(vm)) << "the domain was seen defined before libvirtd was killed";
  {
    EXPECT_TRUE(vm_facts(vm).contains("incomplete_since")) << vm_facts(vm);
    // Flagged, and spared (recent) while younger than the default bound of 1 h.
    auto entry = [&](const nlohmann::json& inventory) {
      for (const auto& object : inventory["objects"]) {
        if (object["name"] == domain_name(vm)) return object;
      }
      return nlohmann::json::object();
    };
    auto object = entry(inspect_json());
    EXPECT_EQ(object.value("orphan", false), true) << object;
    EXPECT_EQ(object.value("recent", false), true) << object;
    object = entry(inspect_json({"--incomplete-age", "0"}));
    EXPECT_EQ(object.value("orphan", false), true) << object;
    EXPECT_EQ(object.value("recent", true), false) << "past the bound: " << object;
  }
  const auto run = cleanup({"--min-age", "0", "--incomplete-age", "0"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(leftovers(), (std::vector<std::string>{"volume " + volume_name(stemcell)}))
      << "cleanup removes the domain and its volumes, never the stemcell";
  EXPECT_TRUE(cpi("delete_stemcell", {stemcell}).is_null());
}

// `kill -9` of the cpi right after create_vm defined the domain: a domain of ours marked
// incomplete and its three volumes. cleanup spares it while it is young; delete_vm removes it.
TEST_F(FaultTest, CpiKilledAfterDefineLeavesAnIncompleteVmThatDeleteVmRemoves) {
  const std::string stemcell = upload_stemcell();
  const auto request_file = env().root() / (m_prefix + "request.json");
  write_text(request_file.string(), create_vm_request(stemcell));
  std::vector<std::string> env_strings = director_env((env().root() / "tmp").string());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string config = m_config.string();
  char* argv[] = {const_cast<char*>(CPI_BINARY), const_cast<char*>("--config"), config.data(),
                  nullptr};
  const std::string input = request_file.string();
  Ipv6Guard quiet;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int in = ::open(input.c_str(), O_RDONLY);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(in, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execve(CPI_BINARY, argv, envp.data());
    ::_exit(127);
  }
  const bool defined = poll_until([&] { return has_test_domain(); }, 120);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(defined) << "create_vm defined no domain";
  ASSERT_TRUE(WIFSIGNALED(status)) << "create_vm finished before it was killed";
  const std::string vm = domains_of_test().front().substr(m_prefix.size());
  std::printf("[e2e] cpi killed after it defined %s\n", vm.c_str());
  EXPECT_TRUE(vm_facts(vm).contains("incomplete_since")) << vm_facts(vm);

  const auto spared = cleanup({"--min-age", "0"});
  EXPECT_EQ(spared.exit_code, 0) << spared.err;
  EXPECT_TRUE(find_domain(vm).has_value()) << "a young incomplete VM is spared";
  EXPECT_TRUE(cpi("delete_vm", {vm}).is_null());
  EXPECT_EQ(leftovers(), (std::vector<std::string>{"volume " + volume_name(stemcell)}));
  EXPECT_TRUE(cpi("delete_stemcell", {stemcell}).is_null());
}

// libvirtd dies while create_stemcell uploads the image, and while snapshot_disk copies a
// disk: one JSON error each, no SIGPIPE, retriable (ok_to_retry true: the director acts on the
// flag for create_vm only, but it tells the operator that running the task again is safe). The
// half stemcell the dead daemon kept is never usable: create_vm refuses it before any cleanup,
// and `cpi cleanup --orphans` removes its volume and its .incomplete marker, and the half
// snapshot, never the disk. Nothing of the test may be left for TearDown to hide.
TEST_F(FaultTest, LibvirtdKilledDuringCreateStemcellAndSnapshotDiskAnswersJson) {
  const auto image = big_raw_image(128);
  ASSERT_FALSE(image.empty()) << "cannot write a 128 MiB image under " << env().root();
  // The stemcell volume itself (not only its marker) exists: its upload runs.
  const auto uploading = [&] {
    for (const auto& name : pool_files("sc-")) {
      if (name.find(".incomplete") == std::string::npos) return true;
    }
    return false;
  };
  const auto stemcell_run = kill_libvirtd_during(
      cpi_request("create_stemcell", {image, nlohmann::json::object()},
                  {{"director_uuid", "e2e-director"}}, 2),
      uploading, "the stemcell volume existed");
  fs::remove_all(fs::path{image}.parent_path());
  const auto stemcell_error = lost_daemon_error(stemcell_run, "create_stemcell");
  EXPECT_EQ(stemcell_error["type"], "Bosh::Clouds::CloudError") << stemcell_error;
  EXPECT_EQ(stemcell_error["ok_to_retry"], true) << stemcell_error << "\n" << stemcell_run.err;

  // What the rollback could not remove (the daemon was gone): the marker, and the stemcell volume
  // when the upload had begun.
  const auto left = pool_files("sc-");
  for (const auto& name : left) std::printf("[e2e] create_stemcell left %s\n", name.c_str());
  const std::string marker_suffix = ".incomplete";
  std::string stemcell;
  bool marker = false;
  for (const auto& name : left) {
    std::string cid = name.substr(m_prefix.size());
    if (cid.size() > marker_suffix.size() &&
        cid.compare(cid.size() - marker_suffix.size(), marker_suffix.size(), marker_suffix) == 0) {
      cid.resize(cid.size() - marker_suffix.size());
      marker = true;
    }
    stemcell = cid;
  }
  ASSERT_TRUE(marker) << "no .incomplete marker left by the interrupted create_stemcell";
  ASSERT_EQ(std::count(left.begin(), left.end(), m_prefix + stemcell), 1)
      << "the half stemcell volume is gone";

  // Unusable before any cleanup: create_vm refuses it, naming it, and makes nothing.
  {
    Ipv6Guard quiet;
    const auto refused =
        parse_cpi_response(run_cpi({"--config", m_config.string()}, create_vm_request(stemcell)));
    ASSERT_FALSE(refused["error"].is_null()) << "create_vm used the half stemcell: " << refused;
    const std::string message = refused["error"].value("message", "");
    std::printf("[e2e] create_vm on the half stemcell: %s\n", message.c_str());
    EXPECT_NE(message.find("stemcell '" + stemcell + "' is incomplete"), std::string::npos)
        << message;
  }
  EXPECT_EQ(domains_of_test(), std::vector<std::string>{});
  EXPECT_EQ(pool_files("vm-"), std::vector<std::string>{});

  const std::string disk = cpi("create_disk", {2048, nlohmann::json::object(), nullptr});
  const auto snapshot_run = kill_libvirtd_during(
      cpi_request("snapshot_disk", {disk, nlohmann::json::object()},
                  {{"director_uuid", "e2e-director"}}, 2),
      [&] { return !pool_files("snap-").empty(); }, "the snapshot volume existed");
  const auto snapshot_error = lost_daemon_error(snapshot_run, "snapshot_disk");
  EXPECT_EQ(snapshot_error["type"], "Bosh::Clouds::CloudError") << snapshot_error;
  EXPECT_EQ(snapshot_error["ok_to_retry"], true) << snapshot_error << "\n" << snapshot_run.err;

  for (const auto& what : leftovers()) std::printf("[e2e] after the two faults: %s\n", what.c_str());
  // The daemon is back: the disk is intact and the calls work again; cleanup removes the half
  // stemcell with its marker and the half snapshot (no .meta), never the disk.
  EXPECT_EQ(cpi("has_disk", {disk}), true);
  const auto cleaned = cleanup({"--min-age", "0"});
  EXPECT_EQ(cleaned.exit_code, 0) << cleaned.err;
  EXPECT_EQ(pool_files("sc-"), std::vector<std::string>{}) << "the half stemcell is left";
  EXPECT_EQ(pool_files("snap-"), std::vector<std::string>{}) << "the half snapshot is left";
  EXPECT_EQ(cpi("has_disk", {disk}), true);
  EXPECT_TRUE(cpi("delete_disk", {disk}).is_null());
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

}  // namespace
}  // namespace cpi::testing::e2e
