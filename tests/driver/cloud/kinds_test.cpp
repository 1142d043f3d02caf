// The kind matrix: every CID-taking method (of LibvirtCloud, or a handler) × every kind of name (ours of each
// kind, foreign objects, strings no grammar matches), against test:///default. A method acts
// only on objects of its own kind, made by this CPI, in the CPI's own pools; for anything else
// it gives the answer README.md's Methods table documents and changes nothing: every domain's
// definition and every volume's XML and stored bytes, in every pool, stay as they were.

#include <gtest/gtest.h>

#include <cerrno>
#include <libvirt/libvirt.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cpi/cloud/names.hpp"
#include "cpi/errors.hpp"
#include "cpi/rpc/dispatcher.hpp"
#include "support/disk_fixture.hpp"

namespace cpi::testing {
namespace {

constexpr const char* k_foreign_pool = "foreign-pool";

// What a call did: "ok" (returned; has_*: "true"/"false"), or the wire type of what it threw.
std::string outcome(const std::function<void()>& call) {
  try {
    call();
    return "ok";
  } catch (const Error& e) {
    return e.type();
  } catch (const std::exception& e) {
    return std::string{"std::exception: "} + e.what();
  }
}

std::string answer(const std::function<bool()>& call) {
  std::string result;
  const auto what = outcome([&] { result = call() ? "true" : "false"; });
  return what == "ok" ? result : what;
}

constexpr const char* k_cpi = "Bosh::Clouds::CpiError";
constexpr const char* k_cloud = "Bosh::Clouds::CloudError";
constexpr const char* k_vm_not_found = "Bosh::Clouds::VMNotFound";
constexpr const char* k_disk_not_found = "Bosh::Clouds::DiskNotFound";
constexpr const char* k_not_attached = "Bosh::Clouds::DiskNotAttached";

// One entry of the matrix: a string a caller may send, and what the grammar makes of it.
struct Probe {
  std::string label;
  std::string cid;
  // The CID kind the grammar gives it (stemcell, vm, disk, snapshot), "other" for a name of
  // ours that is no CID (root volume, .meta ...), "none" when no grammar matches.
  std::string kind;
};

class KindsTest : public DiskFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    DiskFixture::SetUp();
    if (HasFailure()) return;
    auto config = this->config();
    config.libvirt.name_prefix = GetParam();
    m_cpi = new_cloud(config);
    m_names = std::make_unique<cloud::Names>(GetParam());
    build_world();
  }
  void TearDown() override {
    m_cpi.reset();
    DiskFixture::TearDown();
  }

  cloud::LibvirtCloud& cpi() { return *m_cpi; }
  // What a method answers through its handler (rpc::dispatch on the module's tables, on cpi()):
  // "ok", or the wire type of its error. For the methods that are a handler only (update_disk).
  std::string dispatched(const std::string& method, const nlohmann::json& arguments) {
    rpc::DispatchOptions options;
    options.tables = {&actions::driver_actions()};
    options.cloud_factory = [this](const config::Config&) {
      return std::shared_ptr<cloud::LibvirtCloud>(m_cpi.get(), [](cloud::LibvirtCloud*) {});
    };
    const nlohmann::json request{{"method", method}, {"arguments", arguments}, {"api_version", 2}};
    const auto response = nlohmann::json::parse(rpc::dispatch(request.dump(), options));
    return response["error"].is_null() ? "ok" : response["error"]["type"].get<std::string>();
  }
  const cloud::Names& names() const { return *m_names; }
  std::string prefixed(const std::string& text) const { return GetParam() + text; }

  // Ours: a stemcell, a running VM, a disk with a .meta and a snapshot, a disk in a second pool
  // (recorded). Foreign: a domain named like our VMs without our metadata, a disk-shaped volume
  // and "precious" in a pool the CPI never heard of, and a disk-shaped volume in the second pool
  // that the CPI never recorded.
  void build_world() {
    define_other_pool();
    define_pool(k_foreign_pool);
    m_stemcell = cpi().create_stemcell(shared_image(), nlohmann::json::object());
    m_vm = cpi().create_vm(vm_request(m_stemcell)).cid;
    m_disk = cpi().create_disk(64, nullptr, std::nullopt);
    cpi().set_disk_metadata(m_disk, {{"director", "d"}});
    m_snapshot = cpi().snapshot_disk(m_disk, {{"note", "s"}});
    m_remote = cpi().create_disk(16, {{"storage_pool", k_other_pool}}, std::nullopt);
    m_foreign_vm = cloud::new_vm_cid().value;
    define_foreign_domain(prefixed(m_foreign_vm));
    define_foreign_domain(prefixed("foreign"));
    m_unrecorded = cloud::new_disk_cid().value;
    make_volume(prefixed(m_unrecorded), k_foreign_pool);
    make_volume(prefixed(m_unrecorded), k_other_pool);
    make_volume(prefixed("precious"), k_foreign_pool);
    make_volume(prefixed(cloud::new_snapshot_cid().value), k_foreign_pool);
    m_before = state();
  }

  void define_pool(const std::string& name) {
    const std::string xml = "<pool type='dir'><name>" + name + "</name><target><path>/" + name +
                            "</path></target></pool>";
    virt::Pool pool{virStoragePoolDefineXML(&conn(), xml.c_str(), 0)};
    ASSERT_TRUE(pool);
    ASSERT_EQ(virStoragePoolCreate(pool.get(), 0), 0);
  }

  void define_foreign_domain(const std::string& name) {
    const std::string xml = "<domain type='test'><name>" + name +
                            "</name><memory>65536</memory><os><type>hvm</type></os></domain>";
    virt::Domain domain{virDomainDefineXML(&conn(), xml.c_str())};
    ASSERT_TRUE(domain) << name;
  }

  // Everything a call could change: each domain's persistent definition, each volume's XML
  // and the bytes stored in it, in every pool.
  std::map<std::string, std::string> state() {
    std::map<std::string, std::string> out;
    for (const auto& name : domain_names()) {
      out["domain " + name] = domain_xml(name, true) + "\nactive=" +
                              (domain_active(name) ? "1" : "0");
    }
    for (const auto& pool_name : pool_names()) {
      for (const auto& name : volume_names(pool_name)) {
        const auto upload = fake().uploaded(volume_path(name, pool_name));
        out["volume " + pool_name + "/" + name] =
            volume_xml(name, pool_name) + "\nbytes=" + (upload ? upload->bytes : "(none)");
      }
    }
    return out;
  }

  void expect_unchanged(const std::string& what) {
    const auto now = state();
    for (const auto& [key, value] : m_before) {
      const auto it = now.find(key);
      if (it == now.end()) {
        ADD_FAILURE() << what << " removed " << key;
      } else if (it->second != value) {
        ADD_FAILURE() << what << " changed " << key;
      }
    }
    for (const auto& [key, value] : now) {
      if (m_before.count(key) == 0) ADD_FAILURE() << what << " created " << key;
    }
  }

  std::vector<Probe> probes() const {
    return {
        {"stemcell", m_stemcell.value, "stemcell"},
        {"vm", m_vm.value, "vm"},
        {"disk", m_disk.value, "disk"},
        {"disk in a recorded pool", m_remote.value, "disk"},
        {"snapshot", m_snapshot.value, "snapshot"},
        {"<vm>-root", m_vm.value + "-root", "other"},
        {"<vm>-config", m_vm.value + "-config", "other"},
        {"<vm>-ephemeral", m_vm.value + "-ephemeral", "other"},
        {"<disk>.meta", m_disk.value + ".meta", "other"},
        {"<snapshot>.meta", m_snapshot.value + ".meta", "other"},
        {"<disk>.pool", m_remote.value + ".pool", "other"},
        {"<stemcell>.meta", m_stemcell.value + ".meta", "other"},
        {"foreign domain named like a vm", m_foreign_vm, "foreign vm"},
        {"disk-shaped volume in unrecorded pools", m_unrecorded, "unrecorded disk"},
        {"foreign name", "foreign", "none"},
        {"foreign name with the prefix", prefixed("foreign"), "none"},
        {"precious", "precious", "none"},
        {"../x", "../x", "none"},
        {"../../x", "../../x", "none"},
        {"empty", "", "none"},
        {"uppercase disk", "disk-0123456789ABCDE", "none"},
        {"NUL inside", std::string("disk-0123456789abcd\0", 20), "none"},
    };
  }

  std::unique_ptr<cloud::LibvirtCloud> m_cpi;
  std::unique_ptr<cloud::Names> m_names;
  cloud::StemcellCid m_stemcell;
  cloud::VmCid m_vm;
  cloud::DiskCid m_disk;
  cloud::DiskCid m_remote;
  cloud::SnapshotCid m_snapshot;
  std::string m_foreign_vm;
  std::string m_unrecorded;
  std::map<std::string, std::string> m_before;
};

// The documented answer of a method that takes a CID of `own` kind, for a probe of another kind
// (README.md, Methods): a name of ours of another kind -> CpiError; `not_ours` for a string no
// grammar matches (and for a CID of the right kind that names nothing of ours).
std::string expected(const Probe& probe, const std::string& own, const std::string& not_ours) {
  if (probe.kind == "none") return not_ours;
  if (probe.kind == "unrecorded disk") return own == "disk" ? not_ours : k_cpi;
  return k_cpi;
}

TEST_P(KindsTest, HasVmAndHasDiskAnswerFalseForEverythingElse) {
  for (const auto& probe : probes()) {
    const bool vm = probe.cid == m_vm.value;
    const bool disk = probe.cid == m_disk.value || probe.cid == m_remote.value;
    EXPECT_EQ(answer([&] { return cpi().has_vm({probe.cid}); }), vm ? "true" : "false")
        << "has_vm(" << probe.label << ")";
    EXPECT_EQ(answer([&] { return cpi().has_disk({probe.cid}); }), disk ? "true" : "false")
        << "has_disk(" << probe.label << ")";
  }
  expect_unchanged("has_vm/has_disk");
}

TEST_P(KindsTest, DeletesOfAnotherKindTouchNothing) {
  for (const auto& probe : probes()) {
    if (probe.kind != "stemcell") {
      EXPECT_EQ(outcome([&] { cpi().delete_stemcell({probe.cid}); }),
                expected(probe, "stemcell", "ok"))
          << "delete_stemcell(" << probe.label << ")";
    }
    if (probe.kind != "vm") {
      EXPECT_EQ(outcome([&] { cpi().delete_vm({probe.cid}); }), expected(probe, "vm", "ok"))
          << "delete_vm(" << probe.label << ")";
    }
    if (probe.kind != "disk") {
      EXPECT_EQ(outcome([&] { cpi().delete_disk({probe.cid}); }), expected(probe, "disk", "ok"))
          << "delete_disk(" << probe.label << ")";
    }
    if (probe.kind != "snapshot") {
      EXPECT_EQ(outcome([&] { cpi().delete_snapshot({probe.cid}); }),
                expected(probe, "snapshot", "ok"))
          << "delete_snapshot(" << probe.label << ")";
    }
    expect_unchanged("the deletes of " + probe.label);
  }
}

TEST_P(KindsTest, VmMethodsRefuseEverythingButOurVms) {
  for (const auto& probe : probes()) {
    if (probe.kind == "vm") continue;
    const auto want = expected(probe, "vm", k_vm_not_found);
    EXPECT_EQ(outcome([&] { cpi().reboot_vm({probe.cid}); }), want)
        << "reboot_vm(" << probe.label << ")";
    EXPECT_EQ(outcome([&] { cpi().set_vm_metadata({probe.cid}, {{"name", "x"}}); }), want)
        << "set_vm_metadata(" << probe.label << ")";
    EXPECT_EQ(outcome([&] { cpi().get_disks({probe.cid}); }), want)
        << "get_disks(" << probe.label << ")";
    EXPECT_EQ(outcome([&] { cpi().attach_disk({probe.cid}, m_disk, 2); }), want)
        << "attach_disk(" << probe.label << ", disk)";
    EXPECT_EQ(outcome([&] { cpi().detach_disk({probe.cid}, m_disk, 2); }), want)
        << "detach_disk(" << probe.label << ", disk)";
    expect_unchanged("the vm methods on " + probe.label);
  }
}

TEST_P(KindsTest, DiskMethodsRefuseEverythingButOurDisks) {
  for (const auto& probe : probes()) {
    if (probe.kind == "disk") continue;
    const auto want = expected(probe, "disk", k_disk_not_found);
    EXPECT_EQ(outcome([&] { cpi().attach_disk(m_vm, {probe.cid}, 2); }), want)
        << "attach_disk(vm, " << probe.label << ")";
    // A disk CID that names no disk of ours is attached to no VM: success or DiskNotAttached.
    const auto detached = outcome([&] { cpi().detach_disk(m_vm, {probe.cid}, 2); });
    if (probe.kind == "unrecorded disk") {
      EXPECT_TRUE(detached == "ok" || detached == k_not_attached) << detached;
    } else {
      EXPECT_EQ(detached, expected(probe, "disk", k_not_attached))
          << "detach_disk(vm, " << probe.label << ")";
    }
    EXPECT_EQ(outcome([&] { cpi().resize_disk({probe.cid}, 128); }), want)
        << "resize_disk(" << probe.label << ")";
    // Through the handler an empty CID is an argument error before any lookup.
    EXPECT_EQ(dispatched("update_disk", {probe.cid, 128, nlohmann::json::object()}),
              probe.cid.empty() ? k_cloud : want)
        << "update_disk(" << probe.label << ")";
    EXPECT_EQ(outcome([&] { cpi().set_disk_metadata({probe.cid}, {{"k", "v"}}); }), want)
        << "set_disk_metadata(" << probe.label << ")";
    EXPECT_EQ(outcome([&] { cpi().snapshot_disk({probe.cid}, {}); }), want)
        << "snapshot_disk(" << probe.label << ")";
    expect_unchanged("the disk methods on " + probe.label);
  }
}

TEST_P(KindsTest, CreateMethodsTakeOnlyTheirKindAsInput) {
  for (const auto& probe : probes()) {
    if (probe.kind == "stemcell") continue;
    EXPECT_EQ(outcome([&] { cpi().create_vm(vm_request({probe.cid})); }),
              expected(probe, "stemcell", k_cloud))
        << "create_vm(stemcell " << probe.label << ")";
    expect_unchanged("create_vm on " + probe.label);
  }
  for (const auto& probe : probes()) {
    if (probe.kind == "vm" || probe.kind == "none") continue;  // "none": an ignored hint
    EXPECT_EQ(outcome([&] { cpi().create_disk(16, nullptr, cloud::VmCid{probe.cid}); }),
              expected(probe, "vm", "ok"))
        << "create_disk(vm_locality " << probe.label << ")";
    expect_unchanged("create_disk next to " + probe.label);
  }
}

// --- the reproductions of issue 14 items 1 and 2, one by one

TEST_P(KindsTest, DeleteStemcellOfADiskKeepsTheDisk) {
  EXPECT_THROW(cpi().delete_stemcell({m_disk.value}), CpiError);
  EXPECT_TRUE(volume_exists(prefixed(m_disk.value)));
  EXPECT_TRUE(cpi().has_disk(m_disk));
}

TEST_P(KindsTest, DeleteStemcellOfAConfigDriveKeepsIt) {
  try {
    cpi().delete_stemcell({m_vm.value + "-config"});
    ADD_FAILURE() << "delete_stemcell accepted a config drive";
  } catch (const CpiError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("config drive of vm '" + m_vm.value + "'"), std::string::npos)
        << message;
    EXPECT_NE(message.find("nothing was touched"), std::string::npos) << message;
  }
  EXPECT_TRUE(volume_exists(names().config_volume(m_vm)));
}

TEST_P(KindsTest, DeleteDiskOfAStemcellOrARootVolumeKeepsThem) {
  EXPECT_THROW(cpi().delete_disk({m_stemcell.value}), CpiError);
  EXPECT_THROW(cpi().delete_disk({m_vm.value + "-root"}), CpiError);
  EXPECT_TRUE(volume_exists(names().stemcell(m_stemcell)));
  EXPECT_TRUE(volume_exists(names().root_volume(m_vm)));
}

TEST_P(KindsTest, DeleteSnapshotOfAnAttachedDiskKeepsIt) {
  cpi().attach_disk(m_vm, m_disk, 2);
  EXPECT_THROW(cpi().delete_snapshot({m_disk.value}), CpiError);
  EXPECT_TRUE(volume_exists(prefixed(m_disk.value)));
}

TEST_P(KindsTest, AttachingAStemcellToAStoppedVmIsRefused) {
  virt::Domain domain{virDomainLookupByName(&conn(), names().domain(m_vm).c_str())};
  ASSERT_EQ(virDomainDestroy(domain.get()), 0);
  const auto before = domain_xml(names().domain(m_vm));
  EXPECT_THROW(cpi().attach_disk(m_vm, {m_stemcell.value}, 2), CpiError);
  EXPECT_EQ(domain_xml(names().domain(m_vm)), before);
}

TEST_P(KindsTest, HasDiskOfAStemcellIsFalse) {
  EXPECT_FALSE(cpi().has_disk({m_stemcell.value}));
}

TEST_P(KindsTest, DeleteSnapshotNeverSearchesOtherPools) {
  EXPECT_NO_THROW(cpi().delete_snapshot({"precious"}));
  EXPECT_TRUE(volume_exists(prefixed("precious"), k_foreign_pool));
  // A snapshot-shaped name in a pool never configured or recorded is not ours either.
  for (const auto& name : volume_names(k_foreign_pool)) {
    const auto parsed = names().parse(name);
    if (parsed && parsed->kind == cloud::NameKind::snapshot) {
      EXPECT_NO_THROW(cpi().delete_snapshot({parsed->cid}));
      EXPECT_TRUE(volume_exists(name, k_foreign_pool)) << name;
    }
  }
}

TEST_P(KindsTest, DeleteDiskNeverSearchesOtherPools) {
  EXPECT_NO_THROW(cpi().delete_disk({m_unrecorded}));
  EXPECT_TRUE(volume_exists(prefixed(m_unrecorded), k_foreign_pool));
  EXPECT_TRUE(volume_exists(prefixed(m_unrecorded), k_other_pool));
  EXPECT_FALSE(cpi().has_disk({m_unrecorded}));
}

TEST_P(KindsTest, DeleteVmOfAForeignDomainLeavesIt) {
  EXPECT_NO_THROW(cpi().delete_vm({"foreign"}));
  try {
    cpi().delete_vm({m_foreign_vm});
    ADD_FAILURE() << "delete_vm took a domain without our metadata";
  } catch (const CpiError& e) {
    EXPECT_NE(std::string{e.what()}.find("did not create it"), std::string::npos) << e.what();
  }
  const auto all = domain_names();
  EXPECT_NE(std::find(all.begin(), all.end(), prefixed("foreign")), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), prefixed(m_foreign_vm)), all.end());
  EXPECT_FALSE(cpi().has_vm({m_foreign_vm}));
}

TEST_P(KindsTest, DeleteVmOfAPathNeverReachesTheFileSystem) {
  const char* tmp = std::getenv("TMPDIR");
  ASSERT_NE(tmp, nullptr);
  const std::string victim = std::string{tmp} + "/x.lock";
  // The lock directory as the first attach_disk of this host leaves it.
  const std::string dir = std::string{tmp} + "/bosh-libvirt-cpi-locks";
  ASSERT_TRUE(::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) << dir;
  std::ofstream{victim} << "precious";
  for (const auto& cid : std::vector<std::string>{"../x", "../../x", "../" + m_vm.value}) {
    EXPECT_NO_THROW(cpi().delete_vm({cid})) << cid;
  }
  std::ifstream in{victim};
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious") << "delete_vm(\"../x\") removed " << victim;
  expect_unchanged("delete_vm of paths");
}

// --- our objects in a recorded pool: found through the record, removed with it

TEST_P(KindsTest, DiskInARecordedPoolKeepsItsRecordUntilDeleted) {
  const std::string record = names().pool_record(prefixed(m_remote.value));
  EXPECT_TRUE(volume_exists(record));
  const auto snapshot = cpi().snapshot_disk(m_remote, {});
  EXPECT_TRUE(volume_exists(names().snapshot(snapshot), k_other_pool));
  EXPECT_TRUE(volume_exists(names().pool_record(names().snapshot(snapshot))));
  cpi().delete_snapshot(snapshot);
  EXPECT_FALSE(volume_exists(names().snapshot(snapshot), k_other_pool));
  EXPECT_FALSE(volume_exists(names().pool_record(names().snapshot(snapshot))));
  cpi().delete_disk(m_remote);
  EXPECT_FALSE(volume_exists(prefixed(m_remote.value), k_other_pool));
  EXPECT_FALSE(volume_exists(record));
  EXPECT_FALSE(cpi().has_disk(m_remote));
  // The unrecorded disk-shaped volume beside it is still there.
  EXPECT_TRUE(volume_exists(prefixed(m_unrecorded), k_other_pool));
}

// A failure at any mutating step of create_disk / snapshot_disk in a recorded pool leaves
// neither the volume nor its pool record.
TEST_P(KindsTest, FailuresInARecordedPoolLeaveNoRecord) {
  const std::vector<std::pair<std::string, std::function<void()>>> calls{
      {"create_disk",
       [&] { cpi().create_disk(16, {{"storage_pool", k_other_pool}}, std::nullopt); }},
      {"snapshot_disk", [&] { cpi().snapshot_disk(m_remote, {}); }}};
  for (const auto& entry : calls) {  // no structured binding: lambdas below capture them
    const std::string& what = entry.first;
    const std::function<void()>& call = entry.second;
    SCOPED_TRACE(what);
    call();  // the first call on a disk may also bring its records up to date: not counted
    const auto before_main = volume_names();
    const auto before_other = volume_names(k_other_pool);
    const int steps = count_mutating_calls(call);
    ASSERT_GE(steps, 2) << what;
    for_each_failing_step(steps, [&](const Arm& arm) {
      const auto main = volume_names();
      const auto other = volume_names(k_other_pool);
      arm();
      EXPECT_THROW(call(), CloudError);
      fake().disarm();
      EXPECT_EQ(volume_names(), main);
      EXPECT_EQ(volume_names(k_other_pool), other);
    });
    EXPECT_EQ(volume_names().size(), before_main.size() + 1) << what << ": one record more";
    EXPECT_EQ(volume_names(k_other_pool).size(), before_other.size() + (what == "create_disk" ? 1 : 2));
  }
}

TEST_P(KindsTest, ARecordNamingAnotherDiskIsIgnored) {
  // A record copied from another disk (or forged) does not make a volume ours.
  const std::string record = names().pool_record(prefixed(m_unrecorded));
  const std::string body = cloud::pool_record_json(m_remote.value, k_other_pool);
  const std::string xml = "<volume><name>" + record +
                          "</name><capacity>512</capacity><target><format type='raw'/></target>"
                          "</volume>";
  auto p = pool();
  virt::Volume volume{virStorageVolCreateXML(p.get(), xml.c_str(), 0)};
  ASSERT_TRUE(volume);
  virt::StringSource source{body};
  fake().upload_volume(*volume, source, body.size(), false);
  EXPECT_FALSE(cpi().has_disk({m_unrecorded}));
  EXPECT_NO_THROW(cpi().delete_disk({m_unrecorded}));
  EXPECT_TRUE(volume_exists(prefixed(m_unrecorded), k_other_pool));
}

INSTANTIATE_TEST_SUITE_P(Prefixes, KindsTest, ::testing::Values("", "adv-"),
                         [](const auto& param_info) {
                           return param_info.param.empty() ? std::string{"NoPrefix"}
                                                     : std::string{"Prefix"};
                         });

}  // namespace
}  // namespace cpi::testing
