// create_vm, delete_vm, has_vm, reboot_vm, set_vm_metadata against test:///default.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "cpi/agent/iso_image.hpp"
#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "support/test_driver.hpp"

namespace cpi::testing {
namespace {

class VmsTest : public TestDriver {
 protected:
  void SetUp() override {
    TestDriver::SetUp();
    if (HasFatalFailure()) return;
    m_stemcell = create_stemcell();
  }

  const cloud::StemcellCid& stemcell() const { return m_stemcell; }

  // The <disk> of volume `volume` in the definition of `vm`, parsed into `doc`.
  pugi::xml_node vm_disk(pugi::xml_document& doc, const cloud::VmCid& vm,
                         const std::string& volume) {
    parse_xml(doc, domain_xml(vm.value));
    return disk_with_volume(doc, volume);
  }

  // Asserts that create_vm(request) throws `Expected` and leaves volumes and domains as they were.
  template <typename Expected>
  void expect_create_fails_cleanly(const cloud::VmRequest& request) {
    const auto volumes = volume_names();
    const auto domains = domain_names();
    EXPECT_THROW(cloud().create_vm(request), Expected);
    EXPECT_EQ(volume_names(), volumes);
    EXPECT_EQ(domain_names(), domains);
  }

 private:
  cloud::StemcellCid m_stemcell;
};

TEST_F(VmsTest, CreateVmDefinesRunningAutostartDomain) {
  const auto vm = create_vm(stemcell());

  EXPECT_TRUE(cloud::is_vm_cid(vm.value)) << vm.value;
  auto d = domain(vm.value);
  EXPECT_EQ(virDomainIsActive(d.get()), 1);
  int autostart = 0;
  ASSERT_EQ(virDomainGetAutostart(d.get(), &autostart), 0);
  EXPECT_EQ(autostart, 1);
}

TEST_F(VmsTest, RootDiskIsQcow2OverlayBackedByStemcell) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document doc;
  const auto root = vm_disk(doc, vm, cloud().root_volume(vm));
  ASSERT_TRUE(root) << "no root disk in\n" << domain_xml(vm.value);
  EXPECT_STREQ(root.attribute("type").value(), "volume");
  EXPECT_STREQ(root.attribute("device").value(), "disk");
  EXPECT_STREQ(root.child("source").attribute("pool").value(), k_pool);
  EXPECT_STREQ(root.child("driver").attribute("type").value(), "qcow2");
  EXPECT_EQ(root, doc.child("domain").child("devices").child("disk")) << "root disk comes first";

  pugi::xml_document volume;
  parse_xml(volume, volume_xml(cloud().root_volume(vm)));
  EXPECT_STREQ(volume.child("volume").child("target").child("format").attribute("type").value(),
               "qcow2");
  EXPECT_EQ(std::string{volume.child("volume").child("backingStore").child_value("path")},
            volume_path(stemcell().value));
}

TEST_F(VmsTest, EphemeralDiskHasTwentyCharacterSerial) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document doc;
  const auto ephemeral = vm_disk(doc, vm, cloud().ephemeral_volume(vm));
  ASSERT_TRUE(ephemeral);
  EXPECT_EQ(std::string{ephemeral.child_value("serial")}.size(), 20U);
  EXPECT_STREQ(ephemeral.child("target").attribute("bus").value(), "virtio");
  EXPECT_TRUE(volume_exists(cloud().ephemeral_volume(vm)));
  pugi::xml_document volume;
  parse_xml(volume, volume_xml(cloud().ephemeral_volume(vm)));
  EXPECT_EQ(volume.child("volume").child("capacity").text().as_ullong(), 1024 * k_mib);
}

TEST_F(VmsTest, ConfigDriveIsReadonlyIdeCdrom) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document doc;
  const auto config = vm_disk(doc, vm, cloud().config_volume(vm));
  ASSERT_TRUE(config);
  EXPECT_STREQ(config.attribute("device").value(), "cdrom");
  EXPECT_STREQ(config.child("target").attribute("bus").value(), "ide");
  EXPECT_TRUE(config.child("readonly"));
}

TEST_F(VmsTest, ConfigVolumeIsPrivateToRoot) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document volume;
  parse_xml(volume, volume_xml(cloud().config_volume(vm)));

  EXPECT_EQ(
      std::string{volume.child("volume").child("target").child("permissions").child_value("mode")},
      "0600");
}

TEST_F(VmsTest, NicMacMatchesReturnedNetworksAndUserData) {
  const auto created = cloud().create_vm(vm_request(stemcell()));
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(created.cid.value));

  const auto nic = doc.child("domain").child("devices").child("interface");
  ASSERT_TRUE(nic);
  EXPECT_STREQ(nic.attribute("type").value(), "network");
  EXPECT_STREQ(nic.child("source").attribute("network").value(), "default");
  const std::string mac = nic.child("mac").attribute("address").value();
  EXPECT_EQ(mac.size(), 17U);
  EXPECT_EQ(created.networks.at("private").at("mac"), mac);
  EXPECT_EQ(user_data(created.cid).at("networks").at("private").at("mac"), mac);
}

TEST_F(VmsTest, EachNetworkGetsItsOwnNic) {
  auto request = vm_request(stemcell());
  request.networks["second"] = {{"type", "dynamic"}, {"cloud_properties", {{"name", "default"}}}};
  const auto created = cloud().create_vm(request);
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(created.cid.value));

  std::vector<std::string> macs;
  for (auto nic : doc.child("domain").child("devices").children("interface")) {
    macs.emplace_back(nic.child("mac").attribute("address").value());
  }
  ASSERT_EQ(macs.size(), 2U);
  EXPECT_NE(macs[0], macs[1]);
  for (const char* name : {"private", "second"}) {
    const std::string mac = created.networks.at(name).at("mac");
    EXPECT_EQ(std::count(macs.begin(), macs.end(), mac), 1) << name;
  }
}

// The CLI sends cloud_properties null: the config's network is used.
TEST_F(VmsTest, NetworkWithoutCloudPropertiesUsesConfiguredNetwork) {
  auto request = vm_request(stemcell());
  request.networks["private"]["cloud_properties"] = nullptr;
  request.env = nullptr;
  const auto vm = cloud().create_vm(request).cid;
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));

  const auto nic = doc.child("domain").child("devices").child("interface");
  EXPECT_STREQ(nic.child("source").attribute("network").value(), "default");
  EXPECT_FALSE(user_data(vm).at("networks").at("private").contains("cloud_properties"));
}

TEST_F(VmsTest, VipNetworkGetsNoNic) {
  auto request = vm_request(stemcell());
  request.networks["public"] = {{"type", "vip"}, {"ip", "203.0.113.7"}};
  const auto created = cloud().create_vm(request);
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(created.cid.value));

  const auto nics = doc.child("domain").child("devices").children("interface");
  EXPECT_EQ(std::distance(nics.begin(), nics.end()), 1);
  EXPECT_EQ(created.networks.at("public").at("ip"), "203.0.113.7");
}

TEST_F(VmsTest, CpuAndMemoryFollowCloudProperties) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));

  EXPECT_EQ(doc.child("domain").child("vcpu").text().as_uint(), 2U);
  const auto memory = doc.child("domain").child("memory");
  ASSERT_STREQ(memory.attribute("unit").value(), "KiB");
  EXPECT_EQ(memory.text().as_ullong(), 512ULL * 1024ULL);
}

TEST_F(VmsTest, DomainCarriesOurMetadataElement) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));

  ASSERT_TRUE(our_metadata(doc)) << domain_xml(vm.value);
  const auto facts = metadata_facts(vm);
  ASSERT_TRUE(facts.is_object());
  EXPECT_EQ(facts.value("agent_id", ""), "agent-1");
  EXPECT_EQ(facts.value("stemcell", ""), stemcell().value);
}

TEST_F(VmsTest, UserDataCarriesAgentSettings) {
  const auto request = vm_request(stemcell());
  const auto vm = cloud().create_vm(request).cid;
  const auto settings = user_data(vm);

  EXPECT_EQ(settings.at("agent_id"), "agent-1");
  EXPECT_EQ(settings.at("vm").at("name"), vm.value);
  EXPECT_EQ(settings.at("mbus"), k_mbus);
  EXPECT_EQ(settings.at("env"), request.env);
  EXPECT_EQ(settings.at("networks").at("private").at("ip"), "10.0.0.10");
}

TEST_F(VmsTest, UserDataPointsEphemeralAtItsSerial) {
  const auto vm = create_vm(stemcell());
  pugi::xml_document doc;
  const std::string serial = vm_disk(doc, vm, cloud().ephemeral_volume(vm)).child_value("serial");
  ASSERT_FALSE(serial.empty());

  EXPECT_EQ(user_data(vm).at("disks").at("ephemeral").at("path"),
            "/dev/disk/by-id/virtio-" + serial);
}

TEST_F(VmsTest, MetaDataHasOpensshKey) {
  const auto vm = create_vm(stemcell());
  const auto files = agent::read_iso_files(config_drive(vm));

  ASSERT_EQ(files.count("ec2/latest/meta-data.json"), 1U);
  const auto meta = nlohmann::json::parse(files.at("ec2/latest/meta-data.json"));
  ASSERT_TRUE(meta.at("public-keys").at("0").contains("openssh-key"));
  EXPECT_TRUE(meta.at("public-keys").at("0").at("openssh-key").is_string());
  EXPECT_EQ(files.count("openstack/latest/user_data"), 1U);
}

TEST_F(VmsTest, MissingStemcellFailsAndLeavesNothing) {
  expect_create_fails_cleanly<VmCreationFailed>(vm_request({cloud::new_stemcell_cid()}));
}

TEST_F(VmsTest, UnknownNetworkFailsAndLeavesNothing) {
  auto request = vm_request(stemcell());
  request.networks["private"]["cloud_properties"]["name"] = "no-such-network";
  expect_create_fails_cleanly<CloudError>(request);
}

TEST_F(VmsTest, UnknownCloudPropertyIsNamed) {
  auto request = vm_request(stemcell());
  request.cloud_properties["flavour"] = "large";
  const auto volumes = volume_names();
  try {
    cloud().create_vm(request);
    FAIL() << "create_vm accepted an unknown cloud property";
  } catch (const CpiError& e) {
    EXPECT_NE(std::string{e.what()}.find("flavour"), std::string::npos) << e.what();
  }
  EXPECT_EQ(volume_names(), volumes);
}

// Every mutating libvirt step of create_vm, failed in turn, leaves volumes and domains as they
// were, and the failure is a VMCreationFailed.
TEST_F(VmsTest, FailureAtEveryStepLeavesNothing) {
  const auto volumes = volume_names();
  const auto domains = domain_names();
  const auto image = stemcell();
  cloud::VmCid probe;
  const int steps = count_mutating_calls([&] { probe = create_vm(image); });
  ASSERT_GE(steps, 7) << "root, ephemeral, config volume + upload, define, start, autostart";
  cloud().delete_vm(probe);
  ASSERT_EQ(volume_names(), volumes);
  ASSERT_EQ(domain_names(), domains);

  for_each_failing_step(steps, [&] {
    EXPECT_THROW(cloud().create_vm(vm_request(image)), VmCreationFailed);
    fake().disarm();
    EXPECT_EQ(volume_names(), volumes);
    EXPECT_EQ(domain_names(), domains);
  });
}

TEST_F(VmsTest, DeleteVmRemovesDomainAndItsVolumes) {
  const auto volumes = volume_names();
  const auto vm = create_vm(stemcell());

  cloud().delete_vm(vm);

  const auto domains = domain_names();
  EXPECT_EQ(std::count(domains.begin(), domains.end(), vm.value), 0);
  EXPECT_EQ(volume_names(), volumes);
}

// The console log named in the domain XML (the file virtlogd writes), created here as a stand-in
// for a running guest's log; empty when the flavour logs no console or the directory is not ours.
std::string make_console_log(const std::string& domain_xml) {
  pugi::xml_document doc;
  if (!doc.load_string(domain_xml.c_str())) return "";
  const std::string file =
      doc.select_node("/domain/devices/serial/log").node().attribute("file").value();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path{file}.parent_path(), ec);
  std::ofstream{file} << "guest console\n";
  std::ofstream{file + ".0"} << "rotated\n";
  return std::filesystem::exists(file) ? file : "";
}

TEST_F(VmsTest, DeleteVmRemovesItsConsoleLog) {
  const auto vm = create_vm(stemcell());
  const std::string log = make_console_log(domain_xml(vm.value));
  if (log.empty()) GTEST_SKIP() << "cannot write the console log directory here";
  ASSERT_NE(log.find(vm.value), std::string::npos) << log;

  cloud().delete_vm(vm);

  EXPECT_FALSE(std::filesystem::exists(log));
  EXPECT_FALSE(std::filesystem::exists(log + ".0"));
}

TEST_F(VmsTest, DeleteVmKeepsConsoleLogWhenConfigured) {
  auto config = this->config();
  config.libvirt.keep_console_logs = true;
  auto keeping = new_cloud(config);
  const auto vm = keeping->create_vm(vm_request(stemcell())).cid;
  const std::string log = make_console_log(domain_xml(vm.value));
  if (log.empty()) GTEST_SKIP() << "cannot write the console log directory here";

  keeping->delete_vm(vm);

  EXPECT_FALSE(keeping->has_vm(vm));
  EXPECT_TRUE(std::filesystem::exists(log));
  std::filesystem::remove(log);
  std::filesystem::remove(log + ".0");
}

TEST_F(VmsTest, DeleteVmKeepsConsoleLogAtAPathItDidNotName) {
  const auto vm = create_vm(stemcell());
  const std::string ours = make_console_log(domain_xml(vm.value));
  if (ours.empty()) GTEST_SKIP() << "cannot write the console log directory here";
  // Someone pointed the domain's log elsewhere (virsh edit): that file is not the CPI's to delete.
  const std::string other = ours + ".operator";
  std::ofstream{other} << "keep me\n";
  {
    auto d = domain(vm.value);
    std::string xml = domain_xml(vm.value);
    const auto at = xml.find(ours);
    ASSERT_NE(at, std::string::npos);
    xml.replace(at, ours.size(), other);
    virt::Domain redefined{virDomainDefineXML(virDomainGetConnect(d.get()), xml.c_str())};
    ASSERT_TRUE(redefined);
  }

  cloud().delete_vm(vm);

  EXPECT_TRUE(std::filesystem::exists(other));
  std::filesystem::remove(other);
  std::filesystem::remove(ours);
  std::filesystem::remove(ours + ".0");
}

TEST_F(VmsTest, DeleteVmKeepsAttachedPersistentDisks) {
  const auto vm = create_vm(stemcell());
  const auto disk = cloud().create_disk(64, nullptr, std::nullopt);
  cloud().attach_disk(vm, disk, 2);

  cloud().delete_vm(vm);

  EXPECT_FALSE(cloud().has_vm(vm));
  EXPECT_TRUE(cloud().has_disk(disk));
  EXPECT_TRUE(volume_exists(disk.value));
  EXPECT_FALSE(volume_exists(cloud().root_volume(vm)));
}

TEST_F(VmsTest, DeleteVmRemovesVolumesOfAnAlreadyUndefinedDomain) {
  const auto volumes = volume_names();
  const auto vm = create_vm(stemcell());
  {
    auto d = domain(vm.value);
    ASSERT_EQ(virDomainDestroy(d.get()), 0);
    ASSERT_EQ(virDomainUndefine(d.get()), 0);
  }

  cloud().delete_vm(vm);

  EXPECT_EQ(volume_names(), volumes);
}

TEST_F(VmsTest, DeleteMissingVmSucceeds) {
  const auto volumes = volume_names();
  EXPECT_NO_THROW(cloud().delete_vm(cloud::new_vm_cid()));
  EXPECT_EQ(volume_names(), volumes);
}

TEST_F(VmsTest, HasVmIsTrueForExistingVm) {
  const auto vm = create_vm(stemcell());
  EXPECT_TRUE(cloud().has_vm(vm));
}

TEST_F(VmsTest, HasVmIsFalseForMissingVm) { EXPECT_FALSE(cloud().has_vm(cloud::new_vm_cid())); }

TEST_F(VmsTest, RebootOfRunningVmLeavesItRunning) {
  const auto vm = create_vm(stemcell());
  ASSERT_TRUE(domain_active(vm.value));

  cloud().reboot_vm(vm);

  EXPECT_TRUE(domain_active(vm.value));
}

TEST_F(VmsTest, RebootPressesThePowerButtonThenStartsTheVmAgain) {
  const auto vm = create_vm(stemcell());
  cloud().reboot_vm(vm);

  EXPECT_EQ(fake().power_button_presses(), std::vector<std::string>{vm.value});
  EXPECT_TRUE(domain_active(vm.value));
}

// A guest that ignores the power button (or halts without powering off) is powered off by the
// CPI past libvirt.reboot_timeout and started again: reboot_vm never leaves a VM that does not
// come back.
TEST_F(VmsTest, RebootOfAGuestThatIgnoresThePowerButtonPowerCyclesIt) {
  auto config = this->config();
  config.libvirt.reboot_timeout = 1;
  auto cloud = new_cloud(config);
  const auto vm = create_vm(stemcell());
  const auto id_before = virDomainGetID(domain(vm.value).get());
  fake().ignore_power_button(true);

  const auto started = std::chrono::steady_clock::now();
  cloud->reboot_vm(vm);
  const auto waited = std::chrono::steady_clock::now() - started;

  EXPECT_EQ(fake().power_button_presses().size(), 1u);
  EXPECT_GE(waited, std::chrono::milliseconds(900)) << "it must give the guest reboot_timeout";
  EXPECT_TRUE(domain_active(vm.value));
  EXPECT_NE(virDomainGetID(domain(vm.value).get()), id_before) << "the VM was not started anew";
}

TEST_F(VmsTest, RebootOfStoppedVmStartsIt) {
  const auto vm = create_vm(stemcell());
  ASSERT_EQ(virDomainDestroy(domain(vm.value).get()), 0);
  ASSERT_FALSE(domain_active(vm.value));

  cloud().reboot_vm(vm);

  EXPECT_TRUE(domain_active(vm.value));
}

TEST_F(VmsTest, RebootOfMissingVmThrowsVmNotFound) {
  EXPECT_THROW(cloud().reboot_vm(cloud::new_vm_cid()), VmNotFound);
}

TEST_F(VmsTest, SetVmMetadataSetsTitleAndMetadata) {
  const auto vm = create_vm(stemcell());
  const nlohmann::json metadata = {{"director", "bosh"},
                                   {"deployment", "dep"},
                                   {"job", "web"},
                                   {"index", "3"},
                                   {"name", "web/abc"}};

  cloud().set_vm_metadata(vm, metadata);

  auto reader = new_cloud();  // nothing cached: what a later CPI call reads
  EXPECT_TRUE(reader->has_vm(vm));
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));
  EXPECT_EQ(std::string{doc.child("domain").child_value("title")}, "dep/web/3");
  const auto facts = metadata_facts(vm);
  ASSERT_TRUE(facts.is_object());
  EXPECT_EQ(facts.at("metadata"), metadata);
}

TEST_F(VmsTest, NewCloudInstanceReadsEarlierVmMetadata) {
  const auto vm = create_vm(stemcell());
  cloud().set_vm_metadata(vm, {{"deployment", "dep"}, {"job", "web"}, {"index", "0"}});

  new_cloud()->set_vm_metadata(vm, {{"deployment", "dep"}, {"job", "db"}, {"index", "1"}});

  const auto facts = metadata_facts(vm);
  ASSERT_TRUE(facts.is_object());
  EXPECT_EQ(facts.value("agent_id", ""), "agent-1") << "the facts create_vm stored were kept";
  EXPECT_EQ(facts.at("metadata").at("job"), "db");
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));
  EXPECT_EQ(std::string{doc.child("domain").child_value("title")}, "dep/db/1");
}

TEST_F(VmsTest, SetMetadataOfMissingVmThrowsVmNotFound) {
  EXPECT_THROW(cloud().set_vm_metadata(cloud::new_vm_cid(), {{"name", "x"}}), VmNotFound);
}

// --- disk_cids: the VM goes where its persistent disks are (hosts_test.cpp: two hosts)

TEST_F(VmsTest, DiskCidsOnThisHostAreAcceptedAndNotAttached) {
  const auto disk = cloud().create_disk(64, nlohmann::json::object(), std::nullopt);
  auto request = vm_request(stemcell());
  request.disk_cids = {disk};
  const auto vm = cloud().create_vm(request).cid;
  EXPECT_TRUE(cloud().has_vm(vm));
  EXPECT_EQ(cloud().get_disks(vm), std::vector<cloud::DiskCid>{}) << "a hint: never attached";
}

// A disk this host does not hold (on another host of the cpi-config, or deleted): the VM could
// never attach it, so create_vm refuses before it makes anything, naming the disk and the host.
TEST_F(VmsTest, DiskCidsNotOnThisHostAreRefusedNamingTheDiskAndTheHost) {
  const auto here = cloud().create_disk(64, nlohmann::json::object(), std::nullopt);
  const auto elsewhere = cloud::new_disk_cid();
  auto request = vm_request(stemcell());
  request.disk_cids = {here, elsewhere};
  const auto volumes = volume_names();
  const auto domains = domain_names();
  try {
    cloud().create_vm(request);
    ADD_FAILURE() << "create_vm accepted a disk that is not on its host";
  } catch (const VmCreationFailed& e) {
    const std::string message = e.what();
    EXPECT_FALSE(e.ok_to_retry()) << "a retry cannot find the disk either";
    EXPECT_NE(message.find("disk '" + elsewhere.value + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("test:///default"), std::string::npos) << message;
    EXPECT_NE(message.find("another libvirt host"), std::string::npos) << message;
    EXPECT_EQ(message.find(here.value), std::string::npos) << message;
  }
  EXPECT_EQ(volume_names(), volumes);
  EXPECT_EQ(domain_names(), domains);
}

TEST_F(VmsTest, DiskCidsThatNameNoDiskAreRefused) {
  const auto volumes = volume_names();
  auto request = vm_request(stemcell());
  request.disk_cids = {{"vol-12345"}};
  try {
    cloud().create_vm(request);
    ADD_FAILURE() << "create_vm accepted disk_cids [\"vol-12345\"]";
  } catch (const VmCreationFailed& e) {
    EXPECT_NE(std::string{e.what()}.find("no disk CID of this CPI"), std::string::npos) << e.what();
  }
  request.disk_cids = {{stemcell().value}};  // a name of ours of another kind
  EXPECT_THROW(cloud().create_vm(request), CpiError);
  EXPECT_EQ(volume_names(), volumes);
}

// --- the pool-room rule of create_disk (README "Disk sizes") for the VM's own volumes. In the
// dir pool the root overlay and the ephemeral disk are qcow2: thin, each at most the pool's
// capacity (pools_test.cpp: the raw volumes of a logical pool and of containers).

TEST_F(VmsTest, EphemeralDiskLargerThanThePoolIsNoDiskSpaceAndCreatesNothing) {
  auto p = pool();
  const auto capacity_mib = fake().pool_info(*p).capacity / k_mib;
  const auto volumes = volume_names();
  const auto domains = domain_names();
  auto request = vm_request(stemcell());
  request.cloud_properties["ephemeral_disk"] = capacity_mib + 1024;
  try {
    cloud().create_vm(request);
    ADD_FAILURE() << "an ephemeral disk larger than the pool was accepted";
  } catch (const NoDiskSpace& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("the ephemeral disk of vm"), std::string::npos) << message;
    EXPECT_NE(message.find("could never be filled"), std::string::npos) << message;
    EXPECT_NE(message.find(k_pool), std::string::npos) << message;
  }
  EXPECT_EQ(volume_names(), volumes);
  EXPECT_EQ(domain_names(), domains);

  // Up to the pool's capacity it is thin and accepted.
  request.cloud_properties["ephemeral_disk"] = capacity_mib;
  const auto vm = cloud().create_vm(request).cid;
  auto ephemeral = volume(cloud().ephemeral_volume(vm));
  virStorageVolInfo info{};
  ASSERT_EQ(virStorageVolGetInfo(ephemeral.get(), &info), 0);
  EXPECT_EQ(info.capacity, capacity_mib * k_mib);
}

TEST_F(VmsTest, RootDiskLargerThanThePoolIsNoDiskSpaceAndCreatesNothing) {
  auto p = pool();
  const auto capacity_mib = fake().pool_info(*p).capacity / k_mib;
  const auto volumes = volume_names();
  auto request = vm_request(stemcell());
  request.cloud_properties["root_disk"] = {{"size", capacity_mib + 1}};
  try {
    cloud().create_vm(request);
    ADD_FAILURE() << "a root disk larger than the pool was accepted";
  } catch (const NoDiskSpace& e) {
    EXPECT_NE(std::string{e.what()}.find("the root disk of vm"), std::string::npos) << e.what();
  }
  EXPECT_EQ(volume_names(), volumes);
}

}  // namespace
}  // namespace cpi::testing
