// The built `cpi` binary on the inputs that used to kill it (stack overflows in the redactor and
// in recursive copies, a quadratic redactor): one process per request as BOSH runs it, on
// test:///default. Each must exit 0 with exactly one well-formed JSON response; the generous
// timeout only bounds a hang (run_process kills the child and fails).

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "support/run_cpi.hpp"
#include "support/temp_dir.hpp"

namespace cpi::testing {
namespace {

using nlohmann::json;

class BinaryInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_config = m_dir.write("cpi.json",
                           R"({"libvirt":{"uri":"test:///default","storage_pool":"default-pool"}})");
    ::chmod(m_config.c_str(), 0600);
  }

  json run(const std::string& request) {
    const auto result = run_process(CPI_BINARY, {"--config", m_config.string()}, request,
                                    director_env(m_dir.path().string()), std::chrono::seconds(120));
    const json response = parse_cpi_response(result);  // throws unless one JSON envelope
    EXPECT_EQ(result.exit_code, 0);
    if (!response["error"].is_null()) {
      EXPECT_TRUE(response["error"]["type"].is_string()) << response;
      EXPECT_TRUE(response["error"]["message"].is_string()) << response;
      EXPECT_TRUE(response["error"]["ok_to_retry"].is_boolean()) << response;
    }
    return response;
  }

  TempDir m_dir;
  std::filesystem::path m_config;
};

TEST_F(BinaryInputTest, RebootVmWithAThirtyKilobyteCid) {
  const auto r = run(cpi_request("reboot_vm", {"vm-" + std::string(30 * 1024, 'a')}, {}, 2));
  EXPECT_FALSE(r["error"].is_null()) << r.dump().substr(0, 500);
}

TEST_F(BinaryInputTest, MethodNamedAUrlWithAMebibyteTail) {
  const auto r = run(cpi_request("a://b:" + std::string(1 << 20, 'c'), json::array(), {}, 2));
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::NotImplemented");
}

TEST_F(BinaryInputTest, PrivateKeyHeaderWithAMebibyteTail) {
  const auto r = run(cpi_request("-----BEGIN RSA PRIVATE KEY-----" + std::string(1 << 20, 'c'),
                                 json::array(), {}, 2));
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::NotImplemented");
  EXPECT_EQ(r.dump().find("cccc"), std::string::npos);
}

TEST_F(BinaryInputTest, AMillionNestedArrays) {
  const std::string deep(1000000, '[');
  const auto r = run(R"({"method":"info","arguments":[)" + deep + std::string(1000000, ']') + "]}");
  EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError");
  // Unterminated as well: refused at the depth limit, before the end of the text is reached.
  const auto open = run(R"({"method":"info","arguments":)" + deep);
  EXPECT_EQ(open["error"]["type"], "Bosh::Clouds::CpiError");
}

TEST_F(BinaryInputTest, HundredThousandSecretsForInfo) {
  json secrets = json::array();
  for (int i = 0; i < 100000; ++i) secrets.push_back("s3cr3t-" + std::to_string(i * 7919));
  const auto r = run(cpi_request("info", json::array(), {{"password", secrets}}, 2));
  EXPECT_TRUE(r["error"].is_null()) << r;
  EXPECT_EQ(r["result"]["api_version"], 2);
}

}  // namespace
}  // namespace cpi::testing
