// Local checks of the operator tools (src/tools/local_checks.cpp): commands, certificate dates
// through the openssl command line, log tails.

#include <gtest/gtest.h>

#include <string>

#include "cpi/tools/local_checks.hpp"
#include "support/temp_dir.hpp"

namespace cpi::tools {
namespace {

constexpr std::int64_t k_day = 24 * 60 * 60;

TEST(RunCommandTest, ReturnsStatusAndStdoutAndQuotesSafely) {
  const std::string tricky = "it's $HOME `x` \"y\"";
  const auto result = run_command("printf %s " + shell_quote(tricky) + "; exit 3");
  EXPECT_EQ(result.status, 3);
  EXPECT_EQ(result.output, tricky);
}

TEST(FindProgramTest, FindsShAndNotNonsense) {
  EXPECT_TRUE(find_program("sh").has_value());
  EXPECT_FALSE(find_program("no-such-program-cpi-test").has_value());
}

TEST(OpensslTimeTest, ParsesOpensslDatesAsUtc) {
  EXPECT_EQ(parse_openssl_time("Jan  1 00:00:00 2030 GMT"), 1893456000);
  EXPECT_EQ(parse_openssl_time("Feb 29 12:00:00 2024 GMT"), 1709208000);
  EXPECT_FALSE(parse_openssl_time("not a date").has_value());
  EXPECT_EQ(format_date(1893456000), "2030-01-01");
}

// One self-signed certificate valid for 365 days, made once for the suite; the checks vary `now`.
class CertificateCheckTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!find_program("openssl")) return;
    testing::TempDir dir;
    const auto result = run_command("cd " + shell_quote(dir.path().string()) +
                                    " && openssl req -x509 -newkey ec -pkeyopt "
                                    "ec_paramgen_curve:prime256v1 -nodes "
                                    "-keyout key.pem -out cert.pem -days 365 -subj /CN=cpi-test");
    if (result.status != 0) return;
    s_pem = testing::TempDir::read(dir / "cert.pem");
    if (const auto dates = certificate_dates(s_pem)) s_dates = *dates;
  }

  void SetUp() override {
    if (!find_program("openssl")) GTEST_SKIP() << "no openssl command";
    ASSERT_FALSE(s_pem.empty()) << "openssl could not make a test certificate";
    ASSERT_NE(s_dates.not_after, 0) << "openssl could not read the test certificate";
    m_pem = s_pem;
    m_dates = s_dates;
  }

  static inline std::string s_pem;
  static inline CertificateDates s_dates;
  std::string m_pem;
  CertificateDates m_dates;
};

TEST_F(CertificateCheckTest, ReadsDatesAndSubject) {
  EXPECT_EQ(m_dates.not_after - m_dates.not_before, 365 * k_day);
  EXPECT_NE(m_dates.subject.find("cpi-test"), std::string::npos) << m_dates.subject;
}

TEST_F(CertificateCheckTest, ValidCertificateIsOk) {
  const auto check =
      certificate_check("tls_ca_cert", "libvirt.tls.ca_cert", m_pem, m_dates.not_before + k_day);
  EXPECT_EQ(check.verdict, Verdict::ok) << check.detail;
  EXPECT_NE(check.detail.find("valid until " + format_date(m_dates.not_after)), std::string::npos)
      << check.detail;
}

TEST_F(CertificateCheckTest, ExpiredCertificateFails) {
  const auto check =
      certificate_verdict("tls_ca_cert", "libvirt.tls.ca_cert", m_dates, m_dates.not_after + k_day);
  EXPECT_EQ(check.verdict, Verdict::fail);
  EXPECT_NE(check.detail.find("expired"), std::string::npos) << check.detail;
  EXPECT_FALSE(check.hint.empty());
}

TEST_F(CertificateCheckTest, NotYetValidCertificateFails) {
  const auto check = certificate_verdict("tls_client_cert", "libvirt.tls.client_cert", m_dates,
                                         m_dates.not_before - k_day);
  EXPECT_EQ(check.verdict, Verdict::fail);
  EXPECT_NE(check.detail.find("not valid before"), std::string::npos) << check.detail;
  EXPECT_NE(check.hint.find("clock"), std::string::npos) << check.hint;
}

TEST_F(CertificateCheckTest, CertificateExpiringSoonWarns) {
  const auto check = certificate_verdict("tls_ca_cert", "libvirt.tls.ca_cert", m_dates,
                                         m_dates.not_after - 10 * k_day);
  EXPECT_EQ(check.verdict, Verdict::warn);
  EXPECT_NE(check.detail.find("in 10 days"), std::string::npos) << check.detail;
}

TEST_F(CertificateCheckTest, GarbageFails) {
  const auto check = certificate_check("tls_ca_cert", "libvirt.tls.ca_cert", "not a PEM", 0);
  EXPECT_EQ(check.verdict, Verdict::fail);
  EXPECT_NE(check.detail.find("libvirt.tls.ca_cert"), std::string::npos) << check.detail;
}

TEST(TailFileTest, ReturnsTheLastLines) {
  testing::TempDir dir;
  const auto file = dir.write("console.log", "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(tail_file(file, 2), "three\nfour\n");
  EXPECT_EQ(tail_file(file, 10), "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(tail_file(file, 0), "");
  EXPECT_EQ(tail_file(dir.write("empty.log", ""), 5), "");
  EXPECT_THROW(tail_file(dir / "absent.log", 5), std::system_error);
}

TEST(TailFileTest, ReadsOnlyTheEndOfALargeFile) {
  testing::TempDir dir;
  std::string text;
  for (int i = 0; i < 30000; ++i) text += "line " + std::to_string(i) + "\n";
  const auto file = dir.write("big.log", text);
  EXPECT_EQ(tail_file(file, 2), "line 29998\nline 29999\n");
}

}  // namespace
}  // namespace cpi::tools
