// create_stemcell on untrusted and odd images, and create_vm on stemcells that are not usable
// (deleted, kept only for their VMs, or incompletely imported), against test:///default.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <pugixml.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/errors.hpp"
#include "support/test_driver.hpp"
#include "support/hypervisor_wrapper.hpp"

namespace cpi::testing {
namespace {

class StemcellSafetyTest : public TestDriver {
 protected:
  // The message of the cpi::Error `action` throws; fails the test when it throws none.
  template <typename Action>
  static std::string error_of(Action action) {
    try {
      action();
    } catch (const cpi::Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no cpi::Error thrown";
    return "";
  }

  std::string refused(const std::string& image, const nlohmann::json& cloud_properties) {
    const auto before = volume_names();
    const std::string message =
        error_of([&] { cloud().create_stemcell(image, cloud_properties); });
    EXPECT_EQ(volume_names(), before) << "a refused image left a volume";
    return message;
  }

  // create_vm on `stemcell` fails, names the stemcell, and leaves no volume or domain.
  std::string vm_refused(const cloud::StemcellCid& stemcell) {
    const auto volumes = volume_names();
    const auto domains = domain_names();
    const std::string message = error_of([&] { create_vm(stemcell); });
    EXPECT_NE(message.find("stemcell '" + stemcell.value + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("upload the stemcell again"), std::string::npos) << message;
    EXPECT_EQ(volume_names(), volumes);
    EXPECT_EQ(domain_names(), domains);
    return message;
  }

  void make_volume(const std::string& name) {
    const std::string xml = "<volume><name>" + name +
                            "</name><capacity>512</capacity><target><format type='raw'/>"
                            "</target></volume>";
    virt::Volume v{virStorageVolCreateXML(pool().get(), xml.c_str(), 0)};
    ASSERT_TRUE(v) << name;
  }
};

// Sees, at the moment of each upload, which volumes of the pool exist, and keeps the domain XML
// the cloud defines.
class Witness final : public virt::HypervisorWrapper {
 public:
  using HypervisorWrapper::HypervisorWrapper;
  void upload_volume(virStorageVol& v, virt::ByteSource& s, std::uint64_t l, bool sp) override {
    seen = target().list_volume_names(pool_of(v));
    HypervisorWrapper::upload_volume(v, s, l, sp);
  }
  virt::Domain define_domain(const std::string& xml) override {
    defined = xml;
    return HypervisorWrapper::define_domain(xml);
  }
  std::vector<std::string> seen;
  std::string defined;

 private:
  virStoragePool& pool_of(virStorageVol& v) {
    m_pool.reset(virStoragePoolLookupByVolume(&v));
    return *m_pool;
  }
  virt::Pool m_pool;
};

TEST_F(StemcellSafetyTest, SparseTarRawImageEndingInAHoleIsUploadedWhole) {
  for (const char* format : {"gnu", "pax"}) {
    SCOPED_TRACE(format);
    const auto image = images().sparse_raw(8 * k_mib, format);
    const auto cid = cloud().create_stemcell(image.string(), {{"disk_format", "raw"}});

    const auto upload = fake().uploaded(volume_path(cid.value));
    ASSERT_TRUE(upload.has_value());
    EXPECT_TRUE(upload->sparse);
    EXPECT_EQ(upload->bytes.size(), 8 * k_mib);
    EXPECT_TRUE(upload->bytes == images().root_img()) << "uploaded bytes differ from root.img";
    cloud().delete_stemcell(cid);
  }
}

// The backing file is a scratch file of the test's own; it must be left exactly as it was.
TEST_F(StemcellSafetyTest, Qcow2WithABackingFileIsRefusedWhateverTheDeclaredFormat) {
  const auto scratch = images().dir().write("scratch.raw", std::string(64 * 1024, 'S'));
  ASSERT_EQ(::chmod(scratch.c_str(), 0640), 0);
  struct stat before {};
  ASSERT_EQ(::stat(scratch.c_str(), &before), 0);
  const auto image = images().qcow2_backed_by(scratch).string();

  for (const nlohmann::json& props : {nlohmann::json::object(), nlohmann::json{{"disk_format", "qcow2"}},
                                      nlohmann::json{{"disk_format", "raw"}}}) {
    const std::string message = refused(image, props);
    EXPECT_NE(message.find("root.img is refused: its qcow2 header names a backing file"),
              std::string::npos)
        << message;
  }
  struct stat after {};
  ASSERT_EQ(::stat(scratch.c_str(), &after), 0);
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_gid, before.st_gid);
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(TempDir::read(scratch), std::string(64 * 1024, 'S'));
}

TEST_F(StemcellSafetyTest, VirtualSizeZeroIsRefused) {
  EXPECT_NE(refused(images().qcow2("0").string(), nullptr).find("virtual size of 0 bytes"),
            std::string::npos);
  EXPECT_NE(refused(images().raw(0).string(), nullptr).find("virtual size of 0 bytes"),
            std::string::npos);
}

TEST_F(StemcellSafetyTest, RootDiskNamesItsWholeBackingChain) {
  Witness witness{fake()};
  cloud::LibvirtCloud other{witness, config()};
  const auto stemcell = create_stemcell();
  const auto vm = other.create_vm(vm_request(stemcell)).cid;
  pugi::xml_document doc;
  parse_xml(doc, witness.defined);
  const auto root = disk_with_volume(doc, vm.value + "-root");
  ASSERT_TRUE(root);
  const auto layer = root.child("backingStore");
  EXPECT_STREQ(layer.child("source").attribute("file").value(),
               volume_path(stemcell.value).c_str());
  EXPECT_STREQ(layer.child("format").attribute("type").value(), "raw");
  ASSERT_TRUE(layer.child("backingStore"));
  EXPECT_FALSE(layer.child("backingStore").first_child()) << "the chain ends at the stemcell";
  cloud().delete_vm(vm);
}

TEST_F(StemcellSafetyTest, CreateVmOnADeletedStemcellSaysSo) {
  const auto stemcell = create_stemcell();
  cloud().delete_stemcell(stemcell);
  const std::string message = vm_refused(stemcell);
  EXPECT_NE(message.find("is not in storage pool"), std::string::npos) << message;
  EXPECT_NE(message.find("it was deleted"), std::string::npos) << message;
}

TEST_F(StemcellSafetyTest, CreateVmOnAStemcellKeptOnlyForItsVmsIsRefused) {
  const auto stemcell = create_stemcell();
  const auto vm = create_vm(stemcell);
  cloud().delete_stemcell(stemcell);
  ASSERT_TRUE(volume_exists(stemcell.value)) << "kept for its VM";

  const std::string message = vm_refused(stemcell);
  EXPECT_NE(message.find("was deleted (delete_stemcell keeps its volume only until the VMs"),
            std::string::npos)
      << message;
  cloud().delete_vm(vm);
  EXPECT_FALSE(volume_exists(stemcell.value));
}

// What a create_stemcell killed during its upload leaves: the stemcell volume and its marker.
TEST_F(StemcellSafetyTest, CreateVmOnAnIncompleteStemcellIsRefused) {
  const auto stemcell = create_stemcell();
  make_volume(stemcell.value + ".incomplete");

  const std::string message = vm_refused(stemcell);
  EXPECT_NE(message.find("is incomplete: its create_stemcell did not finish"), std::string::npos)
      << message;
  cloud().delete_stemcell(stemcell);
  EXPECT_FALSE(volume_exists(stemcell.value));
  EXPECT_FALSE(volume_exists(stemcell.value + ".incomplete"));
}

TEST_F(StemcellSafetyTest, StemcellIsMarkedIncompleteUntilItsUploadIsDone) {
  Witness witness{fake()};
  cloud::LibvirtCloud other{witness, config()};
  const auto cid = other.create_stemcell(images().raw(1 * k_mib).string(), nullptr);

  EXPECT_NE(std::find(witness.seen.begin(), witness.seen.end(), cid.value + ".incomplete"),
            witness.seen.end())
      << "no marker during the upload";
  EXPECT_FALSE(volume_exists(cid.value + ".incomplete")) << "the marker outlived the upload";
  EXPECT_TRUE(volume_exists(cid.value));
}

}  // namespace
}  // namespace cpi::testing
