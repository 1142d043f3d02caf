#pragma once
// The CPI on libvirt. State lives only in libvirt objects (docs/architecture.md, "Names"): stemcell volumes,
// domains with their root/ephemeral/config volumes, persistent disk volumes, and for each
// disk and snapshot a small `<name>.meta` volume holding its BOSH metadata and attachment.
// The pools, volume lookup and those records are its Storage (storage.hpp, m_storage).

#include <libvirt/virterror.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpi/cloud/ids.hpp"
#include "cpi/cloud/names.hpp"
#include "cpi/cloud/storage.hpp"
#include "cpi/config/config.hpp"
#include "cpi/util/rollback.hpp"
#include "cpi/xml/domain_xml.hpp"
#include "cpi/xml/flavour.hpp"
#include "cpi/virt/error.hpp"
#include "cpi/virt/hypervisor.hpp"
#include "cpi/xml/domain_reader.hpp"
#include "cpi/xml/volume_xml.hpp"

namespace cpi::cloud {

// create_vm's request, as its handler decodes it.
struct VmRequest {
  std::string agent_id;
  StemcellCid stemcell;
  nlohmann::json cloud_properties = nlohmann::json::object();
  nlohmann::json networks = nlohmann::json::object();
  std::vector<DiskCid> disk_cids;  // must be on the host of the call (locality); never attached
  nlohmann::json env = nlohmann::json::object();
  int api_version = 2;
};

struct CreatedVm {
  VmCid cid;
  nlohmann::json networks;  // the networks as configured (each with its "mac")
};

// The CPI methods in cloud terms, as the handlers (src/driver/actions/) call them. Every one
// throws cpi::Error subclasses only.
class LibvirtCloud final {
 public:
  // `hypervisor` must outlive this object, or `owner` must keep it (and its connection) alive:
  // the cloud releases `owner` after its own libvirt handles.
  LibvirtCloud(virt::Hypervisor& hypervisor, config::Config config,
               std::shared_ptr<void> owner = nullptr);
  ~LibvirtCloud();
  LibvirtCloud(const LibvirtCloud&) = delete;
  LibvirtCloud& operator=(const LibvirtCloud&) = delete;

  StemcellCid create_stemcell(const std::string& image_path,
                              const nlohmann::json& cloud_properties);
  // Succeeds when the stemcell is already gone.
  void delete_stemcell(const StemcellCid& cid);

  // Throws VmCreationFailed (after removing all it created) on failure.
  CreatedVm create_vm(const VmRequest& request);
  // Succeeds when the VM is already gone; never deletes a persistent disk.
  void delete_vm(const VmCid& cid);
  bool has_vm(const VmCid& cid);
  void reboot_vm(const VmCid& cid);
  void set_vm_metadata(const VmCid& cid, const nlohmann::json& metadata);

  DiskCid create_disk(std::int64_t size_mib, const nlohmann::json& cloud_properties,
                      const std::optional<VmCid>& vm_locality);
  void delete_disk(const DiskCid& cid);
  bool has_disk(const DiskCid& cid);
  // Returns the agent's disk hint ({"path": "/dev/disk/by-id/virtio-<cid>"}).
  nlohmann::json attach_disk(const VmCid& vm, const DiskCid& disk, int api_version);
  void detach_disk(const VmCid& vm, const DiskCid& disk, int api_version);
  std::vector<DiskCid> get_disks(const VmCid& vm);
  void resize_disk(const DiskCid& cid, std::int64_t new_size_mib);
  void set_disk_metadata(const DiskCid& cid, const nlohmann::json& metadata);
  SnapshotCid snapshot_disk(const DiskCid& cid, const nlohmann::json& metadata);
  // Succeeds when the snapshot is already gone.
  void delete_snapshot(const SnapshotCid& cid);

  // A snapshot_disk that never finished (killed, or its daemon died), named by the `snapshotting`
  // intent of disk `disk` or of vm `vm` (either may be empty): finishes it as the next call on
  // the disk would (copy job ended, the VM resumed when this CPI paused it, partial snapshot
  // deleted, intents cleared). Takes the disk's lock without waiting: nullopt when a
  // snapshot_disk holds it (under way) or there was nothing to finish, else what was done.
  // For require_domain and `cpi cleanup`.
  std::optional<std::string> finish_interrupted_snapshot(const std::optional<DiskCid>& disk,
                                                         const std::optional<VmCid>& vm);

  // Libvirt object names, made by the naming module (cloud/names.hpp). object_name() takes a
  // bare CID of any kind (sc-, vm-, disk-, snap-) and throws CpiError for anything else.
  const Names& names() const { return m_names; }
  std::string object_name(const std::string& cid) const;
  std::string root_volume(const VmCid& vm) const { return m_names.root_volume(vm); }
  std::string ephemeral_volume(const VmCid& vm) const { return m_names.ephemeral_volume(vm); }
  std::string config_volume(const VmCid& vm) const { return m_names.config_volume(vm); }
  std::string meta_volume(const std::string& name) const { return m_names.meta(name); }
  // The marker volume that exists while the stemcell volume `name` is being imported.
  std::string incomplete_marker(const std::string& name) const {
    return m_names.incomplete_marker(name);
  }

  // --- The building blocks a handler may do a method's steps with, besides the methods above
  // (docs/architecture.md, "How to add a CPI method").
  // ownership.cpp: whether `cid` is a CID of `kind`. Throws CpiError naming what it is when it
  // is a name of ours of another kind (nothing touched); false when no grammar of ours matches.
  bool check_cid(const char* method, NameKind kind, const std::string& cid) const;
  // The delete methods' check_cid: false, logged as "nothing to delete", for a CID that no
  // grammar of ours matches (the delete succeeds as for an object already gone).
  bool deletable(const char* method, NameKind kind, const std::string& cid) const;
  // The pools, volume lookup (locate: only where this CPI puts its volumes) and records.
  Storage& storage() { return m_storage; }
  // libvirt, through the seam every call goes through (virt/hypervisor.hpp).
  virt::Hypervisor& hypervisor() { return m_hv; }
  // The call's config (the request context's overrides applied).
  const config::Config& config() const { return m_config; }

  // A persistent disk as domain definitions may name it (attachment.cpp).
  struct DiskRef {
    std::string cid;        // the serial
    std::string pool_name;  // where the volume lives
    std::string volume;     // its name
    std::string path;       // its path on the host
  };

 private:
  // vm_kinds.hpp: what differs between machines and containers, chosen once (m_kind).
  struct NewVm;
  class VmKind;
  class MachineVms;
  class ContainerVms;

  // ownership.cpp: our domains.
  // The domain of `cid` when it exists and carries our metadata namespace (create_vm writes
  // it); nullopt when absent; CpiError for a domain of that name without it (not ours). Two
  // calls: the lookup and our metadata, whose facts go to `facts` when given.
  std::optional<virt::Domain> find_our_domain(const VmCid& cid, nlohmann::json* facts = nullptr);
  // The same check on the persistent definition, which is read instead of the metadata (also
  // two calls) and returned in `definition` (read_domain_xml: its disks, `facts`, ...).
  std::optional<virt::Domain> find_our_domain(const VmCid& cid, xml::DomainFacts& definition);
  // The facts of our metadata: from its element's text (virDomainGetMetadata), or from the text
  // of its <facts> (xml::DomainFacts::facts); {} when they are no JSON object.
  static nlohmann::json metadata_facts(const std::string& metadata_xml);
  // Our metadata element holding `facts` (the text of its <facts>).
  static std::string facts_xml(const nlohmann::json& facts);
  static nlohmann::json facts_json(const std::string& text);
  // ownership.cpp, too: our domains as a call needs them.
  // Our domain of `cid` (find_our_domain, with its facts or its definition; VmNotFound when
  // absent, also for a CID that is no vm CID of ours); first finishes a snapshot a killed call
  // left on it (finish_interrupted_snapshot), unless that snapshot is still under way. The
  // facts read for the ownership check say whether there is one: no request more without one,
  // and `facts` / `definition` are read again after one was finished.
  virt::Domain require_domain(const VmCid& cid, nlohmann::json* facts = nullptr);
  virt::Domain require_domain(const VmCid& cid, xml::DomainFacts& definition);
  // require_domain's recovery: true when `facts` (the VM's, as read) named a snapshot under way
  // and it was finished (or tried).
  bool finish_snapshot_on(const VmCid& cid, const nlohmann::json& facts);
  nlohmann::json vm_facts(virDomain& domain);
  void write_vm_facts(virDomain& domain, const nlohmann::json& facts);

  // disks.cpp
  // snapshot_disk's steps (snapshot_disk maps a lost daemon to a retriable error).
  SnapshotCid take_snapshot(const DiskCid& cid, const nlohmann::json& metadata);
  // The snapshot volume `snap_name`: a clone of the disk, or its bytes copied when `paused`.
  void copy_for_snapshot(Located& located, const xml::VolumeFacts& facts,
                         const std::string& snap_name, bool paused);
  // The snapshot volume `snap_name` copied from disk `target` of the running `domain` (vm `vm`)
  // while it runs: libvirt's block copy, ended without a pivot once it mirrors.
  void copy_running(virDomain& domain, const std::string& vm, const std::string& target,
                    Located& located, const xml::VolumeFacts& facts, const std::string& snap_name);
  // Finishes a snapshot of disk `name` a killed (or failed) call left in `meta` (its
  // `snapshotting` intent): ends its copy job, resumes the VM it paused, clears the VM's fact,
  // deletes the partial snapshot, clears the intent. Callers hold the disk's lock.
  void remove_partial_snapshot(Located& located, const std::string& name, nlohmann::json& meta);
  void finish_vm_snapshot_side(virDomain& domain, const std::string& vm,
                               const std::string& snap_path, bool resume,
                               const std::string& disk_volume);

  // stemcells.cpp
  // The volume of stemcell `cid` for a new VM. Throws CloudError naming the CID and what to do
  // when it is not in `target` (deleted, or never uploaded here), when its import did not finish
  // and when delete_stemcell kept it only for the VMs built on it.
  virt::Volume require_stemcell(virStoragePool& target, const StemcellCid& cid);
  // How many VM root volumes in `target` are overlays on the volume at `path` (a pool scan).
  std::size_t stemcell_users(virStoragePool& target, const std::string& path);
  // Removes a stemcell that delete_stemcell kept for its VMs, once none is left.
  void collect_stemcell(const StemcellCid& cid);

  // vms.cpp
  // create_vm's disk locality: every disk of `disks` (disk_cids) must be on this host, the one
  // the call's context names, or the VM could never attach it. Throws VmCreationFailed (not
  // retriable) naming the disk and the host.
  void require_disks_here(const std::vector<DiskCid>& disks);
  // create_vm's steps (vm_kinds.hpp NewVm: what they share).
  [[noreturn]] void creation_failed(const VmCid& cid, util::Rollback& rollback);
  nlohmann::json plan_networks(const nlohmann::json& requested, std::vector<xml::NicDevice>& nics);
  void require_network(const std::string& network, const std::string& bosh_network);
  void describe_domain(NewVm& vm);
  virt::Domain define_and_start(const NewVm& vm, util::Rollback& rollback);
  std::string virt_type();

  // attachment.cpp: which domains hold a disk. libvirt's definitions (live and persistent) are
  // the truth; the disk's record (`attached_to`, and the intents `attaching` / `detaching`
  // written before a device change) is an index into them. Callers hold the disk's lock.
  DiskRef disk_ref(const DiskCid& disk, Located& located);
  // Whether the persistent or (when running) the live definition of `domain` holds the disk.
  bool domain_holds(virDomain& domain, const DiskRef& disk);
  // Whether vm `vm` (a CID) exists and holds the disk.
  bool vm_holds(const std::string& vm, const DiskRef& disk);
  // Names of every domain on the host that holds the disk: a scan, for delete_disk only.
  std::vector<std::string> domains_holding(const DiskRef& disk);
  // The VMs named by `meta` (attached_to, attaching, detaching) that hold the disk; rewrites
  // the record from them (attached_to = the holder, no intents) when it says otherwise.
  std::vector<std::string> reconcile_record(Located& located, const DiskRef& disk,
                                            nlohmann::json& meta);
  // Waits up to libvirt.detach_timeout seconds for the live definition to drop the disk.
  bool wait_released(virDomain& domain, const DiskRef& disk);

  // vm_disks.cpp
  std::string disk_bus() const;
  // Refuses (CloudError) a disk that a domain other than `vm`'s holds: the VMs `meta` names
  // (the record reconciled on the way) and every domain on the host (a scan). Under the disk's
  // lock.
  void require_free_for(const VmCid& vm, const DiskCid& disk, Located& located,
                        const DiskRef& ref, nlohmann::json& meta);
  // After attach_disk failed half-way: the device off again, the v1 settings and the record
  // in step with the definitions. Logs what it cannot undo.
  void undo_attach(virDomain& domain, const VmCid& vm, const DiskCid& disk, Located& located,
                   const DiskRef& ref, const std::string& device, int api_version);
  void detach_settle(virDomain& domain, const VmCid& vm, const DiskCid& disk,
                     std::optional<Located>& located, const DiskRef& ref, int api_version);
  // The agent's disk hint: the by-id path of `serial` on `bus`, or /dev/<target> on xen.
  nlohmann::json disk_hint(const std::string& serial, const std::string& bus,
                           const std::string& target) const;
  void rewrite_config_drive(virDomain& domain, const VmCid& vm, const std::string& disk,
                            const nlohmann::json& hint);
  std::string cdrom_bus() const;

  // Stops a domain: a graceful shutdown bounded at `grace` seconds, then a power-off.
  void stop_domain(virDomain& domain, const std::string& what, int grace_seconds);
  // Whether the connection's URI names no host (the libvirt host is this machine).
  bool host_is_local();

  std::shared_ptr<void> m_owner;  // first: released last
  virt::Hypervisor& m_hv;
  config::Config m_config;
  Names m_names;
  Storage m_storage;  // after m_config and m_names, which it reads
  std::optional<std::string> m_virt_type;
  std::unique_ptr<xml::Flavour> m_flavour;  // the domain XML of libvirt.hypervisor, made once
  std::unique_ptr<VmKind> m_kind;
};

// Opens the connection `config` names and returns a cloud that owns it.
std::shared_ptr<LibvirtCloud> open_libvirt_cloud(const config::Config& config);

// libvirt's errors reach BOSH as they are thrown (virt::LibvirtError is the CloudError naming the
// operation, the object and libvirt's message). The cloud catches one only where its code changes
// the outcome: Storage::in_pool, retriable_when_daemon_lost, create_vm's VMCreationFailed.

// Whether a libvirt error code says the connection or the daemon was lost or hiccuped (an RPC
// failure, no connection, a system error on the socket, a timeout, a busy resource): a retry of
// the same call may get past it.
bool transient_code(int code) noexcept;

// Runs `action`; a LibvirtError with a transient_code becomes TransientCloudError (ok_to_retry
// true) with the same message. For the methods besides create_vm that can lose their daemon
// half-way (create_stemcell, snapshot_disk); create_vm answers VMCreationFailed itself.
template <typename F>
auto retriable_when_daemon_lost(F&& action) -> decltype(action()) {
  try {
    return action();
  } catch (const virt::LibvirtError& e) {
    if (!transient_code(e.code())) throw;
    throw TransientCloudError(e.what());
  }
}

}  // namespace cpi::cloud
