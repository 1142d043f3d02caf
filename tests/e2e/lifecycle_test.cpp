// The whole CPI lifecycle through the built binary against a real libvirtd, with a booted guest
// reporting what it sees (tests/e2e/stemcell/README.md): once for API v2 on the qcow2 stemcell
// and once for API v1 on the raw one.

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>

#include "cpi/agent/iso_image.hpp"
#include "cpi/stemcell/image_reader.hpp"
#include "e2e/e2e_fixture.hpp"

namespace cpi::testing::e2e {
namespace {

const nlohmann::json k_env = {
    {"bosh",
     {{"password",
       "$6$e2esalt.QxZ1$y5/VQ8w9d1gR1Y2h3I4j5K6l7M8n9O0pQrStUvWxYz.AbCdEfGhIjKlMnOpQrSt"},
      {"group", "e2e-director-e2e-dep-web"},
      {"groups", {"e2e-director", "e2e-dep", "web"}},
      {"keep_root_password", false}}},
    {"persistent_disk_fs", "ext4"}};

std::set<std::string> serials_of(const GuestTick& tick) {
  std::set<std::string> out;
  for (const auto& b : tick.blocks) out.insert(b.serial);
  return out;
}

class LifecycleTest : public E2eTest {
 protected:
  // The settings on the VM's config drive, read back from its volume through libvirt.
  nlohmann::json config_drive_settings(const std::string& vm_cid) {
    auto volume = find_volume(volume_name(vm_cid) + "-config");
    if (!volume) throw std::runtime_error("no config drive volume");
    virt::Stream stream{virStreamNew(&env().conn(), 0)};
    if (virStorageVolDownload(volume->get(), stream.get(), 0, 0, 0) != 0) {
      throw std::runtime_error("cannot download the config drive");
    }
    std::string iso;
    char buffer[65536];
    for (int n; (n = virStreamRecv(stream.get(), buffer, sizeof buffer)) > 0;) {
      iso.append(buffer, static_cast<std::size_t>(n));
    }
    stream.finish("downloading the config drive");
    return agent::read_user_data(iso);
  }

  void run_lifecycle(int api, const std::string& variant);

  std::string m_vm;
};

void LifecycleTest::run_lifecycle(int api, const std::string& variant) {
  const bool v2 = api >= 2;
  const nlohmann::json vm_context =
      v2 ? nlohmann::json{{"stemcell", {{"api_version", 2}}}} : nlohmann::json(nullptr);
  // info
  const auto info = cpi("info", nlohmann::json::array(), v2 ? 2 : 0);
  EXPECT_EQ(info["api_version"], 2);
  for (const char* format : {"openstack-qcow2", "openstack-raw"}) {
    EXPECT_NE(std::find(info["stemcell_formats"].begin(), info["stemcell_formats"].end(), format),
              info["stemcell_formats"].end())
        << info;
  }

  // create_stemcell: the image file and stemcell.MF's cloud_properties, as the director passes
  const auto image = (env().stemcell_dir() / variant / "image").string();
  const auto props = nlohmann::json::parse(
      read_whole_file((env().stemcell_dir() / variant / "cloud_properties.json").string()));
  const std::string stemcell = cpi("create_stemcell", {image, props}, api);
  phase("create_stemcell (" + variant + ")", last_call_seconds());
  ASSERT_TRUE(std::regex_match(stemcell, std::regex{"sc-[0-9a-f-]{36}"})) << stemcell;
  ASSERT_TRUE(volume_exists(volume_name(stemcell)));
  const std::uint64_t disk_size = stemcell::ImageReader{image}.virtual_size();

  // create_vm: a manual network with a static IP on the isolated network, an ephemeral disk
  const nlohmann::json networks{{"private",
                                 {{"type", "manual"},
                                  {"ip", "10.244.0.10"},
                                  {"netmask", "255.255.255.0"},
                                  {"gateway", "10.244.0.1"},
                                  {"dns", {"10.244.0.2"}},
                                  {"default", {"dns", "gateway"}},
                                  {"prefix", "32"},
                                  {"cloud_properties", {{"name", env().network_name()}}}}}};
  const nlohmann::json vm_props{{"cpu", 1}, {"ram", 256}, {"ephemeral_disk", 128}};
  const std::string agent_id = "agent-" + random_hex(8);
  {
    Ipv6Guard quiet;  // the tap is made while the domain starts
    const auto created =
        cpi("create_vm", {agent_id, stemcell, vm_props, networks, nlohmann::json::array(), k_env},
            api, vm_context);
    m_vm = v2 ? created.at(0).get<std::string>() : created.get<std::string>();
    if (v2) {
      ASSERT_TRUE(created.is_array() && created.size() == 2) << created;
      EXPECT_EQ(created[1]["private"]["mac"], macs(m_vm).at(0)) << created;
      EXPECT_EQ(created[1]["private"]["ip"], "10.244.0.10");
    }
  }
  const auto vm_created = Clock::now();
  phase("create_vm", last_call_seconds());
  ASSERT_TRUE(std::regex_match(m_vm, std::regex{"vm-[0-9a-f-]{36}"})) << m_vm;
  ASSERT_TRUE(domain_active(m_vm));
  expect_silent_taps(m_vm);
  const std::string log = console_log(m_vm);
  const std::vector<std::string> mac = macs(m_vm);
  ASSERT_EQ(mac.size(), 1U);

  // The guest's first report: the config drive, its block devices, its NIC.
  const GuestBoot first = wait_report(log, 0);
  phase("boot to first guest report", since(vm_created));
  EXPECT_NE(first.configdrive.find("label=config-2"), std::string::npos) << first.configdrive;
  ASSERT_TRUE(first.files.count("ec2/latest/user-data")) << ::testing::PrintToString(first.lines);
  const auto settings = nlohmann::json::parse(first.files.at("ec2/latest/user-data"));
  EXPECT_EQ(settings["agent_id"], agent_id);
  EXPECT_EQ(settings["vm"]["name"], m_vm);
  EXPECT_EQ(settings["mbus"], k_mbus);
  EXPECT_EQ(settings["env"], k_env) << "env must reach the agent verbatim";
  nlohmann::json expected_net = networks["private"];
  expected_net["mac"] = mac[0];
  for (const auto& [key, value] : expected_net.items()) {
    EXPECT_EQ(settings["networks"]["private"][key], value) << "networks.private." << key;
  }
  EXPECT_EQ(first.nics.size(), 1U);
  EXPECT_EQ(first.nics.begin()->second, mac[0]) << "the guest's NIC has the MAC of the domain";
  EXPECT_EQ(settings["disks"]["system"], "/dev/vda");
  const std::string eph_path = settings["disks"]["ephemeral"].value("path", "");
  const std::string by_id = "/dev/disk/by-id/virtio-";
  ASSERT_EQ(eph_path.rfind(by_id, 0), 0U) << settings["disks"];
  const GuestBlock* eph = first.block_with_serial(eph_path.substr(by_id.size()));
  ASSERT_NE(eph, nullptr) << "the guest sees no disk with the ephemeral hint's serial";
  EXPECT_EQ(eph->size, 128 * k_mib);
  const GuestBlock* root = nullptr;
  for (const auto& b : first.blocks) root = b.name == "vda" ? &b : root;
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->size, disk_size) << "the root disk has the stemcell's size";
  EXPECT_TRUE(first.files.count("ec2/latest/meta-data.json"));
  const auto meta = nlohmann::json::parse(first.files.at("ec2/latest/meta-data.json"));
  EXPECT_TRUE(meta["public-keys"]["0"].contains("openssh-key")) << meta;
  EXPECT_EQ(first.files.at("openstack/latest/user_data"), first.files.at("ec2/latest/user-data"));

  EXPECT_EQ(cpi("has_vm", {m_vm}, api), true);
  EXPECT_TRUE(cpi("set_vm_metadata",
                  {m_vm,
                   {{"director", "e2e-director"},
                    {"deployment", "e2e-dep"},
                    {"instance_group", "web"},
                    {"job", "web"},
                    {"index", "0"},
                    {"name", "web/0"},
                    {"id", "b1a2"},
                    {"created_at", "2026-01-01T00:00:00Z"}}},
                  api)
                  .is_null());
  pugi::xml_document doc;
  domain_xml(m_vm, doc);
  EXPECT_NE(std::string{doc.child("domain").child_value("title")}.find("e2e-dep"),
            std::string::npos);

  // Two persistent disks, attached while the guest runs.
  const std::string disk1 = cpi("create_disk", {32, nlohmann::json::object(), m_vm}, api);
  const std::string disk2 = cpi("create_disk", {48, nlohmann::json::object(), nullptr}, api);
  for (const auto& d : {disk1, disk2}) {
    ASSERT_TRUE(std::regex_match(d, std::regex{"disk-[0-9a-f]{15}"})) << d;
  }
  const int before_attach = last_tick(log);
  const auto attach_start = Clock::now();
  for (const auto& d : {disk1, disk2}) {
    const auto hint = cpi("attach_disk", {m_vm, d}, api, vm_context);
    if (v2) {
      EXPECT_EQ(hint, (nlohmann::json{{"path", by_id + d}}));
    } else {
      EXPECT_TRUE(hint.is_null()) << hint;
    }
  }
  wait_tick(log, before_attach, [&](const GuestTick& t) {
    return tick_has(t, disk1, 32 * k_mib) && tick_has(t, disk2, 48 * k_mib);
  });
  phase("attach_disk x2 until the guest sees both", since(attach_start));
  if (!v2) {  // API v1: the settings name the disks (agents without disk hints read them)
    const auto persistent = config_drive_settings(m_vm)["disks"]["persistent"];
    EXPECT_EQ(persistent[disk1]["path"], by_id + disk1) << persistent;
    EXPECT_EQ(persistent[disk2]["path"], by_id + disk2) << persistent;
  }
  auto listed = cpi("get_disks", {m_vm}, api).get<std::vector<std::string>>();
  std::sort(listed.begin(), listed.end());
  std::vector<std::string> both{disk1, disk2};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(listed, both);

  // reboot_vm: the guest boots again, reports again, and still has both disks.
  const auto reboot_start = Clock::now();
  {
    Ipv6Guard quiet;  // the power cycle gives the VM a new tap
    EXPECT_TRUE(cpi("reboot_vm", {m_vm}, api).is_null());
  }
  expect_silent_taps(m_vm);
  const GuestBoot second = wait_report(log, 1);
  phase("reboot_vm to guest report", since(reboot_start));
  EXPECT_NE(second.id, first.id);
  EXPECT_NE(second.block_with_serial(disk1), nullptr) << ::testing::PrintToString(second.lines);
  EXPECT_NE(second.block_with_serial(disk2), nullptr) << ::testing::PrintToString(second.lines);
  if (!v2) {  // ... and the guest reads the rewritten drive
    const auto again = nlohmann::json::parse(second.files.at("ec2/latest/user-data"));
    EXPECT_EQ(again["disks"]["persistent"][disk1]["path"], by_id + disk1) << again["disks"];
    EXPECT_EQ(again["disks"]["persistent"][disk2]["path"], by_id + disk2) << again["disks"];
  }

  // snapshot (disk attached, VM running), detach, resize the detached disk.
  const std::string snapshot =
      cpi("snapshot_disk", {disk1, {{"deployment", "e2e-dep"}, {"index", 0}}}, api);
  ASSERT_TRUE(std::regex_match(snapshot, std::regex{"snap-[0-9a-f-]{36}"})) << snapshot;
  EXPECT_EQ(volume_capacity(volume_name(snapshot)), 32 * k_mib);
  const int before_detach = last_tick(log);
  EXPECT_TRUE(cpi("detach_disk", {m_vm, disk2}, api, vm_context).is_null());
  EXPECT_TRUE(cpi("resize_disk", {disk2, 96}, api).is_null());
  EXPECT_EQ(volume_capacity(volume_name(disk2)), 96 * k_mib);
  // update_disk as the director calls it for a detached disk whose disk type grew: in place.
  EXPECT_TRUE(cpi("update_disk", {disk2, 112, nlohmann::json::object()}, api).is_null());
  EXPECT_EQ(volume_capacity(volume_name(disk2)), 112 * k_mib);
  const auto detached = wait_tick(log, before_detach, [&](const GuestTick& t) {
    return tick_has(t, disk1) && !tick_has(t, disk2);
  });
  EXPECT_TRUE(serials_of(detached).count(eph->serial));
  EXPECT_EQ(cpi("get_disks", {m_vm}, api), nlohmann::json::array({disk1}));
  if (!v2) {
    const auto persistent = config_drive_settings(m_vm)["disks"]["persistent"];
    EXPECT_TRUE(persistent.contains(disk1) && !persistent.contains(disk2)) << persistent;
  }

  // delete_vm: the VM and its own volumes go; persistent disks and the snapshot stay.
  EXPECT_TRUE(cpi("delete_vm", {m_vm}, api, vm_context).is_null());
  EXPECT_EQ(cpi("has_vm", {m_vm}, api), false);
  EXPECT_FALSE(find_domain(m_vm).has_value());
  for (const char* own : {"-root", "-ephemeral", "-config"}) {
    EXPECT_FALSE(volume_exists(volume_name(m_vm) + own)) << own;
  }
  for (const auto& kept : {disk1, disk2, snapshot}) {
    EXPECT_TRUE(volume_exists(volume_name(kept))) << kept;
  }
  EXPECT_EQ(cpi("has_disk", {disk1}, api), true);

  EXPECT_TRUE(cpi("delete_snapshot", {snapshot}, api).is_null());
  EXPECT_TRUE(cpi("delete_disk", {disk1}, api).is_null());
  EXPECT_TRUE(cpi("delete_disk", {disk2}, api).is_null());
  EXPECT_TRUE(cpi("delete_stemcell", {stemcell}, api).is_null());
  EXPECT_EQ(leftovers(), std::vector<std::string>{}) << "nothing of the test may be left";
}

TEST_F(LifecycleTest, ApiV2OnQcow2Stemcell) { run_lifecycle(2, "qcow2"); }

TEST_F(LifecycleTest, ApiV1OnRawStemcell) { run_lifecycle(1, "raw"); }

}  // namespace
}  // namespace cpi::testing::e2e
