#include "cpi/xml/volume_xml.hpp"

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"
#include "support/xml_checks.hpp"

namespace cpi::xml {
namespace {

using namespace cpi::testing;  // support/xml_checks.hpp

constexpr std::uint64_t k_ten_gib = 10ULL * 1024 * 1024 * 1024;

std::string at(const pugi::xml_document& doc, const char* xpath) {
  const auto node = doc.select_node(xpath);
  EXPECT_TRUE(node) << xpath;
  return node.attribute() ? node.attribute().value() : node.node().child_value();
}

bool has(const pugi::xml_document& doc, const char* xpath) {
  return static_cast<bool>(doc.select_node(xpath));
}

VolumeSpec qcow2_spec() { return {"disk-0123456789abcde", k_ten_gib, "qcow2", ""}; }

OverlayVolumeSpec overlay_spec() {
  return {"vm-1-root", k_ten_gib, "/var/lib/libvirt/bosh/sc-1", "raw"};
}

TEST(VolumeXmlTest, EscapesTheName) {
  VolumeSpec spec = qcow2_spec();
  spec.name = R"(a<b>&"c'd)";
  const auto doc = parsed(volume_xml(spec));
  EXPECT_EQ(at(doc, "/volume/name"), spec.name);
}

TEST(VolumeXmlTest, CapacityIsInBytes) {
  const auto doc = parsed(volume_xml(qcow2_spec()));
  EXPECT_EQ(at(doc, "/volume/capacity/@unit"), "bytes");
  EXPECT_EQ(at(doc, "/volume/capacity"), std::to_string(k_ten_gib));
}

TEST(VolumeXmlTest, TargetFormatIsTheSpecsFormat) {
  for (const char* format : {"qcow2", "raw"}) {
    VolumeSpec spec = qcow2_spec();
    spec.format = format;
    EXPECT_EQ(at(parsed(volume_xml(spec)), "/volume/target/format/@type"), format);
  }
}

TEST(VolumeXmlTest, Qcow2VolumeStartsWithZeroAllocation) {
  const auto doc = parsed(volume_xml(qcow2_spec()));
  EXPECT_EQ(at(doc, "/volume/allocation"), "0");
  EXPECT_EQ(at(doc, "/volume/allocation/@unit"), "bytes");
}

TEST(VolumeXmlTest, RawVolumeHasNoAllocation) {
  VolumeSpec spec = qcow2_spec();
  spec.format = "raw";
  EXPECT_FALSE(has(parsed(volume_xml(spec)), "/volume/allocation"));
}

TEST(VolumeXmlTest, PermissionsModeOnlyWhenGiven) {
  VolumeSpec spec = qcow2_spec();
  EXPECT_FALSE(has(parsed(volume_xml(spec)), "/volume/target/permissions"));
  spec.mode = "0600";
  EXPECT_EQ(at(parsed(volume_xml(spec)), "/volume/target/permissions/mode"), "0600");
}

TEST(OverlayVolumeXmlTest, PointsBackingStoreAtStemcell) {
  const auto doc = parsed(overlay_volume_xml(overlay_spec()));
  EXPECT_EQ(at(doc, "/volume/backingStore/path"), "/var/lib/libvirt/bosh/sc-1");
  EXPECT_EQ(at(doc, "/volume/backingStore/format/@type"), "raw");
}

TEST(OverlayVolumeXmlTest, IsAQcow2VolumeOfTheGivenCapacity) {
  const auto doc = parsed(overlay_volume_xml(overlay_spec()));
  EXPECT_EQ(at(doc, "/volume/name"), "vm-1-root");
  EXPECT_EQ(at(doc, "/volume/target/format/@type"), "qcow2");
  EXPECT_EQ(at(doc, "/volume/capacity/@unit"), "bytes");
  EXPECT_EQ(at(doc, "/volume/capacity"), std::to_string(k_ten_gib));
  EXPECT_EQ(at(doc, "/volume/allocation"), "0");
}

TEST(OverlayVolumeXmlTest, EscapesTheBackingPath) {
  OverlayVolumeSpec spec = overlay_spec();
  spec.backing_path = "/pools/a&b/<sc>";
  EXPECT_EQ(at(parsed(overlay_volume_xml(spec)), "/volume/backingStore/path"), spec.backing_path);
}

TEST(ReadVolumeXmlTest, ReadsNamePathFormatCapacityAndBacking) {
  const VolumeFacts facts = read_volume_xml(R"(<volume type='file'>
    <name>vm-1-root</name><key>/p/vm-1-root</key>
    <capacity unit='bytes'>10737418240</capacity><allocation unit='bytes'>200704</allocation>
    <target><path>/p/vm-1-root</path><format type='qcow2'/></target>
    <backingStore><path>/p/sc-1</path><format type='raw'/></backingStore>
  </volume>)");
  EXPECT_EQ(facts.name, "vm-1-root");
  EXPECT_EQ(facts.path, "/p/vm-1-root");
  EXPECT_EQ(facts.format, "qcow2");
  EXPECT_EQ(facts.capacity_bytes, k_ten_gib);
  EXPECT_EQ(facts.backing_path, "/p/sc-1");
}

TEST(ReadVolumeXmlTest, NoBackingStoreAndNoFormat) {
  const VolumeFacts facts = read_volume_xml(
      "<volume><name>v</name><capacity>1</capacity><target><path>/p/v</path></target></volume>");
  EXPECT_EQ(facts.format, "");
  EXPECT_FALSE(facts.backing_path.has_value());
}

TEST(ReadVolumeXmlTest, RoundTripsTheBuilder) {
  const VolumeFacts facts = read_volume_xml(overlay_volume_xml(overlay_spec()));
  EXPECT_EQ(facts.name, "vm-1-root");
  EXPECT_EQ(facts.format, "qcow2");
  EXPECT_EQ(facts.capacity_bytes, k_ten_gib);
  EXPECT_EQ(facts.backing_path, "/var/lib/libvirt/bosh/sc-1");
}

TEST(ReadVolumeXmlTest, UnreadableXmlIsACloudError) {
  EXPECT_THROW(read_volume_xml("<volume><name>"), CloudError);
}

TEST(DirPoolXmlTest, IsADirPoolAtThePath) {
  const auto doc = parsed(dir_pool_xml("bosh", "/var/lib/libvirt/bosh"));
  EXPECT_EQ(at(doc, "/pool/@type"), "dir");
  EXPECT_EQ(at(doc, "/pool/name"), "bosh");
  EXPECT_EQ(at(doc, "/pool/target/path"), "/var/lib/libvirt/bosh");
  EXPECT_EQ(at(doc, "/pool/target/permissions/mode"), "0711");
}

TEST(DirPoolXmlTest, ReadPoolXmlRoundTrips) {
  const PoolFacts facts = read_pool_xml(dir_pool_xml("bosh", "/srv/a&b"));
  EXPECT_EQ(facts.type, "dir");
  EXPECT_EQ(facts.path, "/srv/a&b");
}


// create_disk takes the pool's room from its XML (the values virStoragePoolGetInfo reports).
TEST(DirPoolXmlTest, ReadPoolXmlReadsCapacityAndAvailableInBytes) {
  const PoolFacts facts = read_pool_xml(
      "<pool type='dir'><name>p</name><capacity unit='bytes'>2000</capacity>"
      "<allocation unit='bytes'>500</allocation><available unit='bytes'>1500</available>"
      "<target><path>/p</path></target></pool>");
  EXPECT_EQ(facts.capacity, std::optional<std::uint64_t>{2000});
  EXPECT_EQ(facts.available, std::optional<std::uint64_t>{1500});
}

TEST(DirPoolXmlTest, ReadPoolXmlLeavesSizesUnknownUnlessInBytes) {
  const PoolFacts facts = read_pool_xml(
      "<pool type='dir'><name>p</name><capacity unit='KiB'>2</capacity>"
      "<available unit='bytes'>-1</available></pool>");
  EXPECT_FALSE(facts.capacity.has_value());
  EXPECT_FALSE(facts.available.has_value());
  EXPECT_FALSE(read_pool_xml(dir_pool_xml("bosh", "/srv")).capacity.has_value());
}

TEST(VolumeXmlSchemaTest, VolumesValidate) {
  if (!have_validator()) {
    GTEST_SKIP() << "virt-xml-validate is not on PATH";
  }
  VolumeSpec raw = qcow2_spec();
  raw.format = "raw";
  raw.mode = "0600";
  for (const auto& text : {volume_xml(qcow2_spec()), volume_xml(raw)}) {
    EXPECT_EQ(validation_error(text, "storagevol"), "");
  }
}

TEST(VolumeXmlSchemaTest, OverlayValidates) {
  if (!have_validator()) {
    GTEST_SKIP() << "virt-xml-validate is not on PATH";
  }
  EXPECT_EQ(validation_error(overlay_volume_xml(overlay_spec()), "storagevol"), "");
}

TEST(VolumeXmlSchemaTest, DirPoolValidates) {
  if (!have_validator()) {
    GTEST_SKIP() << "virt-xml-validate is not on PATH";
  }
  EXPECT_EQ(validation_error(dir_pool_xml("bosh", "/var/lib/libvirt/bosh"), "storagepool"), "");
}

}  // namespace
}  // namespace cpi::xml
