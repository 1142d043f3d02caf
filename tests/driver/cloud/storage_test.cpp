// cloud::Storage on its own (storage.hpp): where locate() looks (the configured pool, else only
// the pool a pool record names), the pool records, the `.meta` records and the pool-room rule,
// with their messages as BOSH gets them.

#include "cpi/cloud/storage.hpp"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/cloud/names.hpp"
#include "cpi/errors.hpp"

#include "support/test_driver.hpp"

namespace cpi::testing {
namespace {

constexpr const char* k_recorded_pool = "recorded-pool";
constexpr const char* k_foreign_pool = "foreign-pool";

class StorageTest : public TestDriver {
 protected:
  void define_pool(const std::string& name) {
    const std::string xml = "<pool type='dir'><name>" + name + "</name><target><path>/" + name +
                            "</path></target></pool>";
    virt::Pool p{virStoragePoolDefineXML(&conn(), xml.c_str(), 0)};
    ASSERT_TRUE(p) << name;
    ASSERT_EQ(virStoragePoolCreate(p.get(), 0), 0) << name;
  }

  static std::string pool_of(const cloud::Located& located) {
    return virStoragePoolGetName(located.pool.get());
  }

  // The names of the fixture's cloud: the same prefix, alive until TearDown.
  const cloud::Names& names() { return cloud().names(); }
};

// A disk of ours outside the configured pool is found only through its pool record; a volume of
// that name in any other pool is never looked at, before the record or after it is removed.
TEST_F(StorageTest, LocateLooksOnlyInTheConfiguredPoolAndTheRecordedOne) {
  define_pool(k_recorded_pool);
  define_pool(k_foreign_pool);
  const std::string name = names().disk(cloud::new_disk_cid());
  make_volume(name, k_foreign_pool);
  make_volume(name, k_recorded_pool);
  cloud::Storage storage{fake(), config().libvirt, names()};

  EXPECT_FALSE(storage.locate(name)) << "found without a record";
  EXPECT_FALSE(storage.recorded_pool(name));

  storage.write_pool_record(name, k_recorded_pool);
  EXPECT_TRUE(volume_exists(names().pool_record(name))) << "the record is in the configured pool";
  EXPECT_EQ(storage.recorded_pool(name), std::optional<std::string>{k_recorded_pool});
  auto located = storage.locate(name);
  ASSERT_TRUE(located);
  EXPECT_EQ(located->pool_name, k_recorded_pool);
  EXPECT_EQ(pool_of(*located), k_recorded_pool);
  EXPECT_EQ(virStorageVolGetName(located->volume.get()), name);

  // The configured pool comes first.
  make_volume(name, k_pool);
  located = storage.locate(name);
  ASSERT_TRUE(located);
  EXPECT_EQ(located->pool_name, k_pool);
  EXPECT_EQ(pool_of(*located), k_pool);

  storage.remove_pool_record(name);
  EXPECT_FALSE(volume_exists(names().pool_record(name)));
  EXPECT_FALSE(storage.recorded_pool(name));
  storage.delete_if_exists(*pool(), name);
  EXPECT_FALSE(storage.locate(name)) << "found after its record was removed";
  EXPECT_TRUE(volume_exists(name, k_recorded_pool)) << "lookups delete nothing";
  EXPECT_TRUE(volume_exists(name, k_foreign_pool));
}

TEST_F(StorageTest, RecordedPoolThatIsGoneIsAnError) {
  const std::string name = names().snapshot(cloud::new_snapshot_cid());
  cloud::Storage storage{fake(), config().libvirt, names()};
  storage.write_pool_record(name, "gone-pool");
  try {
    storage.locate(name);
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    EXPECT_EQ(std::string{e.what()}, "'" + name +
                                         "' is recorded in storage pool 'gone-pool', which does "
                                         "not exist on test:///default (define it again)");
  }
}

// locate() is for disks and snapshots only: a VM's volume or a record is never looked for.
TEST_F(StorageTest, LocateRefusesNamesOfOtherKinds) {
  cloud::Storage storage{fake(), config().libvirt, names()};
  const std::string disk = names().disk(cloud::new_disk_cid());
  for (const std::string& name : {names().root_volume(cloud::new_vm_cid()), names().meta(disk),
                                  names().pool_record(disk), std::string{"disk-x"}}) {
    try {
      storage.locate(name);
      ADD_FAILURE() << name << ": no error";
    } catch (const CpiError& e) {
      EXPECT_EQ(std::string{e.what()},
                "internal: locate(" + cloud::quote_text(name) + ") is no disk or snapshot");
    }
  }
}

TEST_F(StorageTest, InactiveConfiguredPoolGetsHowToStartIt) {
  cloud::Storage storage{fake(), config().libvirt, names()};
  ASSERT_EQ(virStoragePoolDestroy(pool().get()), 0);
  const std::string expected = std::string{"storage pool '"} + k_pool +
                               "' is inactive: start it (virsh pool-start " + k_pool +
                               ") or set autostart";
  try {
    storage.locate(names().disk(cloud::new_disk_cid()));
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    EXPECT_EQ(std::string{e.what()}, expected);
  }
  try {
    storage.pool();
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    EXPECT_EQ(std::string{e.what()}, expected);
  }
}

// `.meta` records: {} before the first write, then always the last one written, in the
// `<name>.meta` volume beside `name`, private to root.
TEST_F(StorageTest, MetaRecordsReadTheLastWrite) {
  define_pool(k_recorded_pool);
  cloud::Storage storage{fake(), config().libvirt, names()};
  const std::string name = names().disk(cloud::new_disk_cid());
  auto target = pool(k_recorded_pool);
  EXPECT_EQ(storage.read_meta(*target, name), nlohmann::json::object());
  for (int i = 1; i <= 3; ++i) {
    storage.write_meta(*target, name,
                       {{"generation", i}, {"attached_to", "vm-" + std::to_string(i)}});
    EXPECT_EQ(storage.read_meta(*target, name),
              (nlohmann::json{{"generation", i}, {"attached_to", "vm-" + std::to_string(i)}}));
  }
  EXPECT_TRUE(volume_exists(names().meta(name), k_recorded_pool));
  EXPECT_FALSE(volume_exists(names().meta(name))) << "written into another pool";
  EXPECT_NE(volume_xml(names().meta(name), k_recorded_pool).find("<mode>0600</mode>"),
            std::string::npos);
}

// The pool-room rule: raw growth together must be free now; a thin volume may be as large as the
// pool's capacity, never larger.
TEST_F(StorageTest, RawGrowthMustBeFreeAndThinVolumesFitThePool) {
  using Need = cloud::Storage::RoomNeed;
  const virt::PoolInfo room{true, 100 * k_mib, 10 * k_mib};
  cloud::Storage storage{fake(), config().libvirt, names()};
  fake().reset_requests();

  EXPECT_NO_THROW(storage.require_room(room, "p", {{"disk 'a'", "raw", 10 * k_mib, 10 * k_mib}}));
  EXPECT_NO_THROW(
      storage.require_room(room, "p", {{"disk 'a'", "qcow2", 100 * k_mib, 100 * k_mib}}));
  EXPECT_NO_THROW(storage.require_room(
      room, "p",
      {{"disk 'a'", "raw", 500 * k_mib, 4 * k_mib}, {"disk 'b'", "raw", 6 * k_mib, 6 * k_mib}}));

  const auto message = [&](const std::vector<Need>& needs) {
    try {
      storage.require_room(room, "p", needs);
    } catch (const NoDiskSpace& e) {
      return std::string{e.what()};
    }
    return std::string{"no error"};
  };
  EXPECT_EQ(message({{"disk 'a'", "raw", 11 * k_mib, 11 * k_mib}}),
            "storage pool 'p' has 10 MiB free, disk 'a' needs 11 MiB more (raw disks are "
            "allocated whole)");
  EXPECT_EQ(message({{"disk 'a'", "raw", 6 * k_mib, 6 * k_mib},
                     {"disk 'b'", "qcow2", 50 * k_mib, 50 * k_mib},
                     {"disk 'c'", "raw", 5 * k_mib, 5 * k_mib}}),
            "storage pool 'p' has 10 MiB free, disk 'a' (6 MiB) and disk 'c' (5 MiB) need 11 MiB "
            "more (raw disks are allocated whole)");
  EXPECT_EQ(message({{"disk 'a'", "qcow2", 101 * k_mib, 101 * k_mib}}),
            "storage pool 'p' holds 100 MiB in all (10 MiB free), disk 'a' of 101 MiB could never "
            "be filled: a qcow2 disk may be at most the pool's capacity");
  EXPECT_EQ(fake().requests(), std::vector<std::string>{}) << "the room was given: nothing read";
}

}  // namespace
}  // namespace cpi::testing
