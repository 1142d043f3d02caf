#include "cpi/rpc/dispatcher.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "cpi/errors.hpp"
#include "cpi/util/log.hpp"

namespace cpi::rpc {
namespace {

using nlohmann::json;

// Records what the handlers asked of the cloud and answers with fixed values.
class RecordingCloud final : public cloud::Cloud {
 public:
  std::vector<std::string>* calls;
  explicit RecordingCloud(std::vector<std::string>* c) : calls(c) {}

  cloud::StemcellCid create_stemcell(const std::string& path, const json&) override {
    calls->push_back("create_stemcell " + path);
    return {"sc-1"};
  }
  void delete_stemcell(const cloud::StemcellCid& c) override {
    calls->push_back("delete_stemcell " + c.value);
  }
  cloud::CreatedVm create_vm(const cloud::VmRequest& r) override {
    calls->push_back("create_vm " + r.agent_id + " " + r.stemcell.value + " disks=" +
                     std::to_string(r.disk_cids.size()) + " env=" + r.env.dump());
    json networks = r.networks;
    for (auto& [name, net] : networks.items()) net["mac"] = "52:54:00:00:00:01";
    return {{"vm-1"}, networks};
  }
  void delete_vm(const cloud::VmCid& c) override { calls->push_back("delete_vm " + c.value); }
  bool has_vm(const cloud::VmCid& c) override {
    calls->push_back("has_vm " + c.value);
    if (c.value == "vm-broken") throw CloudError("libvirt is down");
    return c.value == "vm-1";
  }
  void reboot_vm(const cloud::VmCid& c) override {
    if (c.value != "vm-1") throw VmNotFound("vm '" + c.value + "' not found");
    calls->push_back("reboot_vm " + c.value);
  }
  void set_vm_metadata(const cloud::VmCid& c, const json& m) override {
    calls->push_back("set_vm_metadata " + c.value + " " + m.dump());
  }
  cloud::DiskCid create_disk(std::int64_t size, const json&,
                             const std::optional<cloud::VmCid>& vm) override {
    calls->push_back("create_disk " + std::to_string(size) + " " + (vm ? vm->value : "-"));
    return {"disk-0123456789abcde"};
  }
  void delete_disk(const cloud::DiskCid& c) override { calls->push_back("delete_disk " + c.value); }
  bool has_disk(const cloud::DiskCid&) override { return true; }
  json attach_disk(const cloud::VmCid& v, const cloud::DiskCid& d, int api) override {
    calls->push_back("attach_disk " + v.value + " " + d.value + " v" + std::to_string(api));
    return {{"path", "/dev/disk/by-id/virtio-" + d.value}};
  }
  void detach_disk(const cloud::VmCid& v, const cloud::DiskCid& d, int) override {
    calls->push_back("detach_disk " + v.value + " " + d.value);
  }
  std::vector<cloud::DiskCid> get_disks(const cloud::VmCid&) override {
    return {{"disk-0123456789abcde"}};
  }
  void resize_disk(const cloud::DiskCid& c, std::int64_t s) override {
    calls->push_back("resize_disk " + c.value + " " + std::to_string(s));
  }
  void set_disk_metadata(const cloud::DiskCid& c, const json&) override {
    calls->push_back("set_disk_metadata " + c.value);
  }
  cloud::SnapshotCid snapshot_disk(const cloud::DiskCid&, const json&) override {
    return {"snap-1"};
  }
  void delete_snapshot(const cloud::SnapshotCid& c) override {
    calls->push_back("delete_snapshot " + c.value);
  }
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { util::init_logging(); }

  json call(const std::string& input, std::optional<std::filesystem::path> config = {}) {
    DispatchOptions options;
    options.config_path = std::move(config);
    options.cloud_factory = [this](const config::Config& c) -> std::unique_ptr<cloud::Cloud> {
      ++opened;
      effective = c;
      return std::make_unique<RecordingCloud>(&calls);
    };
    const std::string text = dispatch(input, options);
    EXPECT_EQ(text.find('\n'), std::string::npos) << "one line";
    json response = json::parse(text);
    EXPECT_TRUE(response.contains("result"));
    EXPECT_TRUE(response.contains("error"));
    EXPECT_TRUE(response["log"].is_string());
    if (!response["error"].is_null()) {
      EXPECT_TRUE(response["result"].is_null());
      EXPECT_TRUE(response["error"]["type"].is_string());
      EXPECT_TRUE(response["error"]["message"].is_string());
      EXPECT_TRUE(response["error"]["ok_to_retry"].is_boolean());
    }
    return response;
  }

  std::filesystem::path write_config(const std::string& text) {
    auto path = std::filesystem::temp_directory_path() /
                ("cpi-dispatch-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
                 ".json");  // ctest runs each test in its own process, several at once
    std::ofstream{path} << text;
    written.push_back(path);
    return path;
  }

  void TearDown() override {
    for (const auto& p : written) std::filesystem::remove(p);
  }

  std::vector<std::string> calls;
  int opened = 0;
  int counter = 0;
  config::Config effective;
  std::vector<std::filesystem::path> written;
};

TEST_F(DispatcherTest, InfoAnswersWithoutOpeningTheCloud) {
  const auto r = call(R"({"method":"info","arguments":[],"context":{"director_uuid":"x"}})");
  EXPECT_TRUE(r["error"].is_null());
  EXPECT_EQ(r["result"]["api_version"], 2);
  EXPECT_EQ(r["result"]["stemcell_formats"], json({"openstack-qcow2", "openstack-raw"}));
  EXPECT_EQ(opened, 0);
}

TEST_F(DispatcherTest, InfoOffersRootFilesystemStemcellsForLxc) {
  const auto r = call(
      R"({"method":"info","arguments":[],"context":{"director_uuid":"x","hypervisor":"lxc"}})");
  EXPECT_TRUE(r["error"].is_null()) << r;
  EXPECT_EQ(r["result"]["stemcell_formats"], json({"warden-tar"}));
  EXPECT_EQ(opened, 0);
}

TEST_F(DispatcherTest, MalformedJsonIsCpiError) {
  const auto r = call("{nope");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("not valid JSON"), std::string::npos);
}

TEST_F(DispatcherTest, UnknownMethodIsNotImplemented) {
  const auto r = call(R"({"method":"create_network","arguments":[],"context":{}})");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::NotImplemented");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'create_network'"), std::string::npos);
}

TEST_F(DispatcherTest, TooFewArgumentsIsCloudErrorNamingThem) {
  const auto r = call(R"({"method":"attach_disk","arguments":["vm-1"],"context":{}})");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CloudError");
  const auto message = r["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("expected 2 arguments (vm_cid, disk_cid), got 1"), std::string::npos)
      << message;
  EXPECT_EQ(opened, 0);
}

struct WrongArg {
  const char* request;
  const char* message_part;
};

class DispatcherWrongArgTest : public DispatcherTest,
                               public ::testing::WithParamInterface<WrongArg> {};

TEST_P(DispatcherWrongArgTest, IsCloudErrorNamingTheArgument) {
  const auto r = call(GetParam().request);
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CloudError") << GetParam().request;
  const auto message = r["error"]["message"].get<std::string>();
  EXPECT_NE(message.find(GetParam().message_part), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Arguments, DispatcherWrongArgTest,
    ::testing::Values(
        WrongArg{R"({"method":"has_vm","arguments":[5]})",
                 "has_vm: argument 0 (vm_cid): expected a string, got an integer"},
        WrongArg{R"({"method":"has_vm","arguments":[""]})",
                 "argument 0 (vm_cid): expected a non-empty CID"},
        WrongArg{R"({"method":"has_vm","arguments":[null]})", "argument 0 (vm_cid)"},
        WrongArg{R"({"method":"create_disk","arguments":["1024",{},null]})",
                 "argument 0 (size): expected an integer, got a string"},
        WrongArg{R"({"method":"create_disk","arguments":[1.5,{},null]})",
                 "argument 0 (size): expected an integer, got a number"},
        WrongArg{R"({"method":"create_disk","arguments":[0,{},null]})",
                 "argument 0 (size): must be at least 1"},
        WrongArg{R"({"method":"create_disk","arguments":[10,[],null]})",
                 "argument 1 (cloud_properties): expected an object, got an array"},
        WrongArg{R"({"method":"create_disk","arguments":[10,{},7]})",
                 "argument 2 (vm_locality): expected a string or null"},
        WrongArg{
            R"({"method":"create_vm","arguments":["a","sc-1",{},{},"x",{}]})",
            "argument 4 (disk_cids): expected an array of strings, got a string"},
        WrongArg{R"({"method":"create_vm","arguments":["a","sc-1",{},{},[],"env"]})",
                 "argument 5 (env): expected an object, got a string"},
        WrongArg{R"({"method":"set_vm_metadata","arguments":["vm-1","x"]})",
                 "argument 1 (metadata): expected an object"},
        WrongArg{R"({"method":"calculate_vm_cloud_properties","arguments":[{"cpu":1}]})",
                 "needs cpu, ram and ephemeral_disk_size"}));

TEST_F(DispatcherTest, CreateVmShapesFollowTheApiVersion) {
  const std::string args =
      R"("arguments":["agent-1","sc-1",{},{"net":{"type":"manual","ip":"10.0.0.5"}},null,null])";
  const auto v1 = call(R"({"method":"create_vm",)" + args + "}");
  EXPECT_EQ(v1["result"], "vm-1");
  const auto v2 = call(R"({"method":"create_vm",)" + args + R"(,"api_version":2})");
  ASSERT_TRUE(v2["result"].is_array());
  EXPECT_EQ(v2["result"][0], "vm-1");
  EXPECT_EQ(v2["result"][1]["net"]["mac"], "52:54:00:00:00:01");
  EXPECT_EQ(calls.back(), "create_vm agent-1 sc-1 disks=0 env={}");
}

TEST_F(DispatcherTest, AttachDiskReturnsHintOnlyForApiTwo) {
  const std::string args = R"("arguments":["vm-1","disk-0123456789abcde"])";
  EXPECT_TRUE(call(R"({"method":"attach_disk",)" + args + "}")["result"].is_null());
  const auto v2 = call(R"({"method":"attach_disk",)" + args + R"(,"api_version":2})");
  EXPECT_EQ(v2["result"]["path"], "/dev/disk/by-id/virtio-disk-0123456789abcde");
  EXPECT_EQ(calls.back(), "attach_disk vm-1 disk-0123456789abcde v2");
}

TEST_F(DispatcherTest, ExtraArgumentsAreIgnored) {
  const auto r = call(R"({"method":"has_vm","arguments":["vm-1","extra",3]})");
  EXPECT_EQ(r["result"], true);
}

TEST_F(DispatcherTest, CloudErrorsKeepTheirType) {
  const auto r = call(R"({"method":"reboot_vm","arguments":["vm-9"]})");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::VMNotFound");
  const auto broken = call(R"({"method":"has_vm","arguments":["vm-broken"]})");
  EXPECT_EQ(broken["error"]["type"], "Bosh::Clouds::CloudError");
  EXPECT_EQ(broken["error"]["message"], "libvirt is down");
}

TEST_F(DispatcherTest, GetDisksAndOtherResults) {
  EXPECT_EQ(call(R"({"method":"get_disks","arguments":["vm-1"]})")["result"],
            json({"disk-0123456789abcde"}));
  EXPECT_EQ(call(R"({"method":"snapshot_disk","arguments":["disk-0123456789abcde",{}]})")["result"],
            "snap-1");
  EXPECT_TRUE(call(R"({"method":"delete_vm","arguments":["vm-1"]})")["result"].is_null());
  EXPECT_EQ(call(R"({"method":"calculate_vm_cloud_properties","arguments":[{"cpu":2,"ram":2048,"ephemeral_disk_size":4096}]})")["result"],
            json({{"cpu", 2}, {"ram", 2048}, {"ephemeral_disk", 4096}}));
}

TEST_F(DispatcherTest, BadConfigIsCpiErrorNamingTheField) {
  const auto path = write_config(R"({"libvirt":{"uri":"test:///default","bogus":1}})");
  const auto r = call(R"({"method":"info","arguments":[]})", path);
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("libvirt.bogus"), std::string::npos);
}

TEST_F(DispatcherTest, MissingConfigFileIsCpiError) {
  const auto r = call(R"({"method":"info","arguments":[]})", "/nonexistent/cpi.json");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("/nonexistent/cpi.json"),
            std::string::npos);
}

TEST_F(DispatcherTest, ContextOverridesTheLibvirtSection) {
  const auto path = write_config(R"({"libvirt":{"uri":"qemu:///system","storage_pool":"a"}})");
  call(R"({"method":"has_vm","arguments":["vm-1"],"context":{"director_uuid":"d","uri":"test:///default","storage_pool":"b"}})",
       path);
  EXPECT_EQ(effective.libvirt.uri, "test:///default");
  EXPECT_EQ(effective.libvirt.storage_pool, "b");
}

TEST_F(DispatcherTest, SecretsNeverReachStderrOrTheResponse) {
  const auto path = write_config(
      R"({"libvirt":{"uri":"test:///default"},"agent":{"mbus":"nats://nats:sup3r-secret-pw@10.0.0.6:4222"},"log_level":"debug"})");
  ::testing::internal::CaptureStderr();
  const auto r = call(
      R"({"method":"create_vm","arguments":["agent-1","sc-1",{},{},[],{"bosh":{"password":"$6$hash-of-the-password","mbus":{"cert":{"private_key":"-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----"}}}}],"context":{"request_id":"cpi-1"}})",
      path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  const std::string all = err + r.dump();
  for (const char* secret : {"sup3r-secret-pw", "$6$hash-of-the-password", "MIIEsecret"}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret;
  }
  EXPECT_NE(err.find("[cpi-1 create_vm]"), std::string::npos) << err;
}

TEST_F(DispatcherTest, InvalidUtf8StillGivesValidJson) {
  const auto r = call("{\"method\":\"has_vm\",\"arguments\":[\"vm-\xff\"]}");
  EXPECT_TRUE(r.is_object());
}

}  // namespace
}  // namespace cpi::rpc
