#include "cpi/config/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "support/cpi_error.hpp"
#include "cpi/util/private_dir.hpp"

namespace cpi::config {
namespace {

using nlohmann::json;

const char* const k_source = "config file '/etc/cpi/cpi.json'";
const char* const k_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Config parse(const json& document) { return parse_config(document, "/etc/cpi", k_source); }

const auto& error_of = cpi::testing::cpi_error_of;
const auto& has = cpi::testing::contains;

std::string parse_error(const json& document) {
  return error_of([&] { parse(document); });
}

TEST(ConfigTest, DefaultsFollowTheSchema) {
  for (const Config& config : {default_config(), parse(json::object()), parse(nullptr)}) {
    SCOPED_TRACE(config.source);
    EXPECT_EQ(config.libvirt.hypervisor, "qemu");
    EXPECT_EQ(config.libvirt.uri, "");
    EXPECT_EQ(config.libvirt.transport, "unix");
    EXPECT_FALSE(config.libvirt.port.has_value());
    EXPECT_EQ(config.libvirt.storage_pool, "bosh");
    EXPECT_EQ(config.libvirt.store_dir, "/var/lib/libvirt/bosh");
    EXPECT_EQ(config.libvirt.network, "default");
    EXPECT_FALSE(config.libvirt.auto_enable_networks);
    EXPECT_FALSE(config.libvirt.keep_console_logs);
    EXPECT_EQ(config.libvirt.storage_controller, "virtio");
    EXPECT_EQ(config.libvirt.domain_type, "auto");
    EXPECT_EQ(config.libvirt.machine, "pc");
    EXPECT_EQ(config.libvirt.name_prefix, "");
    EXPECT_FALSE(config.libvirt.tls.any());
    EXPECT_FALSE(config.agent.mbus.has_value());
    EXPECT_TRUE(config.agent.blobstore.is_null());
    EXPECT_EQ(config.log_level, "info");
  }
}

TEST(ConfigTest, ParsesEveryKey) {
  const Config config = parse(json::parse(R"({
    "libvirt": {
      "hypervisor": "kvm", "uri": "qemu+tls://h/system", "transport": "tls", "host": "10.0.0.1",
      "port": 16514, "username": "bosh", "socket": "/run/libvirt-sock",
      "tls": {"ca_cert": "/pki/ca.pem", "client_cert": "/pki/cert.pem", "client_key": "/pki/key.pem"},
      "ssh": {"private_key": "/keys/id", "known_hosts": "/keys/known_hosts"},
      "storage_pool": "pool1", "store_dir": "/srv/bosh", "network": "net1",
      "auto_enable_networks": true, "storage_controller": "scsi", "domain_type": "kvm",
      "machine": "q35", "name_prefix": "dir-1_"
    },
    "agent": {"mbus": "nats://n:p@1.2.3.4:4222", "ntp": ["a", "b"], "blobstore": {"provider": "dav"}},
    "log_level": "debug"
  })"));
  const LibvirtConfig& l = config.libvirt;
  EXPECT_EQ(l.hypervisor, "kvm");
  EXPECT_EQ(l.uri, "qemu+tls://h/system");
  EXPECT_EQ(l.transport, "tls");
  EXPECT_EQ(l.host, "10.0.0.1");
  EXPECT_EQ(l.port, 16514);
  EXPECT_EQ(l.username, "bosh");
  EXPECT_EQ(l.socket, "/run/libvirt-sock");
  EXPECT_EQ(l.tls.ca_cert.value, "/pki/ca.pem");
  EXPECT_EQ(l.tls.client_cert.value, "/pki/cert.pem");
  EXPECT_EQ(l.tls.client_key.value, "/pki/key.pem");
  EXPECT_EQ(l.ssh.private_key.value, "/keys/id");
  EXPECT_EQ(l.ssh.known_hosts.value, "/keys/known_hosts");
  EXPECT_EQ(l.storage_pool, "pool1");
  EXPECT_EQ(l.store_dir, "/srv/bosh");
  EXPECT_EQ(l.network, "net1");
  EXPECT_TRUE(l.auto_enable_networks);
  EXPECT_EQ(l.storage_controller, "scsi");
  EXPECT_EQ(l.domain_type, "kvm");
  EXPECT_EQ(l.machine, "q35");
  EXPECT_EQ(l.name_prefix, "dir-1_");
  EXPECT_EQ(config.agent.mbus, "nats://n:p@1.2.3.4:4222");
  EXPECT_EQ(config.agent.ntp, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(config.agent.blobstore, json({{"provider", "dav"}}));
  EXPECT_EQ(config.log_level, "debug");
}

TEST(ConfigTest, KeepConsoleLogsIsABoolean) {
  EXPECT_TRUE(parse({{"libvirt", {{"keep_console_logs", true}}}}).libvirt.keep_console_logs);
  EXPECT_FALSE(parse({{"libvirt", {{"keep_console_logs", false}}}}).libvirt.keep_console_logs);
  const std::string message = parse_error({{"libvirt", {{"keep_console_logs", "yes"}}}});
  EXPECT_NE(message.find("libvirt.keep_console_logs: expected true or false"), std::string::npos)
      << message;
}

TEST(ConfigTest, RebootTimeoutIsBoundedSeconds) {
  EXPECT_EQ(parse(json::object()).libvirt.reboot_timeout, 60);
  EXPECT_EQ(parse({{"libvirt", {{"reboot_timeout", 0}}}}).libvirt.reboot_timeout, 0);
  EXPECT_EQ(parse({{"libvirt", {{"reboot_timeout", 3600}}}}).libvirt.reboot_timeout, 3600);
  const std::string message = parse_error({{"libvirt", {{"reboot_timeout", 3601}}}});
  EXPECT_NE(message.find("libvirt.reboot_timeout"), std::string::npos) << message;
  EXPECT_NE(parse_error({{"libvirt", {{"reboot_timeout", -1}}}}).find("libvirt.reboot_timeout"),
            std::string::npos);
}

TEST(ConfigTest, ResolvesRelativePathsAgainstBaseDir) {
  const Config config = parse(json::parse(R"({"libvirt": {
    "store_dir": "volumes", "socket": "../run/sock",
    "tls": {"ca_cert": "pki/ca.pem", "client_cert": "/abs/cert.pem", "client_key": "./key.pem"},
    "ssh": {"private_key": "id_rsa", "known_hosts": "ssh/known_hosts"}}})"));
  const LibvirtConfig& l = config.libvirt;
  EXPECT_EQ(l.store_dir, "/etc/cpi/volumes");
  EXPECT_EQ(l.socket, "/etc/run/sock");
  EXPECT_EQ(l.tls.ca_cert.value, "/etc/cpi/pki/ca.pem");
  EXPECT_EQ(l.tls.client_cert.value, "/abs/cert.pem");
  EXPECT_EQ(l.tls.client_key.value, "/etc/cpi/key.pem");
  EXPECT_EQ(l.ssh.private_key.value, "/etc/cpi/id_rsa");
  EXPECT_EQ(l.ssh.known_hosts.value, "/etc/cpi/ssh/known_hosts");
}

TEST(ConfigTest, KeepsInlineMaterialInline) {
  const std::string known_hosts = "host ssh-ed25519 AAAAC3Nza\n";
  const json ssh{{"private_key", "-----BEGIN OPENSSH PRIVATE KEY-----"},
                 {"known_hosts", known_hosts}};
  const Config config = parse({{"libvirt", {{"tls", {{"ca_cert", k_pem}}}, {"ssh", ssh}}}});
  EXPECT_EQ(config.libvirt.tls.ca_cert.value, k_pem);
  EXPECT_EQ(config.libvirt.ssh.private_key.value, "-----BEGIN OPENSSH PRIVATE KEY-----");
  EXPECT_EQ(config.libvirt.ssh.known_hosts.value, known_hosts);
}

TEST(ConfigTest, RejectsUnknownKeyNamingItsPathAndTheAcceptedKeys) {
  struct Case {
    const char* document;
    std::string field;
    std::vector<std::string> accepted;
  };
  const std::vector<Case> cases{
      {R"({"foo": 1})", "foo", {"agent", "libvirt", "log_level"}},
      {R"({"libvirt": {"foo": 1}})", "libvirt.foo", {"hypervisor", "store_dir", "private_key"}},
      {R"({"libvirt": {"tls": {"foo": 1}}})", "libvirt.tls.foo", {"ca_cert", "client_key"}},
      {R"({"libvirt": {"ssh": {"foo": 1}}})", "libvirt.ssh.foo", {"known_hosts", "private_key"}},
      {R"({"agent": {"foo": 1}})", "agent.foo", {"blobstore", "mbus", "ntp"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.document);
    const std::string message = parse_error(json::parse(c.document));
    EXPECT_TRUE(has(message, std::string{k_source} + ": " + c.field + ": unknown key")) << message;
    EXPECT_TRUE(has(message, "(accepted: ")) << message;
    for (const auto& key : c.accepted) {
      EXPECT_TRUE(has(message, key)) << key << " in " << message;
    }
  }
}

TEST(ConfigTest, WrongTypeNamesFieldAndJsonTypeButNotTheValue) {
  const std::string value = "s3cr3t-value";
  const std::vector<std::pair<json, std::string>> cases{
      {{{"libvirt", {{"port", value}}}}, "libvirt.port: expected an integer, got a string"},
      {{{"libvirt", {{"host", 5}}}}, "libvirt.host: expected a string, got an integer"},
      {{{"libvirt", {{"uri", {{"k", value}}}}}}, "libvirt.uri: expected a string, got an object"},
      {{{"libvirt", {{"auto_enable_networks", value}}}},
       "libvirt.auto_enable_networks: expected true or false, got a string"},
      {{{"libvirt", {{"tls", json::array({value})}}}},
       "libvirt.tls: expected an object, got an array"},
      {{{"libvirt", {{"tls", {{"client_key", 1.5}}}}}},
       "libvirt.tls.client_key: expected a string, got a number"},
      {{{"libvirt", value}}, "libvirt: expected an object, got a string"},
      {{{"agent", {{"mbus", true}}}}, "agent.mbus: expected a string, got a boolean"},
      {{{"agent", {{"ntp", value}}}}, "agent.ntp: expected an array of strings, got a string"},
      {{{"agent", {{"ntp", json::array({"a", 7})}}}},
       "agent.ntp[1]: expected a string, got an integer"},
      {{{"agent", {{"blobstore", value}}}}, "agent.blobstore: expected an object, got a string"},
      {{{"log_level", 3}}, "log_level: expected a string, got an integer"},
      {json::array({value}), "the document: expected an object, got an array"},
  };
  for (const auto& [document, expected] : cases) {
    SCOPED_TRACE(document.dump());
    const std::string message = parse_error(document);
    EXPECT_TRUE(has(message, expected)) << message;
    EXPECT_FALSE(has(message, value)) << message;
  }
}

TEST(ConfigTest, PortMustBeWithinOneTo65535) {
  for (const json& port : {json(0), json(-1), json(65536), json(100000)}) {
    SCOPED_TRACE(port.dump());
    const std::string message = parse_error({{"libvirt", {{"port", port}}}});
    EXPECT_TRUE(has(message, "libvirt.port: must be between 1 and 65535")) << message;
  }
  EXPECT_EQ(parse({{"libvirt", {{"port", 1}}}}).libvirt.port, 1);
  EXPECT_EQ(parse({{"libvirt", {{"port", 65535}}}}).libvirt.port, 65535);
}

TEST(ConfigTest, PortMustBeAWholeNumber) {
  EXPECT_TRUE(has(parse_error({{"libvirt", {{"port", 16514.5}}}}),
                  "libvirt.port: expected a whole number"));
  EXPECT_EQ(parse({{"libvirt", {{"port", 16514.0}}}}).libvirt.port, 16514);
}

// Field path ("libvirt.transport", "log_level") and its accepted values, in message order.
const std::vector<std::pair<std::string, std::vector<std::string>>> k_enums{
    {"libvirt.hypervisor", {"qemu", "kvm", "lxc", "xen", "vbox", "vmware"}},
    {"libvirt.transport", {"unix", "tcp", "tls", "ssh"}},
    {"libvirt.storage_controller", {"virtio", "scsi", "sata", "ide"}},
    {"libvirt.domain_type", {"auto", "kvm", "qemu"}},
    {"log_level", {"debug", "info", "warn", "error"}},
};

json with_value(const std::string& field, const std::string& value) {
  if (field.rfind("libvirt.", 0) != 0) {
    return {{field, value}};
  }
  return {{"libvirt", {{field.substr(8), value}, {"host", "h"}}}};  // remote transports need one
}

TEST(ConfigTest, AcceptsEveryEnumValue) {
  for (const auto& [field, values] : k_enums) {
    for (const auto& value : values) {
      SCOPED_TRACE(field + "=" + value);
      EXPECT_NO_THROW(parse(with_value(field, value)));
    }
  }
}

TEST(ConfigTest, RejectsUnknownEnumValueListingTheAcceptedOnes) {
  for (const auto& [field, values] : k_enums) {
    SCOPED_TRACE(field);
    const std::string message = parse_error(with_value(field, "bogus"));
    std::string accepted;
    for (const auto& value : values) accepted += (accepted.empty() ? "" : ", ") + value;
    EXPECT_TRUE(has(message, field + ": unknown value")) << message;
    EXPECT_TRUE(has(message, "(accepted: " + accepted + ")")) << message;
  }
}

TEST(ConfigTest, PrivateKeyIsAnAliasOfSshPrivateKey) {
  const Config config = parse({{"libvirt", {{"private_key", "keys/id"}}}});
  EXPECT_EQ(config.libvirt.ssh.private_key.value, "/etc/cpi/keys/id");
}

TEST(ConfigTest, PrivateKeyAliasConflictingWithSshPrivateKeyIsAnError) {
  const std::string message =
      parse_error({{"libvirt", {{"private_key", "a"}, {"ssh", {{"private_key", "b"}}}}}});
  EXPECT_TRUE(has(message, "libvirt.private_key")) << message;
  EXPECT_TRUE(has(message, "ssh.private_key")) << message;
}

TEST(ConfigTest, PrivateKeyAliasEqualToSshPrivateKeyIsAccepted) {
  const Config config =
      parse({{"libvirt", {{"private_key", "id"}, {"ssh", {{"private_key", "/etc/cpi/id"}}}}}});
  EXPECT_EQ(config.libvirt.ssh.private_key.value, "/etc/cpi/id");
}

TEST(ConfigTest, RemoteTransportWithoutHostOrUriNamesLibvirtHost) {
  for (const char* transport : {"tcp", "tls", "ssh"}) {
    SCOPED_TRACE(transport);
    const std::string message = parse_error({{"libvirt", {{"transport", transport}}}});
    EXPECT_TRUE(has(message, "libvirt.host")) << message;
    EXPECT_TRUE(has(message, k_source)) << message;
  }
}

TEST(ConfigTest, RemoteTransportWithUriNeedsNoHost) {
  for (const char* transport : {"tcp", "tls", "ssh"}) {
    SCOPED_TRACE(transport);
    EXPECT_NO_THROW(parse({{"libvirt", {{"transport", transport}, {"uri", "qemu:///system"}}}}));
  }
}

TEST(ConfigTest, RejectsEmptyPoolAndPrefixWithOtherThanLettersDigitsDashUnderscore) {
  for (const char* document : {R"({"storage_pool": ""})", R"({"name_prefix": "a/b"})",
                               R"({"name_prefix": "a b"})", R"({"name_prefix": "a.b"})"}) {
    const json libvirt = json::parse(document);
    const std::string message = parse_error({{"libvirt", libvirt}});
    EXPECT_TRUE(has(message, "libvirt." + libvirt.begin().key() + ": ")) << message;
  }
}

TEST(LoadConfigTest, MissingFileNamesTheFile) {
  const util::PrivateDir dir{"cpi-test"};
  const auto path = dir.path() / "absent.json";
  const std::string message = error_of([&] { load_config(path); });
  EXPECT_TRUE(has(message, "config file '" + path.string() + "'")) << message;
}

TEST(LoadConfigTest, InvalidJsonNamesTheFile) {
  const util::PrivateDir dir{"cpi-test"};
  const auto path = dir.write_file("cpi.json", "{\"libvirt\": ");
  const std::string message = error_of([&] { load_config(path); });
  EXPECT_TRUE(has(message, "config file '" + path.string() + "'")) << message;
  EXPECT_TRUE(has(message, "not valid JSON")) << message;
}

TEST(LoadConfigTest, ResolvesRelativePathsAgainstTheFilesDirectory) {
  const util::PrivateDir dir{"cpi-test"};
  const auto path =
      dir.write_file("cpi.json", R"({"libvirt": {"store_dir": "vols"}, "agent": {"mbus": "x"}})");
  const Config config = load_config(path);
  EXPECT_EQ(config.base_dir, dir.path());
  EXPECT_EQ(config.libvirt.store_dir, (dir.path() / "vols").string());
  EXPECT_EQ(config.source, "config file '" + path.string() + "'");
}

TEST(WithContextTest, ContextKeysOverrideTheLibvirtSection) {
  const LibvirtConfig base = default_config().libvirt;
  const LibvirtConfig out = with_context(base, json::parse(R"({
    "uri": "qemu+tls://h2/system", "storage_pool": "p2", "network": "n2", "transport": "tls",
    "host": "h2", "port": 16514, "machine": "q35",
    "tls": {"ca_cert": "ca.pem", "client_cert": "c.pem", "client_key": "k.pem"}})"),
                                         "/srv/cfg");
  EXPECT_EQ(out.uri, "qemu+tls://h2/system");
  EXPECT_EQ(out.storage_pool, "p2");
  EXPECT_EQ(out.network, "n2");
  EXPECT_EQ(out.transport, "tls");
  EXPECT_EQ(out.host, "h2");
  EXPECT_EQ(out.port, 16514);
  EXPECT_EQ(out.machine, "q35");
  EXPECT_EQ(out.tls.ca_cert.value, "/srv/cfg/ca.pem");
  EXPECT_EQ(out.tls.client_cert.value, "/srv/cfg/c.pem");
  EXPECT_EQ(out.tls.client_key.value, "/srv/cfg/k.pem");
  EXPECT_EQ(out.store_dir, base.store_dir);  // not in the context: kept
}

TEST(WithContextTest, PrivateKeyAliasOverridesTheBaseSshKey) {
  LibvirtConfig base = default_config().libvirt;
  base.ssh.private_key.value = "/etc/cpi/id_base";
  const LibvirtConfig out = with_context(base, {{"private_key", "id_host2"}}, "/etc/cpi");
  EXPECT_EQ(out.ssh.private_key.value, "/etc/cpi/id_host2");
}

TEST(WithContextTest, IgnoresDirectorKeys) {
  LibvirtConfig base = default_config().libvirt;
  base.network = "mine";
  const LibvirtConfig out = with_context(
      base, {{"director_uuid", "d-1"}, {"request_id", "r-1"}, {"vm", {{"stemcell", "x"}}}}, "/");
  EXPECT_EQ(out.uri, base.uri);
  EXPECT_EQ(out.network, "mine");
  EXPECT_EQ(out.storage_pool, base.storage_pool);
  EXPECT_EQ(out.transport, base.transport);
}

TEST(WithContextTest, WrongTypedContextKeyIsAnError) {
  const std::string message = error_of([] {
    with_context(default_config().libvirt, {{"port", "16514"}}, "/");
  });
  EXPECT_TRUE(has(message, "port: expected an integer, got a string")) << message;
  EXPECT_TRUE(has(message, "request context")) << message;
}

TEST(WithContextTest, RemoteTransportWithoutHostIsAnError) {
  const std::string message = error_of([] {
    with_context(default_config().libvirt, {{"transport", "ssh"}}, "/");
  });
  EXPECT_TRUE(has(message, "libvirt.host")) << message;
}

TEST(AgentConfigTest, RequireMbusNamesAgentMbus) {
  for (const auto& mbus : {std::optional<std::string>{}, std::optional<std::string>{""}}) {
    AgentConfig agent;
    agent.mbus = mbus;
    const std::string message = error_of([&] { agent.require_mbus("create_vm"); });
    EXPECT_TRUE(has(message, "agent.mbus is required for create_vm")) << message;
  }
}

TEST(AgentConfigTest, RequireMbusReturnsTheUrl) {
  AgentConfig agent;
  agent.mbus = "nats://n:p@10.0.0.5:4222";
  EXPECT_EQ(agent.require_mbus("create_vm"), "nats://n:p@10.0.0.5:4222");
}

TEST(MaterialTest, InlineWhenItHoldsPemOrANewline) {
  for (const char* value : {k_pem, "-----BEGIN RSA PRIVATE KEY-----", "host ssh-rsa AAA\n"}) {
    EXPECT_TRUE(Material{value}.is_inline()) << value;
  }
  for (const char* value : {"/etc/cpi/ca.pem", "ca.pem", ""}) {
    EXPECT_FALSE(Material{value}.is_inline()) << value;
  }
}

TEST(MaterialTest, TextReadsAFile) {
  const util::PrivateDir dir{"cpi-test"};
  const auto path = dir.write_file("ca.pem", k_pem);
  EXPECT_EQ(Material{path.string()}.text("libvirt.tls.ca_cert"), k_pem);
}

TEST(MaterialTest, TextOfInlineMaterialIsTheValue) {
  EXPECT_EQ(Material{k_pem}.text("libvirt.tls.ca_cert"), k_pem);
}

TEST(MaterialTest, MissingFileNamesTheField) {
  const Material material{"/nonexistent/cpi-test/ca.pem"};
  const std::string message = error_of([&] { material.text("libvirt.tls.ca_cert"); });
  EXPECT_TRUE(has(message, "libvirt.tls.ca_cert")) << message;
  EXPECT_TRUE(has(message, "/nonexistent/cpi-test/ca.pem")) << message;
}

}  // namespace
}  // namespace cpi::config
