#include "cpi/util/redact.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cpi::util {
namespace {

constexpr const char* k_redacted_key = "[redacted private key]";

std::string pem(const std::string& label, const std::string& body) {
  return "-----BEGIN " + label + "-----\n" + body + "\n-----END " + label + "-----";
}

TEST(RedactorTest, MasksUrlPasswords) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"nats://user:pw@host:4222", "nats://user:***@host:4222"},
      {"https://mbus:pw@0.0.0.0:6868", "https://mbus:***@0.0.0.0:6868"},
      {"dialing nats://nats:Abc123xyz@10.0.0.5:4222 failed",
       "dialing nats://nats:***@10.0.0.5:4222 failed"},
      {R"({"mbus":"https://mbus:p4ss@10.0.0.6:6868"})",
       R"({"mbus":"https://mbus:***@10.0.0.6:6868"})"},
      {"a://u:one@h and b://v:two@k", "a://u:***@h and b://v:***@k"},
  };
  const Redactor redactor;
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(redactor.redact(text), expected) << text;
  }
}

TEST(RedactorTest, KeepsUrlsWithoutPassword) {
  const Redactor redactor;
  for (const char* text : {"qemu+ssh://bosh@host:22/system", "https://example.com:8443/path",
                           "qemu:///system?socket=/run/libvirt/sock"}) {
    EXPECT_EQ(redactor.redact(text), text);
  }
}

TEST(RedactorTest, ReplacesPrivateKeyBlocksWhole) {
  const Redactor redactor;
  for (const char* label : {"RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                            "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}) {
    SCOPED_TRACE(label);
    const std::string text =
        "key: " + pem(label, "MIIEpAIBAAKCAQEAsecretbody\nmore+body/==") + " end";
    EXPECT_EQ(redactor.redact(text), std::string{"key: "} + k_redacted_key + " end");
  }
}

TEST(RedactorTest, ReplacesALargePrivateKey) {
  std::string body;
  for (int line = 0; line < 80; ++line) {  // about the size of a 4096-bit RSA key
    body += std::string(64, 'A') + "\n";
  }
  const std::string text = pem("RSA PRIVATE KEY", body);
  EXPECT_EQ(Redactor{}.redact(text), k_redacted_key);
}

TEST(RedactorTest, ReplacesATruncatedPrivateKeyToTheEnd) {
  const std::string text = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
  EXPECT_EQ(Redactor{}.redact(text), k_redacted_key);
}

TEST(RedactorTest, KeepsCertificates) {
  const std::string cert = pem("CERTIFICATE", "MIIBszCCAVmgAwIBAgIUcert");
  EXPECT_EQ(Redactor{}.redact(cert), cert);
}

TEST(RedactorTest, KeepsCertificateNextToAPrivateKey) {
  const std::string cert = pem("CERTIFICATE", "MIIBszCCAVmgAwIBAgIUcert");
  const std::string key = pem("EC PRIVATE KEY", "MHcCAQEEIsecret");
  EXPECT_EQ(Redactor{}.redact(cert + "\n" + key + "\n" + cert),
            cert + "\n" + k_redacted_key + "\n" + cert);
}

TEST(RedactorTest, MasksRegisteredSecretsEverywhere) {
  Redactor redactor;
  redactor.add_secret("hunter22");
  redactor.add_secret("s3cr3t-token");
  EXPECT_EQ(redactor.redact("pw=hunter22 token=s3cr3t-token again hunter22hunter22"),
            "pw=*** token=*** again ******");
}

TEST(RedactorTest, MasksASecretContainingAnotherWhole) {
  Redactor redactor;
  redactor.add_secret("abcd");
  redactor.add_secret("xxabcdxx");
  EXPECT_EQ(redactor.redact("[xxabcdxx] [abcd]"), "[***] [***]");
}

TEST(RedactorTest, IgnoresSecretsShorterThanFourCharacters) {
  Redactor redactor;
  redactor.add_secret("");
  redactor.add_secret("a");
  redactor.add_secret("pwd");
  EXPECT_EQ(redactor.redact("a pwd in a password"), "a pwd in a password");
}

TEST(RedactorTest, LeavesTextWithoutSecretsUnchanged) {
  Redactor redactor;
  redactor.add_secret("hunter22");
  for (const char* text : {"", "creating vm-1234 in pool 'bosh'", "a:b@c without scheme",
                           "-----BEGIN CERTIFICATE-----", "ratio 3:4 @ noon"}) {
    EXPECT_EQ(redactor.redact(text), text);
  }
}

TEST(RedactorTest, LocalInstanceDoesNotTouchTheGlobalOne) {
  Redactor local;
  local.add_secret("only-local-secret");
  EXPECT_EQ(redact("only-local-secret"), "only-local-secret");
}

}  // namespace
}  // namespace cpi::util
