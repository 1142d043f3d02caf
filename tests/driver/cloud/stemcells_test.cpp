// create_stemcell / delete_stemcell against test:///default.

#include <gtest/gtest.h>

#include <pugixml.hpp>

#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "support/test_driver.hpp"

namespace cpi::testing {
namespace {

class StemcellsTest : public TestDriver {
 protected:
  // The fixture's config naming a pool that does not exist yet.
  static config::Config config_with_new_pool() {
    auto config = make_config();
    config.libvirt.storage_pool = "bosh-stemcells";
    config.libvirt.store_dir = "/bosh-stemcells";
    return config;
  }

  // Deletes a pool made by a test, with its volumes.
  void remove_pool(const std::string& name) {
    auto p = pool(name);
    for (const auto& volume_name : volume_names(name)) {
      virt::Volume v{virStorageVolLookupByName(p.get(), volume_name.c_str())};
      ASSERT_EQ(virStorageVolDelete(v.get(), 0), 0);
    }
    ASSERT_EQ(virStoragePoolDestroy(p.get()), 0);
    ASSERT_EQ(virStoragePoolUndefine(p.get()), 0);
  }

  struct VolumeFacts {
    std::string format;
    unsigned long long capacity = 0;
  };

  VolumeFacts facts(const std::string& name) {
    pugi::xml_document doc;
    parse_xml(doc, volume_xml(name));
    auto volume = doc.child("volume");
    return {volume.child("target").child("format").attribute("type").value(),
            volume.child("capacity").text().as_ullong()};
  }

  // Asserts that create_stemcell(image) fails with a cpi::Error and creates no volume.
  void expect_rejected(const std::string& image, const nlohmann::json& cloud_properties) {
    const auto before = volume_names();
    EXPECT_THROW(cloud().create_stemcell(image, cloud_properties), cpi::Error);
    EXPECT_EQ(volume_names(), before);
  }
};

TEST_F(StemcellsTest, RawImageBecomesRawVolumeOfImageSize) {
  const auto image = images().raw(4 * k_mib);
  const auto cid = cloud().create_stemcell(image.string(), nlohmann::json::object());

  EXPECT_TRUE(cloud::is_stemcell_cid(cid.value)) << cid.value;
  ASSERT_TRUE(volume_exists(cid.value));
  const auto f = facts(cid.value);
  EXPECT_EQ(f.format, "raw");
  EXPECT_EQ(f.capacity, 4 * k_mib);
}

TEST_F(StemcellsTest, RawImageIsUploadedSparseAndByteForByte) {
  const auto image = images().raw(4 * k_mib);
  const auto cid = cloud().create_stemcell(image.string(), {{"disk_format", "raw"}});

  const auto upload = fake().uploaded(volume_path(cid.value));
  ASSERT_TRUE(upload.has_value());
  EXPECT_TRUE(upload->sparse);
  EXPECT_TRUE(upload->bytes == images().root_img()) << "uploaded bytes differ from root.img";
}

TEST_F(StemcellsTest, Qcow2ImageBecomesQcow2VolumeOfVirtualSize) {
  const auto image = images().qcow2("64M");
  const auto cid = cloud().create_stemcell(image.string(), nlohmann::json::object());

  ASSERT_TRUE(volume_exists(cid.value));
  const auto f = facts(cid.value);
  EXPECT_EQ(f.format, "qcow2");
  EXPECT_EQ(f.capacity, 64 * k_mib);
}

TEST_F(StemcellsTest, Qcow2ImageIsUploadedDenseAndByteForByte) {
  const auto image = images().qcow2("64M");
  const auto cid = cloud().create_stemcell(image.string(), {{"disk_format", "qcow2"}});

  const auto upload = fake().uploaded(volume_path(cid.value));
  ASSERT_TRUE(upload.has_value());
  EXPECT_FALSE(upload->sparse);
  EXPECT_TRUE(upload->bytes == images().root_img()) << "uploaded bytes differ from root.img";
}

TEST_F(StemcellsTest, DiskFormatMismatchIsRejected) {
  expect_rejected(images().raw(1 * k_mib).string(), {{"disk_format", "qcow2"}});
}

TEST_F(StemcellsTest, UnknownDiskFormatIsRejected) {
  expect_rejected(images().raw(1 * k_mib).string(), {{"disk_format", "vmdk"}});
}

TEST_F(StemcellsTest, ImageWithoutRootImgIsRejected) {
  expect_rejected(images().without_root_img().string(), nlohmann::json::object());
}

TEST_F(StemcellsTest, CorruptArchiveIsRejected) {
  expect_rejected(images().corrupt().string(), nlohmann::json::object());
}

TEST_F(StemcellsTest, TruncatedArchiveLeavesNoVolume) {
  const auto image = images().truncated();
  fake().reset_calls();
  expect_rejected(image.string(), nlohmann::json::object());
  EXPECT_GE(fake().mutating_calls(), 3) << "the volume should be made, uploaded to, then removed";
}

TEST_F(StemcellsTest, MissingImageFileIsRejected) {
  expect_rejected((images().corrupt().parent_path() / "absent").string(), nullptr);
}

TEST_F(StemcellsTest, DeleteRemovesTheVolume) {
  const auto cid = cloud().create_stemcell(images().raw(1 * k_mib).string(), nullptr);
  ASSERT_TRUE(volume_exists(cid.value));

  cloud().delete_stemcell(cid);

  EXPECT_FALSE(volume_exists(cid.value));
}

TEST_F(StemcellsTest, DeletingTwiceSucceeds) {
  const auto cid = cloud().create_stemcell(images().raw(1 * k_mib).string(), nullptr);
  cloud().delete_stemcell(cid);

  EXPECT_NO_THROW(cloud().delete_stemcell(cid));
  EXPECT_NO_THROW(cloud().delete_stemcell({cloud::new_stemcell_cid()}));
}

// Every mutating libvirt step of create_stemcell, failed in turn, leaves the pool as it was.
TEST_F(StemcellsTest, FailureAtEveryStepLeavesNoVolume) {
  const auto image = images().raw(2 * k_mib).string();
  const auto before = volume_names();
  cloud::StemcellCid probe;
  const int steps = count_mutating_calls([&] { probe = cloud().create_stemcell(image, nullptr); });
  ASSERT_GE(steps, 2) << "expected at least volume create and upload";
  cloud().delete_stemcell(probe);
  ASSERT_EQ(volume_names(), before);

  for_each_failing_step(steps, [&] {
    EXPECT_THROW(cloud().create_stemcell(image, nullptr), cpi::CloudError);
    fake().disarm();
    EXPECT_EQ(volume_names(), before);
  });
}

TEST_F(StemcellsTest, MissingStoragePoolIsCreatedAsActiveAutostartDirPool) {
  auto other = new_cloud(config_with_new_pool());

  const auto cid = other->create_stemcell(images().raw(1 * k_mib).string(), nullptr);

  EXPECT_TRUE(volume_exists(cid.value, "bosh-stemcells"));
  auto p = pool("bosh-stemcells");
  EXPECT_EQ(virStoragePoolIsActive(p.get()), 1);
  int autostart = 0;
  ASSERT_EQ(virStoragePoolGetAutostart(p.get(), &autostart), 0);
  EXPECT_EQ(autostart, 1);
  virt::OwnedCString text{virStoragePoolGetXMLDesc(p.get(), 0)};
  ASSERT_TRUE(text);
  pugi::xml_document doc;
  parse_xml(doc, text.get());
  EXPECT_STREQ(doc.child("pool").attribute("type").value(), "dir");
  EXPECT_STREQ(doc.child("pool").child("target").child_value("path"), "/bosh-stemcells");
}

// A failure while the missing pool is made leaves no half-made pool behind; a failure after
// that leaves the (empty) pool, which is infrastructure rather than part of the stemcell.
TEST_F(StemcellsTest, FailureWhileCreatingPoolLeavesNoPool) {
  const auto image = images().raw(1 * k_mib).string();
  const auto pools = pool_names();
  const int steps = count_mutating_calls(
      [&] { new_cloud(config_with_new_pool())->create_stemcell(image, nullptr); });
  const int pool_steps =
      steps - count_mutating_calls(
                  [&] { new_cloud(config_with_new_pool())->create_stemcell(image, nullptr); });
  ASSERT_GE(pool_steps, 3) << "define, build, start (and autostart) the pool";
  remove_pool("bosh-stemcells");
  ASSERT_EQ(pool_names(), pools);

  for_each_failing_step(steps, [&](int n, const Arm& arm) {
    auto fresh = new_cloud(config_with_new_pool());
    arm();
    EXPECT_THROW(fresh->create_stemcell(image, nullptr), cpi::CloudError);
    fake().disarm();
    if (n <= pool_steps) {
      EXPECT_EQ(pool_names(), pools);
    } else {
      EXPECT_TRUE(volume_names("bosh-stemcells").empty());
      remove_pool("bosh-stemcells");
    }
  });
}

}  // namespace
}  // namespace cpi::testing

namespace cpi::testing {
namespace {

class StemcellInUseTest : public TestDriver {};

TEST_F(StemcellInUseTest, DeleteKeepsAStemcellItsVmsStillUse) {
  const auto stemcell = create_stemcell();
  const auto vm = create_vm(stemcell);

  cloud().delete_stemcell(stemcell);
  EXPECT_TRUE(volume_exists(stemcell.value)) << "the VM's root disk is an overlay on it";

  cloud().delete_vm(vm);
  EXPECT_FALSE(volume_exists(stemcell.value)) << "removed with its last VM";
  EXPECT_FALSE(volume_exists(stemcell.value + ".meta"));
}

TEST_F(StemcellInUseTest, StemcellStaysWhileAnyOfItsVmsRemains) {
  const auto stemcell = create_stemcell();
  const auto first = create_vm(stemcell);
  const auto second = create_vm(stemcell);

  cloud().delete_stemcell(stemcell);
  cloud().delete_vm(first);
  EXPECT_TRUE(volume_exists(stemcell.value));
  cloud().delete_vm(second);
  EXPECT_FALSE(volume_exists(stemcell.value));
}

TEST_F(StemcellInUseTest, DeletingAVmLeavesAStemcellNobodyDeleted) {
  const auto stemcell = create_stemcell();
  cloud().delete_vm(create_vm(stemcell));
  EXPECT_TRUE(volume_exists(stemcell.value));
}

}  // namespace
}  // namespace cpi::testing
