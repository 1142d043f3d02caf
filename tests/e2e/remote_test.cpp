// Remote libvirt over TLS, SSH and plain TCP, against a private libvirtd (e2e/private_host.hpp)
// that listens on 127.0.0.1 only, on every run: TLS with a PKI the test makes, TCP with
// auth_tcp = "none" (INSECURE: opted into explicitly by this test daemon's libvirtd.conf, on
// loopback only), and an sshd of the test's own in the daemon's mount namespace (so its
// /run/libvirt/libvirt-sock is the private daemon's). The CPI gets its TLS material and SSH key
// inline (and TLS as paths), verifies the server, and fails with a clear error for a wrong CA or
// an unknown/mismatched host key.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "e2e/tls_host.hpp"
#include "e2e/support/e2e_ssh.hpp"
#include "e2e/support/e2e_tls.hpp"

namespace cpi::testing::e2e {
namespace {

namespace fs = std::filesystem;

class RemoteTest : public TlsHostTest {
 protected:
  RemoteTest() : TlsHostTest("remote") {}

  void SetUp() override {
    m_tcp_port = spare_loopback_port();
    TlsHostTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    fs::create_directories(m_dir / "tmp");
    std::printf("[remote] private libvirtd listens on 127.0.0.1:%d (tls), 127.0.0.1:%d (tcp)\n",
                m_tls_port, m_tcp_port);
  }

  std::string more_conf() const override {
    return "# INSECURE, test only: plain TCP without authentication, on 127.0.0.1\n"
           "listen_tcp = 1\ntcp_port = \"" +
           std::to_string(m_tcp_port) + "\"\nauth_tcp = \"none\"\n";
  }

  // The config's libvirt section with `uri` replaced by `remote` (transport, host, ...).
  void use_remote(const nlohmann::json& remote) {
    auto config = nlohmann::json::parse(read_whole_file(m_config.string()));
    config["libvirt"].erase("uri");
    config["libvirt"].update(remote);
    std::ofstream{m_config} << config.dump(2);
  }

  // One CPI call with a fresh TMPDIR; returns the whole response.
  nlohmann::json call(const std::string& method, const nlohmann::json& arguments) {
    const auto request = cpi_request(method, arguments, {{"director_uuid", "e2e"}}, 2);
    const auto run = run_process(CPI_BINARY, {"--config", m_config.string()}, request,
                                 director_env((m_dir / "tmp").string()));
    m_stderr = run.err;
    return parse_cpi_response(run);
  }

  // create_disk, has_disk, delete_disk over the configured transport.
  void disk_round_trip() {
    const auto created = call("create_disk", {16, nlohmann::json::object(), nullptr});
    ASSERT_TRUE(created["error"].is_null()) << created << m_stderr;
    const std::string disk = created["result"];
    EXPECT_TRUE(volume_exists(volume_name(disk)));
    EXPECT_EQ(call("has_disk", {disk})["result"], true);
    EXPECT_TRUE(call("delete_disk", {disk})["error"].is_null()) << m_stderr;
    EXPECT_EQ(call("has_disk", {disk})["result"], false);
    expect_no_scratch_left();
  }

  // The CPI removed its private dirs (pkipath, SSH key) on exit. The lock directory stays (the
  // disk and VM locks live there, empty files): it must be ours alone (0700).
  void expect_no_scratch_left() {
    for (const auto& entry : fs::directory_iterator(m_dir / "tmp")) {
      if (entry.path().filename() == "bosh-libvirt-cpi-locks" && entry.is_directory()) {
        EXPECT_EQ(fs::status(entry.path()).permissions() & fs::perms::all, fs::perms::owner_all);
        continue;
      }
      ADD_FAILURE() << "left in TMPDIR: " << entry.path();
    }
  }

  // The error of a call that must fail to connect; checks what every such error says.
  std::string connect_error(const std::string& transport, const std::string& secret) {
    const auto response = call("has_disk", {"disk-000000000000000"});
    EXPECT_TRUE(response["result"].is_null()) << response;
    const std::string message = response["error"].value("message", "");
    std::printf("[remote] %s error: %s\n", transport.c_str(), message.c_str());
    EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;
    EXPECT_NE(message.find("(transport " + transport + ")"), std::string::npos) << message;
    EXPECT_EQ(message.find(secret), std::string::npos) << "secret in the error";
    EXPECT_EQ(m_stderr.find(secret), std::string::npos) << "secret on stderr";
    expect_no_scratch_left();
    return message;
  }

  int m_tcp_port = 0;
  std::string m_stderr;
};

TEST_F(RemoteTest, TlsWithInlineAndPathPemsVerifiesTheServer) {
  const TestPki& pki = *m_pki;
  ASSERT_TRUE(loopback_listening(m_tls_port)) << m_host->daemon().describe();
  const nlohmann::json base{{"transport", "tls"}, {"host", "127.0.0.1"}, {"port", m_tls_port}};
  const std::string key = pki.pem("clientkey.pem");

  auto tls = base;
  tls["tls"] = {{"ca_cert", pki.pem("cacert.pem")},
                {"client_cert", pki.pem("clientcert.pem")},
                {"client_key", key}};
  use_remote(tls);
  SCOPED_TRACE("inline PEMs");
  ASSERT_NO_FATAL_FAILURE(disk_round_trip());

  auto paths = base;
  paths["tls"] = {{"ca_cert", (pki.dir / "ca" / "cacert.pem").string()},
                  {"client_cert", (pki.dir / "ca" / "clientcert.pem").string()},
                  {"client_key", (pki.dir / "ca" / "clientkey.pem").string()}};
  use_remote(paths);
  SCOPED_TRACE("PEM paths");
  ASSERT_NO_FATAL_FAILURE(disk_round_trip());

  auto wrong = tls;
  wrong["tls"]["ca_cert"] = pki.other("cacert.pem");
  use_remote(wrong);
  auto message = connect_error("tls", key.substr(40, 40));
  EXPECT_NE(message.find("client_cert is not signed by ca_cert"), std::string::npos) << message;

  SCOPED_TRACE("a CA and client certificate the server does not know");
  const std::string other_key = pki.other("clientkey.pem");
  wrong["tls"] = {{"ca_cert", pki.other("cacert.pem")},
                  {"client_cert", pki.other("clientcert.pem")},
                  {"client_key", other_key}};
  use_remote(wrong);
  message = connect_error("tls", other_key.substr(40, 40));
  EXPECT_NE(message.find("libvirtd rejected it"), std::string::npos) << message;
}

TEST_F(RemoteTest, SshWithInlineKeyAndPinnedHostKey) {
  PrivateLibvirtd& daemon = m_host->daemon();
  const auto log = (m_dir / "sshd.out").string();
  TestSshd sshd{m_dir / "sshd", [&](const std::vector<std::string>& argv) {
                  return daemon.run_in_namespace(argv, log);
                }};
  ASSERT_TRUE(sshd.unavailable().empty()) << sshd.unavailable();
  const std::string key = sshd.client_key();
  nlohmann::json ssh{{"transport", "ssh"},
                     {"host", "127.0.0.1"},
                     {"port", sshd.port()},
                     {"username", "root"},
                     {"ssh", {{"private_key", key}, {"known_hosts", sshd.known_hosts()}}}};
  use_remote(ssh);
  ASSERT_NO_FATAL_FAILURE(disk_round_trip()) << sshd.log();

  SCOPED_TRACE("another host's key pinned for 127.0.0.1");
  ssh["ssh"]["known_hosts"] = sshd.known_hosts(true);
  use_remote(ssh);
  auto message = connect_error("ssh", key.substr(60, 40));
  EXPECT_NE(message.find("libvirt.ssh.known_hosts"), std::string::npos) << message;

  SCOPED_TRACE("host not in known_hosts");
  ssh["ssh"]["known_hosts"] =
      "[127.0.0.2]:22 " + sshd.known_hosts().substr(sshd.known_hosts().find(' ') + 1);
  use_remote(ssh);
  message = connect_error("ssh", key.substr(60, 40));
  EXPECT_NE(message.find("libvirt.ssh.known_hosts"), std::string::npos) << message;
}

// INSECURE transport, driven only against this test's own daemon on 127.0.0.1: libvirt's TCP
// transport with auth_tcp = "none" has neither encryption nor authentication.
TEST_F(RemoteTest, PlainTcpOnLoopbackReachesTheDaemon) {
  ASSERT_TRUE(loopback_listening(m_tcp_port)) << m_host->daemon().describe();
  use_remote({{"transport", "tcp"}, {"host", "127.0.0.1"}, {"port", m_tcp_port}});
  ASSERT_NO_FATAL_FAILURE(disk_round_trip());

  SCOPED_TRACE("nothing listens on the port");
  use_remote({{"transport", "tcp"}, {"host", "127.0.0.1"}, {"port", spare_loopback_port()}});
  connect_error("tcp", "no secret");
}

}  // namespace
}  // namespace cpi::testing::e2e
