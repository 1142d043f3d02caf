// A persistent disk is never lost, against a real libvirtd through the built `cpi`:
// - `kill -9` of the cpi (CPI_TEST_STOP_AT, util/test_hook.hpp) at named steps of attach_disk
//   and detach_disk, then the next calls: delete_disk refuses while a definition holds the disk,
//   detach then delete works;
// - a guest that never releases the disk (a domain with no OS): detach_disk is a retriable
//   error and the disk stays protected;
// - attach ‖ attach of one disk to two stopped VMs and set_disk_metadata ‖ attach, many rounds;
// - snapshot_disk of a running VM's disk never pauses it, and one killed while it copies is
//   finished by the next call on the VM or by `cpi cleanup`: the VM runs, no copy job and no
//   partial snapshot is left;
// - the disk's bytes (a pattern written first) read back intact at the end.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpi/cloud/meta_record.hpp"
#include "cpi/xml/domain_xml.hpp"
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

  // The domain's state and its reason: a pause and resume leaves RUNNING / UNPAUSED behind.
  std::pair<int, int> state(const std::string& vm) {
    auto d = find_domain(vm);
    int s = -1;
    int reason = -1;
    if (!d || virDomainGetState(d->get(), &s, &reason, 0) != 0) return {-1, -1};
    return {s, reason};
  }
  // Whether the running domain still has a block job (a <mirror>) on one of its disks.
  bool mirroring(const std::string& vm) {
    pugi::xml_document doc;
    domain_xml(vm, doc);
    return !doc.select_nodes("/domain/devices/disk/mirror").empty();
  }
  nlohmann::json vm_facts_of(const std::string& vm) {
    auto d = find_domain(vm);
    if (!d) return nlohmann::json::object();
    virt::OwnedCString text{virDomainGetMetadata(d->get(), VIR_DOMAIN_METADATA_ELEMENT,
                                                 xml::k_metadata_ns, VIR_DOMAIN_AFFECT_CONFIG)};
    pugi::xml_document doc;
    if (!text || !doc.load_string(text.get())) return nlohmann::json::object();
    return nlohmann::json::parse(doc.document_element().child_value("facts"), nullptr, false);
  }
  // Our snapshot volumes in the pool.
  std::vector<std::string> snapshots() {
    std::vector<std::string> out;
    for (const auto& what : leftovers()) {
      if (what.rfind("volume " + m_prefix + "snap-", 0) == 0) out.push_back(what);
    }
    return out;
  }
  CpiRun cleanup() {
    const auto run = run_process(
        CPI_BINARY, {"cleanup", "--config", m_config.string(), "--orphans", "--min-age", "0"}, "",
        director_env((env().root() / "tmp").string()), std::chrono::seconds(120));
    std::printf("[e2e] cpi cleanup:\n%s%s", run.out.c_str(), run.err.c_str());
    return run;
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

// libvirt's block copy on the real qemu: the snapshot holds the disk's bytes and the VM never
// paused (its state reason stays "booted"); kill -9 while the copy runs or right after it, then
// a call on the VM or cleanup finishes it.
TEST_F(DiskSafetyE2eTest, SnapshotOfARunningVmNeverPausesItAndAKilledOneIsFinished) {
  const auto sc = stemcell(no_os_image());  // qemu runs (the copy is qemu's); no guest needed
  const auto vm = create_vm(sc, "agent-snap");
  const auto disk = create_disk();
  const auto bytes = pattern();
  upload(disk, bytes);
  ASSERT_EQ(error_type(call("attach_disk", {vm, disk})), "");
  ASSERT_TRUE(holds(vm, disk));
  ASSERT_EQ(state(vm).first, VIR_DOMAIN_RUNNING);
  ASSERT_NE(state(vm).second, VIR_DOMAIN_RUNNING_UNPAUSED);

  const auto taken = call("snapshot_disk", {disk, {{"note", "live"}}});
  ASSERT_EQ(error_type(taken), "") << taken.dump();
  const std::string snap = taken["result"];
  EXPECT_EQ(state(vm), std::make_pair(static_cast<int>(VIR_DOMAIN_RUNNING),
                                      static_cast<int>(VIR_DOMAIN_RUNNING_BOOTED)))
      << "the vm was paused (and resumed) for the snapshot";
  EXPECT_FALSE(mirroring(vm)) << "the copy job was left running";
  EXPECT_TRUE(download(volume_name(snap), k_disk_bytes) == bytes)
      << "the snapshot does not hold the disk's bytes";
  EXPECT_FALSE(record(disk).contains("snapshotting"));
  EXPECT_EQ(error_type(call("delete_snapshot", {snap})), "");

  for (const std::string step : {"snapshot:copying", "snapshot:copied"}) {
    for (const std::string by : {"vm", "cleanup"}) {
      SCOPED_TRACE(step + ", finished by " + by);
      EXPECT_TRUE(call("snapshot_disk", {disk, nlohmann::json::object()}, step).is_null())
          << "not killed";
      EXPECT_EQ(state(vm).first, VIR_DOMAIN_RUNNING);
      EXPECT_TRUE(record(disk).contains("snapshotting"));
      if (by == "vm") {
        const auto disks = call("get_disks", {vm});
        EXPECT_EQ(disks["result"], nlohmann::json({disk})) << disks.dump();
      } else {
        EXPECT_EQ(cleanup().exit_code, 0);
      }
      EXPECT_EQ(state(vm).first, VIR_DOMAIN_RUNNING);
      EXPECT_NE(state(vm).second, VIR_DOMAIN_RUNNING_UNPAUSED);
      EXPECT_FALSE(mirroring(vm)) << "a copy job still writes into a partial snapshot";
      EXPECT_EQ(snapshots(), std::vector<std::string>{}) << "a partial snapshot is left";
      EXPECT_FALSE(record(disk).contains("snapshotting"));
      EXPECT_FALSE(vm_facts_of(vm).contains("snapshotting"));
      EXPECT_EQ(record(disk).value("attached_to", ""), vm);
    }
  }
  // The way on: detach works (no copy job holds the disk; the guest without an OS never
  // releases a hot-plugged disk, so it is stopped first), the bytes are intact.
  stop(vm);
  EXPECT_EQ(error_type(call("detach_disk", {vm, disk})), "");
  EXPECT_TRUE(download(volume_name(disk), k_disk_bytes) == bytes) << "the disk's bytes changed";
  EXPECT_EQ(error_type(call("delete_disk", {disk})), "");
  cpi("delete_vm", {vm});
  cpi("delete_stemcell", {sc});
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

}  // namespace
}  // namespace cpi::testing::e2e
