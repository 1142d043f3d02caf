#pragma once
// TLS for the e2e tier: a throwaway PKI made with certtool (a CA, a server certificate for
// 127.0.0.1, a client certificate) and loopback ports. The daemon that listens for TLS with it is
// always a private libvirtd of the test's own (e2e/support/private_libvirtd.hpp, Options::listen and
// extra_conf), on 127.0.0.1 only (NETWORK RULE): no test restarts the host's libvirtd.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "e2e/support/e2e_host.hpp"
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

}  // namespace cpi::testing::e2e
