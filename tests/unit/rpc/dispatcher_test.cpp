#include "cpi/rpc/dispatcher.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/log.hpp"

namespace cpi::rpc {
namespace {

using nlohmann::json;

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { util::init_logging(); }

  // The driver module's dispatch (both tables), with no cloud: the factory records the config it
  // was given and refuses. What the handlers make of a real cloud is tested in the driver tier
  // (tests/driver/actions/handlers_test.cpp).
  json call(const std::string& input, std::optional<std::filesystem::path> config = {}) {
    DispatchOptions options;
    options.config_path = std::move(config);
    options.tables = {&actions::local_actions(), &actions::driver_actions()};
    options.cloud_factory = [this](const config::Config& c) -> std::shared_ptr<cloud::LibvirtCloud> {
      ++opened;
      effective = c;
      throw CloudError("no cloud in this test");
    };
    return respond(dispatch(input, options));
  }

  // The executable's dispatch: its own table, every other method handed to `forward`.
  json call_forwarding(const std::string& input) {
    DispatchOptions options;
    options.tables = {&actions::local_actions()};
    options.forward = [this](std::string_view request) {
      forwarded.emplace_back(request);
      if (forward_error) throw CloudError(*forward_error);
      return std::string{R"({"result":"from the module","error":null,"log":""})"};
    };
    return respond(dispatch(input, options));
  }

  static json respond(const std::string& text) {
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

  int opened = 0;
  std::vector<std::string> forwarded;
  std::optional<std::string> forward_error;
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
  EXPECT_EQ(opened, 0) << "every argument is read before the cloud opens";
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
        WrongArg{R"({"method":"attach_disk","arguments":["vm-1",7]})",
                 "argument 1 (disk_cid): expected a string"},
        WrongArg{R"({"method":"detach_disk","arguments":["vm-1",""]})",
                 "argument 1 (disk_cid): expected a non-empty CID"},
        WrongArg{R"({"method":"resize_disk","arguments":["disk-1",0]})",
                 "argument 1 (new_size): must be at least 1"},
        WrongArg{R"({"method":"update_disk","arguments":["disk-1",67108865,{}]})",
                 "update_disk: new_size: 67108865 MiB is out of range"},
        WrongArg{R"({"method":"update_disk","arguments":["disk-1",64,"qcow2"]})",
                 "argument 2 (cloud_properties): expected an object, got a string"},
        WrongArg{R"({"method":"snapshot_disk","arguments":["disk-1",[]]})",
                 "argument 1 (metadata): expected an object"},
        WrongArg{R"({"method":"delete_snapshot","arguments":[{}]})",
                 "argument 0 (snapshot_cid): expected a string"},
        WrongArg{R"({"method":"create_stemcell","arguments":["/img",5]})",
                 "argument 1 (cloud_properties): expected an object"},
        WrongArg{R"({"method":"calculate_vm_cloud_properties","arguments":[{"cpu":1}]})",
                 "needs cpu, ram and ephemeral_disk_size"}));

TEST_F(DispatcherTest, HandlersThatNeedTheCloudOpenItOnceWithTheCallsConfig) {
  const auto r = call(R"({"method":"has_vm","arguments":["vm-1"]})");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CloudError");
  EXPECT_EQ(r["error"]["message"], "no cloud in this test");
  EXPECT_EQ(opened, 1);
}

TEST_F(DispatcherTest, CalculateVmCloudPropertiesNeedsNoCloud) {
  EXPECT_EQ(call(R"({"method":"calculate_vm_cloud_properties","arguments":[{"cpu":2,"ram":2048,"ephemeral_disk_size":4096}]})")["result"],
            json({{"cpu", 2}, {"ram", 2048}, {"ephemeral_disk", 4096}}));
  EXPECT_EQ(opened, 0);
}

TEST_F(DispatcherTest, TheExecutableForwardsOnlyWhatItsTableLacks) {
  const std::string has_vm = R"({"method":"has_vm","arguments":["vm-1"],"context":{"a":1}})";
  const auto r = call_forwarding(has_vm);
  EXPECT_EQ(r["result"], "from the module");
  ASSERT_EQ(forwarded.size(), 1U);
  EXPECT_EQ(forwarded[0], has_vm) << "the request text goes over as it came";

  EXPECT_EQ(call_forwarding(R"({"method":"info","arguments":[]})")["result"]["api_version"], 2);
  EXPECT_EQ(call_forwarding(R"({"method":"create_network","arguments":[]})")["result"],
            "from the module")
      << "the module's table decides what is implemented";
  EXPECT_EQ(forwarded.size(), 2U);
}

TEST_F(DispatcherTest, TheExecutableAnswersBadEnvelopesItself) {
  EXPECT_EQ(call_forwarding("{nope")["error"]["type"], "Bosh::Clouds::CpiError");
  EXPECT_EQ(call_forwarding(R"({"method":"has_vm","arguments":["vm-1"],"api_version":4})")
                ["error"]["type"],
            "Bosh::Clouds::NotImplemented");
  EXPECT_TRUE(forwarded.empty());
}

TEST_F(DispatcherTest, AModuleThatCannotAnswerIsOneCloudError) {
  forward_error = "cannot load the libvirt driver module cpi_libvirt.so (tried: x (absent))";
  const auto r = call_forwarding(R"({"method":"delete_vm","arguments":["vm-1"]})");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CloudError");
  EXPECT_EQ(r["error"]["message"], *forward_error);
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
