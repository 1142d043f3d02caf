#pragma once
// TLS for the e2e tier: a throwaway PKI made with certtool (a CA, a server certificate for
// 127.0.0.1, a client certificate) and the environment's libvirtd restarted to listen for TLS
// on 127.0.0.1 only (NETWORK RULE), restored as it was afterwards.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/e2e_host.hpp"
#include "support/run_cpi.hpp"

namespace cpi::testing::e2e {

// A free TCP port on 127.0.0.1 (bound to port 0 and released).
inline int spare_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Whether something accepts TCP connections on 127.0.0.1:`port`.
inline bool loopback_listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

// Runs a helper tool; throws with its stderr when it fails.
inline void run_tool(const std::string& binary, const std::vector<std::string>& args) {
  const auto run = run_process(binary, args, "", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"});
  if (run.exit_code != 0) throw std::runtime_error(binary + " failed:\n" + run.err);
}

// A CA (cacert.pem, cakey.pem) in `dir`, made by certtool.
inline void make_ca(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  write_text((dir / "ca.info").string(), "cn = " + name +
                                             "\nca\ncert_signing_key\n"
                                             "expiration_days = 2\n");
  run_tool("/usr/bin/certtool",
           {"--generate-privkey", "--sec-param=medium", "--outfile", (dir / "cakey.pem").string()});
  run_tool("/usr/bin/certtool",
           {"--generate-self-signed", "--load-privkey", (dir / "cakey.pem").string(), "--template",
            (dir / "ca.info").string(), "--outfile", (dir / "cacert.pem").string()});
}

// `<name>key.pem` and `<name>cert.pem` in `dir`, signed by the CA there; `extra` goes into the
// certtool template (usage, names).
inline void make_signed(const std::filesystem::path& dir, const std::string& name,
                        const std::string& extra) {
  const auto info = (dir / (name + ".info")).string();
  write_text(info, "organization = cpi-e2e\n" + extra +
                       "encryption_key\nsigning_key\nexpiration_days = 2\n");
  const auto key = (dir / (name + "key.pem")).string();
  run_tool("/usr/bin/certtool", {"--generate-privkey", "--sec-param=medium", "--outfile", key});
  run_tool("/usr/bin/certtool",
           {"--generate-certificate", "--load-privkey", key, "--load-ca-certificate",
            (dir / "cacert.pem").string(), "--load-ca-privkey", (dir / "cakey.pem").string(),
            "--template", info, "--outfile", (dir / (name + "cert.pem")).string()});
}

// The test PKI: dir/ca (cacert, server*, client*) and dir/other-ca (an unrelated CA and a
// client certificate it signed).
struct TestPki {
  std::filesystem::path dir;
  explicit TestPki(const std::filesystem::path& where) : dir(where) {
    make_ca(dir / "ca", "cpi-e2e CA");
    make_signed(dir / "ca", "server",
                "cn = 127.0.0.1\nip_address = 127.0.0.1\ndns_name = localhost\ntls_www_server\n");
    make_signed(dir / "ca", "client", "cn = cpi-e2e-client\ntls_www_client\n");
    make_ca(dir / "other-ca", "cpi-e2e unrelated CA");
    make_signed(dir / "other-ca", "client", "cn = cpi-e2e-client\ntls_www_client\n");
  }
  std::string pem(const std::string& file) const {
    return read_text((dir / "ca" / file).string()) + "\n";
  }
  // A file of the unrelated CA's dir (cacert.pem, clientcert.pem, clientkey.pem).
  std::string other(const std::string& file) const {
    return read_text((dir / "other-ca" / file).string()) + "\n";
  }
};

// The environment's libvirtd (which it started itself) replaced, while this lives, by one that
// also listens for TLS on 127.0.0.1:port() with the test PKI; then the plain one comes back.
class TlsLibvirtd {
 public:
  TlsLibvirtd(Daemon& owned, const TestPki& pki, std::function<void()> reconnect)
      : m_owned(owned), m_reconnect(std::move(reconnect)) {
    if (!owned.started_here()) {
      m_skip =
          "libvirtd was not started by the e2e environment, so the test may not restart it "
          "with --listen";
      return;
    }
    m_port = spare_loopback_port();
    const auto conf = pki.dir / "libvirtd.conf";
    const auto ca = pki.dir / "ca";
    write_text(conf.string(),
               "listen_tls = 1\nlisten_tcp = 0\nlisten_addr = \"127.0.0.1\"\n"
               "tls_port = \"" +
                   std::to_string(m_port) + "\"\n" + "key_file = \"" +
                   (ca / "serverkey.pem").string() + "\"\n" + "cert_file = \"" +
                   (ca / "servercert.pem").string() + "\"\n" + "ca_file = \"" +
                   (ca / "cacert.pem").string() + "\"\n" +
                   "tls_no_verify_certificate = 0\nauth_tls = \"none\"\n");
    owned.stop();
    m_stopped = true;
    const int rc = run_detached({"libvirtd", "-d", "-l", "-f", conf.string()});
    for (int i = 0; i < 300 && !loopback_listening(m_port); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const auto pids = pids_named("libvirtd");
    if (pids.empty() || !loopback_listening(m_port)) {
      m_skip = "libvirtd -d -l -f " + conf.string() + " exited with " + std::to_string(rc) +
               " and does not listen on 127.0.0.1:" + std::to_string(m_port);
      return;
    }
    m_pid = pids.front();
    // A run that dies now leaves this daemon to the next run, which adopts and stops it.
    write_text(std::string{k_host_lock} + ".libvirtd.pid", std::to_string(m_pid) + "\n");
    m_reconnect();  // the test's own connection still points at the old daemon
  }
  TlsLibvirtd(const TlsLibvirtd&) = delete;
  TlsLibvirtd& operator=(const TlsLibvirtd&) = delete;
  ~TlsLibvirtd() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      for (int i = 0; i < 300 && alive(m_pid); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (alive(m_pid)) ::kill(m_pid, SIGKILL);
    }
    std::string why;
    if (m_stopped && !m_owned.ensure_running(why)) {
      std::fprintf(stderr, "[e2e] restoring libvirtd failed: %s\n", why.c_str());
    }
    try {
      if (m_stopped) m_reconnect();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "[e2e] reconnecting after the restore failed: %s\n", e.what());
    }
  }
  const std::string& unavailable() const { return m_skip; }
  int port() const { return m_port; }

 private:
  Daemon& m_owned;
  std::function<void()> m_reconnect;
  std::string m_skip;
  int m_port = 0;
  pid_t m_pid = 0;
  bool m_stopped = false;
};

}  // namespace cpi::testing::e2e
