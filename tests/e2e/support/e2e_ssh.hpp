#pragma once
// SSH for the e2e tier: an sshd of the test's own on 127.0.0.1 and a spare port (NETWORK RULE),
// with a temporary host key, a client key pair whose public half is the only authorized key, and
// the matching known_hosts line. Stopped and its files removed when this goes away.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/support/e2e_host.hpp"
#include "e2e/support/e2e_tls.hpp"

namespace cpi::testing::e2e {

class TestSshd {
 public:
  // `launch` runs sshd and returns its exit code (another mount namespace: private_libvirtd.hpp).
  explicit TestSshd(const std::filesystem::path& dir,
                    const std::function<int(const std::vector<std::string>&)>& launch =
                        run_detached)
      : m_dir(dir) {
    if (::access("/usr/sbin/sshd", X_OK) != 0) {
      m_skip = "/usr/sbin/sshd is not installed (scripts/install-deps.sh installs openssh-server)";
      return;
    }
    std::filesystem::create_directories(m_dir);
    ::chmod(m_dir.c_str(), 0700);
    ::mkdir("/run/sshd", 0755);  // sshd's privilege separation dir
    for (const char* key : {"host_key", "client_key", "other_host_key"}) {
      run_tool("/usr/bin/ssh-keygen",
               {"-q", "-t", "ed25519", "-N", "", "-C", "cpi-e2e", "-f", (m_dir / key).string()});
    }
    m_port = spare_loopback_port();
    write_text((m_dir / "authorized_keys").string(),
               read_text((m_dir / "client_key.pub").string()) + "\n");
    const auto conf = m_dir / "sshd_config";
    write_text(conf.string(), "Port " + std::to_string(m_port) +
                                  "\nListenAddress 127.0.0.1\nHostKey " +
                                  (m_dir / "host_key").string() + "\nAuthorizedKeysFile " +
                                  (m_dir / "authorized_keys").string() +
                                  "\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                                  "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                                  "PidFile " +
                                  (m_dir / "sshd.pid").string() + "\n");
    const int rc =
        launch({"/usr/sbin/sshd", "-f", conf.string(), "-E", (m_dir / "sshd.log").string()});
    for (int i = 0; i < 200 && !loopback_listening(m_port); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    m_pid = static_cast<pid_t>(std::atol(read_text((m_dir / "sshd.pid").string()).c_str()));
    if (m_pid <= 0 || !loopback_listening(m_port)) {
      m_skip = "sshd exited with " + std::to_string(rc) + ": " +
               read_text((m_dir / "sshd.log").string());
    }
  }
  TestSshd(const TestSshd&) = delete;
  TestSshd& operator=(const TestSshd&) = delete;
  ~TestSshd() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      for (int i = 0; i < 100 && alive(m_pid); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (alive(m_pid)) ::kill(m_pid, SIGKILL);
    }
    std::error_code ignored;
    std::filesystem::remove_all(m_dir, ignored);
  }

  const std::string& unavailable() const { return m_skip; }
  int port() const { return m_port; }
  std::string client_key() const { return read_text((m_dir / "client_key").string()) + "\n"; }
  // The known_hosts line for this sshd; with `other` the key of another host (a mismatch).
  std::string known_hosts(bool other = false) const {
    std::istringstream pub{
        read_text((m_dir / (other ? "other_host_key.pub" : "host_key.pub")).string())};
    std::string type, key;
    pub >> type >> key;
    return "[127.0.0.1]:" + std::to_string(m_port) + " " + type + " " + key + "\n";
  }
  std::string log() const { return read_text((m_dir / "sshd.log").string()); }

 private:
  std::filesystem::path m_dir;
  std::string m_skip;
  int m_port = 0;
  pid_t m_pid = 0;
};

}  // namespace cpi::testing::e2e
