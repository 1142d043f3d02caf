// The qemu/kvm flavour's VM cloud_properties: host devices, CPU modes, nested virtualization,
// hugepages; and what it refuses without KVM.

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"
#include "cpi/xml/flavour.hpp"
#include "support/xml_checks.hpp"

namespace cpi::xml {
namespace {

using namespace cpi::testing;  // support/xml_checks.hpp

DomainSpec kvm_spec() {
  DomainSpec spec;
  spec.name = "vm-1";
  spec.virt_type = "kvm";
  spec.disks = {{"bosh", "vm-1-root", "qcow2", "vda", "virtio", "", false},
                {"bosh", "disk-1", "qcow2", "vdb", "virtio", "disk-1", false},
                {"bosh", "vm-1-config", "raw", "hda", "ide", "", true}};
  spec.nics = {{"52:54:00:00:00:01", "network", "default", "bridge", "virtio"},
               {"52:54:00:00:00:02", "bridge", "br0", "bridge", "virtio"}};
  spec.console_log = "/var/log/libvirt/qemu/vm-1-console.log";
  return spec;
}

DomainSpec with_everything() {
  DomainSpec spec = kvm_spec();
  spec.host_devices = {{"0000:65:00.0", "", ""}, {"", "0x1234", "0x5678"}};
  spec.cpu = {"host-passthrough", "", "vmx"};
  spec.hugepages = true;
  return spec;
}

TEST(QemuFlavourTest, PciAndUsbHostDevices) {
  const auto doc = parsed(make_flavour("kvm")->build(with_everything()));
  ASSERT_EQ(count(doc, "/domain/devices/hostdev"), 2U);
  const auto pci = doc.select_node("/domain/devices/hostdev[@type='pci']").node();
  EXPECT_EQ(at(pci, "@mode"), "subsystem");
  EXPECT_EQ(at(pci, "@managed"), "yes");
  EXPECT_EQ(at(pci, "source/address/@domain"), "0x0000");
  EXPECT_EQ(at(pci, "source/address/@bus"), "0x65");
  EXPECT_EQ(at(pci, "source/address/@slot"), "0x00");
  EXPECT_EQ(at(pci, "source/address/@function"), "0x0");
  const auto usb = doc.select_node("/domain/devices/hostdev[@type='usb']").node();
  EXPECT_EQ(at(usb, "source/vendor/@id"), "0x1234");
  EXPECT_EQ(at(usb, "source/product/@id"), "0x5678");
}

TEST(QemuFlavourTest, CpuModesAndNestedFeature) {
  struct Case {
    std::string mode, model, feature;
  };
  for (const Case& c : {Case{"host-passthrough", "", "vmx"}, Case{"host-model", "", "svm"},
                        Case{"custom", "EPYC", ""}, Case{"custom", "Skylake-Server", "vmx"}}) {
    SCOPED_TRACE(c.mode + " " + c.model + " " + c.feature);
    DomainSpec spec = kvm_spec();
    spec.cpu = {c.mode, c.model, c.feature};
    const auto doc = parsed(make_flavour("qemu")->build(spec));
    EXPECT_EQ(at(doc, "/domain/cpu/@mode"), c.mode);
    EXPECT_EQ(count(doc, "/domain/cpu/model"), c.model.empty() ? 0U : 1U);
    if (!c.model.empty()) {
      EXPECT_EQ(at(doc, "/domain/cpu/model"), c.model);
    }
    EXPECT_EQ(count(doc, "/domain/cpu/feature[@policy='require']"), c.feature.empty() ? 0U : 1U);
    if (!c.feature.empty()) {
      EXPECT_EQ(at(doc, "/domain/cpu/feature/@name"), c.feature);
    }
  }
}

TEST(QemuFlavourTest, CustomWithoutModelAndModelWithoutCustomAreCpiErrors) {
  DomainSpec spec = kvm_spec();
  spec.cpu.mode = "custom";
  EXPECT_THROW(make_flavour("kvm")->build(spec), CpiError);
  spec.cpu = {"host-model", "EPYC", ""};
  EXPECT_THROW(make_flavour("kvm")->build(spec), CpiError);
}

TEST(QemuFlavourTest, Hugepages) {
  const auto doc = parsed(make_flavour("kvm")->build(with_everything()));
  EXPECT_EQ(count(doc, "/domain/memoryBacking/hugepages"), 1U);
  EXPECT_EQ(count(parsed(make_flavour("kvm")->build(kvm_spec())), "/domain/memoryBacking"), 0U);
}

TEST(QemuFlavourTest, WithoutKvmWhatNeedsKvmIsNotSupported) {
  DomainSpec passthrough = kvm_spec();
  passthrough.virt_type = "qemu";
  passthrough.cpu.mode = "host-passthrough";
  DomainSpec nested = kvm_spec();
  nested.virt_type = "qemu";
  nested.cpu = {"host-model", "", "vmx"};
  DomainSpec pci = kvm_spec();
  pci.virt_type = "qemu";
  pci.host_devices = {{"0000:65:00.0", "", ""}};
  for (const auto* spec : {&passthrough, &nested, &pci}) {
    EXPECT_THROW(make_flavour("qemu")->build(*spec), NotSupported);
  }
  DomainSpec usb_tcg = kvm_spec();  // USB passthrough and hugepages work under TCG too
  usb_tcg.virt_type = "qemu";
  usb_tcg.host_devices = {{"", "0x1234", "0x5678"}};
  usb_tcg.hugepages = true;
  EXPECT_NO_THROW(make_flavour("qemu")->build(usb_tcg));
}

TEST(QemuFlavourTest, NestedFeatureFollowsTheHostCpuVendor) {
  auto caps = [](const std::string& vendor) {
    return "<capabilities><host><cpu><arch>x86_64</arch><vendor>" + vendor +
           "</vendor></cpu></host></capabilities>";
  };
  EXPECT_EQ(nested_virt_feature(caps("Intel")), "vmx");
  EXPECT_EQ(nested_virt_feature(caps("AMD")), "svm");
  EXPECT_THROW(nested_virt_feature(caps("")), CloudError);
  EXPECT_THROW(nested_virt_feature("<capabilities/>"), CloudError);
}

TEST(QemuFlavourSchemaTest, OptionShapesValidate) {
  if (!have_validator()) GTEST_SKIP() << "virt-xml-validate is not on PATH";
  DomainSpec custom = with_everything();
  custom.cpu = {"custom", "EPYC", "svm"};
  DomainSpec host_model = kvm_spec();
  host_model.cpu.mode = "host-model";
  host_model.host_devices = {{"", "0xabcd", "0x0001"}};
  for (const DomainSpec& spec : {with_everything(), custom, host_model}) {
    SCOPED_TRACE(spec.cpu.mode);
    const std::string text = make_flavour("kvm")->build(spec);
    EXPECT_EQ(validation_error(text), "");
  }
}

}  // namespace
}  // namespace cpi::xml
