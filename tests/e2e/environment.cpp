// The e2e tier's global environment (tests/e2e/support/e2e_env.hpp): daemons, pool, isolated
// network, domain type and test stemcell, and their removal.

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/handles.hpp"
#include "e2e/support/e2e_env.hpp"
#include "e2e/support/e2e_shell.hpp"
#include "support/run_cpi.hpp"
#include "support/libvirt_lists.hpp"

extern char** environ;

namespace cpi::testing::e2e {
namespace {

Environment* g_env = nullptr;


void remove_console_logs(const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(k_console_dir, ec)) {
    if (starts_with(entry.path().filename().string(), prefix)) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
}

std::vector<std::string> this_environment() {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

}  // namespace

Environment& env() { return *g_env; }

virConnect& Environment::conn() {
  if (!m_conn || virConnectIsAlive(m_conn.get()) != 1) reconnect();
  return *m_conn;
}

void Environment::reconnect() {
  m_conn.reset();
  for (int i = 0; i < 300 && !m_conn; ++i) {  // up to 30 s while a daemon starts
    m_conn.reset(virConnectOpen(k_uri));
    if (!m_conn) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!m_conn) {
    throw std::runtime_error(std::string{"cannot connect to "} + k_uri + ": " +
                             last_libvirt_error());
  }
}

bool Environment::start_daemons(std::string& why) {
  if (::access("/usr/sbin/libvirtd", X_OK) != 0 && ::access("/usr/bin/libvirtd", X_OK) != 0) {
    why = "libvirtd is not installed (scripts/install-deps.sh installs it)";
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories("/var/log/libvirt", ec);
  if (!m_virtlogd.ensure_running(why)) return false;
  if (!m_libvirtd.ensure_running(why)) return false;
  try {
    reconnect();
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
  return true;
}

void Environment::SetUp() {
  virt::install_quiet_error_handler();
  std::signal(SIGPIPE, SIG_IGN);  // a restarted libvirtd or a CPI that quit early closes a pipe
  if (!m_lock.try_acquire()) {
    std::printf("[e2e] waiting for %s (another e2e run or scripts/demo.sh holds it)\n",
                k_host_lock);
    std::fflush(stdout);
    m_lock.acquire();
  }
  const bool kvm = fix_kvm_permissions();
  std::string why;
  if (!start_daemons(why)) {  // each test skips with this (ctest then reports them skipped)
    m_unavailable = "no libvirtd can be started, so the e2e tier cannot run: " + why;
    std::printf("[e2e] %s\n", m_unavailable.c_str());
    return;
  }
  std::printf("[e2e] virtlogd %s, libvirtd %s; /dev/kvm %s\n",
              m_virtlogd.started_here() ? "started here" : "already running",
              m_libvirtd.started_here() ? "started here" : "already running",
              kvm ? "present" : "absent");
  m_prefix = std::string{k_name_root} + random_hex(8) + "-";
  m_pool = m_prefix + "pool";
  m_network = m_prefix + "net";
  remove_stale_runs();
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string{tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"} + "/" + m_prefix + "XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
  m_root = pattern;
  ::chmod(m_root.c_str(), 0711);  // qemu runs as another user and must reach the pool inside
  std::filesystem::create_directories(m_root / "tmp");
  ASSERT_NO_FATAL_FAILURE(make_pool());
  ASSERT_NO_FATAL_FAILURE(make_network());
  ASSERT_NO_FATAL_FAILURE(build_stemcell());
  choose_domain_type();  // boots the test stemcell
  std::printf("[e2e] domain type %s (%s); names start with %s\n", m_domain_type.c_str(),
              m_domain_type_reason.c_str(), m_prefix.c_str());
  std::fflush(stdout);
}

void Environment::TearDown() {
  if (m_prefix.empty()) return;  // skipped before anything was made
  try {
    for (const auto& what : remove_objects(m_prefix)) {
      std::printf("[e2e] cleanup: removed %s\n", what.c_str());
    }
    if (m_pool_made) {
      if (virt::Pool pool{virStoragePoolLookupByName(&conn(), m_pool.c_str())}) {
        if (virStoragePoolIsActive(pool.get()) == 1) virStoragePoolDestroy(pool.get());
        virStoragePoolUndefine(pool.get());
      }
    }
    if (m_network_made) {
      if (virt::Network net{virNetworkLookupByName(&conn(), m_network.c_str())}) {
        virNetworkDestroy(net.get());
        if (virNetworkIsPersistent(net.get()) == 1) virNetworkUndefine(net.get());
      }
    }
    virResetLastError();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cleanup: " << e.what();
  }
  m_conn.reset();
  std::error_code ignored;
  if (!m_root.empty()) std::filesystem::remove_all(m_root, ignored);
  m_libvirtd.stop();
  m_virtlogd.stop();
  print_phases();
  m_lock.release();
}

void Environment::record(const std::string& phase, double seconds) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  m_phases.push_back({info != nullptr ? std::string{info->test_suite_name()} + "." + info->name()
                                      : "(environment)",
                      phase, seconds});
}

void Environment::print_phases() const {
  if (m_phases.empty()) return;
  std::printf("\n[e2e] phase times (domain type %s: %s)\n", m_domain_type.c_str(),
              m_domain_type_reason.c_str());
  // Each test runs in its own process under ctest: the lines also go to one file that
  // scripts/test.sh prints after the whole run.
  std::FILE* summary = std::fopen(CPI_E2E_PHASES_FILE, "a");
  for (const auto& p : m_phases) {
    std::printf("[e2e]   %-52s %-42s %7.2f s\n", p.test.c_str(), p.phase.c_str(), p.seconds);
    if (summary != nullptr) {
      std::fprintf(summary, "%-52s %-42s %7.2f s\n", p.test.c_str(), p.phase.c_str(), p.seconds);
    }
  }
  if (summary != nullptr) std::fclose(summary);
  std::fflush(stdout);
}

std::vector<std::string> Environment::remove_objects(const std::string& prefix) {
  std::vector<std::string> removed;
  for (auto& domain : all_domains(conn())) {
    const std::string name = virDomainGetName(domain.get());
    if (!starts_with(name, prefix)) continue;
    if (virDomainIsActive(domain.get()) == 1) virDomainDestroy(domain.get());
    const unsigned flags = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                           VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
    if (virDomainUndefineFlags(domain.get(), flags) != 0) virDomainUndefine(domain.get());
    removed.push_back("domain " + name);
  }
  for (auto& pool : all_pools(conn(), VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)) {
    virStoragePoolRefresh(pool.get(), 0);
    for (auto& volume : all_volumes(*pool)) {
      const std::string name = virStorageVolGetName(volume.get());
      if (!starts_with(name, prefix)) continue;
      virStorageVolDelete(volume.get(), 0);
      removed.push_back("volume " + name);
    }
  }
  virResetLastError();
  remove_console_logs(prefix);
  return removed;
}

// Objects of e2e runs that died without cleaning up. Under the host lock no other run is alive,
// so everything named k_name_root is stale.
void Environment::remove_stale_runs() {
  auto removed = remove_objects(k_name_root);
  for (auto& pool : all_pools(conn())) {
    const std::string name = virStoragePoolGetName(pool.get());
    if (!starts_with(name, k_name_root)) continue;
    if (virStoragePoolIsActive(pool.get()) == 1) virStoragePoolDestroy(pool.get());
    virStoragePoolUndefine(pool.get());
    removed.push_back("pool " + name);
  }
  for (auto& net : all_networks(conn())) {
    const std::string name = virNetworkGetName(net.get());
    if (!starts_with(name, k_name_root)) continue;
    if (virNetworkIsActive(net.get()) == 1) virNetworkDestroy(net.get());
    if (virNetworkIsPersistent(net.get()) == 1) virNetworkUndefine(net.get());
    removed.push_back("network " + name);
  }
  virResetLastError();
  const char* tmp = std::getenv("TMPDIR");
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", ec)) {
    if (entry.is_directory(ec) && starts_with(entry.path().filename().string(), k_name_root)) {
      std::filesystem::remove_all(entry.path(), ec);
      removed.push_back("directory " + entry.path().string());
    }
  }
  for (const auto& what : removed) std::printf("[e2e] stale run: removed %s\n", what.c_str());
}

// TCG unless KVM really runs a guest here: nested KVM may expose /dev/kvm and still fail to start
// a vCPU ("failed to set MSR"). The probe starts what the CPI starts for kvm (host-passthrough).
void Environment::choose_domain_type() {
  if (const char* forced = std::getenv("CPI_E2E_DOMAIN_TYPE"); forced != nullptr && *forced) {
    m_domain_type = forced;
    m_domain_type_reason = "CPI_E2E_DOMAIN_TYPE";
    return;
  }
  if (::access("/dev/kvm", F_OK) != 0) {
    m_domain_type = "qemu";
    m_domain_type_reason = "no /dev/kvm";
    return;
  }
  // Cached per boot of the host: the probe costs seconds when KVM fails.
  const std::string cache = "/tmp/bosh-libvirt-cpi-e2e.kvm-boot-probe";
  const std::string boot = read_text("/proc/sys/kernel/random/boot_id");
  const std::string cached = read_text(cache);
  if (starts_with(cached, boot + " ")) {
    const std::string rest = cached.substr(boot.size() + 1);
    m_domain_type = rest.substr(0, rest.find(' '));
    m_domain_type_reason = "cached probe: " + rest.substr(rest.find(' ') + 1);
    return;
  }
  // The probe boots the test stemcell's raw disk (read-only) under KVM and waits for the guest's
  // first words on its serial console. A guest that merely exists proves nothing: nested KVM may
  // run the firmware and then hang in the boot loader's real-mode disk reads (seen here: GRUB and
  // syslinux never get the kernel loaded), where TCG boots this disk in 4-7 s.
  const std::string name = m_prefix + "kvm-probe";
  const auto dir = m_root / "kvm-probe";
  std::filesystem::create_directories(dir);
  const auto unpacked =
      run_process("/bin/tar", {"-xzf", (m_stemcell_dir / "raw" / "image").string(), "-C",
                               dir.string(), "root.img"},
                  "", this_environment());
  const auto disk = dir / "root.img", log = dir / "console.log";
  ::chmod(dir.c_str(), 0755);
  ::chmod(disk.c_str(), 0644);
  const std::string xml =
      "<domain type='kvm'><name>" + name +
      "</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>"
      "<cpu mode='host-passthrough' check='none'/>"
      "<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><devices>"
      "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='" +
      disk.string() +
      "'/><target dev='vda' bus='virtio'/><readonly/></disk>"
      "<serial type='pty'><log file='" +
      log.string() + "' append='off'/><target port='0'/></serial></devices></domain>";
  virt::Domain probe{unpacked.exit_code == 0 ? virDomainCreateXML(&conn(), xml.c_str(), 0)
                                             : nullptr};
  if (unpacked.exit_code != 0) {
    m_domain_type = "qemu";
    m_domain_type_reason = "KVM probe: cannot unpack the test stemcell: " + unpacked.err;
  } else if (probe) {
    bool spoke = false;
    for (int i = 0; i < 60 && !spoke; ++i) {  // 30 s
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      spoke = !read_text(log.string()).empty();
    }
    virDomainDestroy(probe.get());
    m_domain_type = spoke ? "kvm" : "qemu";
    m_domain_type_reason = spoke ? "a KVM guest booted the test stemcell"
                                 : "a KVM guest did not boot the test stemcell in 30 s";
  } else {
    std::string error = last_libvirt_error();
    const auto at = error.find("failed to set MSR");
    error = at != std::string::npos ? error.substr(at, error.find('\n', at) - at) : error;
    m_domain_type = "qemu";
    m_domain_type_reason = "KVM probe failed: " + error.substr(0, error.find('\n'));
  }
  std::filesystem::remove_all(dir);
  remove_console_logs(name);
  write_text(cache, boot + " " + m_domain_type + " " + m_domain_type_reason + "\n");
}

void Environment::make_pool() {
  const auto dir = m_root / "pool";
  const std::string xml = "<pool type='dir'><name>" + m_pool + "</name><target><path>" +
                          dir.string() + "</path></target></pool>";
  virt::Pool pool{virStoragePoolDefineXML(&conn(), xml.c_str(), 0)};
  ASSERT_TRUE(pool) << "defining pool " << m_pool << ": " << last_libvirt_error();
  m_pool_made = true;
  ASSERT_EQ(virStoragePoolBuild(pool.get(), 0), 0) << last_libvirt_error();
  ASSERT_EQ(virStoragePoolCreate(pool.get(), 0), 0) << last_libvirt_error();
  // Autostart, as on a real host: the libvirtd restart test relies on it.
  ASSERT_EQ(virStoragePoolSetAutostart(pool.get(), 1), 0) << last_libvirt_error();
}

// NETWORK RULE: no <forward> (isolated) and no <ip> (no host address, no dnsmasq), IPv6 off on
// the bridge; the guest never brings its NIC up, so nothing leaves the host.
void Environment::make_network() {
  const std::string xml =
      "<network><name>" + m_network + "</name><bridge stp='off' delay='0'/></network>";
  Ipv6Guard quiet;
  virt::Network net{virNetworkCreateXML(&conn(), xml.c_str())};
  ASSERT_TRUE(net) << "creating network " << m_network << ": " << last_libvirt_error();
  m_network_made = true;
  virt::OwnedCString bridge{virNetworkGetBridgeName(net.get())};
  ASSERT_TRUE(bridge) << last_libvirt_error();
  EXPECT_TRUE(Ipv6Guard::disable_on(bridge.get())) << "IPv6 still on for bridge " << bridge.get();
  virt::OwnedCString text{virNetworkGetXMLDesc(net.get(), 0)};
  ASSERT_TRUE(text);
  const std::string desc = text.get();
  ASSERT_EQ(desc.find("<ip"), std::string::npos) << desc;
  ASSERT_EQ(desc.find("<forward"), std::string::npos) << desc;
}

// tests/e2e/stemcell/build.sh: cached, skips itself when up to date.
void Environment::build_stemcell() {
  const char* dir = std::getenv("CPI_E2E_STEMCELL_DIR");
  m_stemcell_dir = dir != nullptr && *dir != '\0' ? dir : CPI_E2E_STEMCELL_DIR;
  const std::string script = std::string{CPI_SOURCE_DIR} + "/tests/e2e/stemcell/build.sh";
  const CpiRun run =
      run_process("/bin/bash", {script, m_stemcell_dir.string()}, "", this_environment());
  ASSERT_EQ(run.exit_code, 0) << script << " failed:\n" << run.err;
  record("test stemcell build (cached)", run.seconds);
  for (const char* variant : {"raw", "qcow2"}) {
    ASSERT_TRUE(std::filesystem::exists(m_stemcell_dir / variant / "image")) << variant;
  }
}

const auto* const k_registered = ::testing::AddGlobalTestEnvironment(g_env = new Environment);

}  // namespace cpi::testing::e2e
