// The two-slot `.meta` format (src/cloud/meta_record.cpp): a write cut off at any byte reads
// back as the record before it or the one it wrote, never as nothing.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "cpi/cloud/meta_record.hpp"

namespace cpi::cloud {
namespace {

std::string write(const std::string& old_bytes, const nlohmann::json& record) {
  return encode_meta(record, decode_meta(old_bytes), old_bytes);
}

TEST(MetaRecordTest, RoundTripsAndCountsGenerations) {
  const auto one = write("", {{"attached_to", "vm-1"}});
  EXPECT_EQ(one.size(), k_meta_volume_bytes);
  EXPECT_EQ(decode_meta(one).record, nlohmann::json({{"attached_to", "vm-1"}}));
  EXPECT_EQ(decode_meta(one).generation, 1U);
  const auto two = write(one, {{"attached_to", "vm-2"}});
  EXPECT_EQ(decode_meta(two).record.at("attached_to"), "vm-2");
  EXPECT_EQ(decode_meta(two).generation, 2U);
  EXPECT_NE(decode_meta(one).slot, decode_meta(two).slot) << "alternating slots";
}

TEST(MetaRecordTest, ReadsTheOldPlainJsonFormat) {
  std::string legacy = R"({"attached_to":"vm-1","metadata":{"a":"b"}})";
  legacy.resize(k_meta_volume_bytes, '\0');
  const auto read = decode_meta(legacy);
  EXPECT_EQ(read.record.at("attached_to"), "vm-1");
  const auto next = write(legacy, {{"attached_to", "vm-2"}});
  EXPECT_EQ(decode_meta(next).record.at("attached_to"), "vm-2");
}

TEST(MetaRecordTest, GarbageReadsAsNoRecord) {
  EXPECT_EQ(decode_meta("").slot, -1);
  EXPECT_EQ(decode_meta(std::string(100, 'x')).record, nlohmann::json::object());
}

TEST(MetaRecordTest, AFlippedByteInvalidatesItsSlot) {
  const auto one = write("", {{"attached_to", "vm-1"}});
  auto two = write(one, {{"attached_to", "vm-2"}});
  const auto slot = static_cast<std::size_t>(decode_meta(two).slot);
  const auto at = two.find("vm-2", slot * k_meta_slot);
  ASSERT_NE(at, std::string::npos);
  two[at + 3] = '3';  // still JSON, but not what was written
  EXPECT_EQ(decode_meta(two).record.at("attached_to"), "vm-1");
}

// Every prefix of the new volume content over the old one: what a killed upload leaves.
TEST(MetaRecordTest, AWriteCutOffAtAnyByteReadsAsOldOrNew) {
  std::string bytes;
  for (int round = 0; round < 3; ++round) {  // both slot orders, and after a torn write
    const nlohmann::json before = {{"attached_to", "vm-" + std::to_string(round)},
                                   {"metadata", {{"round", round}}}};
    bytes = write(bytes, before);
    const nlohmann::json after = {{"attached_to", "vm-next"}, {"metadata", {{"big", std::string(900, 'm')}}}};
    const auto next = write(bytes, after);
    std::size_t checked = 0;
    for (std::size_t keep = 0; keep <= next.size(); keep += (keep < 2048 ? 1 : 509)) {
      std::string torn = next.substr(0, keep) + bytes.substr(std::min(keep, bytes.size()));
      const auto read = decode_meta(torn).record;
      ASSERT_TRUE(read == before || read == after) << "cut after " << keep << ": " << read;
      ++checked;
    }
    EXPECT_GT(checked, 0U);
    // A torn write then a full one: the next round starts from a torn state.
    bytes = next.substr(0, k_meta_slot + 17) + bytes.substr(k_meta_slot + 17);
  }
}

TEST(MetaRecordTest, TooLargeRecordIsRefused) {
  EXPECT_THROW(write("", {{"metadata", std::string(k_meta_slot, 'x')}}), std::length_error);
}

}  // namespace
}  // namespace cpi::cloud
