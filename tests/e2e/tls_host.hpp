#pragma once
// TlsHostTest: a PrivateHostTest whose private libvirtd listens for TLS on 127.0.0.1 only
// (NETWORK RULE), with a throwaway PKI the test makes (e2e/support/e2e_tls.hpp) in a scratch
// folder that goes with the test. RemoteTest and SecretsTest call the CPI through it.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "e2e/private_host.hpp"
#include "e2e/support/e2e_tls.hpp"

namespace cpi::testing::e2e {

class TlsHostTest : public PrivateHostTest {
 protected:
  // `scratch` names the test's folder below the e2e root (a random suffix is added).
  explicit TlsHostTest(std::string scratch) : m_scratch(std::move(scratch)) {}

  void SetUp() override {
    if (!env().unavailable().empty()) GTEST_SKIP() << env().unavailable();
    m_dir = env().root() / (m_scratch + "-" + random_hex(8));
    std::filesystem::create_directories(m_dir);
    m_pki = std::make_unique<TestPki>(m_dir / "pki");
    m_tls_port = spare_loopback_port();
    PrivateHostTest::SetUp();  // the daemon, with options()
  }
  void TearDown() override {
    PrivateHostTest::TearDown();
    std::error_code ignored;
    if (!m_dir.empty()) std::filesystem::remove_all(m_dir, ignored);
  }

  // TLS with the test PKI, the client certificate verified; more listeners from more_conf().
  PrivateLibvirtd::Options options() const override {
    const auto ca = m_pki->dir / "ca";
    PrivateLibvirtd::Options o;
    o.listen = true;
    o.extra_conf = "listen_tls = 1\ntls_port = \"" + std::to_string(m_tls_port) +
                   "\"\nkey_file = \"" + (ca / "serverkey.pem").string() +
                   "\"\ncert_file = \"" + (ca / "servercert.pem").string() +
                   "\"\nca_file = \"" + (ca / "cacert.pem").string() +
                   "\"\ntls_no_verify_certificate = 0\nauth_tls = \"none\"\n" + more_conf();
    return o;
  }
  // libvirtd.conf lines after the TLS ones: none but TLS by default.
  virtual std::string more_conf() const { return "listen_tcp = 0\n"; }

  std::filesystem::path m_dir;
  std::unique_ptr<TestPki> m_pki;
  int m_tls_port = 0;

 private:
  std::string m_scratch;
};

}  // namespace cpi::testing::e2e
