// VM cloud_properties for the qemu/kvm flavour: host_devices, cpu_mode, cpu_model,
// nested_virtualization, hugepages.

#include <gtest/gtest.h>

#include <string>

#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"

namespace cpi::cloud {
namespace {

// The CpiError message of parse_vm_props(properties), or "" when it parses.
std::string error_of(const nlohmann::json& properties) {
  try {
    parse_vm_props(properties);
  } catch (const CpiError& e) {
    return e.what();
  }
  return "";
}

TEST(VmPropsDevicesTest, ReadsHostDevicesCpuAndMemoryOptions) {
  const auto props = parse_vm_props({{"host_devices",
                                      {"0000:65:00.0", "0000:AB:1F.7",
                                       {{"vendor", "0x1234"}, {"product", "0x5678"}}}},
                                     {"cpu_mode", "custom"},
                                     {"cpu_model", "EPYC"},
                                     {"nested_virtualization", true},
                                     {"hugepages", true}});
  ASSERT_EQ(props.host_devices.size(), 3U);
  EXPECT_EQ(props.host_devices[0].pci, "0000:65:00.0");
  EXPECT_EQ(props.host_devices[1].pci, "0000:ab:1f.7");
  EXPECT_EQ(props.host_devices[2].pci, "");
  EXPECT_EQ(props.host_devices[2].vendor, "0x1234");
  EXPECT_EQ(props.host_devices[2].product, "0x5678");
  EXPECT_EQ(props.cpu_mode, "custom");
  EXPECT_EQ(props.cpu_model, "EPYC");
  EXPECT_TRUE(props.nested_virtualization);
  EXPECT_TRUE(props.hugepages);
}

TEST(VmPropsDevicesTest, DefaultsAreOff) {
  const auto props = parse_vm_props(nlohmann::json::object());
  EXPECT_TRUE(props.host_devices.empty());
  EXPECT_EQ(props.cpu_mode, "");
  EXPECT_EQ(props.cpu_model, "");
  EXPECT_FALSE(props.nested_virtualization);
  EXPECT_FALSE(props.hugepages);
}

TEST(VmPropsDevicesTest, BadValuesNameTheKey) {
  struct Case {
    nlohmann::json properties;
    std::string key;
  };
  const std::vector<Case> cases{
      {{{"host_devices", "0000:65:00.0"}}, "host_devices"},
      {{{"host_devices", {"65:00.0"}}}, "host_devices[0]"},
      {{{"host_devices", {"0000:65:00.8"}}}, "host_devices[0]"},
      {{{"host_devices", {"0000:65:00.0", 7}}}, "host_devices[1]"},
      {{{"host_devices", {"0000:65:00.0", "0000:65:00.0"}}}, "host_devices[1]"},
      {{{"host_devices", {{{"vendor", "1234"}, {"product", "0x5678"}}}}}, "host_devices[0].vendor"},
      {{{"host_devices", {{{"vendor", "0x1234"}}}}}, "host_devices[0].product"},
      {{{"host_devices", {{{"vendor", "0x1234"}, {"product", "0x5678"}, {"bus", 1}}}}},
       "host_devices[0]"},
      {{{"cpu_mode", "passthrough"}}, "cpu_mode"},
      {{{"cpu_mode", "custom"}}, "cpu_model"},
      {{{"cpu_model", "EPYC"}}, "cpu_model"},
      {{{"cpu_mode", "host-model"}, {"cpu_model", "EPYC"}}, "cpu_model"},
      {{{"nested_virtualization", "yes"}}, "nested_virtualization"},
      {{{"hugepages", 1}}, "hugepages"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.properties.dump());
    const std::string message = error_of(c.properties);
    EXPECT_NE(message.find("cloud_properties." + c.key), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace cpi::cloud
