// The real BOSH agent (v2.505.0, in tests/e2e/agent-stemcell) in VMs made by the built `cpi`
// binary, driven as the director and `bosh create-env` drive it: its settings from our config-2
// drive, the ephemeral disk found by our hint, the manual network with our MAC and IP, `ping`
// over its HTTPS mbus, and a persistent disk attached by the CPI and mounted by the agent at
// /var/vcap/store whose data survives reboot_vm, detach_disk and a re-attach to a second VM; API v2
// (disk hints) and API v1 (the config drive rewritten on attach).
//
// NETWORK RULE: the VM's NIC is the CPI's own, on the tier's isolated libvirt network (no <ip>, no
// dnsmasq, no forward). The only other port of that bridge is a veth from a network namespace this
// test makes (e2e/support/e2e_agent.hpp); the subnet's gateway address exists only in that namespace,
// and the test reaches the agent's mbus only from inside it. The host never has an address on the
// bridge or the veth, IPv6 is off on both (and on the guest's tap), and the guest image sends
// nothing on its own (no DHCP, NTP or metadata client), so no packet leaves the test.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.hpp"
#include "e2e/support/e2e_agent.hpp"

namespace cpi::testing::e2e {
namespace {

constexpr auto k_agent_timeout = std::chrono::seconds(900);  // TCG on a busy host: minutes
constexpr const char* k_mbus_user = "mbus";

struct Guest {
  std::string vm, agent_id, ip, log;
  std::unique_ptr<Mbus> mbus;
};

class AgentTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(build_stemcell());
    remove_stale_namespaces();
    ASSERT_NO_THROW(m_subnet = subnet_on_network(env().conn(), env().network_name()));
    // The agent listens for HTTPS on every address of the guest (its mbus URL in the settings).
    m_password = random_hex(16);
    auto config = nlohmann::json::parse(read_whole_file(m_config.string()));
    config["agent"] = {{"mbus", "https://" + std::string{k_mbus_user} + ":" + m_password +
                                    "@0.0.0.0:6868"},
                       {"blobstore",
                        {{"provider", "local"},
                         {"options", {{"blobstore_path", "/var/vcap/micro_bosh/data/cache"}}}}}};
    std::ofstream{m_config} << config.dump(2);
  }

  void TearDown() override {
    m_guests.clear();
    m_subnet.reset();
    E2eTest::TearDown();
  }

  void build_stemcell() {
    const auto run = build_agent_stemcell(CPI_SOURCE_DIR, CPI_E2E_AGENT_STEMCELL_DIR);
    ASSERT_EQ(run.exit_code, 0) << "tests/e2e/agent-stemcell/build.sh failed:\n" << run.err;
    phase("agent stemcell build (cached)", run.seconds);
    m_stemcell_dir = CPI_E2E_AGENT_STEMCELL_DIR;
  }

  std::string create_stemcell(int api) {
    const auto image = (m_stemcell_dir / "image").string();
    const auto props = nlohmann::json::parse(
        read_whole_file((m_stemcell_dir / "cloud_properties.json").string()));
    const std::string cid = cpi("create_stemcell", {image, props}, api);
    phase("create_stemcell (agent stemcell)", last_call_seconds());
    return cid;
  }

  // create_vm for a guest at .<host> of the subnet; waits for the agent to load its settings
  // from config-2 and answer ping. The VM's cloud_properties give the ephemeral disk as
  // {size: MiB}, as manifests written for other CPIs do.
  Guest& boot_guest(const std::string& stemcell, int host, int api) {
    auto guest = std::make_unique<Guest>();
    guest->ip = m_subnet->address(host);
    guest->agent_id = "agent-" + random_hex(8);
    const auto cert = make_mbus_cert(env().root(), guest->ip);
    const nlohmann::json agent_env{
        {"bosh",
         {{"mbus",
           {{"cert",
             {{"ca", cert.certificate},
              {"certificate", cert.certificate},
              {"private_key", cert.private_key}}}}}}}};
    const nlohmann::json networks{{"default",
                                   {{"type", "manual"},
                                    {"ip", guest->ip},
                                    {"netmask", "255.255.255.0"},
                                    {"gateway", m_subnet->gateway()},
                                    {"dns", nlohmann::json::array()},
                                    {"default", {"dns", "gateway"}},
                                    {"cloud_properties", {{"name", env().network_name()}}}}}};
    const nlohmann::json props{{"cpu", 1}, {"ram", 512}, {"ephemeral_disk", {{"size", 2048}}}};
    const nlohmann::json vm_context =
        api >= 2 ? nlohmann::json{{"stemcell", {{"api_version", 2}}}} : nlohmann::json(nullptr);
    {
      Ipv6Guard quiet;  // the tap is made while the domain starts
      const auto created = cpi("create_vm",
                               {guest->agent_id, stemcell, props, networks,
                                nlohmann::json::array(), agent_env},
                               api, vm_context);
      guest->vm = api >= 2 ? created.at(0).get<std::string>() : created.get<std::string>();
    }
    phase("create_vm (api " + std::to_string(api) + ")", last_call_seconds());
    const auto created_at = Clock::now();
    expect_silent_taps(guest->vm);
    guest->log = console_log(guest->vm);
    guest->mbus = std::make_unique<Mbus>(*m_subnet, guest->ip, k_mbus_user, m_password,
                                         env().root(), cert.ca_file);

    wait_console_line(guest->log,
                      std::regex{"Successfully loaded file 'ec2/latest/user-data' from config drive"},
                      k_agent_timeout, 0, "the agent's settings from config-2");
    phase("boot to settings read from config-2", since(created_at));
    std::string why;
    EXPECT_TRUE(guest->mbus->wait_pong(k_agent_timeout, why))
        << "no pong from the agent at " << guest->ip << ": " << why << "\n"
        << console_tail(guest->log, 40);
    phase("boot to ping -> pong over the HTTPS mbus", since(created_at));
    m_guests.push_back(std::move(guest));
    return *m_guests.back();
  }

  // The serial of the domain's disk whose volume name ends with `suffix` ("-ephemeral"), as the
  // guest sees it: virtio-blk keeps the first 20 bytes.
  std::string serial_of(const std::string& vm, const std::string& suffix) {
    pugi::xml_document doc;
    domain_xml(vm, doc);
    for (const auto& n : doc.select_nodes("/domain/devices/disk")) {
      const std::string volume = n.node().child("source").attribute("volume").value();
      const std::string file = n.node().child("source").attribute("file").value();
      const std::string name = !volume.empty() ? volume : file;
      if (name.size() >= suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return std::string{n.node().child_value("serial")}.substr(0, 20);
      }
    }
    return "";
  }

  // Waits for the probe's line about /var/vcap/store after byte `from`: "wrote ..." or "found ...".
  std::string store_line(const Guest& g, std::size_t from, const std::string& what) {
    return wait_console_line(g.log, std::regex{"^e2e-store: (wrote|found) "}, k_agent_timeout, from,
                             what);
  }

  // mount_disk as the director sends it, then the probe's report of /var/vcap/store.
  void mount_persistent(const Guest& g, const std::string& disk, const std::string& disk_serial) {
    const auto from = read_whole_file(g.log).size();
    const auto started = Clock::now();
    g.mbus->task("mount_disk", {disk});
    phase("agent mount_disk", since(started));
    const auto mounts = wait_console_line(
        g.log, std::regex{"e2e-probe: .*/var/vcap/store ext4"}, k_agent_timeout, from,
        "/var/vcap/store mounted");
    EXPECT_NE(mounts.find("[" + disk_serial + "] /var/vcap/store ext4"), std::string::npos)
        << "the disk mounted at /var/vcap/store is not the attached one (" << disk_serial
        << "): " << mounts;
    const auto listed = g.mbus->value("list_disk", nlohmann::json::array());
    EXPECT_NE(std::find(listed.begin(), listed.end(), disk), listed.end()) << listed;
  }

  void check_first_vm_and_store(Guest& first, std::string& disk, std::string& marker);
  // Takes `disk` off `g` as the director does (agent unmount, CPI detach, agent forget), then
  // deletes the VM and checks that its console log went with it.
  void detach_and_delete_vm(Guest& g, const std::string& disk) {
    g.mbus->task("unmount_disk", {disk});
    cpi("detach_disk", {g.vm, disk}, 2);
    phase("detach_disk", last_call_seconds());
    g.mbus->value("remove_persistent_disk", {disk});
    const std::string log = g.log;
    cpi("delete_vm", {g.vm}, 2);
    EXPECT_FALSE(std::filesystem::exists(log)) << "delete_vm left its console log";
  }

  std::unique_ptr<GuestSubnet> m_subnet;
  std::string m_password;
  std::filesystem::path m_stemcell_dir;
  std::vector<std::unique_ptr<Guest>> m_guests;
};

std::string field_of(const std::string& line, const std::string& key) {
  std::smatch m;
  const std::regex re{key + "=([^ ]*)"};
  return std::regex_search(line, m, re) ? m[1].str() : "";
}

// API v2 on a booted first VM: the ephemeral disk, the network, get_state, then a persistent disk
// attached by the CPI and mounted by the agent at /var/vcap/store with a marker written on it.
// Sets `disk` and `marker` (empty when a fatal assertion stopped it).
void AgentTest::check_first_vm_and_store(Guest& first, std::string& disk, std::string& marker) {


  // The ephemeral disk: found by the CPI's hint, partitioned (swap + data) and mounted.
  const std::string ephemeral = serial_of(first.vm, "-ephemeral");
  ASSERT_FALSE(ephemeral.empty());
  const auto probe = wait_console_line(first.log, std::regex{"e2e-probe: .*/var/vcap/data ext4"},
                                       k_agent_timeout, 0, "/var/vcap/data mounted");
  EXPECT_TRUE(std::regex_search(probe, std::regex{"/dev/vd[a-z]2\\[" + ephemeral +
                                                  "\\] /var/vcap/data ext4"}))
      << probe;
  EXPECT_TRUE(std::regex_search(probe, std::regex{"swap=/dev/vd[a-z]1\\[" + ephemeral + "\\]"}))
      << probe;
  // The network: our IP on the NIC with our MAC; the namespace saw that MAC answer for the IP.
  const std::string mac = macs(first.vm).at(0);
  const auto net = wait_console_line(first.log, std::regex{"e2e-probe: .*eth0=10\\."},
                                     k_agent_timeout, 0, "eth0 configured");
  EXPECT_EQ(field_of(net, "eth0"), first.ip + "/24") << net;
  EXPECT_EQ(field_of(net, "mac"), mac) << net;
  EXPECT_EQ(m_subnet->neighbour_mac(first.ip), mac);
  EXPECT_EQ(m_subnet->host_end_addresses().find("inet"), std::string::npos)
      << "the host must have no address on the subnet";
  const auto state = first.mbus->value("get_state", nlohmann::json::array());
  EXPECT_EQ(state.value("agent_id", ""), first.agent_id) << state;

  // A persistent disk: attach_disk (the CPI), add_persistent_disk + mount_disk (the agent).
  disk = cpi("create_disk", {1024, nlohmann::json::object(), first.vm}, 2);
  const auto hint = cpi("attach_disk", {first.vm, disk}, 2);
  phase("attach_disk", last_call_seconds());
  const std::string disk_serial = serial_of(first.vm, disk);
  ASSERT_FALSE(disk_serial.empty()) << "no disk of " << disk << " in the domain";
  const auto before_mount = read_whole_file(first.log).size();
  first.mbus->value("add_persistent_disk", {disk, hint});
  mount_persistent(first, disk, disk_serial);
  const auto wrote = store_line(first, before_mount, "the marker written on the persistent disk");
  ASSERT_NE(wrote.find("wrote agent=" + first.agent_id + " boot="), std::string::npos) << wrote;
  marker = wrote.substr(wrote.find("agent="));

}

TEST_F(AgentTest, ApiV2SettingsNetworkEphemeralAndPersistentDisk) {
  const std::string stemcell = create_stemcell(2);
  Guest& first = boot_guest(stemcell, 10, 2);
  if (HasFailure()) return;
  std::string disk, marker;
  check_first_vm_and_store(first, disk, marker);
  if (HasFatalFailure()) return;
  detach_and_delete_vm(first, disk);
  cpi("delete_disk", {disk}, 2);
  cpi("delete_stemcell", {stemcell}, 2);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

// The director's order for a disk that moves: reboot_vm (the agent mounts the disk again by
// itself), then unmount, detach_disk and delete_vm, then a second VM gets the disk and its agent
// finds the data the first VM's agent wrote.
TEST_F(AgentTest, ApiV2PersistentDataSurvivesRebootDetachAndASecondVm) {
  const std::string stemcell = create_stemcell(2);
  Guest& first = boot_guest(stemcell, 10, 2);
  if (HasFailure()) return;
  std::string disk, marker;
  check_first_vm_and_store(first, disk, marker);
  if (HasFatalFailure()) return;

  // reboot_vm: the agent mounts the disk again by itself; the data is still there.
  const auto before_reboot = read_whole_file(first.log).size();
  {
    Ipv6Guard quiet;  // the power cycle gives the VM a new tap
    cpi("reboot_vm", {first.vm}, 2);
  }
  phase("reboot_vm (ACPI power off, start)", last_call_seconds());
  const auto rebooted = Clock::now();
  expect_silent_taps(first.vm);
  wait_console_line(first.log, std::regex{"^e2e-stemcell: starting bosh-agent"}, k_agent_timeout,
                    before_reboot, "the agent after reboot_vm");
  std::string why;
  ASSERT_TRUE(first.mbus->wait_pong(k_agent_timeout, why)) << why;
  phase("reboot_vm to pong", since(rebooted));
  const auto found = store_line(first, before_reboot, "the marker after reboot_vm");
  EXPECT_EQ(found, "e2e-store: found " + marker) << "data on /var/vcap/store did not survive";

  detach_and_delete_vm(first, disk);

  // A second VM gets the disk: the same data, written by the first VM's agent.
  Guest& second = boot_guest(stemcell, 11, 2);
  if (HasFailure()) return;
  const auto hint2 = cpi("attach_disk", {second.vm, disk}, 2);
  const auto before_mount2 = read_whole_file(second.log).size();
  second.mbus->value("add_persistent_disk", {disk, hint2});
  mount_persistent(second, disk, serial_of(second.vm, disk));
  EXPECT_EQ(store_line(second, before_mount2, "the marker on the second VM"),
            "e2e-store: found " + marker);

  second.mbus->task("unmount_disk", {disk});
  cpi("detach_disk", {second.vm, disk}, 2);
  cpi("delete_vm", {second.vm}, 2);
  cpi("delete_disk", {disk}, 2);
  cpi("delete_stemcell", {stemcell}, 2);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

// API v1: attach_disk returns nothing; the CPI rewrites the config drive and the agent finds the
// disk in its settings when the director sends mount_disk.
TEST_F(AgentTest, ApiV1MountsADiskFromTheRewrittenConfigDrive) {
  const std::string stemcell = create_stemcell(1);
  Guest& g = boot_guest(stemcell, 12, 1);
  if (HasFailure()) return;
  const std::string disk = cpi("create_disk", {1024, nlohmann::json::object(), g.vm}, 1);
  const auto attached = cpi("attach_disk", {g.vm, disk}, 1);
  EXPECT_TRUE(attached.is_null()) << attached;
  const std::string disk_serial = serial_of(g.vm, disk);
  ASSERT_FALSE(disk_serial.empty());
  const auto before = read_whole_file(g.log).size();
  mount_persistent(g, disk, disk_serial);
  const auto wrote = store_line(g, before, "the marker written on the persistent disk");
  EXPECT_NE(wrote.find("wrote agent=" + g.agent_id), std::string::npos) << wrote;

  g.mbus->task("unmount_disk", {disk});
  cpi("detach_disk", {g.vm, disk}, 1);
  const std::string log = g.log;
  cpi("delete_vm", {g.vm}, 1);
  EXPECT_FALSE(std::filesystem::exists(log)) << "delete_vm left its console log";
  cpi("delete_disk", {disk}, 1);
  cpi("delete_stemcell", {stemcell}, 1);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

}  // namespace
}  // namespace cpi::testing::e2e
