#include "cpi/cloud/ids.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace cpi::cloud {
namespace {

bool lower_hex(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

TEST(IdsTest, NewDiskCidIsDiskAnd15LowercaseHexDigits) {
  const std::string cid = new_disk_cid().value;
  ASSERT_EQ(cid.size(), 20U);
  EXPECT_EQ(cid.size(), k_disk_cid_length);
  EXPECT_EQ(cid.substr(0, 5), "disk-");
  EXPECT_TRUE(lower_hex(cid.substr(5))) << cid;
  EXPECT_TRUE(is_disk_cid(cid)) << cid;
}

TEST(IdsTest, NewCidsHaveTheirOwnShape) {
  EXPECT_TRUE(is_stemcell_cid(new_stemcell_cid().value));
  EXPECT_TRUE(is_vm_cid(new_vm_cid().value));
  EXPECT_TRUE(is_snapshot_cid(new_snapshot_cid().value));
}

TEST(IdsTest, NewEphemeralSerialIs20Characters) {
  const std::string serial = new_ephemeral_serial();
  EXPECT_EQ(serial.size(), 20U);
  EXPECT_EQ(serial.substr(0, 4), "eph-");
  EXPECT_TRUE(lower_hex(serial.substr(4))) << serial;
  EXPECT_FALSE(is_disk_cid(serial));
}

std::size_t distinct(const std::function<std::string()>& make, int draws) {
  std::set<std::string> seen;
  for (int i = 0; i < draws; ++i) {
    seen.insert(make());
  }
  return seen.size();
}

// The 20-character ids hold only 60 or 64 random bits, so they get the most draws.
TEST(IdsTest, NewDiskCidsAreUniqueOver1000Draws) {
  EXPECT_EQ(distinct([] { return new_disk_cid().value; }, 1000), 1000U);
}

TEST(IdsTest, NewEphemeralSerialsAreUniqueOver1000Draws) {
  EXPECT_EQ(distinct([] { return new_ephemeral_serial(); }, 1000), 1000U);
}

// Each id costs one std::random_device draw (~0.1 ms here), so the UUID kinds get fewer.
TEST(IdsTest, NewUuidCidsAreUnique) {
  EXPECT_EQ(distinct([] { return new_vm_cid().value; }, 200), 200U);
  EXPECT_EQ(distinct([] { return new_stemcell_cid().value; }, 200), 200U);
  EXPECT_EQ(distinct([] { return new_snapshot_cid().value; }, 200), 200U);
}

TEST(IdsTest, IsDiskCidRejectsWrongShapes) {
  for (const char* text :
       {"", "disk-", "disk-0123456789abcd", "disk-0123456789abcdef", "disk-0123456789ABCDE",
        "disk-0123456789abcdg", "disk_0123456789abcde", "Disk-0123456789abcde",
        "disk-0123456789abcd ", "xdisk-123456789abcde", "vm-0123456789abcde00"}) {
    EXPECT_FALSE(is_disk_cid(text)) << '"' << text << '"';
  }
  EXPECT_TRUE(is_disk_cid("disk-0123456789abcde"));
}

TEST(IdsTest, IsUuidCidRejectsWrongShapes) {
  const std::string uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  struct Case {
    const char* kind;
    std::function<bool(const std::string&)> check;
    std::string prefix;
  };
  const std::vector<Case> cases{{"stemcell", is_stemcell_cid, "sc-"},
                                {"vm", is_vm_cid, "vm-"},
                                {"snapshot", is_snapshot_cid, "snap-"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.kind);
    EXPECT_TRUE(c.check(c.prefix + uuid));
    const std::vector<std::string> wrong{
        "",
        c.prefix,
        uuid,
        c.prefix + "0F8FAD5B-D9CB-469F-A165-70867728950E",
        c.prefix + "0f8fad5bd9cb469fa16570867728950e",
        c.prefix + uuid + "0",
        c.prefix + uuid.substr(1),
        c.prefix + "0f8fad5b-d9cb-469f-a165_70867728950e",
        c.prefix + "0f8fad5b-d9cb-469f-a165-70867728950g",
        "x" + c.prefix + uuid,
        "disk-" + uuid,
    };
    for (const auto& text : wrong) {
      EXPECT_FALSE(c.check(text)) << '"' << text << '"';
    }
  }
}

TEST(IdsTest, CidKindsDoNotAcceptEachOther) {
  const std::string vm = new_vm_cid().value;
  const std::string stemcell = new_stemcell_cid().value;
  EXPECT_FALSE(is_stemcell_cid(vm));
  EXPECT_FALSE(is_snapshot_cid(vm));
  EXPECT_FALSE(is_vm_cid(stemcell));
  EXPECT_FALSE(is_disk_cid(vm));
}

}  // namespace
}  // namespace cpi::cloud
