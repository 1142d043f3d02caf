#include "cpi/util/redact.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
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

namespace cpi::util {
namespace {

// --- large inputs: linear scans, no recursion (std::regex overflowed the stack on these)

TEST(RedactorLargeInputTest, UrlSchemeFollowedByAMebibyteOfAlphanumerics) {
  const std::string tail(1 << 20, 'a');
  for (const std::string& text : {"a://b:" + tail, "a://" + tail, "x" + tail + "://" + tail,
                                  "method 'a://b:" + tail + "' is not implemented"}) {
    EXPECT_EQ(Redactor{}.redact(text), text);
  }
  EXPECT_EQ(Redactor{}.redact("a://b:" + tail + "@h"), "a://b:***@h");
}

TEST(RedactorLargeInputTest, ThirtyKilobyteCidInAUrlishMessage) {
  const std::string cid(30 * 1024, '7');
  const std::string text = "reboot_vm: vm 'qemu://" + cid + "' not found";
  EXPECT_EQ(Redactor{}.redact(text), text);
}

TEST(RedactorLargeInputTest, PrivateKeyHeaderFollowedByAMebibyte) {
  const std::string text = "-----BEGIN RSA PRIVATE KEY-----" + std::string(1 << 20, 'Q');
  EXPECT_EQ(Redactor{}.redact(text), k_redacted_key);
}

TEST(RedactorLargeInputTest, ManyUrlsWithoutAtSignStayLinear) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "a://b:c";  // every password run ends the text
  EXPECT_EQ(Redactor{}.redact(text), text);
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "nats://u:pw" + std::to_string(i) + "@h ";
  const std::string out = Redactor{}.redact(many);
  EXPECT_EQ(out.find("pw"), std::string::npos);
  EXPECT_EQ(out.substr(0, 17), "nats://u:***@h na");
}

TEST(RedactorLargeInputTest, ManyBeginLinesWithoutAKey) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "-----BEGIN CERTIFICATE-----";
  EXPECT_EQ(Redactor{}.redact(text), text);
}

// --- PEM blocks of every kind

TEST(RedactorPemTest, EveryPrivateKeyKindIsReplaced) {
  for (const char* label : {"RSA PRIVATE KEY", "DSA PRIVATE KEY", "EC PRIVATE KEY",
                            "OPENSSH PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                            "ANY PRIVATE KEY", "X25519 PRIVATE KEY"}) {
    SCOPED_TRACE(label);
    EXPECT_EQ(Redactor{}.redact("a " + pem(label, "c2VjcmV0") + " b"),
              std::string{"a "} + k_redacted_key + " b");
    // Unterminated: to the end of the text.
    EXPECT_EQ(Redactor{}.redact(std::string{"a -----BEGIN "} + label + "-----\nc2Vj\nmore"),
              std::string{"a "} + k_redacted_key);
  }
}

TEST(RedactorPemTest, UnterminatedKeyKeepsTheLineEnd) {
  EXPECT_EQ(Redactor{}.redact("log: -----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n"),
            std::string{"log: "} + k_redacted_key + "\n");
}

TEST(RedactorPemTest, KeepsPublicKeysAndRequestsAndLowercaseLabels) {
  for (const std::string& text :
       {pem("PUBLIC KEY", "MFkwEwYH"), pem("CERTIFICATE REQUEST", "MIIB"),
        pem("RSA PUBLIC KEY", "MIIB"), std::string{"-----BEGIN rsa private key-----\nabc"},
        std::string{"-----BEGIN PRIVATE KEY"}, std::string{"PRIVATE KEY-----"}}) {
    EXPECT_EQ(Redactor{}.redact(text), text);
  }
}

TEST(RedactorPemTest, EndsAtTheFirstMatchingEndLineAndHandlesSeveralKeys) {
  const std::string key = pem("EC PRIVATE KEY", "one");
  const std::string text = key + " mid " + pem("OPENSSH PRIVATE KEY", "two") + " tail";
  EXPECT_EQ(Redactor{}.redact(text),
            std::string{k_redacted_key} + " mid " + k_redacted_key + " tail");
  // A certificate's END line inside the key does not end it.
  const std::string odd =
      "-----BEGIN PRIVATE KEY-----\nx\n-----END CERTIFICATE-----\ny\n-----END PRIVATE KEY----- z";
  EXPECT_EQ(Redactor{}.redact(odd), std::string{k_redacted_key} + " z");
}

TEST(RedactorUrlTest, MasksPasswordsHoldingColonsAndSlashes) {
  EXPECT_EQ(Redactor{}.redact("https://u:a:b/c@h/x"), "https://u:***@h/x");
  EXPECT_EQ(Redactor{}.redact("'s3://key:se/cret@bucket'"), "'s3://key:***@bucket'");
  EXPECT_EQ(Redactor{}.redact("9://u:pw@h"), "9://u:pw@h");  // a scheme starts with a letter
  EXPECT_EQ(Redactor{}.redact("x1://u:pw@h"), "x1://u:***@h");
  EXPECT_EQ(Redactor{}.redact("a://u:@h"), "a://u:@h");
  EXPECT_EQ(Redactor{}.redact("a://u:p w@h"), "a://u:p w@h");
}

// --- many secrets

// The reference: every character inside any occurrence of any secret is masked; each maximal
// run of overlapping occurrences becomes one "***".
std::string reference_mask(const std::string& text, const std::vector<std::string>& secrets) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (const auto& s : secrets) {
    if (s.size() < 4) continue;
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 1)) {
      spans.emplace_back(pos, pos + s.size());
    }
  }
  std::sort(spans.begin(), spans.end());
  std::string out;
  std::size_t copied = 0;
  for (std::size_t i = 0; i < spans.size();) {
    std::size_t begin = spans[i].first, end = spans[i].second;
    for (++i; i < spans.size() && spans[i].first < end; ++i) end = std::max(end, spans[i].second);
    out += text.substr(copied, begin - copied) + "***";
    copied = end;
  }
  return out + text.substr(copied);
}

TEST(RedactorManySecretsTest, ThousandsOfOverlappingSecretsMatchTheReference) {
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245U + 12345U; };
  std::string text;
  for (int i = 0; i < 20000; ++i) text += static_cast<char>('a' + (next() >> 16U) % 3);
  std::vector<std::string> secrets;
  Redactor redactor;
  for (int i = 0; i < 3000; ++i) {
    // Substrings of the text (so they occur, and overlap), plus random ones.
    const std::size_t length = 4 + (next() >> 16U) % 9;
    const std::size_t at = (next() >> 8U) % (text.size() - length);
    std::string secret = i % 3 == 0 ? std::string(length, 'b') : text.substr(at, length);
    if (i % 5 == 0) secret[length / 2] = 'z';
    secrets.push_back(secret);
    redactor.add_secret(secret);
  }
  const std::string reference = reference_mask(text, secrets);
  EXPECT_EQ(redactor.redact(text), reference);
  // Adding after a redact() rebuilds the links.
  redactor.add_secret("aaaabbbbcccc");
  secrets.emplace_back("aaaabbbbcccc");
  EXPECT_EQ(redactor.redact(text + "aaaabbbbcccc"), reference_mask(text + "aaaabbbbcccc", secrets));
}

TEST(RedactorManySecretsTest, NestedAndChainedSecrets) {
  Redactor redactor;
  for (const char* s : {"abcdef", "xyzabc", "cdefgh", "defg", "zzzz"}) redactor.add_secret(s);
  EXPECT_EQ(redactor.redact("xyzabcdefgh!"), "***!");
  EXPECT_EQ(redactor.redact("abcdefabcdef"), "******");
  EXPECT_EQ(redactor.redact("zzzzzzzzz"), "***");
  EXPECT_EQ(redactor.redact("-defg-"), "-***-");
}

TEST(RedactorManySecretsTest, DuplicatesAreCountedOnceAndBinaryBytesWork) {
  Redactor redactor;
  const std::string binary{"\x00\xff\x80secret", 9};
  for (int i = 0; i < 1000; ++i) {
    redactor.add_secret("same-secret");
    redactor.add_secret(binary);
  }
  EXPECT_EQ(redactor.secret_count(), 2U);
  EXPECT_EQ(redactor.redact("a" + binary + "b same-secret"), "a***b ***");
}

TEST(RedactorManySecretsTest, HundredThousandSecretsOverALargeText) {
  Redactor redactor;
  for (int i = 0; i < 100000; ++i) redactor.add_secret("secret-" + std::to_string(i * 7919));
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "value secret-" + std::to_string(i * 7919) + " ok ";
  const std::string out = redactor.redact(text);
  EXPECT_EQ(out.find("secret-"), std::string::npos);
  EXPECT_EQ(out.substr(0, 13), "value *** ok ");
}

TEST(RedactorManySecretsTest, ClearForgetsEverySecret) {
  Redactor redactor;
  for (int i = 0; i < 1000; ++i) redactor.add_secret("secret-" + std::to_string(i));
  EXPECT_EQ(redactor.redact("secret-7 secret-999"), "*** ***");
  redactor.clear();
  EXPECT_EQ(redactor.secret_count(), 0U);
  EXPECT_EQ(redactor.redact("secret-7 secret-999"), "secret-7 secret-999");
  redactor.add_secret("secret-999");  // usable again, links rebuilt
  EXPECT_EQ(redactor.secret_count(), 1U);
  EXPECT_EQ(redactor.redact("secret-7 secret-999"), "secret-7 ***");
}

// CPU time of this thread: what other processes on a loaded machine do does not count.
double thread_cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// The CPU seconds to add `n` distinct secrets (16 random characters each) to a new redactor and
// apply them to a text that holds every tenth of them, so the text grows with n too; the best of
// three rounds. Checks that the secrets in the text are masked.
double add_and_apply_seconds(int n) {
  std::uint32_t seed = 2024U + static_cast<std::uint32_t>(n);
  auto next = [&] { return seed = seed * 1664525U + 1013904223U; };
  static constexpr char k_alphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::vector<std::string> secrets;
  std::string text;
  for (int i = 0; i < n; ++i) {
    std::string secret = "pw-";
    for (int c = 0; c < 13; ++c) secret += k_alphabet[(next() >> 16U) % 62U];
    if (i % 10 == 0) text += "user " + std::to_string(i) + " has " + secret + "; ";
    secrets.push_back(std::move(secret));
  }
  double best = 1e9;
  for (int round = 0; round < 3; ++round) {
    Redactor redactor;
    const double start = thread_cpu_seconds();
    for (const auto& secret : secrets) redactor.add_secret(secret);
    const std::string out = redactor.redact(text);
    best = std::min(best, thread_cpu_seconds() - start);
    EXPECT_EQ(redactor.secret_count(), static_cast<std::size_t>(n));
    EXPECT_EQ(out.find("pw-"), std::string::npos) << "a secret survived";
    EXPECT_EQ(out.substr(0, 14), "user 0 has ***");
  }
  return best;
}

// 100,000 secrets (a context with that many strings under `password`) are added and applied in
// well under a second, and ten times as many secrets cost about ten times as much: a quadratic
// redactor (each secret searched for in turn, or the automaton rebuilt per secret) takes ~100
// times as long and fails the ratio even where the absolute bound is generous. CPU time, best
// of three, so a busy machine does not make it flaky; the bound allows for sanitizer builds.
TEST(RedactorManySecretsTest, AddingAndApplyingScalesLinearly) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr double k_bound = 4.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  constexpr double k_bound = 4.0;
#else
  constexpr double k_bound = 1.0;
#endif
#else
  constexpr double k_bound = 1.0;
#endif
  const double small = add_and_apply_seconds(10000);
  const double large = add_and_apply_seconds(100000);
  const double ratio = large / std::max(small, 1e-4);
  std::printf("[redactor] 10,000 secrets: %.3f s, 100,000 secrets: %.3f s (x%.1f)\n", small,
              large, ratio);
  EXPECT_LT(large, k_bound) << "100,000 secrets took " << large << " s of CPU";
  EXPECT_LT(ratio, 30.0) << "10 times the secrets took " << ratio << " times as long";
}

// --- keys and JSON masking

TEST(SecretKeyTest, RecognisesSecretLookingKeys) {
  for (const char* key : {"password", "DB_PASSWORD", "passwd", "client_secret", "api_token",
                          "Credentials", "aws_access_key", "ssh_key", "tls"}) {
    EXPECT_TRUE(is_secret_key(key, false)) << key;
  }
  EXPECT_TRUE(is_secret_key("api_key", true));
  EXPECT_FALSE(is_secret_key("api_key", false));
  for (const char* key : {"name", "deployment", "director", "index", "job"}) {
    EXPECT_FALSE(is_secret_key(key, true)) << key;
  }
}

TEST(MaskSecretValuesTest, MasksValuesUnderSecretKeysAndUrlPasswords) {
  const nlohmann::json metadata = {
      {"deployment", "cf"},
      {"db_password", "hunter2"},
      {"api_key", 12345},
      {"nested", {{"credentials", {{"user", "u"}, {"list", {"a", "b"}}}}, {"ok", true}}},
      {"url", "postgres://admin:s3cret@db:5432/x"},
      {"tokens", {"t1", "t2"}}};
  const auto masked = mask_secret_values(metadata);
  EXPECT_EQ(masked["deployment"], "cf");
  EXPECT_EQ(masked["db_password"], "***");
  EXPECT_EQ(masked["api_key"], "***");
  EXPECT_EQ(masked["nested"]["credentials"]["user"], "***");
  EXPECT_EQ(masked["nested"]["credentials"]["list"], nlohmann::json::array({"***", "***"}));
  EXPECT_EQ(masked["nested"]["ok"], true);
  EXPECT_EQ(masked["url"], "postgres://admin:***@db:5432/x");
  EXPECT_EQ(masked["tokens"], nlohmann::json::array({"***", "***"}));
  EXPECT_EQ(masked.dump().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace cpi::util
