// The naming module (src/cloud/names.cpp): every name the CPI makes parses back to its kind and
// CID; every malformed shape parses as nothing and is refused by the makers.

#include "cpi/cloud/names.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "cpi/errors.hpp"

namespace cpi::cloud {
namespace {

const std::string k_uuid = "0123abcd-4567-89ef-0123-456789abcdef";
const std::string k_sc = "sc-" + k_uuid;
const std::string k_vm = "vm-" + k_uuid;
const std::string k_disk = "disk-0123456789abcde";
const std::string k_snap = "snap-" + k_uuid;

struct Good {
  std::string unprefixed;
  NameKind kind;
  std::string cid;
};

const std::vector<Good>& good_names() {
  static const std::vector<Good> k_good{
      {k_sc, NameKind::stemcell, k_sc},
      {k_sc + ".meta", NameKind::stemcell_meta, k_sc},
      {k_vm, NameKind::vm, k_vm},
      {k_vm + "-root", NameKind::vm_root, k_vm},
      {k_vm + "-ephemeral", NameKind::vm_ephemeral, k_vm},
      {k_vm + "-config", NameKind::vm_config, k_vm},
      {k_vm + "-config.meta", NameKind::vm_config_meta, k_vm},
      {k_disk, NameKind::disk, k_disk},
      {k_disk + ".meta", NameKind::disk_meta, k_disk},
      {k_disk + ".pool", NameKind::disk_pool, k_disk},
      {k_snap, NameKind::snapshot, k_snap},
      {k_snap + ".meta", NameKind::snapshot_meta, k_snap},
      {k_snap + ".pool", NameKind::snapshot_pool, k_snap},
      {"cpi-doctor-0123abcd.qcow2", NameKind::doctor_probe, "cpi-doctor-0123abcd"},
      {"cpi-doctor-0123abcd.raw", NameKind::doctor_probe, "cpi-doctor-0123abcd"},
  };
  return k_good;
}

TEST(NamesTest, EveryKindParsesWithAndWithoutPrefix) {
  for (const std::string prefix : {"", "adv-", "bosh_1-"}) {
    const Names names{prefix};
    for (const auto& good : good_names()) {
      const auto parsed = names.parse(prefix + good.unprefixed);
      ASSERT_TRUE(parsed) << prefix << good.unprefixed;
      EXPECT_EQ(parsed->kind, good.kind) << prefix << good.unprefixed;
      EXPECT_EQ(parsed->cid, good.cid) << prefix << good.unprefixed;
      EXPECT_TRUE(names.is(prefix + good.unprefixed, good.kind));
      EXPECT_EQ(parse_unprefixed(good.unprefixed), parsed);
    }
  }
}

TEST(NamesTest, MakersProduceWhatParseReads) {
  const Names names{"adv-"};
  EXPECT_EQ(names.stemcell({k_sc}), "adv-" + k_sc);
  EXPECT_EQ(names.domain({k_vm}), "adv-" + k_vm);
  EXPECT_EQ(names.root_volume({k_vm}), "adv-" + k_vm + "-root");
  EXPECT_EQ(names.ephemeral_volume({k_vm}), "adv-" + k_vm + "-ephemeral");
  EXPECT_EQ(names.config_volume({k_vm}), "adv-" + k_vm + "-config");
  EXPECT_EQ(names.disk({k_disk}), "adv-" + k_disk);
  EXPECT_EQ(names.snapshot({k_snap}), "adv-" + k_snap);
  EXPECT_EQ(names.meta(names.disk({k_disk})), "adv-" + k_disk + ".meta");
  EXPECT_EQ(names.meta(names.config_volume({k_vm})), "adv-" + k_vm + "-config.meta");
  EXPECT_EQ(names.pool_record(names.snapshot({k_snap})), "adv-" + k_snap + ".pool");
  EXPECT_EQ(names.vm_lock({k_vm}), "adv-" + k_vm);
  EXPECT_EQ(names.disk_lock({k_disk}), "adv-" + k_disk);
  EXPECT_EQ(names.doctor_volume("0123abcd", "raw"), "adv-cpi-doctor-0123abcd.raw");
  EXPECT_THROW(names.doctor_volume("../x", "raw"), CpiError);
  EXPECT_THROW(names.doctor_volume("0123abcd", "iso"), CpiError);
  for (const auto& cid : {new_stemcell_cid().value, new_vm_cid().value, new_disk_cid().value,
                          new_snapshot_cid().value}) {
    const auto parsed = names.parse("adv-" + cid);
    ASSERT_TRUE(parsed) << cid;
    EXPECT_EQ(parsed->cid, cid);
  }
}

TEST(NamesTest, MalformedShapesAreNotOurs) {
  const std::string upper_disk = "disk-0123456789ABCDE";
  const std::string upper_vm = "vm-0123ABCD-4567-89ef-0123-456789abcdef";
  const std::vector<std::string> bad{
      "",
      "disk-0123456789abcd",    // 14 hex: 19 characters
      "disk-0123456789abcdef",  // 16 hex: 21 characters
      upper_disk,
      upper_vm,
      "vm-" + k_uuid.substr(0, 35),
      "vm-" + k_uuid + "0",
      "vm-0123abcd_4567-89ef-0123-456789abcdef",  // '_' for a dash
      "../" + k_disk,
      k_disk + "/../x",
      "x/" + k_vm,
      "../x",
      ".",
      "..",
      std::string{"disk-0123456789abcd\\0"},
      std::string("disk-0123456789abcd\0", 20),
      std::string("vm-" + k_uuid + std::string("\0-root", 6)),
      " " + k_disk,
      k_disk + " ",
      k_disk + "\n",
      "precious",
      "foreign",
      k_disk + "-root",        // suffix on the wrong kind
      k_sc + "-config",
      k_snap + "-ephemeral",
      k_vm + ".meta",          // only the config volume of a vm has a .meta
      k_vm + ".pool",
      k_sc + ".pool",          // stemcells live in the configured pool: no record
      k_vm + "-root.meta",
      k_vm + "-config.pool",
      k_disk + ".meta.meta",
      k_disk + ".pool.meta",
      k_disk + ".lock",
      "vm-",
      "disk-",
      "sc-",
      "snap-",
      "-root",
      ".meta",
      "VM-" + k_uuid,
      "Disk-0123456789abcde",
      "cpi-doctor-0123abc.raw",      // 7 hex
      "cpi-doctor-0123ABCD.raw",
      "cpi-doctor-0123abcd.img",
      "cpi-doctor-0123abcd",
      "cpi-doctor-0123abcd.raw.meta",
  };
  for (const std::string prefix : {"", "adv-"}) {
    const Names names{prefix};
    for (const auto& text : bad) {
      EXPECT_FALSE(names.parse(prefix + text)) << "'" << prefix + text << "'";
    }
  }
  for (const auto& text : bad) EXPECT_FALSE(parse_unprefixed(text)) << "'" << text << "'";
}

TEST(NamesTest, PrefixMustMatchExactly) {
  const Names names{"adv-"};
  EXPECT_FALSE(names.parse("adv-"));            // prefix only
  EXPECT_FALSE(names.parse(k_disk));            // no prefix
  EXPECT_FALSE(names.parse("other-" + k_disk));  // another prefix
  EXPECT_FALSE(names.parse("ADV-" + k_disk));
  EXPECT_FALSE(names.parse("adv" + k_disk));
  EXPECT_FALSE(names.parse("adv-adv-" + k_disk));
  EXPECT_FALSE(Names{""}.parse(""));
}

TEST(NamesTest, MakersRefuseCidsOfTheWrongShape) {
  const Names names{""};
  const std::vector<std::string> not_vm{"", "../../x", k_disk, k_sc, k_vm + "-root", "/etc/passwd",
                                        std::string("vm-\0", 4), "vm-" + k_uuid + "/.."};
  for (const auto& text : not_vm) {
    EXPECT_THROW(names.domain({text}), CpiError) << text;
    EXPECT_THROW(names.root_volume({text}), CpiError) << text;
    EXPECT_THROW(names.vm_lock({text}), CpiError) << text;
  }
  EXPECT_THROW(names.disk({k_vm}), CpiError);
  EXPECT_THROW(names.disk({"disk-0123456789ABCDE"}), CpiError);
  EXPECT_THROW(names.disk_lock({"../" + k_disk}), CpiError);
  EXPECT_THROW(names.stemcell({k_disk}), CpiError);
  EXPECT_THROW(names.snapshot({k_disk}), CpiError);
  EXPECT_THROW(names.meta(k_vm), CpiError);
  EXPECT_THROW(names.meta(k_disk + ".meta"), CpiError);
  EXPECT_THROW(names.pool_record(k_sc), CpiError);
  EXPECT_THROW(names.pool_record("precious"), CpiError);
}

TEST(NamesTest, DescribeNamesTheKindAndTheCid) {
  EXPECT_EQ(describe({NameKind::vm_config, k_vm}), "the config drive of vm '" + k_vm + "'");
  EXPECT_EQ(describe({NameKind::disk, k_disk}), "persistent disk '" + k_disk + "'");
  EXPECT_EQ(describe({NameKind::disk_pool, k_disk}), "the pool record of disk '" + k_disk + "'");
  EXPECT_STREQ(kind_name(NameKind::snapshot_pool), "snapshot_pool");
  EXPECT_STREQ(kind_name(NameKind::stemcell), "stemcell");
}

TEST(NamesTest, QuoteTextEscapesAndCuts) {
  EXPECT_EQ(quote_text("abc"), "'abc'");
  EXPECT_EQ(quote_text(std::string("a\0b\n'", 5)), "'a\\x00b\\x0a\\x27'");
  const auto long_text = quote_text(std::string(30000, 'x'));
  EXPECT_LT(long_text.size(), 120U);
  EXPECT_NE(long_text.find("30000 bytes"), std::string::npos);
}

TEST(NamesTest, PoolRecordRoundTripsAndRejectsOthers) {
  const auto text = pool_record_json(k_disk, "fast-pool");
  EXPECT_EQ(read_pool_record_json(text, k_disk), "fast-pool");
  EXPECT_EQ(read_pool_record_json(text + std::string(100, '\0'), k_disk), "fast-pool");
  EXPECT_FALSE(read_pool_record_json(text, "disk-00000000000000f"));  // another disk's record
  EXPECT_FALSE(read_pool_record_json("", k_disk));
  EXPECT_FALSE(read_pool_record_json("[1]", k_disk));
  EXPECT_FALSE(read_pool_record_json(R"({"cid":")" + k_disk + R"(","pool":""})", k_disk));
  EXPECT_FALSE(read_pool_record_json(R"({"cid":")" + k_disk + R"(","pool":7})", k_disk));
  EXPECT_FALSE(read_pool_record_json(R"({"pool":"p"})", k_disk));
}

}  // namespace
}  // namespace cpi::cloud
