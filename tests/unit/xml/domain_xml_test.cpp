#include "cpi/xml/domain_xml.hpp"

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "support/xml_checks.hpp"

namespace cpi::xml {
namespace {

using namespace cpi::testing;  // support/xml_checks.hpp

DiskDevice disk(const std::string& volume, const std::string& target, const std::string& bus,
                const std::string& serial) {
  DiskDevice d;
  d.pool = "bosh";
  d.volume = volume;
  d.target = target;
  d.bus = bus;
  d.serial = serial;
  return d;
}

DiskDevice config_drive(const std::string& bus, const std::string& target) {
  DiskDevice d = disk("vm-1-config", target, bus, "");
  d.format = "raw";
  d.cdrom = true;
  return d;
}

NicDevice nic(const std::string& type, const std::string& source, const std::string& mac) {
  NicDevice n;
  n.type = type;
  n.source = source;
  n.mac = mac;
  return n;
}

DomainSpec full_spec() {
  DomainSpec spec;
  spec.name = "vm-0f8fad5b-d9cb-469f-a165-70867728950e";
  spec.title = "bosh/web/0";
  spec.vcpus = 2;
  spec.memory_mib = 2048;
  spec.disks = {disk("vm-1-root", "vda", "virtio", ""),
                disk("vm-1-ephemeral", "vdb", "virtio", "eph-0123456789abcdef"),
                disk("disk-0123456789abcde", "vdc", "virtio", "disk-0123456789abcde"),
                config_drive("ide", "hda")};
  spec.nics = {nic("network", "default", "52:54:00:00:00:01"),
               nic("bridge", "br0", "52:54:00:00:00:02"),
               nic("direct", "eth1", "52:54:00:00:00:03")};
  spec.nics[2].mode = "vepa";
  spec.console_log = "/var/lib/libvirt/bosh/vm-1.console.log";
  spec.metadata = std::string{"<vm xmlns='"} + k_metadata_ns + "'><facts>{}</facts></vm>";
  return spec;
}

TEST(DomainXmlTest, EscapesNameAndTitle) {
  DomainSpec spec = full_spec();
  spec.name = "vm-<&>";
  spec.title = R"(a "b" & 'c' <d>)";
  const auto doc = parsed(domain_xml(spec));
  EXPECT_EQ(at(doc, "/domain/name"), spec.name);
  EXPECT_EQ(at(doc, "/domain/title"), spec.title);
}

TEST(DomainXmlTest, HasTypeMemoryVcpusAndMachine) {
  DomainSpec spec = full_spec();
  spec.virt_type = "kvm";
  spec.machine = "q35";
  const auto doc = parsed(domain_xml(spec));
  EXPECT_EQ(at(doc, "/domain/@type"), "kvm");
  EXPECT_EQ(at(doc, "/domain/memory"), "2048");
  EXPECT_EQ(at(doc, "/domain/memory/@unit"), "MiB");
  EXPECT_EQ(at(doc, "/domain/vcpu"), "2");
  EXPECT_EQ(at(doc, "/domain/os/type"), "hvm");
  EXPECT_EQ(at(doc, "/domain/os/type/@machine"), "q35");
  EXPECT_EQ(at(doc, "/domain/os/boot/@dev"), "hd");
}

TEST(DomainXmlTest, DisksAreVolumesWithTargetsBusAndSerials) {
  const auto doc = parsed(domain_xml(full_spec()));
  ASSERT_EQ(count(doc, "/domain/devices/disk"), 4U);
  const std::vector<std::vector<std::string>> expected{
      {"vm-1-root", "vda", "virtio", ""},
      {"vm-1-ephemeral", "vdb", "virtio", "eph-0123456789abcdef"},
      {"disk-0123456789abcde", "vdc", "virtio", "disk-0123456789abcde"}};
  for (const auto& e : expected) {
    SCOPED_TRACE(e[0]);
    const auto d =
        doc.select_node(("/domain/devices/disk[source/@volume='" + e[0] + "']").c_str()).node();
    ASSERT_TRUE(d);
    EXPECT_EQ(at(d, "@type"), "volume");
    EXPECT_EQ(at(d, "@device"), "disk");
    EXPECT_EQ(at(d, "source/@pool"), "bosh");
    EXPECT_EQ(at(d, "target/@dev"), e[1]);
    EXPECT_EQ(at(d, "target/@bus"), e[2]);
    EXPECT_EQ(at(d, "driver/@type"), "qcow2");
    EXPECT_EQ(d.child_value("serial"), e[3]);
    EXPECT_EQ(count(d, "serial"), e[3].empty() ? 0U : 1U);
    EXPECT_EQ(count(d, "readonly"), 0U);
  }
}

TEST(DomainXmlTest, BootDiskComesFirst) {
  const auto doc = parsed(domain_xml(full_spec()));
  EXPECT_EQ(at(doc, "/domain/devices/disk[1]/target/@dev"), "vda");
}

TEST(DomainXmlTest, ConfigDriveIsAReadOnlyCdrom) {
  const auto doc = parsed(domain_xml(full_spec()));
  const auto d = doc.select_node("/domain/devices/disk[@device='cdrom']").node();
  ASSERT_TRUE(d);
  EXPECT_EQ(at(d, "source/@volume"), "vm-1-config");
  EXPECT_EQ(at(d, "target/@bus"), "ide");
  EXPECT_EQ(at(d, "driver/@type"), "raw");
  EXPECT_EQ(count(d, "readonly"), 1U);
}

TEST(DomainXmlTest, NicsHaveMacSourceAndVirtioModel) {
  const auto doc = parsed(domain_xml(full_spec()));
  ASSERT_EQ(count(doc, "/domain/devices/interface"), 3U);
  const std::vector<std::vector<std::string>> expected{
      {"network", "52:54:00:00:00:01", "source/@network", "default"},
      {"bridge", "52:54:00:00:00:02", "source/@bridge", "br0"},
      {"direct", "52:54:00:00:00:03", "source/@dev", "eth1"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    SCOPED_TRACE(e[0]);
    const auto n =
        doc.select_node(("/domain/devices/interface[" + std::to_string(i + 1) + "]").c_str())
            .node();
    EXPECT_EQ(at(n, "@type"), e[0]);
    EXPECT_EQ(at(n, "mac/@address"), e[1]);
    EXPECT_EQ(at(n, e[2]), e[3]);
    EXPECT_EQ(at(n, "model/@type"), "virtio");
  }
  EXPECT_EQ(at(doc, "/domain/devices/interface[@type='direct']/source/@mode"), "vepa");
}

TEST(DomainXmlTest, UnsupportedNicTypeIsACpiError) {
  DomainSpec spec = full_spec();
  spec.nics = {nic("user", "", "52:54:00:00:00:09")};
  EXPECT_THROW(domain_xml(spec), CpiError);
}

TEST(DomainXmlTest, SerialConsoleIsAppendedToTheLogFile) {
  const auto doc = parsed(domain_xml(full_spec()));
  EXPECT_EQ(at(doc, "/domain/devices/serial/@type"), "pty");
  EXPECT_EQ(at(doc, "/domain/devices/serial/log/@file"), "/var/lib/libvirt/bosh/vm-1.console.log");
  EXPECT_EQ(at(doc, "/domain/devices/serial/log/@append"), "on");
  EXPECT_EQ(at(doc, "/domain/devices/console/target/@type"), "serial");
}

TEST(DomainXmlTest, SerialConsoleWithoutLogFileHasNoLog) {
  DomainSpec spec = full_spec();
  spec.console_log.clear();
  const auto doc = parsed(domain_xml(spec));
  EXPECT_EQ(count(doc, "/domain/devices/serial"), 1U);
  EXPECT_EQ(count(doc, "/domain/devices/serial/log"), 0U);
}

TEST(DomainXmlTest, VncListensOnLoopbackOnly) {
  const auto doc = parsed(domain_xml(full_spec()));
  EXPECT_EQ(at(doc, "/domain/devices/graphics/@type"), "vnc");
  EXPECT_EQ(at(doc, "/domain/devices/graphics/@listen"), "127.0.0.1");
  EXPECT_EQ(at(doc, "/domain/devices/graphics/listen/@type"), "address");
  EXPECT_EQ(at(doc, "/domain/devices/graphics/listen/@address"), "127.0.0.1");
}

TEST(DomainXmlTest, HasAVirtioRng) {
  const auto doc = parsed(domain_xml(full_spec()));
  EXPECT_EQ(at(doc, "/domain/devices/rng/@model"), "virtio");
  EXPECT_EQ(at(doc, "/domain/devices/rng/backend/@model"), "random");
  EXPECT_EQ(at(doc, "/domain/devices/rng/backend"), "/dev/urandom");
}

TEST(DomainXmlTest, RestartsOnCrashAndRebootWithUtcClock) {
  const auto doc = parsed(domain_xml(full_spec()));
  EXPECT_EQ(at(doc, "/domain/on_crash"), "restart");
  EXPECT_EQ(at(doc, "/domain/on_reboot"), "restart");
  EXPECT_EQ(at(doc, "/domain/on_poweroff"), "destroy");
  EXPECT_EQ(at(doc, "/domain/clock/@offset"), "utc");
  EXPECT_EQ(count(doc, "/domain/features/acpi"), 1U);
}

TEST(DomainXmlTest, HostPassthroughOnlyUnderKvmWhenAsked) {
  struct Case {
    const char* virt_type;
    bool asked;
    bool expected;
  };
  for (const Case& c : {Case{"kvm", true, true}, Case{"kvm", false, false},
                        Case{"qemu", true, false}, Case{"qemu", false, false}}) {
    SCOPED_TRACE(std::string{c.virt_type} + (c.asked ? " asked" : ""));
    DomainSpec spec = full_spec();
    spec.virt_type = c.virt_type;
    spec.host_passthrough = c.asked;
    const auto doc = parsed(domain_xml(spec));
    EXPECT_EQ(count(doc, "/domain/cpu[@mode='host-passthrough']"), c.expected ? 1U : 0U);
  }
}

TEST(DomainXmlTest, CopiesMetadataElementInItsNamespace) {
  const auto doc = parsed(domain_xml(full_spec()));
  ASSERT_EQ(count(doc, "/domain/metadata/*"), 1U);
  const auto vm = doc.select_node("/domain/metadata/vm").node();
  ASSERT_TRUE(vm);
  EXPECT_STREQ(vm.attribute("xmlns").value(), k_metadata_ns);
  EXPECT_STREQ(vm.child_value("facts"), "{}");
}

TEST(DomainXmlTest, CopiesPrefixedMetadataElement) {
  DomainSpec spec = full_spec();
  spec.metadata =
      std::string{"<bosh:vm xmlns:bosh='"} + k_metadata_ns + "'><bosh:facts/></bosh:vm>";
  const auto doc = parsed(domain_xml(spec));
  const auto vm = doc.select_node("/domain/metadata/bosh:vm").node();
  ASSERT_TRUE(vm);
  EXPECT_STREQ(vm.attribute("xmlns:bosh").value(), k_metadata_ns);
}

TEST(DomainXmlTest, NoMetadataElementWhenEmpty) {
  DomainSpec spec = full_spec();
  spec.metadata.clear();
  EXPECT_EQ(count(parsed(domain_xml(spec)), "/domain/metadata"), 0U);
}

TEST(DomainXmlTest, UnreadableMetadataIsACloudError) {
  DomainSpec spec = full_spec();
  spec.metadata = "<vm><facts>";
  EXPECT_THROW(domain_xml(spec), CloudError);
}

TEST(DiskDeviceXmlTest, IsOneDiskElement) {
  const auto doc =
      parsed(disk_device_xml(disk("disk-0123456789abcde", "sdb", "scsi", "disk-0123456789abcde")));
  ASSERT_EQ(count(doc, "/*"), 1U);
  EXPECT_EQ(at(doc, "/disk/@type"), "volume");
  EXPECT_EQ(at(doc, "/disk/source/@volume"), "disk-0123456789abcde");
  EXPECT_EQ(at(doc, "/disk/target/@dev"), "sdb");
  EXPECT_EQ(at(doc, "/disk/target/@bus"), "scsi");
  EXPECT_EQ(at(doc, "/disk/serial"), "disk-0123456789abcde");
}

TEST(ReadDomainXmlTest, RoundTripsDisksNicsTargetsAndConsoleLog) {
  const DomainSpec spec = full_spec();
  const DomainFacts facts = read_domain_xml(domain_xml(spec));
  ASSERT_EQ(facts.disks.size(), spec.disks.size());
  for (std::size_t i = 0; i < spec.disks.size(); ++i) {
    SCOPED_TRACE(spec.disks[i].volume);
    EXPECT_EQ(facts.disks[i].pool, spec.disks[i].pool);
    EXPECT_EQ(facts.disks[i].volume, spec.disks[i].volume);
    EXPECT_EQ(facts.disks[i].format, spec.disks[i].format);
    EXPECT_EQ(facts.disks[i].target, spec.disks[i].target);
    EXPECT_EQ(facts.disks[i].bus, spec.disks[i].bus);
    EXPECT_EQ(facts.disks[i].serial, spec.disks[i].serial);
    EXPECT_EQ(facts.disks[i].cdrom, spec.disks[i].cdrom);
  }
  ASSERT_EQ(facts.nics.size(), spec.nics.size());
  for (std::size_t i = 0; i < spec.nics.size(); ++i) {
    SCOPED_TRACE(spec.nics[i].mac);
    EXPECT_EQ(facts.nics[i].type, spec.nics[i].type);
    EXPECT_EQ(facts.nics[i].mac, spec.nics[i].mac);
    EXPECT_EQ(facts.nics[i].source, spec.nics[i].source);
    EXPECT_EQ(facts.nics[i].model, "virtio");
  }
  EXPECT_EQ(facts.nics[2].mode, "vepa");
  EXPECT_EQ(facts.targets, (std::vector<std::string>{"vda", "vdb", "vdc", "hda"}));
  EXPECT_EQ(facts.console_log, spec.console_log);
}

TEST(ReadDomainXmlTest, RecordsTargetsOfNonVolumeDisks) {
  const DomainFacts facts = read_domain_xml(R"(<domain type='kvm'><devices>
    <disk type='file' device='disk'><source file='/x.img'/><target dev='vda' bus='virtio'/></disk>
  </devices></domain>)");
  ASSERT_EQ(facts.disks.size(), 1U);
  EXPECT_EQ(facts.disks[0].pool, "");
  EXPECT_EQ(facts.disks[0].volume, "");
  EXPECT_EQ(facts.targets, (std::vector<std::string>{"vda"}));
  EXPECT_EQ(facts.console_log, "");
}

// Our mark is the element in our namespace, whichever prefix libvirt wrote it with: the same
// test virDomainGetMetadata makes.
TEST(ReadDomainXmlTest, FindsOurMetadataElementByItsNamespace) {
  const std::string ns = k_metadata_ns;
  const std::vector<std::string> ours{
      "<bosh:vm xmlns:bosh='" + ns + "'><bosh:facts>{\"a\":1}</bosh:facts></bosh:vm>",
      "<x:vm xmlns:x='" + ns + "'><x:facts>{\"a\":1}</x:facts></x:vm>",
      "<vm xmlns='" + ns + "'><facts>{\"a\":1}</facts></vm>",
      "<other:a xmlns:other='urn:other'/><bosh:vm xmlns:bosh='" + ns +
          "'><bosh:facts>{\"a\":1}</bosh:facts></bosh:vm>"};
  for (const auto& metadata : ours) {
    SCOPED_TRACE(metadata);
    const auto facts =
        read_domain_xml("<domain><name>d</name><metadata>" + metadata + "</metadata></domain>");
    EXPECT_TRUE(facts.ours);
    EXPECT_EQ(facts.facts, "{\"a\":1}");
  }
}

TEST(ReadDomainXmlTest, ElementsOfOtherNamespacesAreNotOurs) {
  const std::string ns = k_metadata_ns;
  const std::vector<std::string> foreign{
      "",
      "<metadata/>",
      "<metadata><bosh:vm xmlns:bosh='urn:someone-else'><bosh:facts>{}</bosh:facts></bosh:vm>"
      "</metadata>",
      "<metadata><vm><facts>{}</facts></vm></metadata>",  // no namespace at all
      "<metadata><bosh:vm xmlns:other='" + ns + "'><facts>{}</facts></bosh:vm></metadata>",
      "<metadata>" + ns + "</metadata>",
      "<description>" + ns + "</description>"};
  for (const auto& part : foreign) {
    SCOPED_TRACE(part);
    const auto facts = read_domain_xml("<domain><name>d</name>" + part + "</domain>");
    EXPECT_FALSE(facts.ours);
    EXPECT_EQ(facts.facts, "");
  }
}

TEST(ReadDomainXmlTest, UnreadableXmlIsACloudError) {
  EXPECT_THROW(read_domain_xml("<domain><devices>"), CloudError);
}

TEST(NextTargetTest, PicksTheFirstFreeNameForTheBus) {
  struct Case {
    std::string bus;
    std::vector<std::string> used;
    std::string expected;
  };
  std::vector<std::string> all_vd;
  for (char c = 'a'; c <= 'z'; ++c) all_vd.push_back(std::string{"vd"} + c);
  std::vector<std::string> through_vdaa = all_vd;
  through_vdaa.push_back("vdaa");
  const std::vector<Case> cases{
      {"virtio", {}, "vda"},
      {"virtio", {"vda"}, "vdb"},
      {"virtio", {"vda", "vdb", "vdd"}, "vdc"},
      {"virtio", {"vdb"}, "vda"},
      {"virtio", {"sda", "hda"}, "vda"},
      {"scsi", {"vda", "vdb"}, "sda"},
      {"scsi", {"sda"}, "sdb"},
      {"sata", {"sda", "sdb"}, "sdc"},
      {"ide", {"vda", "hda"}, "hdb"},
      {"virtio", all_vd, "vdaa"},
      {"virtio", through_vdaa, "vdab"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.bus + " -> " + c.expected);
    EXPECT_EQ(next_target(c.bus, c.used), c.expected);
  }
}

TEST(NextTargetTest, AfterVdzzThereIsNoneLeft) {
  std::vector<std::string> used;
  for (char c = 'a'; c <= 'z'; ++c) used.push_back(std::string{"vd"} + c);
  for (char a = 'a'; a <= 'z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) used.push_back(std::string{"vd"} + a + b);
  }
  EXPECT_THROW(next_target("virtio", used), CloudError);
}

TEST(DomainXmlSchemaTest, DomainShapesValidate) {
  if (!have_validator()) GTEST_SKIP() << "virt-xml-validate is not on PATH";
  DomainSpec minimal;
  minimal.name = "vm-minimal";
  DomainSpec full = full_spec();
  DomainSpec kvm_q35 = full_spec();
  kvm_q35.virt_type = "kvm";
  kvm_q35.machine = "q35";
  kvm_q35.host_passthrough = true;
  kvm_q35.disks = {disk("vm-1-root", "sda", "scsi", ""),
                   disk("disk-0123456789abcde", "sdb", "sata", "disk-0123456789abcde"),
                   config_drive("sata", "sdc")};
  kvm_q35.nics = {nic("bridge", "br0", "52:54:00:00:00:02")};
  kvm_q35.console_log.clear();
  for (const DomainSpec& spec : {minimal, full, kvm_q35}) {
    SCOPED_TRACE(spec.name + " " + spec.machine);
    EXPECT_EQ(validation_error(domain_xml(spec)), "");
  }
}

}  // namespace
}  // namespace cpi::xml
