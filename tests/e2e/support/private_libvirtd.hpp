#pragma once
// PrivateLibvirtd: a libvirtd and virtlogd of the test's own, in a mount namespace of their own
// with private /run/libvirt, /etc/libvirt, /var/lib/libvirt and /var/cache/libvirt (temp dirs
// bound over them; every mount is made private first, so nothing leaks to the host), reached as
// qemu:///system?socket=<temp dir>/run/libvirt-sock (inside the namespace, the usual
// /run/libvirt/libvirt-sock: a process started there with run_in_namespace, an sshd for the ssh
// transport, reaches this daemon as the default one). A system libvirtd, running or not, is
// never touched: the daemons here have their own pid files, sockets, config and state.
//
// Only the PIDs started here are ever signalled: the namespace holder, virtlogd and libvirtd (one
// process group), and, when it stops, whatever still runs in this namespace (guests it started).
// stop() (and the destructor) destroys the daemon's domains and networks, stops the daemons and
// removes the temp dir, also after a failed test. The processes get PR_SET_PDEATHSIG, so a test
// process that dies takes its daemons with it. Construct and stop it on the test's main thread
// (the death signal follows the thread that forked).
//
// Config: a minimal libvirtd.conf (unix socket 0700, no auth: root only), an empty qemu.conf
// (the packaged defaults: DAC as libvirt-qemu, which TCG guests need nothing beyond), no networks
// at all (the host's default network is not in this /etc/libvirt). listen_tls / listen_tcp only
// with Options, and only on 127.0.0.1 (NETWORK RULE). Networks are made through
// make_isolated_network (no <ip>, no <forward>, a bridge name of our own), so the host's bridges
// never collide with these. qemu's capabilities, probed once (~4 s), are kept for the next one.

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cpi/virt/handles.hpp"
#include "e2e/support/e2e_host.hpp"
#include "support/libvirt_lists.hpp"

namespace cpi::testing::e2e {

// Where qemu's probed capabilities are kept between private daemons.
constexpr const char* k_private_caps_cache = "/tmp/bosh-libvirt-cpi-e2e.qemu-caps";

struct PrivateLibvirtdOptions {
  std::string extra_conf;  // more libvirtd.conf lines (listen_tls, ports, certificates)
  bool listen = false;     // libvirtd --listen (for extra_conf's listen_tls / listen_tcp)
};

class PrivateLibvirtd {
 public:
  using Options = PrivateLibvirtdOptions;

  explicit PrivateLibvirtd(Options options = {}) : m_options(std::move(options)) {
    std::string pattern = "/tmp/cpie2e-privd-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      m_why = "mkdtemp " + pattern + " failed";
      return;
    }
    m_dir = pattern;
    ::chmod(m_dir.c_str(), 0711);  // qemu (libvirt-qemu) reaches the pool and state inside
    for (const char* sub : {"run", "etc", "lib", "cache", "log", "pool"}) {
      std::filesystem::create_directories(m_dir / sub);
      ::chmod((m_dir / sub).c_str(), 0755);
    }
    write_configs();
    restore_caps();
    if (!start_holder() || !start_virtlogd() || !start_libvirtd(m_why)) {
      if (m_why.empty()) m_why = "the private libvirtd did not start";
      m_why += "; libvirtd log:\n" + tail(m_dir / "log" / "libvirtd.log");
    }
  }
  PrivateLibvirtd(const PrivateLibvirtd&) = delete;
  PrivateLibvirtd& operator=(const PrivateLibvirtd&) = delete;
  ~PrivateLibvirtd() { stop(); }

  // Empty when the daemon runs; else why it does not.
  const std::string& unavailable() const { return m_why; }
  std::string socket() const { return (m_dir / "run" / "libvirt-sock").string(); }
  std::string uri() const { return "qemu:///system?socket=" + socket(); }
  const std::filesystem::path& dir() const { return m_dir; }
  std::filesystem::path pool_dir() const { return m_dir / "pool"; }
  // What the daemon sees as /run/libvirt.
  std::filesystem::path run_dir() const { return m_dir / "run"; }
  pid_t libvirtd_pid() const { return m_libvirtd; }
  bool libvirtd_running() const { return m_libvirtd > 0 && alive(m_libvirtd); }

  // "socket <path>, libvirtd <pid>, virtlogd <pid>, namespace holder <pid>"
  std::string describe() const {
    return "socket " + socket() + ", libvirtd pid " + std::to_string(m_libvirtd) +
           ", virtlogd pid " + std::to_string(m_virtlogd) + ", namespace holder pid " +
           std::to_string(m_holder);
  }

  // A connection to this daemon (waits up to 30 s for it to accept); null when it cannot.
  virt::Connection connect() const {
    virt::Connection conn;
    for (int i = 0; i < 300 && !conn; ++i) {
      conn.reset(virConnectOpen(uri().c_str()));
      if (!conn) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    virResetLastError();
    return conn;
  }

  // SIGKILL to libvirtd (a daemon dying mid-call), reaped here.
  void kill_libvirtd() {
    if (m_libvirtd <= 0) return;
    ::kill(m_libvirtd, SIGKILL);
    reap(m_libvirtd);
    m_libvirtd = 0;
  }

  // SIGTERM to libvirtd (SIGKILL after 15 s), reaped here.
  void stop_libvirtd() {
    if (m_libvirtd <= 0) return;
    ::kill(m_libvirtd, SIGTERM);
    for (int i = 0; i < 300 && exited(m_libvirtd) == false; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (m_libvirtd > 0 && alive(m_libvirtd)) ::kill(m_libvirtd, SIGKILL);
    reap(m_libvirtd);
    m_libvirtd = 0;
  }

  // Starts libvirtd (again) in this namespace; false with `why` when it does not come up.
  bool start_libvirtd(std::string& why) {
    if (m_holder <= 0) {
      why = "no namespace";
      return false;
    }
    std::vector<std::string> argv{"/usr/sbin/libvirtd", "-p", (m_dir / "libvirtd.pid").string(),
                                  "-f", (m_dir / "etc" / "libvirtd.conf").string()};
    if (m_options.listen) argv.push_back("--listen");
    ::unlink(socket().c_str());
    m_libvirtd = spawn(argv, m_dir / "log" / "libvirtd.out");
    for (int i = 0; i < 600 && libvirtd_running(); ++i) {
      if (virt::Connection probe{virConnectOpen(uri().c_str())}) {
        virResetLastError();
        return true;
      }
      virResetLastError();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    why = "libvirtd (pid " + std::to_string(m_libvirtd) + ") does not answer on " + socket();
    return false;
  }

  // Runs `argv` in this namespace and waits for it (a daemon's parent exits at once); its exit
  // code, or -1.
  int run_in_namespace(const std::vector<std::string>& argv, const std::string& log) {
    const pid_t pid = spawn(argv, log);
    int status = 0;
    if (pid <= 0 || ::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // An isolated network (no <ip>, no <forward>; bridge `bridge`, at most 15 characters) on this
  // daemon, removed by stop() even when libvirtd is gone by then.
  bool make_isolated_network(virConnect& conn, const std::string& name, const std::string& bridge,
                             std::string& why) {
    const std::string xml = "<network><name>" + name + "</name><bridge name='" + bridge +
                            "' stp='off' delay='0'/></network>";
    Ipv6Guard quiet;
    virt::Network net{virNetworkCreateXML(&conn, xml.c_str())};
    if (!net) {
      why = "creating network " + name + " failed";
      return false;
    }
    m_bridges.push_back(bridge);
    Ipv6Guard::disable_on(bridge);
    return true;
  }

  // Destroys the daemon's domains and networks, stops the daemons and whatever else runs in the
  // namespace, removes the temp dir. Idempotent.
  void stop() {
    if (m_dir.empty()) return;
    if (libvirtd_running()) {
      if (virt::Connection conn{virConnectOpen(uri().c_str())}) destroy_all(*conn);
      virResetLastError();
    }
    stop_libvirtd();
    for (pid_t* pid : {&m_virtlogd, &m_holder}) {
      if (*pid <= 0) continue;
      ::kill(*pid, *pid == m_holder ? SIGKILL : SIGTERM);
      for (int i = 0; i < 100 && !exited(*pid); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (alive(*pid)) ::kill(*pid, SIGKILL);
      reap(*pid);
      *pid = 0;
    }
    kill_namespace_leftovers();
    for (const auto& bridge : m_bridges) {  // left when libvirtd died before it removed them
      if (::access(("/sys/class/net/" + bridge).c_str(), F_OK) == 0) {
        run_detached({"ip", "link", "del", bridge});
      }
    }
    save_caps();
    std::error_code ignored;
    std::filesystem::remove_all(m_dir, ignored);
    m_dir.clear();
  }

 private:
  static std::string tail(const std::filesystem::path& file) {
    const std::string text = read_text(file.string());
    return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
  }

  void write_configs() {
    const auto etc = m_dir / "etc";
    write_text((etc / "libvirtd.conf").string(),
               "# sockets in the private /run/libvirt (<dir>/run outside the namespace)\n"
               "unix_sock_rw_perms = \"0700\"\nunix_sock_ro_perms = \"0700\"\n"
                   "unix_sock_admin_perms = \"0700\"\n"
                   "auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n"
                   "listen_addr = \"127.0.0.1\"\n"
                   "log_outputs = \"3:file:" +
                   (m_dir / "log" / "libvirtd.log").string() + "\"\n" + m_options.extra_conf);
    write_text((etc / "qemu.conf").string(), "# private e2e libvirtd: packaged defaults\n");
    write_text((etc / "virtlogd.conf").string(),
               "log_outputs = \"3:file:" + (m_dir / "log" / "virtlogd.log").string() + "\"\n");
  }

  void restore_caps() {
    std::error_code ec;
    const auto into = m_dir / "cache" / "qemu" / "capabilities";
    std::filesystem::create_directories(into, ec);
    for (const auto& e : std::filesystem::directory_iterator(k_private_caps_cache, ec)) {
      std::filesystem::copy_file(e.path(), into / e.path().filename(), ec);
    }
  }
  void save_caps() {
    std::error_code ec;
    const auto from = m_dir / "cache" / "qemu" / "capabilities";
    if (!std::filesystem::exists(from, ec)) return;
    std::filesystem::create_directories(k_private_caps_cache, ec);
    for (const auto& e : std::filesystem::directory_iterator(from, ec)) {
      std::filesystem::copy_file(e.path(), std::filesystem::path{k_private_caps_cache} /
                                               e.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
  }

  // The holder: a child that makes the namespace, binds the temp dirs and then sleeps; the
  // daemons enter its namespace. Reports mount failures (errno) through a pipe.
  bool start_holder() {
    const std::array<std::pair<std::string, std::string>, 4> binds{
        {{(m_dir / "run").string(), "/run/libvirt"},
         {(m_dir / "etc").string(), "/etc/libvirt"},
         {(m_dir / "lib").string(), "/var/lib/libvirt"},
         {(m_dir / "cache").string(), "/var/cache/libvirt"}}};
    for (const auto& [from, to] : binds) std::filesystem::create_directories(to);
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return false;
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int failed = 0;
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        failed = errno;
      }
      for (const auto& [from, to] : binds) {
        if (failed == 0 && ::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0) {
          failed = errno;
        }
      }
      (void)!::write(report[1], &failed, sizeof failed);
      if (failed != 0) ::_exit(1);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl("/bin/sleep", "sleep", "infinity", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(report[1]);
    int failed = -1;
    const bool got = ::read(report[0], &failed, sizeof failed) == sizeof failed;
    ::close(report[0]);
    m_holder = pid;
    if (!got || failed != 0) {
      m_why = "making the private mount namespace failed: " +
              std::string{got ? std::strerror(failed) : "the holder died"};
      return false;
    }
    m_namespace = namespace_of(m_holder);
    return !m_namespace.empty();
  }

  bool start_virtlogd() {
    m_virtlogd = spawn({"/usr/sbin/virtlogd", "-p", (m_dir / "virtlogd.pid").string(), "-f",
                        (m_dir / "etc" / "virtlogd.conf").string()},
                       m_dir / "log" / "virtlogd.out");
    const auto sock = m_dir / "run" / "virtlogd-sock";
    for (int i = 0; i < 200 && alive(m_virtlogd); ++i) {
      if (std::filesystem::exists(sock)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    m_why = "virtlogd did not create " + sock.string();
    return false;
  }

  // Runs `argv` in the holder's mount namespace and process group, output to `log`.
  pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
    const std::string ns = "/proc/" + std::to_string(m_holder) + "/ns/mnt";
    const int ns_fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) return 0;
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    const std::string log_path = log.string();
    const pid_t holder = m_holder;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, holder);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::setns(ns_fd, CLONE_NEWNS) != 0 || ::chdir("/") != 0) ::_exit(126);
      const int null = ::open("/dev/null", O_RDONLY);
      const int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(null, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(ns_fd);
    return pid > 0 ? pid : 0;
  }

  static std::string namespace_of(pid_t pid) {
    std::error_code ec;
    const auto link =
        std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/mnt", ec);
    return ec ? "" : link.string();
  }

  // True once `pid` (a child of ours) has exited; reaps it.
  static bool exited(pid_t pid) {
    if (pid <= 0) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD) || !alive(pid);
  }
  static void reap(pid_t pid) {
    if (pid > 0) ::waitpid(pid, nullptr, WNOHANG);
  }

  // Every domain and network of this daemon, destroyed (their qemu processes and bridges gone).
  static void destroy_all(virConnect& conn) {
    for (auto& d : all_domains(conn, VIR_CONNECT_LIST_DOMAINS_ACTIVE)) virDomainDestroy(d.get());
    for (auto& net : all_networks(conn, VIR_CONNECT_LIST_NETWORKS_ACTIVE)) {
      virNetworkDestroy(net.get());
    }
    virResetLastError();
  }

  // Processes still in this mount namespace (a guest whose daemon was killed): ours, stopped.
  void kill_namespace_leftovers() {
    if (m_namespace.empty()) return;
    for (int round = 0; round < 2; ++round) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto pid = static_cast<pid_t>(std::atol(name.c_str()));
        if (pid != ::getpid() && namespace_of(pid) == m_namespace) {
          ::kill(pid, round == 0 ? SIGTERM : SIGKILL);
        }
      }
      if (round == 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  Options m_options;
  std::filesystem::path m_dir;
  std::string m_why;
  std::string m_namespace;  // "mnt:[inode]" of the holder
  pid_t m_holder = 0, m_virtlogd = 0, m_libvirtd = 0;
  std::vector<std::string> m_bridges;
};

}  // namespace cpi::testing::e2e
