#pragma once
// Host plumbing for the e2e tier: a host-wide lock so e2e runs (and scripts/demo.sh) never share
// daemons or names, the libvirt daemons (started only when none answers, stopped only when
// started here, never found by name), and the IPv6 guard that keeps new tap devices silent.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cpi::testing::e2e {

// The lock every e2e process and scripts/demo.sh hold while they use libvirt (flock(1) works on
// it too). A fixed path, so runs from different checkouts and build dirs see each other.
constexpr const char* k_host_lock = "/tmp/bosh-libvirt-cpi-e2e.lock";

class HostLock {
 public:
  HostLock() = default;
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;
  ~HostLock() { release(); }

  // Blocks until the lock is ours. Throws std::runtime_error when the file cannot be opened.
  void acquire() {
    m_fd = ::open(k_host_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (m_fd < 0) {
      throw std::runtime_error(std::string{"open "} + k_host_lock + ": " + std::strerror(errno));
    }
    while (::flock(m_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  bool try_acquire() {
    m_fd = ::open(k_host_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (m_fd >= 0 && ::flock(m_fd, LOCK_EX | LOCK_NB) == 0) return true;
    release();
    return false;
  }
  void release() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

 private:
  int m_fd = -1;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in{path};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

inline bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Whether `pid` runs (a zombie does not: a daemon reparented to a subreaper that does not reap
// stays one after it exited).
inline bool alive(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

// Runs `argv` with stdio on /dev/null and waits for it (a daemon's `-d` parent exits at once).
// Returns its exit code, or -1.
inline int run_detached(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Whether something accepts connections on the unix socket `path`.
inline bool unix_socket_answers(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof addr.sun_path) {
    if (fd >= 0) ::close(fd);
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// The host's libvirt daemon `virtlogd` or `libvirtd`, started with `-d` only when none answers on
// its socket (/run/libvirt/virtlogd-sock, /run/libvirt/libvirt-sock). A daemon started here gets
// its own pid file next to the host lock (`-p`, so the daemon itself writes the pid), and only
// that pid is ever signalled. A run that died leaves its daemon to the next run, which adopts
// (and stops) it only when the pid in the file runs with that very pid file on its command line.
// No daemon is ever found or signalled by its name: a system daemon, or another test's private
// one (e2e/support/private_libvirtd.hpp), is never touched.
class Daemon {
 public:
  explicit Daemon(std::string name)
      : m_name(std::move(name)),
        m_pid_file(std::string{k_host_lock} + "." + m_name + ".pid"),
        m_socket(m_name == "libvirtd" ? "/run/libvirt/libvirt-sock"
                                      : "/run/libvirt/" + m_name + "-sock") {}
  const std::string& name() const { return m_name; }
  bool started_here() const { return m_pid > 0; }
  bool running() const { return unix_socket_answers(m_socket); }

  // Starts the daemon unless one answers on its socket; returns false (with `why`) when it
  // cannot.
  bool ensure_running(std::string& why) {
    if (const pid_t earlier = started_by_a_run(); earlier > 0) {
      m_pid = earlier;  // started by an e2e run that did not stop it
      return true;
    }
    if (running()) return true;
    ::unlink(m_pid_file.c_str());  // its daemon is gone
    const int rc = run_detached({m_name, "-d", "-p", m_pid_file});
    for (int i = 0; i < 200 && !(started_by_a_run() > 0 && running()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    m_pid = started_by_a_run();
    if (m_pid <= 0 || !running()) {
      why = "'" + m_name + " -d -p " + m_pid_file + "' exited with " + std::to_string(rc) +
            " and no " + m_name + " answers on " + m_socket;
      return false;
    }
    return true;
  }

  // Stops the daemon this object started or adopted (SIGTERM, then SIGKILL after 15 s); no-op
  // otherwise.
  void stop() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGTERM);
    for (int i = 0; i < 300 && alive(m_pid); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (alive(m_pid)) ::kill(m_pid, SIGKILL);
    ::unlink(m_pid_file.c_str());
    m_pid = 0;
  }

 private:
  // The pid in our pid file when that process runs with `-p <our pid file>` on its command line
  // (a daemon an e2e run started), else 0.
  pid_t started_by_a_run() const {
    const auto pid = static_cast<pid_t>(std::atol(read_text(m_pid_file).c_str()));
    if (pid <= 0 || !alive(pid)) return 0;
    std::ifstream in{"/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary};
    const std::string cmdline((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (std::size_t from = 0; from < cmdline.size();) {
      const auto nul = cmdline.find('\0', from);
      const auto end = nul == std::string::npos ? cmdline.size() : nul;
      args.push_back(cmdline.substr(from, end - from));
      from = end + 1;
    }
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if ((args[i] == "-p" || args[i] == "--pid-file") && args[i + 1] == m_pid_file) return pid;
    }
    return 0;
  }

  std::string m_name;
  std::string m_pid_file;
  std::string m_socket;
  pid_t m_pid = 0;
};

// While alive, new network devices get no IPv6 (so a tap the guest's NIC sits on sends no
// router solicitations or MLD reports). Restores the previous default when it goes away.
class Ipv6Guard {
 public:
  Ipv6Guard() {
    m_old = read_text(k_default);
    if (!m_old.empty() && m_old != "1") m_changed = write_text(k_default, "1");
  }
  Ipv6Guard(const Ipv6Guard&) = delete;
  Ipv6Guard& operator=(const Ipv6Guard&) = delete;
  ~Ipv6Guard() {
    if (m_changed) write_text(k_default, m_old);
  }

  // Disables IPv6 on `device` itself (bridge or tap). False when the knob is missing.
  static bool disable_on(const std::string& device) {
    const std::string knob = "/proc/sys/net/ipv6/conf/" + device + "/disable_ipv6";
    if (::access(knob.c_str(), F_OK) != 0) return false;
    return write_text(knob, "1") && read_text(knob) == "1";
  }

 private:
  static constexpr const char* k_default = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
  std::string m_old;
  bool m_changed = false;
};

// Lets the kvm group use /dev/kvm, as the libvirt packages do; without it libvirtd re-probes
// qemu on every call (30-60 s). False when there is no /dev/kvm.
inline bool fix_kvm_permissions() {
  struct stat st {};
  if (::stat("/dev/kvm", &st) != 0) return false;
  run_detached({"chgrp", "kvm", "/dev/kvm"});
  ::chmod("/dev/kvm", 0660);
  return true;
}

}  // namespace cpi::testing::e2e
