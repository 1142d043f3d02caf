#pragma once
// Every name this CPI owns, made and parsed in one place. A libvirt name is the configured
// name_prefix followed by exactly one of (uuid: 8-4-4-4-12 lowercase hex; hex15: 15 lowercase hex):
//
//   kind             name (after the prefix)        what
//   stemcell         sc-<uuid>                      stemcell volume (configured pool)
//   stemcell_meta    sc-<uuid>.meta                 marks a stemcell delete_stemcell kept
//   stemcell_incomplete sc-<uuid>.incomplete        exists while the stemcell is imported
//   vm               vm-<uuid>                      domain
//   vm_root          vm-<uuid>-root                 the VM's root volume
//   vm_ephemeral     vm-<uuid>-ephemeral            its ephemeral disk
//   vm_config        vm-<uuid>-config               its config drive (lxc: settings volume)
//   vm_config_meta   vm-<uuid>-config.meta          lxc: the settings kept as JSON
//   disk             disk-<hex15>                   persistent disk (exactly 20 characters)
//   disk_meta        disk-<hex15>.meta              its BOSH metadata and attachment
//   disk_pool        disk-<hex15>.pool              pool record: the pool the disk lives in
//   snapshot         snap-<uuid>                    snapshot of a disk
//   snapshot_meta    snap-<uuid>.meta               its disk and BOSH metadata
//   snapshot_pool    snap-<uuid>.pool               pool record of a snapshot
//   doctor_probe     cpi-doctor-<8 hex>.qcow2|.raw  `cpi doctor`'s test volume (deleted at once)
//
// A pool record exists only for a disk or snapshot outside the configured pool; it lives in the
// configured pool (format: names.hpp pool_record_json). Lock names (util::FileLock) are the
// object name: "<prefix>vm-<uuid>", "<prefix>disk-<hex15>". The CID BOSH holds is the name
// without the prefix (the CID column above for stemcell, vm, disk, snapshot). Anything else
// (uppercase hex, other lengths, '/', "..", NUL, a suffix on the wrong kind, another prefix)
// is not ours: parse() answers nullopt.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "cpi/cloud/ids.hpp"

namespace cpi::cloud {

enum class NameKind {
  stemcell,
  stemcell_meta,
  stemcell_incomplete,
  vm,
  vm_root,
  vm_ephemeral,
  vm_config,
  vm_config_meta,
  disk,
  disk_meta,
  disk_pool,
  snapshot,
  snapshot_meta,
  snapshot_pool,
  doctor_probe
};

struct ParsedName {
  NameKind kind;
  std::string cid;  // the CID the object belongs to: sc-..., vm-..., disk-..., snap-...
  bool operator==(const ParsedName& other) const {
    return kind == other.kind && cid == other.cid;
  }
};

// "stemcell", "stemcell_meta", "vm", "vm_root", ... (the enumerator's name).
const char* kind_name(NameKind kind);

// Words for errors: "a stemcell CID", "the root volume of vm 'vm-…'", "the pool record of disk
// 'disk-…'".
std::string describe(const ParsedName& parsed);

// `text` for an error message: in single quotes, control bytes as \xNN, cut after 80 bytes.
std::string quote_text(const std::string& text);

// What `text` is without any prefix (a CID as BOSH sends it, or a name with the prefix cut).
std::optional<ParsedName> parse_unprefixed(const std::string& text);

class Names {
 public:
  // `prefix`: config libvirt.name_prefix (letters, digits, '-', '_'; checked by the config).
  explicit Names(std::string prefix);

  const std::string& prefix() const { return m_prefix; }

  // Libvirt names. Each throws CpiError when the CID does not have the shape of its kind, so no
  // malformed string can reach a libvirt name or a path.
  std::string stemcell(const StemcellCid& cid) const;
  std::string domain(const VmCid& cid) const;
  std::string root_volume(const VmCid& cid) const;
  std::string ephemeral_volume(const VmCid& cid) const;
  std::string config_volume(const VmCid& cid) const;
  std::string disk(const DiskCid& cid) const;
  std::string snapshot(const SnapshotCid& cid) const;
  // The `.meta` record of `object` (a libvirt name of kind stemcell, vm_config, disk, snapshot).
  std::string meta(const std::string& object) const;
  // The marker volume that exists while the stemcell volume `object` is being imported.
  std::string incomplete_marker(const std::string& object) const;
  // The pool record of `object` (a libvirt name of kind disk or snapshot).
  std::string pool_record(const std::string& object) const;
  // util::FileLock names: one per VM (device changes), one per disk (its record).
  std::string vm_lock(const VmCid& cid) const { return domain(cid); }
  std::string disk_lock(const DiskCid& cid) const { return disk(cid); }
  // `cpi doctor`'s test volume: `hex8` 8 lowercase hex digits, `format` qcow2 or raw.
  std::string doctor_volume(const std::string& hex8, const std::string& format) const;

  // What the libvirt name `name` is to this CPI; nullopt when it is not ours.
  std::optional<ParsedName> parse(const std::string& name) const;
  // Whether `name` is a libvirt name of ours of kind `kind`.
  bool is(const std::string& name, NameKind kind) const;

 private:
  std::string m_prefix;
};

// The body of a pool record: {"cid": "<disk or snapshot CID>", "pool": "<pool name>"}.
std::string pool_record_json(const std::string& cid, const std::string& pool);
// The pool a record body names, when it is well formed and names `cid`.
std::optional<std::string> read_pool_record_json(const std::string& text, const std::string& cid);

}  // namespace cpi::cloud
