#include "cpi/virt/uri.hpp"

#include <libvirt/virterror.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"
#include "cpi/virt/connect.hpp"
#include "cpi/virt/error.hpp"

namespace cpi::virt {
namespace {

namespace fs = std::filesystem;

const char* const k_ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const char* const k_cert = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
const char* const k_key = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";
const char* const k_ssh_key =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nSSH\n-----END OPENSSH PRIVATE KEY-----";

std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The URI's query parameters, decoded.
std::map<std::string, std::string> params(const std::string& uri) {
  std::map<std::string, std::string> out;
  const auto query = uri.find('?');
  if (query == std::string::npos) {
    return out;
  }
  std::istringstream in{uri.substr(query + 1)};
  std::string pair;
  while (std::getline(in, pair, '&')) {
    const auto eq = pair.find('=');
    out[pair.substr(0, eq)] = eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
  }
  return out;
}

std::string base_of(const std::string& uri) { return uri.substr(0, uri.find('?')); }

std::string read(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

fs::perms mode_of(const fs::path& path) { return fs::status(path).permissions() & fs::perms::mask; }

config::LibvirtConfig remote(const std::string& transport) {
  config::LibvirtConfig c;
  c.transport = transport;
  c.host = "10.0.0.1";
  return c;
}

config::LibvirtConfig tls_config() {
  auto c = remote("tls");
  c.port = 16514;
  c.tls.ca_cert.value = k_ca;
  c.tls.client_cert.value = k_cert;
  c.tls.client_key.value = k_key;
  return c;
}

TEST(UriTest, DefaultUriPerHypervisor) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"qemu", "qemu:///system"}, {"kvm", "qemu:///system"},   {"lxc", "lxc:///"},
      {"xen", "xen:///system"},   {"vbox", "vbox:///session"}, {"vmware", "vmwarews:///session"},
  };
  for (const auto& [hypervisor, uri] : cases) {
    EXPECT_EQ(default_uri(hypervisor), uri) << hypervisor;
  }
}

TEST(UriTest, UnixTransportUsesTheDefaultUri) {
  const ConnectTarget target = build_target(config::LibvirtConfig{});
  EXPECT_EQ(target.uri, "qemu:///system");
  EXPECT_EQ(target.transport, "unix");
  EXPECT_FALSE(target.scratch.has_value());
}

TEST(UriTest, UnixTransportWithSocketAddsSocketParam) {
  config::LibvirtConfig c;
  c.socket = "/run/libvirt/libvirt-sock";
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(base_of(target.uri), "qemu:///system");
  EXPECT_EQ(params(target.uri),
            (std::map<std::string, std::string>{{"socket", "/run/libvirt/libvirt-sock"}}));
}

TEST(UriTest, TcpTransportPutsHostAndPortInTheUri) {
  auto c = remote("tcp");
  c.port = 16509;
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(target.uri, "qemu+tcp://10.0.0.1:16509/system");
  EXPECT_EQ(target.transport, "tcp");
}

TEST(UriTest, HypervisorChoosesDriverAndPathOfRemoteUris) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"kvm", "qemu+tcp://10.0.0.1/system"},
      {"lxc", "lxc+tcp://10.0.0.1/"},
      {"xen", "xen+tcp://10.0.0.1/system"},
      {"vmware", "vmwarews+tcp://10.0.0.1/session"}};
  for (const auto& [hypervisor, uri] : cases) {
    auto c = remote("tcp");
    c.hypervisor = hypervisor;
    EXPECT_EQ(build_target(c).uri, uri) << hypervisor;
  }
}

TEST(UriTest, UsernameAndPortFormTheAuthority) {
  auto c = remote("ssh");
  c.username = "bosh";
  c.port = 2222;
  EXPECT_EQ(base_of(build_target(c).uri), "qemu+ssh://bosh@10.0.0.1:2222/system");
}

TEST(UriTest, Ipv6HostIsBracketed) {
  for (const char* host : {"fd00::1", "[fd00::1]"}) {
    auto c = remote("tcp");
    c.host = host;
    c.port = 16509;
    EXPECT_EQ(build_target(c).uri, "qemu+tcp://[fd00::1]:16509/system") << host;
  }
}

TEST(UriTest, TlsWithInlinePemsPointsPkipathAtAPrivateDir) {
  const ConnectTarget target = build_target(tls_config());
  EXPECT_EQ(base_of(target.uri), "qemu+tls://10.0.0.1:16514/system");
  ASSERT_TRUE(target.scratch.has_value());
  const fs::path dir = params(target.uri).at("pkipath");
  EXPECT_EQ(dir, target.scratch->path());
  ASSERT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(mode_of(dir), fs::perms::owner_all);
}

TEST(UriTest, TlsPkiDirHoldsThePemsWithMode0600) {
  const ConnectTarget target = build_target(tls_config());
  const fs::path dir = params(target.uri).at("pkipath");
  const std::vector<std::pair<std::string, std::string>> files{
      {"cacert.pem", k_ca}, {"clientcert.pem", k_cert}, {"clientkey.pem", k_key}};
  for (const auto& [name, content] : files) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(fs::is_regular_file(dir / name));
    EXPECT_EQ(read(dir / name), content);
    EXPECT_EQ(mode_of(dir / name), fs::perms::owner_read | fs::perms::owner_write);
  }
}

TEST(UriTest, TlsPkiDirIsRemovedWithTheTarget) {
  fs::path dir;
  {
    const ConnectTarget target = build_target(tls_config());
    dir = params(target.uri).at("pkipath");
    ASSERT_TRUE(fs::exists(dir));
  }
  EXPECT_FALSE(fs::exists(dir));
}

TEST(UriTest, TlsWithPemPathsCopiesTheFiles) {
  const util::PrivateDir source{"cpi-test"};
  auto c = tls_config();
  c.tls.ca_cert.value = source.write_file("ca.pem", k_ca).string();
  c.tls.client_cert.value = source.write_file("cert.pem", k_cert).string();
  c.tls.client_key.value = source.write_file("key.pem", k_key).string();
  const ConnectTarget target = build_target(c);
  const fs::path dir = params(target.uri).at("pkipath");
  EXPECT_EQ(read(dir / "cacert.pem"), k_ca);
  EXPECT_EQ(read(dir / "clientcert.pem"), k_cert);
  EXPECT_EQ(read(dir / "clientkey.pem"), k_key);
}

// The files already are what libvirt reads from a pkipath: used in place, nothing written.
TEST(UriTest, TlsWithPemPathsUnderLibvirtsNamesUsesTheirDirectory) {
  const util::PrivateDir source{"cpi-test"};
  auto c = tls_config();
  c.tls.ca_cert.value = source.write_file("cacert.pem", k_ca).string();
  c.tls.client_cert.value = source.write_file("clientcert.pem", k_cert).string();
  c.tls.client_key.value = source.write_file("clientkey.pem", k_key).string();
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(fs::path{params(target.uri).at("pkipath")}, source.path());
  EXPECT_FALSE(target.scratch.has_value());
}

// Anything short of that (one file named otherwise, in another directory, or inline) is
// copied, as before.
TEST(UriTest, TlsWithPemPathsNotAllTogetherUnderLibvirtsNamesCopiesThem) {
  const util::PrivateDir source{"cpi-test"};
  const util::PrivateDir elsewhere{"cpi-test"};
  const auto ca = source.write_file("cacert.pem", k_ca).string();
  const auto cert = source.write_file("clientcert.pem", k_cert).string();
  source.write_file("clientkey.pem", k_key);  // next to the others, but not the one given
  const auto renamed = source.write_file("client.key", k_key).string();
  const auto moved = elsewhere.write_file("clientkey.pem", k_key).string();
  for (const auto& key_value : {renamed, moved, std::string{k_key}}) {
    SCOPED_TRACE(key_value);
    auto c = tls_config();
    c.tls.ca_cert.value = ca;
    c.tls.client_cert.value = cert;
    c.tls.client_key.value = key_value;
    const ConnectTarget target = build_target(c);
    ASSERT_TRUE(target.scratch.has_value());
    const fs::path dir = params(target.uri).at("pkipath");
    EXPECT_EQ(dir, target.scratch->path());
    EXPECT_EQ(read(dir / "clientkey.pem"), k_key);
    EXPECT_EQ(read(dir / "cacert.pem"), k_ca);
  }
}

TEST(UriTest, TlsWithOnlySomePemsIsAnError) {
  for (int missing = 0; missing < 3; ++missing) {
    SCOPED_TRACE(missing);
    auto c = tls_config();
    config::Material* fields[] = {&c.tls.ca_cert, &c.tls.client_cert, &c.tls.client_key};
    fields[missing]->value.clear();
    EXPECT_THROW(build_target(c), InvalidSettings);
  }
}

TEST(UriTest, TlsWithoutPemsUsesLibvirtsDefaultPki) {
  const ConnectTarget target = build_target(remote("tls"));
  EXPECT_EQ(target.uri, "qemu+tls://10.0.0.1/system");
  EXPECT_FALSE(target.scratch.has_value());
}

TEST(UriTest, SshInlineKeyIsWrittenToA0600Keyfile) {
  auto c = remote("ssh");
  c.ssh.private_key.value = k_ssh_key;
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(base_of(target.uri), "qemu+ssh://10.0.0.1/system");
  const fs::path keyfile = params(target.uri).at("keyfile");
  ASSERT_TRUE(target.scratch.has_value());
  EXPECT_EQ(keyfile.parent_path(), target.scratch->path());
  EXPECT_EQ(read(keyfile), std::string{k_ssh_key} + "\n");
  EXPECT_EQ(mode_of(keyfile), fs::perms::owner_read | fs::perms::owner_write);
}

TEST(UriTest, SshKeyPathIsUsedAsIs) {
  auto c = remote("ssh");
  c.ssh.private_key.value = "/etc/cpi/id_ed25519";
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(params(target.uri).at("keyfile"), "/etc/cpi/id_ed25519");
  EXPECT_FALSE(target.scratch.has_value());
}

TEST(UriTest, SshWithKnownHostsUsesLibsshAndVerifies) {
  auto c = remote("ssh");
  c.ssh.known_hosts.value = "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n";
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(base_of(target.uri), "qemu+libssh://10.0.0.1/system");
  EXPECT_EQ(target.transport, "ssh");
  const auto query = params(target.uri);
  EXPECT_EQ(query.at("known_hosts_verify"), "normal");
  EXPECT_EQ(read(query.at("known_hosts")), c.ssh.known_hosts.value);
  EXPECT_EQ(mode_of(query.at("known_hosts")), fs::perms::owner_read | fs::perms::owner_write);
}

TEST(UriTest, SshKnownHostsPathIsUsedAsIs) {
  auto c = remote("ssh");
  c.ssh.known_hosts.value = "/etc/cpi/known_hosts";
  EXPECT_EQ(params(build_target(c).uri).at("known_hosts"), "/etc/cpi/known_hosts");
}

TEST(UriTest, ExplicitSshUriWithKnownHostsSwitchesToLibssh) {
  config::LibvirtConfig c;
  c.uri = "qemu+ssh://root@10.0.0.1:2222/system";
  c.ssh.private_key.value = k_ssh_key;
  c.ssh.known_hosts.value = "[10.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n";
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(base_of(target.uri), "qemu+libssh://root@10.0.0.1:2222/system");
  const auto query = params(target.uri);
  EXPECT_EQ(query.at("known_hosts_verify"), "normal");
  EXPECT_EQ(read(query.at("known_hosts")), c.ssh.known_hosts.value);
  EXPECT_EQ(mode_of(query.at("keyfile")), fs::perms::owner_read | fs::perms::owner_write);
}

TEST(UriTest, ExplicitUriWins) {
  auto c = remote("ssh");
  c.hypervisor = "xen";
  c.uri = "qemu+tcp://other:16509/system";
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(target.uri, "qemu+tcp://other:16509/system");
  EXPECT_EQ(target.transport, "tcp");
}

TEST(UriTest, ExplicitUriTransportComesFromItsScheme) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"test:///default", "test"},        {"qemu:///session", "unix"},
      {"qemu+unix:///system", "unix"},    {"qemu+tls://h/system", "tls"},
      {"qemu+libssh2://h/system", "ssh"}, {"qemu+ext://h/system?command=x", "other"}};
  for (const auto& [uri, transport] : cases) {
    config::LibvirtConfig c;
    c.uri = uri;
    EXPECT_EQ(build_target(c).transport, transport) << uri;
  }
}

TEST(UriTest, ExplicitTlsUriGetsPkipathForInlinePems) {
  auto c = tls_config();
  c.uri = "qemu+tls://h/system";
  const ConnectTarget target = build_target(c);
  EXPECT_EQ(base_of(target.uri), "qemu+tls://h/system");
  ASSERT_TRUE(target.scratch.has_value());
  EXPECT_EQ(fs::path{params(target.uri).at("pkipath")}, target.scratch->path());
}

TEST(UriTest, DisplayUriHasNoQueryString) {
  const ConnectTarget target = build_target(tls_config());
  EXPECT_NE(target.uri.find('?'), std::string::npos);
  EXPECT_EQ(target.display_uri, "qemu+tls://10.0.0.1:16514/system");
}

}  // namespace
}  // namespace cpi::virt

// Connection hints for the messages libvirt 9 really gives (seen in tests/e2e/remote_test.cpp).
namespace cpi::virt {
namespace {

TEST(ConnectionHintTest, TlsUntrustedServerCertificateNamesTheCa) {
  const auto hint = connection_hint(
      "tls", VIR_ERR_SYSTEM_ERROR,
      "Unable to verify TLS peer: The peer did not send any certificate.");
  EXPECT_NE(hint.find("TLS"), std::string::npos) << hint;
  const auto ca = connection_hint(
      "tls", VIR_ERR_SYSTEM_ERROR,
      "Certificate failed validation: The certificate hasn't got a known issuer");
  EXPECT_NE(ca.find("libvirt.tls.ca_cert"), std::string::npos) << ca;
  EXPECT_NE(ca.find("mismatch"), std::string::npos) << ca;
}

TEST(ConnectionHintTest, TlsClientCertificateNotSignedByTheCa) {
  const auto hint = connection_hint(
      "tls", VIR_ERR_SYSTEM_ERROR,
      "Our own certificate /tmp/cpi-pki-x/clientcert.pem failed validation against "
      "/tmp/cpi-pki-x/cacert.pem: The certificate hasn't got a known issuer.");
  EXPECT_NE(hint.find("client_cert is not signed by ca_cert"), std::string::npos) << hint;
}

TEST(ConnectionHintTest, TlsClientCertificateRejectedByTheServer) {
  const auto hint = connection_hint("tls", VIR_ERR_AUTH_FAILED,
                                    "authentication failed: Failed to verify peer's certificate");
  EXPECT_NE(hint.find("libvirtd rejected it"), std::string::npos) << hint;
}

TEST(ConnectionHintTest, TlsHostnameMismatch) {
  const auto hint = connection_hint(
      "tls", VIR_ERR_SYSTEM_ERROR,
      "Certificate servercert.pem owner does not match the hostname 10.0.0.1");
  EXPECT_NE(hint.find("does not name the host"), std::string::npos) << hint;
}

TEST(ConnectionHintTest, SshHostKeyMismatchAndUnknown) {
  const auto changed = connection_hint(
      "ssh", VIR_ERR_LIBSSH,
      "!!! SSH HOST KEY VERIFICATION FAILED !!!: Identity of host '127.0.0.1:2222' differs from "
      "stored identity.");
  EXPECT_NE(changed.find("does not match"), std::string::npos) << changed;
  const auto unknown = connection_hint(
      "ssh", VIR_ERR_LIBSSH,
      "No user interaction callback provided: Can't verify the session host key");
  EXPECT_NE(unknown.find("unknown"), std::string::npos) << unknown;
  const auto openssh =
      connection_hint("ssh", VIR_ERR_SYSTEM_ERROR, "Cannot recv data: Host key verification failed.");
  EXPECT_NE(openssh.find("unknown"), std::string::npos) << openssh;
}

TEST(ConnectionHintTest, SshAuthenticationNamesTheKey) {
  const auto hint = connection_hint("ssh", VIR_ERR_AUTH_FAILED,
                                    "authentication failed: no authentication method succeeded");
  EXPECT_NE(hint.find("libvirt.ssh.private_key"), std::string::npos) << hint;
}

TEST(ConnectionHintTest, UnixPermissionAndDaemonDown) {
  EXPECT_NE(connection_hint("unix", VIR_ERR_SYSTEM_ERROR,
                            "Failed to connect socket to '/run/libvirt/libvirt-sock': "
                            "Permission denied")
                .find("socket"),
            std::string::npos);
  EXPECT_NE(connection_hint("tls", VIR_ERR_SYSTEM_ERROR,
                            "unable to connect to server at '127.0.0.1:16514': Connection refused")
                .find("daemon down"),
            std::string::npos);
}

}  // namespace
}  // namespace cpi::virt
