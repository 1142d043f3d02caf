// Disk sizes (src/driver/cloud/disks.cpp, cloud::mib_to_bytes): MiB -> bytes never wraps, sizes are
// bounded, and a pool that cannot hold the capacity answers NoDiskSpace for raw (free space)
// and qcow2 (the pool's whole capacity), against test:///default.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "cpi/cloud/vm_props.hpp"
#include "cpi/errors.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {
namespace {

class DiskSizesTest : public DiskFixture {
 protected:
  virt::PoolInfo pool_info() {
    auto p = pool();
    return fake().pool_info(*p);
  }
  static std::string message_of(const std::function<void()>& action) {
    try {
      action();
    } catch (const Error& e) {
      return std::string{e.type()} + ": " + e.what();
    }
    return "accepted";
  }
};

constexpr std::int64_t k_two_pib_mib = 2LL * 1024 * 1024 * 1024;  // 2 PiB in MiB

TEST_F(DiskSizesTest, SizesThatWouldWrapAreRefusedAndCreateNothing) {
  const auto before = volume_names();
  for (const std::int64_t size : {std::int64_t{1} << 44, (std::int64_t{1} << 44) + 1,
                                  std::int64_t{INT64_MAX}, cloud::k_max_size_mib + 1}) {
    SCOPED_TRACE(size);
    const auto message = message_of([&] { new_disk(size); });
    EXPECT_NE(message.find("out of range"), std::string::npos) << message;
    EXPECT_NE(message.find("create_disk: size"), std::string::npos) << message;
  }
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DiskSizesTest, TwoPebibyteQcow2DiskIsRefused) {
  const auto before = volume_names();
  const auto message = message_of([&] { new_disk(k_two_pib_mib, {{"format", "qcow2"}}); });
  EXPECT_NE(message.find("out of range"), std::string::npos) << message;
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DiskSizesTest, Qcow2DiskLargerThanThePoolIsNoDiskSpace) {
  const auto info = pool_info();
  const auto size = static_cast<std::int64_t>(info.capacity / k_mib) + 1024;
  ASSERT_LE(size, cloud::k_max_size_mib);
  const auto before = volume_names();
  const auto message = message_of([&] { new_disk(size, {{"format", "qcow2"}}); });
  EXPECT_EQ(message.rfind("Bosh::Clouds::NoDiskSpace", 0), 0U) << message;
  EXPECT_NE(message.find("could never be filled"), std::string::npos) << message;
  EXPECT_EQ(volume_names(), before);
}

TEST_F(DiskSizesTest, Qcow2DiskUpToThePoolsCapacityIsThin) {
  const auto info = pool_info();
  const auto size = static_cast<std::int64_t>(info.capacity / k_mib);
  const auto disk = new_disk(size, {{"format", "qcow2"}});
  EXPECT_EQ(capacity_of(disk.value), static_cast<std::uint64_t>(size) * k_mib);
  EXPECT_THROW(new_disk(size + 1, {{"format", "qcow2"}}), NoDiskSpace);
}

TEST_F(DiskSizesTest, RawDiskLargerThanTheFreeSpaceIsNoDiskSpace) {
  const auto info = pool_info();
  const auto size = static_cast<std::int64_t>(info.available / k_mib) + 1;
  EXPECT_THROW(new_disk(size, {{"format", "raw"}}), NoDiskSpace);
}

TEST_F(DiskSizesTest, ResizeBeyondThePoolIsNoDiskSpaceAndKeepsTheDisk) {
  const auto size = static_cast<std::int64_t>(pool_info().capacity / k_mib) + 1024;
  for (const char* format : {"qcow2", "raw"}) {
    SCOPED_TRACE(format);
    const auto disk = new_disk(64, {{"format", format}});
    EXPECT_THROW(cloud().resize_disk(disk, size), NoDiskSpace);
    EXPECT_THROW(cloud().resize_disk(disk, k_two_pib_mib), CloudError);
    EXPECT_EQ(capacity_of(disk.value), 64 * k_mib);
  }
}

TEST_F(DiskSizesTest, ResizeBeyondTheBoundIsRefusedBeforeWrapping) {
  const auto disk = new_disk(64);
  const auto message = message_of([&] { cloud().resize_disk(disk, (1LL << 44) + 1); });
  EXPECT_NE(message.find("resize_disk: new_size"), std::string::npos) << message;
  EXPECT_EQ(capacity_of(disk.value), 64 * k_mib);
}

}  // namespace
}  // namespace cpi::testing
