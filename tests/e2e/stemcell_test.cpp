// Stemcell import through the built binary against a real libvirtd: a raw disk packed with
// `tar -S` boots, a qcow2 naming a host file is refused without touching that file, and a
// create_stemcell killed during its upload leaves a stemcell create_vm refuses and
// `cpi cleanup --orphans` removes.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pugixml.hpp>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_fixture.hpp"

extern char** environ;

namespace cpi::testing::e2e {
namespace {

class StemcellImportTest : public E2eTest {
 protected:
  // The CPI's error message for a call that must fail.
  std::string cpi_error(const std::string& method, const nlohmann::json& arguments) {
    const nlohmann::json context{{"director_uuid", "e2e-director"}, {"request_id", "cpi-4343"}};
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()},
                                 cpi_request(method, arguments, context, 2),
                                 director_env((env().root() / "tmp").string()));
    const auto response = parse_cpi_response(run);
    if (response["error"].is_null()) {
      ADD_FAILURE() << method << " succeeded: " << response.dump();
      return "";
    }
    return response["error"].value("message", "");
  }

  // Names of this test's volumes in the pool.
  std::vector<std::string> our_volumes() {
    std::vector<std::string> out;
    for (const auto& what : leftovers()) {
      if (what.rfind("volume ", 0) == 0) out.push_back(what.substr(7 + m_prefix.size()));
    }
    return out;
  }

  void sh(const std::string& command) {
    ASSERT_EQ(std::system(("set -e; " + command + " >/dev/null 2>&1").c_str()), 0) << command;
  }

  nlohmann::json networks() const {
    return {{"private",
             {{"type", "manual"},
              {"ip", "10.244.0.20"},
              {"netmask", "255.255.255.0"},
              {"gateway", "10.244.0.1"},
              {"cloud_properties", {{"name", env().network_name()}}}}}};
  }

  std::filesystem::path scratch() {
    auto dir = env().root() / (m_prefix + "scratch");
    std::filesystem::create_directories(dir);
    return dir;
  }
};

TEST_F(StemcellImportTest, VmBootsFromARawStemcellPackedWithTarSparse) {
  const auto image = (env().stemcell_dir() / "raw-sparse" / "image").string();
  const auto props = nlohmann::json::parse(
      read_whole_file((env().stemcell_dir() / "raw-sparse" / "cloud_properties.json").string()));
  const std::string stemcell = cpi("create_stemcell", {image, props});
  phase("create_stemcell (raw, tar -S)", last_call_seconds());
  {
    auto volume = find_volume(volume_name(stemcell));
    ASSERT_TRUE(volume);
    virStorageVolInfo info{};
    ASSERT_EQ(virStorageVolGetInfo(volume->get(), &info), 0);
    EXPECT_EQ(info.capacity, 64ULL << 20);
    EXPECT_LT(info.allocation, info.capacity / 2) << "the volume was inflated";
  }
  const auto created = cpi("create_vm", {"agent-sparse", stemcell, {{"cpu", 1}, {"ram", 256}},
                                         networks(), nlohmann::json::array(), nlohmann::json::object()});
  const std::string vm = created.at(0).get<std::string>();
  const GuestBoot boot = wait_report(console_log(vm), 0);
  EXPECT_NE(boot.configdrive.find("label=config-2"), std::string::npos) << boot.configdrive;
  // The running domain's root disk: its overlay, the stemcell volume, and nothing below that.
  pugi::xml_document live;
  domain_xml(vm, live);
  const auto root = live.select_node("/domain/devices/disk[target/@dev='vda']").node();
  const auto layer = root.child("backingStore");
  EXPECT_STREQ(layer.child("format").attribute("type").value(), "raw");
  EXPECT_NE(std::string{layer.child("source").attribute("file").value()}.find(stemcell),
            std::string::npos);
  ASSERT_TRUE(layer.child("backingStore"));
  EXPECT_FALSE(layer.child("backingStore").child("source")) << "libvirt probed past the stemcell";
  cpi("delete_vm", {vm});
  cpi("delete_stemcell", {stemcell});
  EXPECT_TRUE(our_volumes().empty()) << ::testing::PrintToString(our_volumes());
}

TEST_F(StemcellImportTest, Qcow2WithABackingFileIsRefusedAndTheFileLeftAlone) {
  const auto dir = scratch();
  const auto backing = dir / "scratch.raw";
  sh("qemu-img create -q -f raw '" + backing.string() + "' 1M; chmod 0640 '" + backing.string() +
     "'; mkdir -p '" + (dir / "img").string() + "'; qemu-img create -q -f qcow2 -F raw -b '" +
     backing.string() + "' '" + (dir / "img/root.img").string() + "'; tar -czf '" +
     (dir / "image").string() + "' -C '" + (dir / "img").string() + "' root.img");
  struct stat before {};
  ASSERT_EQ(::stat(backing.c_str(), &before), 0);

  for (const nlohmann::json& props :
       {nlohmann::json{{"disk_format", "qcow2"}}, nlohmann::json{{"disk_format", "raw"}}}) {
    const std::string message = cpi_error("create_stemcell", {(dir / "image").string(), props});
    EXPECT_NE(message.find("its qcow2 header names a backing file"), std::string::npos) << message;
  }
  struct stat after {};
  ASSERT_EQ(::stat(backing.c_str(), &after), 0);
  EXPECT_EQ(after.st_uid, before.st_uid) << "the scratch file was chowned";
  EXPECT_EQ(after.st_gid, before.st_gid);
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_TRUE(our_volumes().empty()) << ::testing::PrintToString(our_volumes());
  std::filesystem::remove_all(dir);
}

// The image is fed through a FIFO: the CPI reads half of it and waits in the middle of its
// upload, where it is killed with SIGKILL.
TEST_F(StemcellImportTest, CreateStemcellKilledDuringTheUploadIsIncompleteUntilCleanedUp) {
  const auto dir = scratch();
  sh("mkdir -p '" + (dir / "img").string() + "'; head -c 16M /dev/urandom > '" +
     (dir / "img/root.img").string() + "'; tar -czf '" + (dir / "image").string() + "' -C '" +
     (dir / "img").string() + "' root.img; mkfifo '" + (dir / "fifo").string() + "'");
  const std::string full = read_whole_file((dir / "image").string());

  const std::string request = cpi_request(
      "create_stemcell", {(dir / "fifo").string(), {{"disk_format", "raw"}}},
      {{"director_uuid", "e2e-director"}, {"request_id", "cpi-4444"}}, 2);
  std::ofstream{dir / "request.json"} << request;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, (dir / "request.json").c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, (dir / "stderr").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> args{CPI_BINARY, "--config", m_config.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, CPI_BINARY, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  const int fifo = ::open((dir / "fifo").c_str(), O_WRONLY);  // waits for the CPI to open it
  ASSERT_GE(fifo, 0);
  const std::size_t half = full.size() / 2;
  std::size_t sent = 0;
  while (sent < half) {
    const ssize_t n = ::write(fifo, full.data() + sent, half - sent);
    ASSERT_GT(n, 0);
    sent += static_cast<std::size_t>(n);
  }
  // Both the stemcell volume and its marker exist while the upload waits for the rest.
  std::string stemcell;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (stemcell.empty() && Clock::now() < deadline) {
    for (const auto& name : our_volumes()) {
      const auto dot = name.find(".incomplete");
      if (dot == std::string::npos) continue;
      const std::string base = name.substr(0, dot);
      const auto all = our_volumes();
      if (std::find(all.begin(), all.end(), base) != all.end()) stemcell = base;
    }
    if (stemcell.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a poll
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fifo);
  ASSERT_FALSE(stemcell.empty()) << "no stemcell volume with its marker appeared:\n"
                                 << read_whole_file((dir / "stderr").string());
  ASSERT_TRUE(WIFSIGNALED(status));

  const std::string message =
      cpi_error("create_vm", {"agent-x", stemcell, {{"cpu", 1}, {"ram", 256}}, networks(),
                              nlohmann::json::array(), nlohmann::json::object()});
  EXPECT_NE(message.find("stemcell '" + stemcell + "' is incomplete"), std::string::npos)
      << message;
  EXPECT_NE(message.find("upload the stemcell again"), std::string::npos) << message;

  const auto cleanup = run_process(CPI_BINARY,
                                   {"cleanup", "--orphans", "--min-age", "0", "--config",
                                    m_config.string()},
                                   "", director_env((env().root() / "tmp").string()));
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.out << cleanup.err;
  EXPECT_TRUE(our_volumes().empty()) << ::testing::PrintToString(our_volumes()) << cleanup.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cpi::testing::e2e
