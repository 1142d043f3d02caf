// Doctor's report and the text rendering of inspect's JSON (src/tools/report.cpp, render.cpp).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "cpi/tools/render.hpp"
#include "cpi/tools/report.hpp"

namespace cpi::tools {
namespace {

TEST(DoctorReportTest, FailsWhenAnyCheckFailsAndJsonNamesTheWorstVerdict) {
  DoctorReport report;
  report.ok("config", "loaded");
  EXPECT_FALSE(report.failed());
  EXPECT_EQ(report.to_json()["verdict"], "ok");
  report.warn("kvm", "no KVM", "load kvm");
  EXPECT_FALSE(report.failed());
  EXPECT_EQ(report.to_json()["verdict"], "warn");
  report.fail("network", "inactive", "virsh net-start default");
  EXPECT_TRUE(report.failed());

  const auto json = report.to_json();
  EXPECT_EQ(json["verdict"], "fail");
  ASSERT_EQ(json["checks"].size(), 3U);
  EXPECT_EQ(json["checks"][2]["name"], "network");
  EXPECT_EQ(json["checks"][2]["verdict"], "fail");
  EXPECT_EQ(json["checks"][2]["hint"], "virsh net-start default");
  ASSERT_NE(report.find("kvm"), nullptr);
  EXPECT_EQ(report.find("kvm")->verdict, Verdict::warn);
  EXPECT_EQ(report.find("stream"), nullptr);
}

TEST(DoctorReportTest, TableShowsVerdictsHintsOfProblemsAndASummary) {
  DoctorReport report;
  report.ok("config", "loaded", "never shown");
  report.fail("network", "libvirt network 'default' is inactive", "virsh net-start default");
  const std::string table = report.table();
  EXPECT_NE(table.find("ok    config"), std::string::npos) << table;
  EXPECT_NE(table.find("FAIL  network"), std::string::npos) << table;
  EXPECT_NE(table.find("hint: virsh net-start default"), std::string::npos) << table;
  EXPECT_EQ(table.find("never shown"), std::string::npos) << table;
  EXPECT_NE(table.find("1 ok, 0 warn, 1 fail"), std::string::npos) << table;
}

TEST(SplitHintTest, SeparatesTheLastCheckClause) {
  const auto [detail, hint] = split_hint(
      "connecting to libvirt at 'qemu:///system' (transport unix): Failed to connect socket; "
      "check that libvirtd is running");
  EXPECT_EQ(detail,
            "connecting to libvirt at 'qemu:///system' (transport unix): Failed to connect socket");
  EXPECT_EQ(hint, "check that libvirtd is running");
  EXPECT_EQ(split_hint("plain").second, "");
}

TEST(VersionStringTest, DecodesLibvirtVersions) {
  EXPECT_EQ(version_string(9000000), "9.0.0");
  EXPECT_EQ(version_string(7002022), "7.2.22");
  EXPECT_EQ(version_string(2), "0.0.2");
}

TEST(RenderDetailsTest, VmShowsStateVolumesDisksNicsAndConsoleTail) {
  const nlohmann::json vm = {
      {"kind", "vm"},
      {"cid", "vm-1"},
      {"name", "vm-1"},
      {"found", true},
      {"state", "running"},
      {"vcpus", 2},
      {"memory_mib", 512},
      {"volumes",
       {{{"role", "root"},
         {"target", "vda"},
         {"bus", "virtio"},
         {"pool", "bosh"},
         {"name", "vm-1-root"},
         {"present", true},
         {"capacity", 1U << 30},
         {"allocation", 1U << 20},
         {"format", "qcow2"},
         {"path", "/p/vm-1-root"}},
        {{"role", "persistent"},
         {"target", "vdc"},
         {"bus", "virtio"},
         {"pool", "bosh"},
         {"name", "disk-1"},
         {"present", false},
         {"serial", "disk-1"}}}},
      {"persistent_disks", {"disk-1"}},
      {"nics", {{{"mac", "52:54:00:aa:bb:cc"}, {"type", "network"}, {"source", "default"}}}},
      {"facts", {{"agent_id", "agent-1"}}},
      {"console_log", {{"path", "/var/log/c.log"}, {"tail", "line 1\nline 2\n"}}}};
  const std::string text = render_details(vm);
  for (const char* expected :
       {"== vm vm-1 ==", "running", "512 MiB", "root vda (virtio)", "1 GiB", "MISSING", "disk-1",
        "52:54:00:aa:bb:cc", "agent-1", "/var/log/c.log", "line 2"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
}

TEST(RenderDetailsTest, MissingVmListsLeftoverVolumesAndUnknownCidExplains) {
  const nlohmann::json vm = {
      {"kind", "vm"},
      {"cid", "vm-2"},
      {"name", "vm-2"},
      {"found", false},
      {"leftover_volumes", {{{"pool", "bosh"}, {"name", "vm-2-root"}, {"capacity", 1024}}}}};
  const std::string text = render_details(vm);
  EXPECT_NE(text.find("NOT FOUND"), std::string::npos) << text;
  EXPECT_NE(text.find("bosh/vm-2-root"), std::string::npos) << text;
  EXPECT_NE(text.find("cleanup --orphans"), std::string::npos) << text;

  const std::string unknown =
      render_details({{"kind", "unknown"}, {"cid", "x"}, {"error", "'x' is not a CID"}});
  EXPECT_NE(unknown.find("'x' is not a CID"), std::string::npos) << unknown;
}

TEST(RenderDetailsTest, DiskShowsAttachmentMetadataAndSnapshots) {
  const nlohmann::json disk = {
      {"kind", "disk"},
      {"cid", "disk-1"},
      {"name", "disk-1"},
      {"found", true},
      {"volume", {{"pool", "bosh"}, {"name", "disk-1"}, {"capacity", 64U << 20}}},
      {"attached_to", "vm-1"},
      {"attached_in", {"vm-1"}},
      {"metadata", {{"deployment", "cf"}}},
      {"snapshots", {{{"cid", "snap-1"}, {"capacity", 64U << 20}, {"metadata", {{"a", 1}}}}}}};
  const std::string text = render_details(disk);
  for (const char* expected : {"attached to:  vm-1", "64 MiB", "\"deployment\":\"cf\"", "snap-1"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  EXPECT_EQ(text.find("disagree"), std::string::npos) << text;
}

}  // namespace
}  // namespace cpi::tools
