// Pool types: qcow2 overlays where the pool has backing stores (dir), full clones where it does
// not (logical: LVs, which test:///default lets us define); hypervisor flavours on create_vm.
// Real netfs/LVM hosts are not exercised here (e2e scope).

#include <gtest/gtest.h>

#include <string>

#include "cpi/cloud/meta_record.hpp"
#include "cpi/cloud/storage.hpp"
#include "cpi/errors.hpp"
#include "cpi/xml/volume_xml.hpp"
#include "support/test_driver.hpp"

namespace cpi::testing {
namespace {

constexpr const char* k_lvm_pool = "lvm-pool";

class PoolsTest : public TestDriver {
 protected:
  // A started `logical` pool on the test driver (volumes at /dev/vg-bosh/<name>).
  void define_logical_pool() {
    const std::string xml = std::string{"<pool type='logical'><name>"} + k_lvm_pool +
                            "</name><source><name>vg-bosh</name><format type='lvm2'/></source>"
                            "<target><path>/dev/vg-bosh</path></target></pool>";
    virt::Pool p{virStoragePoolDefineXML(&conn(), xml.c_str(), 0)};
    ASSERT_TRUE(p);
    ASSERT_EQ(virStoragePoolCreate(p.get(), 0), 0);
  }

  std::unique_ptr<cloud::LibvirtCloud> cloud_on(const std::string& pool_name,
                                                const std::string& hypervisor = "qemu") {
    config::Config c = config();
    c.libvirt.storage_pool = pool_name;
    c.libvirt.hypervisor = hypervisor;
    return new_cloud(c);
  }
};

TEST(PoolTypeTest, BackingStoresOnlyOnFileBasedPools) {
  for (const std::string type : {"dir", "fs", "netfs"}) {
    EXPECT_TRUE(cloud::Storage::supports_backing_store(type)) << type;
  }
  for (const std::string type : {"logical", "disk", "iscsi", "rbd", "zfs", ""}) {
    EXPECT_FALSE(cloud::Storage::supports_backing_store(type)) << type;
  }
}

TEST_F(PoolsTest, DirPoolRootIsAQcow2Overlay) {
  const auto stemcell = create_stemcell();
  const auto vm = create_vm(stemcell);
  pugi::xml_document volume;
  parse_xml(volume, volume_xml(cloud().root_volume(vm)));
  EXPECT_STREQ(volume.child("volume").child("target").child("format").attribute("type").value(),
               "qcow2");
  EXPECT_TRUE(volume.child("volume").child("backingStore"));
}

TEST_F(PoolsTest, LogicalPoolRootIsAFullCloneInTheStemcellFormat) {
  define_logical_pool();
  auto lvm = cloud_on(k_lvm_pool);
  const auto stemcell = lvm->create_stemcell(shared_image(), nlohmann::json::object());
  const auto vm = lvm->create_vm(vm_request(stemcell)).cid;

  const std::string root = lvm->root_volume(vm);
  pugi::xml_document volume;
  parse_xml(volume, volume_xml(root, k_lvm_pool));
  EXPECT_FALSE(volume.child("volume").child("backingStore")) << volume_xml(root, k_lvm_pool);
  // The fake copies what was uploaded into the stemcell: the clone holds the image bytes.
  const auto stemcell_bytes = fake().uploaded(volume_path(stemcell.value, k_lvm_pool));
  const auto root_bytes = fake().uploaded(volume_path(root, k_lvm_pool));
  ASSERT_TRUE(stemcell_bytes && root_bytes);
  EXPECT_EQ(root_bytes->bytes, stemcell_bytes->bytes);

  pugi::xml_document domain;
  parse_xml(domain, domain_xml(vm.value));
  EXPECT_STREQ(disk_with_volume(domain, root).child("driver").attribute("type").value(), "raw");
  const auto ephemeral = disk_with_volume(domain, lvm->ephemeral_volume(vm));
  EXPECT_STREQ(ephemeral.child("driver").attribute("type").value(), "raw");
  EXPECT_STREQ(ephemeral.child("source").attribute("pool").value(), k_lvm_pool);

  // No overlay depends on the stemcell: it goes at once.
  lvm->delete_stemcell(stemcell);
  EXPECT_FALSE(volume_exists(stemcell.value, k_lvm_pool));
  lvm->delete_vm(vm);
  EXPECT_EQ(volume_names(k_lvm_pool), std::vector<std::string>{});
}

TEST_F(PoolsTest, DiskWithVmLocalityLandsInTheLogicalPool) {
  define_logical_pool();
  auto lvm = cloud_on(k_lvm_pool);
  const auto stemcell = lvm->create_stemcell(shared_image(), nlohmann::json::object());
  const auto vm = lvm->create_vm(vm_request(stemcell)).cid;
  const auto disk = cloud().create_disk(64, {{"format", "raw"}}, vm);  // default-pool config
  EXPECT_TRUE(volume_exists(disk.value, k_lvm_pool));
}

// A logical volume is a raw block device: create_disk makes raw disks there, and refuses an
// explicit qcow2 with the pool named.
TEST_F(PoolsTest, DisksInTheLogicalPoolAreRaw) {
  define_logical_pool();
  auto lvm = cloud_on(k_lvm_pool);
  const auto disk = lvm->create_disk(64, nlohmann::json::object(), std::nullopt);
  pugi::xml_document volume;
  parse_xml(volume, volume_xml(lvm->object_name(disk.value), k_lvm_pool));
  const std::string format =
      volume.child("volume").child("target").child("format").attribute("type").value();
  EXPECT_TRUE(format == "raw" || format.empty()) << volume_xml(disk.value, k_lvm_pool);
  const auto before = volume_names(k_lvm_pool);
  try {
    lvm->create_disk(64, {{"format", "qcow2"}}, std::nullopt);
    ADD_FAILURE() << "no error";
  } catch (const CloudError& e) {
    EXPECT_NE(std::string{e.what()}.find(k_lvm_pool), std::string::npos) << e.what();
  }
  EXPECT_EQ(volume_names(k_lvm_pool), before);
}

TEST_F(PoolsTest, FlavourRejectingTheStemcellFormatLeavesNothingBehind) {
  const auto stemcell = create_stemcell();
  const auto before = volume_names();
  for (const std::string hypervisor : {"vbox", "vmware"}) {
    SCOPED_TRACE(hypervisor);
    auto other = cloud_on(k_pool, hypervisor);
    try {
      other->create_vm(vm_request(stemcell));
      ADD_FAILURE() << "no error";
    } catch (const NotSupported& e) {
      EXPECT_NE(std::string{e.what()}.find("'" + hypervisor + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string{e.what()}.find("'qcow2'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(volume_names(), before);
    EXPECT_EQ(domain_names(), std::vector<std::string>{"test"});
  }
}

TEST_F(PoolsTest, XenDomainIsDefinedAndLxcRefusesADiskImageStemcell) {
  const auto stemcell = create_stemcell();
  auto xen = cloud_on(k_pool, "xen");
  const auto xen_vm = xen->create_vm(vm_request(stemcell)).cid;
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(xen_vm.value));
  EXPECT_STREQ(doc.child("domain").attribute("type").value(), "xen");
  const auto root = disk_with_volume(doc, xen->root_volume(xen_vm));
  EXPECT_STREQ(root.child("target").attribute("dev").value(), "xvda");
  // Xen disks have no serial: the agent finds the ephemeral disk by its device name.
  const auto eph = disk_with_volume(doc, xen->ephemeral_volume(xen_vm));
  EXPECT_EQ(user_data(xen_vm)["disks"]["ephemeral"],
            nlohmann::json({{"path", std::string{"/dev/"} + eph.child("target").attribute("dev").value()}}));

  // A container needs a root filesystem stemcell (warden-tar); this one is a disk image.
  const auto before = volume_names();
  auto lxc = cloud_on(k_pool, "lxc");
  try {
    lxc->create_vm(vm_request(stemcell));
    ADD_FAILURE() << "no error";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string{e.what()}.find("'lxc'"), std::string::npos) << e.what();
    EXPECT_NE(std::string{e.what()}.find("warden-tar"), std::string::npos) << e.what();
  }
  EXPECT_EQ(volume_names(), before);
}

// A logical pool holds full raw copies: the root copy and the ephemeral disk need their size
// free together (each alone fits here), else NoDiskSpace names both and nothing is made.
TEST_F(PoolsTest, LogicalPoolNeedsRootCopyAndEphemeralDiskFreeTogether) {
  define_logical_pool();
  auto lvm = cloud_on(k_lvm_pool);
  const auto stemcell = lvm->create_stemcell(shared_image(), nlohmann::json::object());
  auto p = pool(k_lvm_pool);
  const auto available_mib = fake().pool_info(*p).available / k_mib;
  const auto before = volume_names(k_lvm_pool);
  const auto domains = domain_names();
  auto request = vm_request(stemcell);
  request.cloud_properties["ephemeral_disk"] = available_mib;  // fits alone, not with the root
  try {
    lvm->create_vm(request);
    ADD_FAILURE() << "root copy and ephemeral disk larger than the free space were accepted";
  } catch (const NoDiskSpace& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("the root disk of vm"), std::string::npos) << message;
    EXPECT_NE(message.find("the ephemeral disk of vm"), std::string::npos) << message;
    EXPECT_NE(message.find("allocated whole"), std::string::npos) << message;
    EXPECT_NE(message.find(k_lvm_pool), std::string::npos) << message;
  }
  EXPECT_EQ(volume_names(k_lvm_pool), before);
  EXPECT_EQ(domain_names(), domains);
  request.cloud_properties["ephemeral_disk"] = 64;
  EXPECT_NO_THROW(lvm->create_vm(request));
}

// A container's volumes are raw ext4 images (a copy of the root filesystem, the settings, the
// ephemeral filesystem): they need their size free together. The stemcell here is marked a root
// filesystem by hand (its .meta record), as create_stemcell does for a warden-tar stemcell.
TEST_F(PoolsTest, ContainerVolumesNeedTheirSizeFreeTogether) {
  const auto stemcell = create_stemcell();
  {
    auto p = pool();
    const std::string meta = cloud().meta_volume(cloud().object_name(stemcell.value));
    auto volume = fake().create_volume(
        *p, xml::volume_xml({meta, cloud::k_meta_volume_bytes, "raw", "0600"}));
    const std::string bytes =
        cloud::encode_meta({{"rootfs", true}, {"init", "/sbin/init"}}, cloud::decode_meta(""), "");
    virt::StringSource source{bytes};
    fake().upload_volume(*volume, source, bytes.size(), false);
  }
  auto p = pool();
  const auto available_mib = fake().pool_info(*p).available / k_mib;
  const auto before = volume_names();
  auto lxc = cloud_on(k_pool, "lxc");
  auto request = vm_request(stemcell);
  request.cloud_properties["ephemeral_disk"] = available_mib - 4;  // fits alone
  try {
    lxc->create_vm(request);
    ADD_FAILURE() << "container volumes larger than the free space were accepted";
  } catch (const NoDiskSpace& e) {
    const std::string message = e.what();
    for (const char* part : {"the root filesystem of vm", "the settings of vm",
                             "the ephemeral filesystem of vm", "allocated whole"}) {
      EXPECT_NE(message.find(part), std::string::npos) << part << ": " << message;
    }
  }
  EXPECT_EQ(volume_names(), before);
}

TEST_F(PoolsTest, UsbHostDeviceAndHugepagesReachTheDomain) {
  const auto stemcell = create_stemcell();
  auto request = vm_request(stemcell);
  request.cloud_properties["host_devices"] = {{{"vendor", "0x1234"}, {"product", "0x5678"}}};
  request.cloud_properties["hugepages"] = true;
  const auto vm = cloud().create_vm(request).cid;
  pugi::xml_document doc;
  parse_xml(doc, domain_xml(vm.value));
  const auto hostdev = doc.child("domain").child("devices").child("hostdev");
  EXPECT_STREQ(hostdev.attribute("type").value(), "usb");
  EXPECT_TRUE(doc.child("domain").child("memoryBacking").child("hugepages"));
}

TEST_F(PoolsTest, PciPassthroughWithoutKvmIsNotSupportedAndRolledBack) {
  const auto stemcell = create_stemcell();
  const auto before = volume_names();
  auto request = vm_request(stemcell);
  request.cloud_properties["host_devices"] = {"0000:65:00.0"};
  EXPECT_THROW(cloud().create_vm(request), NotSupported);  // the fake has no KVM: domain 'qemu'
  EXPECT_EQ(volume_names(), before);
}

}  // namespace
}  // namespace cpi::testing
