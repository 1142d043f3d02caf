// Config hardening: NUL characters, out-of-range numbers and deep nesting in the file or the
// request context, and the warning for a file that holds secrets and is readable by others.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "cpi/config/config.hpp"
#include "cpi/errors.hpp"
#include "support/cpi_error.hpp"
#include "cpi/util/log.hpp"
#include "cpi/util/private_dir.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/uri.hpp"

namespace cpi::config {
namespace {

using nlohmann::json;

const auto& cpi_error_of = cpi::testing::cpi_error_of;
const auto& has = cpi::testing::contains;

const std::string k_nul_uri = std::string{"qemu+ssh://h/system"} + '\0' + "tail";

TEST(ConfigNulTest, UriWithNulInTheFileIsRefused) {
  const json document = {{"libvirt", {{"uri", k_nul_uri}}}};
  const auto message = cpi_error_of([&] { parse_config(document, "/etc/cpi", "config file"); });
  EXPECT_TRUE(has(message, "libvirt.uri: must not contain a NUL character")) << message;
}

TEST(ConfigNulTest, NulInAContextOverrideOrAnyStringIsRefused) {
  for (const char* key : {"uri", "host", "socket", "username", "storage_pool", "network"}) {
    const json context = {{key, std::string{"x"} + '\0' + "y"}};
    const auto message =
        cpi_error_of([&] { with_context(default_config().libvirt, context, "/etc/cpi"); });
    EXPECT_TRUE(has(message, std::string{"context."} + key + ": must not contain a NUL"))
        << message;
  }
}

TEST(ConfigNulTest, BuildTargetRefusesANulThatBypassedTheReader) {
  LibvirtConfig c;
  c.uri = k_nul_uri;
  const auto message = cpi::testing::error_of<virt::InvalidSettings>([&] { virt::build_target(c); });
  EXPECT_TRUE(has(message, "NUL")) << message;
}

class ConfigFileTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& text, mode_t mode) {
    const auto path = m_dir.write_file("cpi.json", text);
    ::chmod(path.c_str(), mode);
    return path;
  }
  util::PrivateDir m_dir{"cpi-config-test"};
};

TEST_F(ConfigFileTest, DeepNestingAndHugeNumbersInTheFileAreCpiErrors) {
  const auto deep = write(R"({"agent":{"blobstore":)" + std::string(100000, '[') + "}}", 0600);
  EXPECT_TRUE(has(cpi_error_of([&] { load_config(deep); }), "deeper than 512 levels"));
  const auto huge = write(R"({"libvirt":{"port":1e400}})", 0600);
  const auto message = cpi_error_of([&] { load_config(huge); });
  EXPECT_TRUE(has(message, "libvirt.port: number '1e400' is out of range")) << message;
}

TEST_F(ConfigFileTest, SecretsInAReadableFileAreReportedWithoutTheSecret) {
  const std::string text =
      R"({"agent":{"mbus":"nats://nats:Sup3rSecret@10.0.0.6:4222","blobstore":{"provider":"dav","options":{"password":"BlobPw123"}}},)"
      R"("libvirt":{"ssh":{"private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"}}})";
  const auto path = write(text, 0644);
  const Config config = parse_config(json::parse(text), m_dir.path(), "config file");
  const auto problem = exposed_secrets(path, config);
  ASSERT_TRUE(problem.has_value());
  for (const char* part : {"agent.mbus (password)", "libvirt.ssh.private_key",
                           "agent.blobstore.options.password", "mode 0644", "group or others"}) {
    EXPECT_TRUE(has(*problem, part)) << *problem;
  }
  for (const char* secret : {"Sup3rSecret", "BlobPw123", "AAAA"}) {
    EXPECT_FALSE(has(*problem, secret)) << *problem;
  }
  ::chmod(path.c_str(), 0640);
  ASSERT_TRUE(exposed_secrets(path, config).has_value());
  EXPECT_TRUE(has(*exposed_secrets(path, config), "readable by its group (mode 0640)"));
  ::chmod(path.c_str(), 0600);
  EXPECT_FALSE(exposed_secrets(path, config).has_value());
  // Another user's file read through the group (BOSH: root:vcap 0640) is fine; others are not.
  if (::geteuid() == 0 && ::chown(path.c_str(), 65534, ::getegid()) == 0) {
    ::chmod(path.c_str(), 0640);
    EXPECT_FALSE(exposed_secrets(path, config).has_value());
    ::chmod(path.c_str(), 0644);
    ASSERT_TRUE(exposed_secrets(path, config).has_value());
    EXPECT_TRUE(has(*exposed_secrets(path, config), "readable by others (mode 0644)"));
  }
}

TEST_F(ConfigFileTest, LoadingAReadableFileWithSecretsWarnsOnStderr) {
  util::init_logging();
  const auto path = write(R"({"agent":{"mbus":"nats://nats:Sup3rSecret@10.0.0.6:4222"}})", 0644);
  ::testing::internal::CaptureStderr();
  load_config(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(has(err, "holds secrets (agent.mbus (password))")) << err;
  EXPECT_TRUE(has(err, "chmod 0600")) << err;
  EXPECT_FALSE(has(err, "Sup3rSecret")) << err;
}

TEST_F(ConfigFileTest, NoWarningWithoutSecretsOrForAPrivateFile) {
  util::init_logging();
  const auto plain = write(R"({"agent":{"mbus":"nats://10.0.0.6:4222"}})", 0644);
  EXPECT_FALSE(exposed_secrets(plain, load_config(plain)).has_value());
  const auto secret = write(R"({"agent":{"mbus":"nats://n:pw12@10.0.0.6:4222"}})", 0600);
  ::testing::internal::CaptureStderr();
  load_config(secret);
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("holds secrets"), std::string::npos);
}

}  // namespace
}  // namespace cpi::config
