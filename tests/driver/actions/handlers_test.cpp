// The driver module's handlers (src/driver/actions/) through rpc::dispatch, as `cpi_dispatch`
// runs them, on a LibvirtCloud over test:///default: what each method answers for each API
// version, what it does to libvirt, and that errors keep their Bosh type. The envelope, arity
// and argument checks without a cloud are unit tests (tests/unit/rpc/dispatcher_test.cpp).

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "cpi/rpc/dispatcher.hpp"

#include "support/disk_fixture.hpp"
#include "support/temp_dir.hpp"

namespace cpi::testing {
namespace {

using nlohmann::json;

class HandlersTest : public DiskFixture {
 protected:
  void SetUp() override {
    DiskFixture::SetUp();
    m_dir = std::make_unique<TempDir>();
    m_config_file = m_dir->path() / "cpi.json";
    std::ofstream{m_config_file} << json{
        {"libvirt", {{"uri", "test:///default"}, {"storage_pool", k_pool}, {"network", "default"}}},
        {"agent", {{"mbus", k_mbus}}},
        {"log_level", "warn"}};
    std::filesystem::permissions(
        m_config_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  void TearDown() override {
    m_dir.reset();
    DiskFixture::TearDown();
  }

  // One request as the module answers it: a new cloud on the fixture's host for each call, as
  // in its own `cpi` process. `api_version` 0 leaves it out (API 1).
  json respond(const std::string& method, const json& arguments, int api_version = 2) {
    rpc::DispatchOptions options;
    options.config_path = m_config_file;
    options.tables = {&actions::local_actions(), &actions::driver_actions()};
    options.cloud_factory = [this](const config::Config& effective) {
      ++m_opened;
      return std::make_shared<cloud::LibvirtCloud>(fake(), effective);
    };
    json request{
        {"method", method}, {"arguments", arguments}, {"context", {{"director_uuid", "d"}}}};
    if (api_version > 0) request["api_version"] = api_version;
    return json::parse(rpc::dispatch(request.dump(), options));
  }
  json result_of(const std::string& method, const json& arguments, int api_version = 2) {
    const auto response = respond(method, arguments, api_version);
    EXPECT_TRUE(response["error"].is_null()) << method << ": " << response.dump();
    return response["result"];
  }

  json create_vm_args(const cloud::StemcellCid& stemcell) {
    const auto request = vm_request(stemcell);
    return {request.agent_id, stemcell.value, request.cloud_properties,
            request.networks, nullptr,        request.env};
  }

  std::unique_ptr<TempDir> m_dir;
  std::filesystem::path m_config_file;
  int m_opened = 0;
};

TEST_F(HandlersTest, CreateVmAnswersACidForApiOneAndCidWithNetworksForApiTwo) {
  const auto stemcell = create_stemcell();
  const auto v1 = result_of("create_vm", create_vm_args(stemcell), 0);
  ASSERT_TRUE(v1.is_string()) << v1;
  EXPECT_TRUE(cloud().has_vm({v1.get<std::string>()}));

  const auto v2 = result_of("create_vm", create_vm_args(stemcell), 2);
  ASSERT_TRUE(v2.is_array()) << v2;
  ASSERT_EQ(v2.size(), 2U);
  EXPECT_TRUE(cloud().has_vm({v2[0].get<std::string>()}));
  EXPECT_EQ(v2[1]["private"]["ip"], "10.0.0.10");
  EXPECT_TRUE(v2[1]["private"]["mac"].is_string()) << v2[1];
  EXPECT_EQ(m_opened, 2);
}

TEST_F(HandlersTest, AttachDiskAnswersTheHintOnlyForApiTwo) {
  const auto vm = new_vm();
  const auto disk = new_disk();
  EXPECT_TRUE(result_of("attach_disk", {vm.value, disk.value}, 0).is_null());
  EXPECT_EQ(result_of("get_disks", {vm.value}), json({disk.value}));
  EXPECT_TRUE(result_of("detach_disk", {vm.value, disk.value}).is_null());
  EXPECT_EQ(result_of("get_disks", {vm.value}), json::array());

  const auto hint = result_of("attach_disk", {vm.value, disk.value}, 2);
  EXPECT_EQ(hint["path"], "/dev/disk/by-id/virtio-" + disk.value) << hint;
}

TEST_F(HandlersTest, EveryOtherMethodAnswersItsShape) {
  const auto vm = new_vm();
  EXPECT_EQ(result_of("has_vm", {vm.value, "extra", 3}), true) << "extra arguments are ignored";
  EXPECT_TRUE(result_of("set_vm_metadata", {vm.value, {{"name", "zookeeper/0"}}}).is_null());
  EXPECT_TRUE(result_of("reboot_vm", {vm.value}).is_null());

  const auto disk = result_of("create_disk", {64, json::object(), vm.value});
  ASSERT_TRUE(disk.is_string()) << disk;
  EXPECT_EQ(result_of("has_disk", json::array({disk})), true);
  EXPECT_TRUE(result_of("set_disk_metadata", json::array({disk, {{"deployment", "d"}}})).is_null());
  EXPECT_TRUE(result_of("resize_disk", json::array({disk, 128})).is_null());
  const auto snapshot = result_of("snapshot_disk", json::array({disk, {{"index", 0}}}));
  ASSERT_TRUE(snapshot.is_string()) << snapshot;
  EXPECT_TRUE(result_of("delete_snapshot", json::array({snapshot})).is_null());
  EXPECT_TRUE(result_of("delete_disk", json::array({disk})).is_null());
  EXPECT_EQ(result_of("has_disk", json::array({disk})), false);

  EXPECT_TRUE(result_of("delete_vm", {vm.value}).is_null());
  EXPECT_EQ(result_of("has_vm", {vm.value}), false);
  EXPECT_EQ(respond("get_disks", {vm.value})["error"]["type"], "Bosh::Clouds::VMNotFound");
}

TEST_F(HandlersTest, StemcellsThroughTheirHandlers) {
  const auto stemcell = result_of("create_stemcell", {shared_image(), json::object()});
  ASSERT_TRUE(stemcell.is_string()) << stemcell;
  EXPECT_TRUE(result_of("delete_stemcell", json::array({stemcell})).is_null());
  EXPECT_TRUE(result_of("delete_stemcell", json::array({stemcell})).is_null())
      << "already gone: success";
}

TEST_F(HandlersTest, ErrorsKeepTheirBoshType) {
  const auto missing = respond("reboot_vm", {"vm-00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(missing["error"]["type"], "Bosh::Clouds::VMNotFound") << missing;

  const auto vm = new_vm();
  fake().fail_at(1);  // the reboot's first change fails as libvirt would fail it
  const auto failed = respond("reboot_vm", {vm.value});
  fake().disarm();
  EXPECT_EQ(failed["error"]["type"], "Bosh::Clouds::CloudError") << failed;
  EXPECT_NE(failed["error"]["message"].get<std::string>().find("injected failure at step 1"),
            std::string::npos)
      << "libvirt's message reaches BOSH: " << failed;

  const auto wrong_kind = respond("delete_disk", {vm.value});
  EXPECT_EQ(wrong_kind["error"]["type"], "Bosh::Clouds::CpiError") << wrong_kind;
  EXPECT_TRUE(cloud().has_vm(vm)) << "a VM CID given as a disk touches nothing";
}

// --- update_disk: a handler that does its steps with the cloud's building blocks

TEST_F(HandlersTest, UpdateDiskGrowsTheDiskInPlaceAndKeepsItsCid) {
  const auto disk = new_disk(64);
  EXPECT_TRUE(result_of("update_disk", {disk.value, 128, json::object()}).is_null())
      << "null: the CID stays";
  EXPECT_EQ(capacity_of(disk.value), 128ULL << 20U);
  EXPECT_EQ(result_of("has_disk", {disk.value}), true);

  fake().reset_calls();
  EXPECT_TRUE(result_of("update_disk", {disk.value, 128, {{"format", "qcow2"}}}).is_null());
  EXPECT_EQ(fake().mutating_calls(), 0) << "the size it has: nothing to change";
}

TEST_F(HandlersTest, UpdateDiskWithPropertiesTheDiskHasGrowsIt) {
  define_other_pool();
  const auto disk = new_disk(64, {{"storage_pool", k_other_pool}, {"format", "raw"}});
  EXPECT_TRUE(
      result_of("update_disk", {disk.value, 96, {{"storage_pool", k_other_pool}, {"type", "raw"}}})
          .is_null());
  auto grown = volume(disk.value, k_other_pool);
  EXPECT_EQ(fake().volume_info(*grown).capacity, 96ULL << 20U);
}

TEST_F(HandlersTest, UpdateDiskThatCannotBeDoneInPlaceIsNotSupportedAndTouchesNothing) {
  define_other_pool();
  const auto disk = new_disk(64);  // qcow2 in the configured pool
  struct Case {
    json arguments;
    const char* message;
  };
  for (const auto& c :
       {Case{{disk.value, 32, json::object()},
             "has 64 MiB; shrinking it to 32 MiB is not supported"},
        Case{{disk.value, 128, {{"storage_pool", k_other_pool}}},
             "is in storage pool 'default-pool'; cloud_properties name "
             "'other-pool'"},
        Case{{disk.value, 128, {{"format", "raw"}}}, "is qcow2; cloud_properties ask for raw"}}) {
    fake().reset_calls();
    const auto r = respond("update_disk", c.arguments);
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::NotSupported") << r;
    EXPECT_NE(r["error"].value("message", "").find(c.message), std::string::npos) << r;
    EXPECT_EQ(fake().mutating_calls(), 0) << r;
    EXPECT_EQ(capacity_of(disk.value), 64ULL << 20U);
  }
}

TEST_F(HandlersTest, UpdateDiskActsOnlyOnADiskOfThisCpi) {
  const auto vm = new_vm();
  const auto disk = new_disk(64);
  const auto snapshot = cloud().snapshot_disk(disk, json::object());
  fake().reset_calls();
  for (const auto& cid : {vm.value, snapshot.value}) {
    const auto r = respond("update_disk", {cid, 128, json::object()});
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CpiError") << cid << ": " << r;
  }
  for (const auto& cid : {std::string{"not-a-cid"}, cloud::new_disk_cid().value}) {
    const auto r = respond("update_disk", {cid, 128, json::object()});
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::DiskNotFound") << cid << ": " << r;
  }
  EXPECT_EQ(fake().mutating_calls(), 0);
  EXPECT_TRUE(cloud().has_vm(vm));
  EXPECT_EQ(capacity_of(disk.value), 64ULL << 20U);

  const auto bad = respond("update_disk", {disk.value, 128, {{"format", "vmdk"}}});
  EXPECT_EQ(bad["error"]["type"], "Bosh::Clouds::CpiError") << "bad properties: " << bad;
  EXPECT_EQ(m_opened, 4) << "bad properties are refused before the cloud opens";
}

TEST_F(HandlersTest, UpdateDiskFailingAtEveryStepLeavesTheDiskAsItWas) {
  const auto disk = new_disk(64);
  const int steps = count_mutating_calls([&] {
    result_of("update_disk", {disk.value, 96, json::object()});
  });
  const auto grown = capacity_of(disk.value);
  EXPECT_EQ(grown, 96ULL << 20U);
  for_each_failing_step(steps, [&](int step) {
    const auto r = respond("update_disk", {disk.value, 128 + step, json::object()});
    EXPECT_EQ(r["error"]["type"], "Bosh::Clouds::CloudError") << r;
    EXPECT_EQ(capacity_of(disk.value), grown) << "step " << step;
  });
  EXPECT_EQ(result_of("has_disk", {disk.value}), true);
}

}  // namespace
}  // namespace cpi::testing
