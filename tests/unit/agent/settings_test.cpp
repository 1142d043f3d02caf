#include "cpi/agent/settings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "cpi/config/config.hpp"
#include "cpi/errors.hpp"

namespace cpi::agent {
namespace {

using nlohmann::json;

config::AgentConfig agent_config() {
  config::AgentConfig agent;
  agent.mbus = "nats://nats:secret@10.0.0.5:4222";
  agent.ntp = {"0.pool.ntp.org", "1.pool.ntp.org"};
  return agent;
}

json manual_network() {
  return json::parse(R"({
    "type": "manual", "ip": "10.0.0.10", "netmask": "255.255.255.0", "gateway": "10.0.0.1",
    "prefix": "24", "dns": ["10.0.0.2"], "default": ["dns", "gateway"],
    "mac": "52:54:00:AB:CD:EF", "cloud_properties": {"network": "bosh"}
  })");
}

SettingsInput input_for(const config::AgentConfig& agent) {
  SettingsInput input;
  input.agent_id = "agent-1";
  input.vm_name = "vm-7f3c";
  input.agent = &agent;
  input.networks = {{"default", manual_network()}};
  input.ephemeral = {{"path", "/dev/disk/by-id/virtio-disk-0123456789abcde"}};
  input.env =
      json::parse(R"({"bosh": {"password": "*", "group": "g"}, "persistent_disk_fs": "ext4"})");
  return input;
}

TEST(SettingsTest, UserDataHasEveryKey) {
  const auto agent = agent_config();
  const json settings = user_data(input_for(agent));

  EXPECT_EQ(settings.at("agent_id"), "agent-1");
  EXPECT_EQ(settings.at("vm"), json({{"name", "vm-7f3c"}}));
  EXPECT_EQ(settings.at("server"), json({{"name", "vm-7f3c"}}));
  EXPECT_EQ(settings.at("mbus"), "nats://nats:secret@10.0.0.5:4222");
  EXPECT_EQ(settings.at("ntp"), json::array({"0.pool.ntp.org", "1.pool.ntp.org"}));
  EXPECT_FALSE(settings.contains("blobstore"));
  ASSERT_TRUE(settings.at("networks").is_object());
  EXPECT_TRUE(settings.at("networks").contains("default"));
  EXPECT_EQ(settings.at("disks").at("system"), "/dev/vda");
  EXPECT_EQ(settings.at("disks").at("ephemeral"),
            json({{"path", "/dev/disk/by-id/virtio-disk-0123456789abcde"}}));
  EXPECT_EQ(settings.at("disks").at("persistent"), json::object());
  EXPECT_TRUE(settings.at("env").is_object());

  const json expected_keys = {"agent_id", "disks", "env",    "mbus",
                              "networks", "ntp",   "server", "vm"};
  json keys = json::array();
  for (const auto& item : settings.items()) {
    keys.push_back(item.key());
  }
  EXPECT_EQ(keys, expected_keys);
}

TEST(SettingsTest, SystemDiskIsAString) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.system_disk = "/dev/sda";
  EXPECT_EQ(user_data(input).at("disks").at("system"), json("/dev/sda"));
}

TEST(SettingsTest, NetworkKeepsBoshKeysAndLowercasesMac) {
  const auto agent = agent_config();
  const json network = user_data(input_for(agent)).at("networks").at("default");

  EXPECT_EQ(network.at("mac"), "52:54:00:ab:cd:ef");
  EXPECT_EQ(network.at("type"), "manual");
  EXPECT_EQ(network.at("ip"), "10.0.0.10");
  EXPECT_EQ(network.at("netmask"), "255.255.255.0");
  EXPECT_EQ(network.at("gateway"), "10.0.0.1");
  EXPECT_EQ(network.at("dns"), json::array({"10.0.0.2"}));
  EXPECT_EQ(network.at("default"), json::array({"dns", "gateway"}));
  EXPECT_EQ(network.at("cloud_properties"), json({{"network", "bosh"}}));
}

TEST(SettingsTest, PrefixStaysAString) {
  const auto agent = agent_config();
  const json network = user_data(input_for(agent)).at("networks").at("default");
  EXPECT_EQ(network.at("prefix"), json("24"));
}

TEST(SettingsTest, NumericPrefixBecomesAString) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.networks["default"]["prefix"] = 24;
  input.networks["other"] = {{"type", "dynamic"}, {"prefix", 64.0}, {"mac", "52:54:00:00:00:01"}};

  const json networks = user_data(input).at("networks");
  EXPECT_EQ(networks.at("default").at("prefix"), json("24"));
  EXPECT_EQ(networks.at("other").at("prefix"), json("64"));
}

TEST(SettingsTest, NonIntegerPrefixIsACpiError) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.networks["default"]["prefix"] = json::array({24});
  EXPECT_THROW(user_data(input), CpiError);
}

TEST(SettingsTest, NullCloudPropertiesAreDropped) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.networks["default"]["cloud_properties"] = nullptr;
  EXPECT_FALSE(user_data(input).at("networks").at("default").contains("cloud_properties"));
}

TEST(SettingsTest, EveryNetworkIsCopied) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.networks["vip"] = {{"type", "vip"}, {"ip", "192.0.2.7"}, {"unknown_key", 1}};

  const json networks = user_data(input).at("networks");
  ASSERT_EQ(networks.size(), 2U);
  EXPECT_EQ(networks.at("vip"), json({{"type", "vip"}, {"ip", "192.0.2.7"}, {"unknown_key", 1}}));
}

TEST(SettingsTest, SingleNetworkWithoutDefaultGetsNone) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.networks["default"].erase("default");
  EXPECT_FALSE(user_data(input).at("networks").at("default").contains("default"));
}

TEST(SettingsTest, NetworkThatIsNotAnObjectIsACpiError) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.networks["broken"] = "10.0.0.1";
  EXPECT_THROW(user_data(input), CpiError);
}

TEST(SettingsTest, BlobstoreOnlyWhenConfigured) {
  auto agent = agent_config();
  agent.blobstore = {{"provider", "dav"},
                     {"options", {{"endpoint", "http://10.0.0.6:25250"}, {"user", "agent"}}}};

  const json settings = user_data(input_for(agent));
  ASSERT_TRUE(settings.contains("blobstore"));
  EXPECT_EQ(settings.at("blobstore"), agent.blobstore);
}

TEST(SettingsTest, EmptyNtpIsAnEmptyArray) {
  auto agent = agent_config();
  agent.ntp.clear();
  EXPECT_EQ(user_data(input_for(agent)).at("ntp"), json::array());
}

TEST(SettingsTest, MissingMbusIsACpiErrorNamingAgentMbus) {
  auto agent = agent_config();
  agent.mbus.reset();
  try {
    user_data(input_for(agent));
    FAIL() << "expected CpiError";
  } catch (const CpiError& error) {
    EXPECT_NE(std::string(error.what()).find("agent.mbus"), std::string::npos) << error.what();
  }
}

TEST(SettingsTest, MissingAgentConfigIsACpiError) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.agent = nullptr;
  EXPECT_THROW(user_data(input), CpiError);
}

TEST(SettingsTest, EnvIsCopiedVerbatim) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.env = json::parse(R"({
    "bosh": {"password": "$6$salt$hash", "authorized_keys": ["ssh-ed25519 AAAA k"],
             "mbus": {"urls": ["nats://x"], "cert": {"ca": "-----BEGIN..."}},
             "blobstores": [{"provider": "s3", "options": {"bucket": "b"}}],
             "unknown": [1, 2.5, null, true]},
    "persistent_disk_fs": "xfs", "custom": {"nested": {"deep": "value"}}
  })");
  EXPECT_EQ(user_data(input).at("env"), input.env);
}

TEST(SettingsTest, EphemeralNullWhenNoEphemeralDisk) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.ephemeral = nullptr;
  const json disks = user_data(input).at("disks");
  ASSERT_TRUE(disks.contains("ephemeral"));
  EXPECT_TRUE(disks.at("ephemeral").is_null());
}

TEST(SettingsTest, PersistentHintsAreKeyedByDiskCid) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.persistent = {
      {"disk-0123456789abcde", {{"path", "/dev/disk/by-id/virtio-disk-0123456789abcde"}}},
      {"disk-fedcba987654321", "/dev/sdc"}};

  const json persistent = user_data(input).at("disks").at("persistent");
  EXPECT_EQ(persistent, input.persistent);
}

TEST(SettingsTest, HintWithNonStringValueIsACpiError) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.persistent = {{"disk-0123456789abcde", {{"path", "/dev/vdb"}, {"lun", 1}}}};
  EXPECT_THROW(user_data(input), CpiError);
}

TEST(SettingsTest, MetaDataPublicKeyDefaultsToEmpty) {
  const auto agent = agent_config();
  const json meta = meta_data(input_for(agent));

  EXPECT_EQ(meta.at("instance-id"), "vm-7f3c");
  EXPECT_EQ(meta.at("hostname"), "agent-1");
  EXPECT_EQ(meta.at("public-keys").at("0").at("openssh-key"), json(""));
}

TEST(SettingsTest, MetaDataPublicKeyIsFirstAuthorizedKey) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.env["bosh"]["authorized_keys"] = {"ssh-ed25519 AAAAfirst a@b", "ssh-rsa AAAAsecond c@d"};

  const json meta = meta_data(input);
  EXPECT_EQ(meta.at("public-keys").at("0").at("openssh-key"), json("ssh-ed25519 AAAAfirst a@b"));
}

TEST(SettingsTest, MetaDataIgnoresMalformedAuthorizedKeys) {
  const auto agent = agent_config();
  for (const json& keys : {json::array(), json("ssh-rsa AAAA"), json::array({1, 2}),
                           json::array({"ssh-rsa AAAA", nullptr}), json(nullptr)}) {
    auto input = input_for(agent);
    input.env["bosh"]["authorized_keys"] = keys;
    EXPECT_EQ(meta_data(input).at("public-keys").at("0").at("openssh-key"), json(""))
        << keys.dump();
  }
}

TEST(SettingsTest, MetaDataWithNonObjectEnvHasEmptyKey) {
  const auto agent = agent_config();
  auto input = input_for(agent);
  input.env = json::array();
  EXPECT_EQ(meta_data(input).at("public-keys").at("0").at("openssh-key"), json(""));
}

}  // namespace
}  // namespace cpi::agent
