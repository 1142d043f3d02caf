#include "cpi/xml/flavour.hpp"

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cpi/errors.hpp"
#include "cpi/util/private_dir.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "support/xml_checks.hpp"

namespace cpi::xml {
namespace {

using namespace cpi::testing;  // support/xml_checks.hpp

const std::vector<std::string> k_all{"qemu", "kvm", "lxc", "xen", "vbox", "vmware"};

// A VM as create_vm describes it to `flavour`: its buses, NIC model and a format it accepts.
struct Shape {
  bool ephemeral = false;
  bool persistent = false;
  int nics = 1;
};

DomainSpec spec_for(const Flavour& flavour, const Shape& shape) {
  DomainSpec spec;
  spec.name = "vm-0f8fad5b-d9cb-469f-a165-70867728950e";
  spec.title = "bosh/web/0";
  spec.virt_type = flavour.domain_type([] { return std::string{"kvm"}; });
  spec.vcpus = 2;
  spec.memory_mib = 512;
  const std::string format = flavour.formats().front();
  const std::string bus = flavour.disk_bus("virtio");
  std::vector<std::string> used;
  // Containers mount filesystems where the warden stemcell's agent looks for them.
  auto mounted = [&](DiskDevice disk, const std::string& mount) {
    if (flavour.container()) {
      disk.mount = mount;
      disk.path = "/var/lib/libvirt/bosh/" + disk.volume;
    }
    return disk;
  };
  auto add = [&](const std::string& volume, const std::string& serial, const std::string& mount) {
    used.push_back(next_target(bus, used));
    spec.disks.push_back(mounted({"bosh", volume, format, used.back(), bus, serial, false}, mount));
    spec.volume_paths[volume] = "/var/lib/libvirt/bosh/" + volume;
  };
  add("vm-1-root", "", "/");
  if (shape.ephemeral) add("vm-1-ephemeral", "eph-0123456789abcdef", "/var/vcap/data");
  if (shape.persistent) {
    add("disk-0123456789abcde", "disk-0123456789abcde", "/warden-cpi-dev/disk-0123456789abcde");
  }
  const std::string cd_bus = flavour.cdrom_bus("ide");
  used.push_back(next_target(cd_bus, used));
  spec.disks.push_back(mounted({"bosh", "vm-1-config", "raw", used.back(), cd_bus, "", true},
                               "/var/vcap/bosh/libvirt-config"));
  spec.volume_paths["vm-1-config"] = "/var/lib/libvirt/bosh/vm-1-config";
  for (int i = 0; i < shape.nics; ++i) {
    const std::string type = flavour.name() == "vmware" ? "bridge" : "network";
    spec.nics.push_back({"52:54:00:00:00:0" + std::to_string(i + 1), type,
                         type == "bridge" ? "br0" : "default", "bridge", flavour.nic_model()});
    if (flavour.container() && i == 0) {  // a manual network: libvirt sets the address
      spec.nics.back().ip = "10.0.16.5";
      spec.nics.back().prefix = "24";
      spec.nics.back().gateway = "10.0.16.1";
    }
  }
  spec.console_log = flavour.console_log(spec.name);
  spec.metadata = std::string{"<vm xmlns='"} + k_metadata_ns + "'><facts>{}</facts></vm>";
  return spec;
}


TEST(FlavourTest, FactoryKnowsEveryConfigHypervisor) {
  for (const auto& name : k_all) {
    SCOPED_TRACE(name);
    EXPECT_EQ(make_flavour(name)->name(), name);
  }
  EXPECT_THROW(make_flavour("hyperv"), CpiError);
}

TEST(FlavourTest, DomainTypeBusesNicModelAndFormats) {
  struct Case {
    std::string name, type, bus, cdrom, nic;
    std::vector<std::string> formats;
  };
  const std::vector<Case> cases{
      {"qemu", "kvm", "virtio", "ide", "virtio", {"qcow2", "raw"}},
      {"kvm", "kvm", "virtio", "ide", "virtio", {"qcow2", "raw"}},
      {"lxc", "lxc", "virtio", "ide", "", {"raw", "qcow2"}},
      {"xen", "xen", "xen", "ide", "netfront", {"raw", "qcow2"}},
      {"vbox", "vbox", "sata", "ide", "82540EM", {"vmdk", "vdi"}},
      {"vmware", "vmware", "scsi", "ide", "e1000", {"vmdk"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto flavour = make_flavour(c.name);
    EXPECT_EQ(flavour->domain_type([] { return std::string{"kvm"}; }), c.type);
    EXPECT_EQ(flavour->disk_bus("virtio"), c.bus);
    EXPECT_EQ(flavour->cdrom_bus("ide"), c.cdrom);
    EXPECT_EQ(flavour->nic_model(), c.nic);
    EXPECT_EQ(flavour->formats(), c.formats);
  }
}

TEST(FlavourTest, OnlyQemuAndKvmDetectTheDomainType) {
  for (const auto& name : k_all) {
    SCOPED_TRACE(name);
    bool called = false;
    make_flavour(name)->domain_type([&] {
      called = true;
      return std::string{"qemu"};
    });
    EXPECT_EQ(called, name == "qemu" || name == "kvm");
  }
}

TEST(FlavourTest, RejectedFormatIsNotSupportedNamingHypervisorAndFormat) {
  struct Case {
    std::string name, format;
  };
  for (const Case& c : {Case{"vbox", "qcow2"}, Case{"vmware", "vdi"}, Case{"vmware", "qcow2"},
                        Case{"xen", "vmdk"}, Case{"qemu", "vmdk"}}) {
    SCOPED_TRACE(c.name + " " + c.format);
    const auto flavour = make_flavour(c.name);
    EXPECT_FALSE(flavour->accepts_format(c.format));
    try {
      flavour->require_format(c.format, "root disk");
      ADD_FAILURE() << "no error";
    } catch (const NotSupported& e) {
      EXPECT_NE(std::string{e.what()}.find("'" + c.name + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string{e.what()}.find("'" + c.format + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(FlavourTest, EachFlavourWritesItsDomainTypeDisksAndNics) {
  for (const auto& name : k_all) {
    SCOPED_TRACE(name);
    const auto flavour = make_flavour(name);
    const auto doc = parsed(flavour->build(spec_for(*flavour, {false, false, 2})));
    EXPECT_EQ(at(doc, "/domain/@type"), flavour->domain_type([] { return std::string{"kvm"}; }));
    EXPECT_EQ(at(doc, "/domain/name"), "vm-0f8fad5b-d9cb-469f-a165-70867728950e");
    EXPECT_EQ(count(doc, "/domain/devices/interface"), 2U);
    const std::string model = flavour->nic_model();
    EXPECT_EQ(count(doc, "/domain/devices/interface/model"), model.empty() ? 0U : 2U);
    if (!model.empty()) {
      EXPECT_EQ(at(doc, "/domain/devices/interface/model/@type"), model);
    }
    EXPECT_EQ(count(doc, "/domain/metadata/vm"), 1U);
  }
}

TEST(FlavourTest, LxcMountsEveryVolumeAsAFilesystem) {
  const auto flavour = make_flavour("lxc");
  EXPECT_TRUE(flavour->container());
  auto spec = spec_for(*flavour, {true, true, 2});
  spec.init = "/usr/sbin/runsvdir-start";
  const auto doc = parsed(flavour->build(spec));
  EXPECT_EQ(at(doc, "/domain/os/type"), "exe");
  EXPECT_EQ(at(doc, "/domain/os/init"), "/usr/sbin/runsvdir-start");
  EXPECT_EQ(count(doc, "/domain/devices/disk"), 0U);
  EXPECT_EQ(count(doc, "/domain/devices/filesystem"), 4U);
  EXPECT_EQ(at(doc, "/domain/devices/filesystem[target/@dir='/']/source/@file"),
            "/var/lib/libvirt/bosh/vm-1-root");
  EXPECT_EQ(at(doc, "/domain/devices/filesystem[target/@dir='/']/driver/@type"), "loop");
  EXPECT_EQ(count(doc, "/domain/devices/filesystem[target/@dir='/']/readonly"), 0U);
  EXPECT_EQ(
      count(doc, "/domain/devices/filesystem[target/@dir='/var/vcap/bosh/libvirt-config']/readonly"),
      1U);
  EXPECT_EQ(at(doc, "/domain/devices/filesystem[target/@dir='/var/vcap/data']/source/@file"),
            "/var/lib/libvirt/bosh/vm-1-ephemeral");
  EXPECT_EQ(count(doc, "/domain/devices/filesystem[target/@dir="
                       "'/warden-cpi-dev/disk-0123456789abcde']"),
            1U);
  EXPECT_EQ(at(doc, "/domain/devices/interface[1]/ip/@address"), "10.0.16.5");
  EXPECT_EQ(at(doc, "/domain/devices/interface[1]/ip/@prefix"), "24");
  EXPECT_EQ(at(doc, "/domain/devices/interface[1]/route/@gateway"), "10.0.16.1");
  EXPECT_EQ(count(doc, "/domain/devices/interface[2]/ip"), 0U);
  EXPECT_EQ(at(doc, "/domain/devices/console/target/@type"), "lxc");
  // A persistent disk alone, for the container's redefinition.
  DiskDevice disk{"bosh", "disk-1", "raw", "", "", "disk-1", false};
  disk.mount = "/warden-cpi-dev/disk-1";
  disk.path = "/pool/disk-1";
  const auto fs = parsed(flavour->disk_device(disk));
  EXPECT_EQ(at(fs, "/filesystem/target/@dir"), "/warden-cpi-dev/disk-1");
  EXPECT_EQ(at(fs, "/filesystem/source/@file"), "/pool/disk-1");
}

TEST(FlavourTest, XenUsesXenBusAndXenBalloon) {
  const auto flavour = make_flavour("xen");
  const auto doc = parsed(flavour->build(spec_for(*flavour, {true, true, 1})));
  EXPECT_EQ(at(doc, "/domain/os/type/@machine"), "xenfv");
  EXPECT_EQ(at(doc, "/domain/devices/disk[1]/target/@dev"), "xvda");
  EXPECT_EQ(at(doc, "/domain/devices/disk[1]/target/@bus"), "xen");
  EXPECT_EQ(at(doc, "/domain/devices/disk[1]/source/@volume"), "vm-1-root");
  EXPECT_EQ(at(doc, "/domain/devices/disk[@device='cdrom']/target/@bus"), "ide");
  EXPECT_EQ(at(doc, "/domain/devices/memballoon/@model"), "xen");
  EXPECT_EQ(count(doc, "/domain/devices/rng"), 0U);
}

TEST(FlavourTest, VboxAndVmwareWriteFileDisksWithHostPaths) {
  for (const std::string name : {"vbox", "vmware"}) {
    SCOPED_TRACE(name);
    const auto flavour = make_flavour(name);
    const auto doc = parsed(flavour->build(spec_for(*flavour, {true, false, 1})));
    EXPECT_EQ(count(doc, "/domain/devices/disk[@type='file']"), 3U);
    EXPECT_EQ(at(doc, "/domain/devices/disk[1]/source/@file"), "/var/lib/libvirt/bosh/vm-1-root");
    EXPECT_EQ(at(doc, "/domain/devices/disk[1]/target/@bus"), flavour->disk_bus("virtio"));
    EXPECT_EQ(count(doc, "/domain/devices/graphics"), 0U);
  }
}

TEST(FlavourTest, FileDiskWithoutHostPathIsACpiError) {
  const auto flavour = make_flavour("vbox");
  DomainSpec spec = spec_for(*flavour, {});
  spec.volume_paths.clear();
  EXPECT_THROW(flavour->build(spec), CpiError);
}

// Builds `spec` and expects NotSupported naming the hypervisor and `feature`.
void expect_not_supported(const Flavour& flavour, const DomainSpec& spec,
                          const std::string& feature) {
  try {
    flavour.build(spec);
    ADD_FAILURE() << flavour.name() << ": no error for " << feature;
  } catch (const NotSupported& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'" + flavour.name() + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(feature), std::string::npos) << message;
  }
}

TEST(FlavourTest, QemuOnlyOptionsAreNotSupportedElsewhere) {
  for (const std::string name : {"lxc", "xen", "vbox", "vmware"}) {
    SCOPED_TRACE(name);
    const auto flavour = make_flavour(name);
    DomainSpec with_devices = spec_for(*flavour, {});
    with_devices.host_devices = {{"0000:65:00.0", "", ""}};
    expect_not_supported(*flavour, with_devices, "host_devices");
    DomainSpec with_cpu = spec_for(*flavour, {});
    with_cpu.cpu.mode = "host-model";
    expect_not_supported(*flavour, with_cpu, "cpu_mode");
    DomainSpec nested = spec_for(*flavour, {});
    nested.cpu.nested_feature = "vmx";
    expect_not_supported(*flavour, nested, "nested_virtualization");
    DomainSpec huge = spec_for(*flavour, {});
    huge.hugepages = true;
    expect_not_supported(*flavour, huge, "hugepages");
  }
}

TEST(FlavourTest, DriverGapsAreNotSupported) {
  const auto lxc = make_flavour("lxc");
  DomainSpec block = spec_for(*lxc, {true, false, 1});
  block.disks[1].mount.clear();
  expect_not_supported(*lxc, block, "block devices in containers");
  EXPECT_THROW(lxc->disk_device({"bosh", "disk-1", "raw", "vdb", "virtio", "", false}),
               NotSupported);
  const auto vmware = make_flavour("vmware");
  DomainSpec networked = spec_for(*vmware, {});
  networked.nics[0].type = "network";
  expect_not_supported(*vmware, networked, "'network' interfaces");
  for (const std::string name : {"xen", "vbox"}) {
    const auto flavour = make_flavour(name);
    DomainSpec direct = spec_for(*flavour, {});
    direct.nics[0].type = "direct";
    direct.nics[0].source = "eth1";
    expect_not_supported(*flavour, direct, "'direct' interfaces");
  }
  EXPECT_THROW(make_flavour("vbox")->disk_device({"bosh", "d", "vmdk", "sdb", "sata", "", false}),
               NotSupported);
}

TEST(FlavourTest, XenAndQemuHotPlugDisks) {
  for (const std::string name : {"qemu", "xen"}) {
    SCOPED_TRACE(name);
    const auto flavour = make_flavour(name);
    const std::string bus = flavour->disk_bus("virtio");
    const auto doc = parsed(flavour->disk_device({"bosh", "disk-1", "qcow2", "xvdb", bus,
                                                 "disk-1", false}));
    EXPECT_EQ(at(doc, "/disk/source/@volume"), "disk-1");
    EXPECT_EQ(at(doc, "/disk/target/@bus"), bus);
  }
}

TEST(FlavourSchemaTest, EveryFlavourAndShapeValidates) {
  if (!have_validator()) GTEST_SKIP() << "virt-xml-validate is not on PATH";
  const std::vector<Shape> shapes{{false, false, 1}, {true, false, 1}, {true, true, 3},
                                  {false, true, 2}, {false, false, 0}};
  for (const auto& name : k_all) {
    const auto flavour = make_flavour(name);
    for (const auto& shape : shapes) {
      SCOPED_TRACE(name + " ephemeral=" + std::to_string(shape.ephemeral) +
                   " persistent=" + std::to_string(shape.persistent) +
                   " nics=" + std::to_string(shape.nics));
      EXPECT_EQ(validation_error(flavour->build(spec_for(*flavour, shape))), "");
    }
  }
}

}  // namespace
}  // namespace cpi::xml
