// cloud::mib_to_bytes: the one checked MiB -> bytes conversion, and the bounds of the sizes in
// cloud_properties (ram, ephemeral_disk, root_disk.size).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"

namespace cpi::cloud {
namespace {

TEST(MibToBytesTest, ConvertsUpToTheBound) {
  EXPECT_EQ(mib_to_bytes(1, "size"), 1024U * 1024U);
  EXPECT_EQ(mib_to_bytes(k_max_size_mib, "size"), std::uint64_t{64} << 40U);
}

TEST(MibToBytesTest, RefusesWhatWouldWrapOrIsNotPositive) {
  for (const std::int64_t mib : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1} << 44,
                                 (std::int64_t{1} << 44) + 1, k_max_size_mib + 1, INT64_MAX,
                                 INT64_MIN}) {
    try {
      mib_to_bytes(mib, "create_disk: size");
      ADD_FAILURE() << mib << " accepted";
    } catch (const CloudError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("create_disk: size: " + std::to_string(mib) + " MiB is out of range"),
                std::string::npos)
          << message;
    }
  }
}

TEST(MibToBytesTest, VmSizesAreBoundedSoTheirBytesFit) {
  for (const char* key : {"ram", "ephemeral_disk"}) {
    EXPECT_THROW(parse_vm_props({{key, k_max_size_mib + 1}}), CpiError) << key;
    EXPECT_THROW(parse_vm_props({{key, std::int64_t{1} << 44}}), CpiError) << key;
  }
  EXPECT_THROW(parse_vm_props({{"root_disk", {{"size", std::int64_t{1} << 44}}}}), CpiError);
  const auto props = parse_vm_props({{"ram", k_max_size_mib}, {"ephemeral_disk", k_max_size_mib}});
  EXPECT_EQ(mib_to_bytes(static_cast<std::int64_t>(props.ephemeral_disk_mib), "e"),
            std::uint64_t{64} << 40U);
}

}  // namespace
}  // namespace cpi::cloud
