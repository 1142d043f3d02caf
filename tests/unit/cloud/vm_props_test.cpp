#include "cpi/cloud/vm_props.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "support/cpi_error.hpp"

namespace cpi::cloud {
namespace {

using nlohmann::json;

const auto& error_of = cpi::testing::cpi_error_of;
const auto& contains = cpi::testing::contains;

TEST(VmPropsTest, DefaultsForEmptyOrNullProperties) {
  for (const json& properties : {json::object(), json(nullptr)}) {
    const VmProps props = parse_vm_props(properties);
    EXPECT_EQ(props.cpu, 1U);
    EXPECT_EQ(props.ram_mib, 1024U);
    EXPECT_EQ(props.ephemeral_disk_mib, 0U);
    EXPECT_FALSE(props.root_disk_mib.has_value());
  }
}

TEST(VmPropsTest, ReadsKeysAndTheirAliases) {
  struct Case {
    json properties;
    unsigned int cpu;
    std::uint64_t ram;
    std::uint64_t ephemeral;
  };
  const std::vector<Case> cases{
      {{{"cpu", 2}, {"ram", 2048}, {"ephemeral_disk", 4096}}, 2, 2048, 4096},
      {{{"cpus", 4}, {"memory", 512}, {"disk", 8192}}, 4, 512, 8192},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.properties.dump());
    const VmProps props = parse_vm_props(c.properties);
    EXPECT_EQ(props.cpu, c.cpu);
    EXPECT_EQ(props.ram_mib, c.ram);
    EXPECT_EQ(props.ephemeral_disk_mib, c.ephemeral);
  }
}

TEST(VmPropsTest, ReadsRootDiskSize) {
  const VmProps props = parse_vm_props({{"root_disk", {{"size", 10240}}}});
  EXPECT_EQ(props.root_disk_mib, 10240U);
}

// Manifests written for other CPIs give the ephemeral disk as {size: MiB}.
TEST(VmPropsTest, ReadsEphemeralDiskAsIntegerOrSizeObject) {
  EXPECT_EQ(parse_vm_props({{"ephemeral_disk", 4096}}).ephemeral_disk_mib, 4096U);
  EXPECT_EQ(parse_vm_props({{"ephemeral_disk", {{"size", 8192}}}}).ephemeral_disk_mib, 8192U);
  EXPECT_EQ(parse_vm_props({{"disk", {{"size", 1024}}}}).ephemeral_disk_mib, 1024U);
  EXPECT_EQ(parse_vm_props({{"ephemeral_disk", {{"size", 0}}}}).ephemeral_disk_mib, 0U);
}

TEST(VmPropsTest, BadEphemeralDiskObjectsNameTheField) {
  const std::vector<std::pair<json, std::string>> cases{
      {{{"ephemeral_disk", json::object()}}, "cloud_properties.ephemeral_disk: needs 'size'"},
      {{{"ephemeral_disk", {{"size", "1G"}}}},
       "cloud_properties.ephemeral_disk.size: expected an integer, got a string"},
      {{{"ephemeral_disk", {{"size", -1}}}}, "cloud_properties.ephemeral_disk.size: must be between 0"},
      {{{"ephemeral_disk", {{"size", 1}, {"type", "gp3"}}}},
       "cloud_properties.ephemeral_disk.type: unknown key"},
      {{{"ephemeral_disk", {{"size", 1}}}, {"disk", 1}}, "cloud_properties.disk: is an alias of"},
      {{{"ephemeral_disk", json::array()}}, "cloud_properties.ephemeral_disk: expected an integer"},
  };
  for (const auto& [properties, expected] : cases) {
    const std::string message = error_of([&props = properties] { parse_vm_props(props); });
    EXPECT_TRUE(contains(message, expected)) << properties.dump() << ": " << message;
  }
}

TEST(VmPropsTest, KeyAndItsAliasTogetherIsAnError) {
  const std::vector<std::pair<json, std::string>> cases{
      {{{"cpu", 1}, {"cpus", 2}}, "cloud_properties.cpus"},
      {{{"ram", 1024}, {"memory", 1024}}, "cloud_properties.memory"},
      {{{"ephemeral_disk", 1}, {"disk", 1}}, "cloud_properties.disk"},
  };
  for (const auto& [properties, field] : cases) {
    const std::string message = error_of([&props = properties] { parse_vm_props(props); });
    EXPECT_TRUE(contains(message, field + ": is an alias of")) << message;
  }
}

TEST(VmPropsTest, UnknownKeyNamesItAndListsTheAcceptedOnes) {
  const std::string message = error_of([] { parse_vm_props({{"cpu", 1}, {"vcpus", 2}}); });
  EXPECT_TRUE(contains(message, "cloud_properties.vcpus: unknown key")) << message;
  for (const char* key : {"cpu", "cpus", "ram", "memory", "ephemeral_disk", "disk", "root_disk"}) {
    EXPECT_TRUE(contains(message, key)) << key << " in " << message;
  }
}

TEST(VmPropsTest, UnknownRootDiskKeyNamesItsPath) {
  const std::string message = error_of([] { parse_vm_props({{"root_disk", {{"type", "x"}}}}); });
  EXPECT_TRUE(contains(message, "cloud_properties.root_disk.type: unknown key")) << message;
}

TEST(VmPropsTest, WrongTypesAndRangesNameTheField) {
  const std::vector<std::pair<json, std::string>> cases{
      {{{"cpu", "2"}}, "cloud_properties.cpu: expected an integer, got a string"},
      {{{"cpu", 0}}, "cloud_properties.cpu: must be between 1"},
      {{{"ram", 8}}, "cloud_properties.ram: must be between 16"},
      {{{"disk", -1}}, "cloud_properties.disk: must be between 0"},
      {{{"root_disk", 10}}, "cloud_properties.root_disk: expected an object, got an integer"},
      {json::array(), "expected an object, got an array"},
  };
  for (const auto& [properties, expected] : cases) {
    const std::string message = error_of([&props = properties] { parse_vm_props(props); });
    EXPECT_TRUE(contains(message, expected)) << message;
  }
}

TEST(DiskPropsTest, DefaultsToQcow2InTheConfiguredPool) {
  const DiskProps props = parse_disk_props(json::object());
  EXPECT_EQ(props.format, "qcow2");
  EXPECT_FALSE(props.storage_pool.has_value());
}

TEST(DiskPropsTest, ReadsStoragePoolAndFormatOrItsAliasType) {
  EXPECT_EQ(parse_disk_props({{"storage_pool", "fast"}}).storage_pool, "fast");
  EXPECT_EQ(parse_disk_props({{"format", "raw"}}).format, "raw");
  EXPECT_EQ(parse_disk_props({{"type", "raw"}}).format, "raw");
}

TEST(DiskPropsTest, RejectsBadValues) {
  const std::vector<std::pair<json, std::string>> cases{
      {{{"format", "vmdk"}}, "cloud_properties.format: unknown value"},
      {{{"format", "raw"}, {"type", "raw"}}, "cloud_properties.type: is an alias of 'format'"},
      {{{"storage_pool", ""}}, "cloud_properties.storage_pool: must not be empty"},
      {{{"size", 1}}, "cloud_properties.size: unknown key"},
  };
  for (const auto& [properties, expected] : cases) {
    const std::string message = error_of([&props = properties] { parse_disk_props(props); });
    EXPECT_TRUE(contains(message, expected)) << message;
  }
}

TEST(NetworkPropsTest, EmptyPropertiesMeanTheDefaultNetwork) {
  const NetworkProps props = parse_network_props("default", json::object());
  EXPECT_EQ(props.type, "network");
  EXPECT_EQ(props.source, "");
}

TEST(NetworkPropsTest, ChoosesTheInterfaceType) {
  struct Case {
    json properties;
    std::string type, source, mode;
  };
  const std::vector<Case> cases{
      {{{"name", "bosh-net"}}, "network", "bosh-net", "bridge"},
      {{{"bridge", "br0"}}, "bridge", "br0", "bridge"},
      {{{"dev", "eth1"}}, "direct", "eth1", "bridge"},
      {{{"dev", "eth1"}, {"mode", "vepa"}}, "direct", "eth1", "vepa"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.properties.dump());
    const NetworkProps props = parse_network_props("private", c.properties);
    EXPECT_EQ(props.type, c.type);
    EXPECT_EQ(props.source, c.source);
    EXPECT_EQ(props.mode, c.mode);
  }
}

TEST(NetworkPropsTest, MoreThanOneSourceIsAnError) {
  for (const json& properties :
       {json{{"name", "n"}, {"bridge", "br0"}}, json{{"bridge", "br0"}, {"dev", "eth1"}},
        json{{"name", "n"}, {"dev", "eth1"}}}) {
    const std::string message = error_of([&] { parse_network_props("private", properties); });
    EXPECT_TRUE(contains(message, "networks.private.cloud_properties")) << message;
    EXPECT_TRUE(contains(message, "set only one of")) << message;
  }
}

TEST(NetworkPropsTest, ModeWithoutDevIsAnError) {
  const std::string message = error_of([] {
    parse_network_props("private", {{"bridge", "br0"}, {"mode", "vepa"}});
  });
  EXPECT_TRUE(contains(message, "networks.private.cloud_properties.mode")) << message;
}

TEST(NetworkPropsTest, UnknownKeyNamesTheBoshNetwork) {
  const std::string message = error_of([] { parse_network_props("private", {{"network", "n"}}); });
  EXPECT_TRUE(contains(message, "networks.private.cloud_properties.network: unknown key"))
      << message;
}

TEST(NetworkPropsTest, EmptySourceIsAnError) {
  EXPECT_THROW(parse_network_props("private", {{"bridge", ""}}), CpiError);
}

TEST(StemcellPropsTest, ReadsDiskFormat) {
  EXPECT_EQ(parse_stemcell_props({{"disk_format", "qcow2"}}).disk_format, "qcow2");
  EXPECT_EQ(parse_stemcell_props({{"disk_format", "raw"}}).disk_format, "raw");
}

TEST(StemcellPropsTest, AcceptsAnyOtherKeyAndNoDiskFormat) {
  const StemcellProps props = parse_stemcell_props({{"name", "bosh-libvirt-kvm-ubuntu-jammy"},
                                                    {"version", "1.0"},
                                                    {"infrastructure", "libvirt"}});
  EXPECT_FALSE(props.disk_format.has_value());
  EXPECT_FALSE(parse_stemcell_props(nullptr).disk_format.has_value());
}

TEST(StemcellPropsTest, UnknownDiskFormatIsAnError) {
  for (const json& format : {json("vmdk"), json(1)}) {
    EXPECT_THROW(parse_stemcell_props({{"disk_format", format}}), CloudError) << format.dump();
  }
}

}  // namespace
}  // namespace cpi::cloud
