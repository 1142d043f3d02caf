// A persistent disk is never lost, against a real libvirtd through the built `cpi`:
// - `kill -9` of the cpi (CPI_TEST_STOP_AT, util/test_hook.hpp) at named steps of attach_disk
//   and detach_disk, then the next calls: delete_disk refuses while a definition holds the disk,
//   detach then delete works;
// - a guest that never releases the disk (a domain with no OS): detach_disk is a retriable
//   error and the disk stays protected;
// - attach ‖ attach of one disk to two stopped VMs and set_disk_metadata ‖ attach, many rounds;
// - the disk's bytes (a pattern written first) read back intact at the end.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpi/cloud/meta_record.hpp"
#include "e2e/e2e_fixture.hpp"

namespace cpi::testing::e2e {
namespace {

constexpr std::uint64_t k_disk_bytes = 16 * k_mib;

class DiskSafetyE2eTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped()) return;
    nlohmann::json config = nlohmann::json::parse(std::ifstream{m_config});
    config["libvirt"]["detach_timeout"] = 4;
    std::ofstream{m_config} << config.dump(2);
  }

  // One call; the whole response, or null when the process was killed. `stop_at` sets
  // CPI_TEST_STOP_AT.
  nlohmann::json call(const std::string& method, const nlohmann::json& arguments,
                      const std::string& stop_at = "") {
    auto env_vars = director_env((env().root() / "tmp").string());
    if (!stop_at.empty()) env_vars.push_back("CPI_TEST_STOP_AT=" + stop_at);
    const nlohmann::json context{{"director_uuid", "e2e-director"}, {"request_id", "cpi-safe"}};
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()},
                                 cpi_request(method, arguments, context, 2), env_vars,
                                 std::chrono::seconds(120));
    std::printf("[cpi] %-18s %-22s %6.2f s exit %d\n", method.c_str(), stop_at.c_str(),
                run.seconds, run.exit_code);
    if (run.exit_code == -1) return nullptr;
    return parse_cpi_response(run);
  }
  static std::string error_type(const nlohmann::json& response) {
    return response.is_object() && response["error"].is_object()
               ? response["error"].value("type", "")
               : "";
  }

  std::string stemcell(const std::string& image) {
    return cpi("create_stemcell", {image, nlohmann::json::object()}).get<std::string>();
  }
  std::string create_vm(const std::string& sc, const std::string& agent) {
    const nlohmann::json networks{
        {"private", {{"type", "dynamic"}, {"cloud_properties", {{"name", env().network_name()}}}}}};
    const auto result = cpi("create_vm", {agent, sc, {{"cpu", 1}, {"ram", 128}}, networks,
                                          nlohmann::json::array(), nlohmann::json::object()});
    return (result.is_array() ? result.at(0) : result).get<std::string>();  // API v2: [cid, nets]
  }
  std::string create_disk() {
    return cpi("create_disk", {16, {{"format", "raw"}}, nullptr}).get<std::string>();
  }

  // A stemcell image with no OS: a zeroed raw root.img (the guest never boots, and so never
  // acknowledges an unplug).
  std::string no_os_image() {
    const auto dir = env().root() / (m_prefix + "noos");
    std::filesystem::create_directories(dir);
    { std::ofstream{dir / "root.img"} << std::string(4 * k_mib, '\0'); }
    const auto run = run_process("/bin/tar", {"-C", dir.string(), "-czf", (dir / "image").string(),
                                              "root.img"},
                                 "", director_env((env().root() / "tmp").string()));
    if (run.exit_code != 0) throw std::runtime_error("tar: " + run.err);
    return (dir / "image").string();
  }

  std::string pattern() const {
    std::string bytes(k_disk_bytes, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
    }
    return bytes;
  }
  void upload(const std::string& cid, const std::string& bytes) {
    auto v = find_volume(volume_name(cid));
    ASSERT_TRUE(v);
    virt::Stream stream{virStreamNew(&env().conn(), 0)};
    ASSERT_EQ(virStorageVolUpload(v->get(), stream.get(), 0, bytes.size(), 0), 0);
    ASSERT_EQ(virStreamSend(stream.get(), bytes.data(), bytes.size()),
              static_cast<int>(bytes.size()));
    ASSERT_EQ(virStreamFinish(stream.get()), 0);
  }
  std::string download(const std::string& name, std::uint64_t length) {
    auto v = find_volume(name);
    if (!v) throw std::runtime_error("no volume " + name);
    virt::Stream stream{virStreamNew(&env().conn(), 0)};
    if (virStorageVolDownload(v->get(), stream.get(), 0, length, 0) != 0) {
      throw std::runtime_error("download of " + name + " refused");
    }
    std::string out;
    char buffer[65536];
    for (;;) {
      const int n = virStreamRecv(stream.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    virStreamFinish(stream.get());
    return out;
  }
  nlohmann::json record(const std::string& disk) {
    if (!volume_exists(volume_name(disk) + ".meta")) return nlohmann::json::object();
    return cloud::decode_meta(download(volume_name(disk) + ".meta", cloud::k_meta_volume_bytes))
        .record;
  }

  bool holds(const std::string& vm, const std::string& disk) {
    for (bool inactive : {true, false}) {
      for (const auto& s : disk_serials(vm, inactive)) {
        if (s == disk) return true;
      }
    }
    return false;
  }
  void stop(const std::string& vm) {
    auto d = find_domain(vm);
    ASSERT_TRUE(d);
    ASSERT_EQ(virDomainDestroy(d->get()), 0);
  }
};

TEST_F(DiskSafetyE2eTest, KillDuringAttachAndDetachNeverLosesTheDisk) {
  const auto sc = stemcell((env().stemcell_dir() / "qcow2" / "image").string());
  const auto vm = create_vm(sc, "agent-kill");
  wait_report(console_log(vm), 0);  // a booted guest acknowledges unplugs
  const auto disk = create_disk();
  const auto bytes = pattern();
  upload(disk, bytes);

  for (const std::string step : {"attach:after-intent", "attach:after-hotplug",
                                 "attach:after-record"}) {
    SCOPED_TRACE(step);
    EXPECT_TRUE(call("attach_disk", {vm, disk}, step).is_null()) << "not killed";
    if (holds(vm, disk)) {
      EXPECT_NE(error_type(call("delete_disk", {disk})), "") << "deleted an attached disk";
      ASSERT_TRUE(volume_exists(volume_name(disk)));
    }
    // The director retries: attach works and is recorded.
    EXPECT_EQ(error_type(call("attach_disk", {vm, disk})), "");
    EXPECT_TRUE(holds(vm, disk));
    EXPECT_EQ(record(disk).value("attached_to", ""), vm);
    EXPECT_NE(error_type(call("delete_disk", {disk})), "");

    const std::string detach_step = step == "attach:after-intent"    ? "detach:after-intent"
                                    : step == "attach:after-hotplug" ? "detach:after-unplug"
                                                                     : "";
    if (!detach_step.empty()) {
      EXPECT_TRUE(call("detach_disk", {vm, disk}, detach_step).is_null()) << "not killed";
      if (holds(vm, disk)) {
        EXPECT_NE(error_type(call("delete_disk", {disk})), "");
        ASSERT_TRUE(volume_exists(volume_name(disk)));
      }
    }
    const auto type = error_type(call("detach_disk", {vm, disk}));
    EXPECT_TRUE(type.empty() || type == "Bosh::Clouds::DiskNotAttached") << type;
    EXPECT_FALSE(holds(vm, disk));
    EXPECT_EQ(error_type(call("detach_disk", {vm, disk})), "Bosh::Clouds::DiskNotAttached");
  }
  EXPECT_TRUE(download(volume_name(disk), k_disk_bytes) == bytes) << "the disk's bytes changed";
  EXPECT_EQ(error_type(call("delete_disk", {disk})), "");
  EXPECT_FALSE(volume_exists(volume_name(disk)));
  cpi("delete_vm", {vm});
  cpi("delete_stemcell", {sc});
}

TEST_F(DiskSafetyE2eTest, GuestThatIgnoresTheUnplugKeepsTheDiskProtected) {
  const auto sc = stemcell(no_os_image());
  const auto vm = create_vm(sc, "agent-noos");
  const auto disk = create_disk();
  const auto bytes = pattern();
  upload(disk, bytes);
  EXPECT_EQ(error_type(call("attach_disk", {vm, disk})), "");

  const auto response = call("detach_disk", {vm, disk});
  ASSERT_TRUE(response.is_object());
  ASSERT_TRUE(response["error"].is_object()) << "detach_disk said done; the guest still has it";
  EXPECT_TRUE(response["error"].value("ok_to_retry", false)) << response.dump();
  EXPECT_NE(response["error"].value("message", "").find("did not release"), std::string::npos)
      << response.dump();
  EXPECT_TRUE(holds(vm, disk)) << "the live domain keeps the disk";
  EXPECT_EQ(record(disk).value("attached_to", ""), vm);
  EXPECT_NE(error_type(call("delete_disk", {disk})), "");
  ASSERT_TRUE(volume_exists(volume_name(disk)));

  stop(vm);  // what an operator does with a hung guest; the live definition goes
  EXPECT_EQ(error_type(call("detach_disk", {vm, disk})), "Bosh::Clouds::DiskNotAttached");
  EXPECT_EQ(record(disk).value("attached_to", ""), "");
  EXPECT_TRUE(download(volume_name(disk), k_disk_bytes) == bytes) << "the disk's bytes changed";
  EXPECT_EQ(error_type(call("delete_disk", {disk})), "");
  cpi("delete_vm", {vm});
  cpi("delete_stemcell", {sc});
}

TEST_F(DiskSafetyE2eTest, RacesOnOneDiskAttachItToOneVmAndKeepTheRecord) {
  const auto sc = stemcell(no_os_image());
  const std::vector<std::string> vms{create_vm(sc, "agent-a"), create_vm(sc, "agent-b")};
  for (const auto& vm : vms) stop(vm);
  constexpr int k_rounds = 12;
  for (int round = 0; round < k_rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto disk = create_disk();
    std::vector<std::string> types(3);
    std::vector<std::thread> threads;
    threads.emplace_back([&] { types[0] = error_type(call("attach_disk", {vms[0], disk})); });
    threads.emplace_back([&] { types[1] = error_type(call("attach_disk", {vms[1], disk})); });
    threads.emplace_back([&] {
      types[2] = error_type(call("set_disk_metadata", {disk, {{"round", std::to_string(round)}}}));
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(types[2], "");
    const int won = (types[0].empty() ? 1 : 0) + (types[1].empty() ? 1 : 0);
    EXPECT_EQ(won, 1) << types[0] << " / " << types[1];
    const int holders = (holds(vms[0], disk) ? 1 : 0) + (holds(vms[1], disk) ? 1 : 0);
    ASSERT_EQ(holders, 1) << "one disk, one vm";
    const std::string owner = holds(vms[0], disk) ? vms[0] : vms[1];
    const auto meta = record(disk);
    EXPECT_EQ(meta.value("attached_to", ""), owner) << meta.dump();
    EXPECT_EQ(meta["metadata"].value("round", ""), std::to_string(round)) << meta.dump();
    EXPECT_NE(error_type(call("delete_disk", {disk})), "");
    EXPECT_EQ(error_type(call("detach_disk", {owner, disk})), "");
    EXPECT_EQ(error_type(call("delete_disk", {disk})), "");
  }
  for (const auto& vm : vms) cpi("delete_vm", {vm});
  cpi("delete_stemcell", {sc});
}

}  // namespace
}  // namespace cpi::testing::e2e
