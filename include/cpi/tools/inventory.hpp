#pragma once
// Every libvirt object this CPI owns, told apart by name (docs/architecture.md, "Names"):
//   <prefix>vm-<uuid>                                 domain   (VM)
//   <prefix>vm-<uuid>-root | -ephemeral | -config     volume   (a VM's own volume)
//   <prefix>disk-<15 hex>       [+ .meta]             volume   (persistent disk)
//   <prefix>snap-<uuid>         [+ .meta]             volume   (disk snapshot)
//   <prefix>sc-<uuid>           [+ .meta]             volume   (stemcell; the .meta marks one
//                                                              delete_stemcell kept for its VMs)
//   <prefix>disk-... | snap-... + .pool               volume   (pool record, configured pool:
//                                                              where a disk/snapshot lives)
// (the grammar is cloud/names.hpp's; parse_object_name maps it onto these kinds)
//   <prefix>sc-<uuid>.incomplete                      volume   (marker: the stemcell's import
//                                                              has not finished)
// and which of them are orphans: a VM volume whose domain is gone, a .meta whose disk,
// snapshot or stemcell is gone, an incomplete marker and the stemcell it marks. Pure data and rules here (no libvirt); collecting is in
// inspect.hpp.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cpi::tools {

enum class ObjectKind {
  vm,
  vm_volume,
  disk,
  disk_meta,
  snapshot,
  snapshot_meta,
  stemcell,
  stemcell_meta,
  pool_record,
  stemcell_incomplete
};

// "vm", "vm_volume", "disk", "disk_meta", "snapshot", "snapshot_meta", "stemcell",
// "stemcell_meta", "pool_record", "stemcell_incomplete"
const char* kind_name(ObjectKind kind);

struct ParsedName {
  ObjectKind kind;
  std::string cid;   // the CID the object belongs to: vm-..., disk-..., snap-..., sc-...
  std::string role;  // vm_volume: root | ephemeral | config; otherwise empty
};

// What `name` is to this CPI with `prefix`; nullopt for a name the CPI does not own.
// `domain` tells whether it names a domain (else a volume).
std::optional<ParsedName> parse_object_name(const std::string& name, const std::string& prefix,
                                            bool domain);

struct OwnedObject {
  ObjectKind kind = ObjectKind::vm;
  std::string name;  // the libvirt name
  std::string cid;
  std::string role;
  std::string pool;  // volumes only
  std::uint64_t capacity = 0;
  std::uint64_t allocation = 0;
  std::string format;                      // volumes: qcow2 | raw | iso ...
  std::string state;                       // vm: running | paused | shut off ...
  std::string attached_to;                 // disk: the VM its .meta names
  std::string record_pool;                 // pool_record: the pool it names
  // An unfinished snapshot_disk: for a disk, the snapshot volume its record's intent names
  // ("?" when the intent names none); for a vm, the disk CID its facts name.
  std::string snapshotting;
  std::optional<std::int64_t> changed_at;  // volumes: newest of mtime/ctime, when libvirt says
  std::optional<std::int64_t> incomplete_since;  // vm: create_vm did not finish (epoch seconds)
  std::vector<std::string> notes;          // problems worth a look that are not orphans
  bool orphan = false;
  std::string orphan_reason;
  bool recent = false;  // an orphan changed within the grace period: cleanup spares it
};

// Flags the orphans among `objects` (the whole inventory: domains and volumes of every pool).
// A VM volume or .meta changed less than `min_age_seconds` before `now` is flagged but also
// marked recent (a create_vm may be between creating its volumes and defining its domain).
// An incomplete stemcell's age is its marker's (a running create_stemcell is spared).
// Adds notes: a VM with no root volume, a disk attached to a VM that is gone.
void flag_orphans(std::vector<OwnedObject>& objects, std::int64_t now,
                  std::int64_t min_age_seconds);

// Flags as orphans the VMs whose create_vm never finished (incomplete_since set: killed, or its
// daemon died) and their VM volumes; one incomplete for less than `incomplete_age_seconds` is
// marked recent (its create_vm may still run). A VM without the marker is complete.
void flag_incomplete_vms(std::vector<OwnedObject>& objects, std::int64_t now,
                         std::int64_t incomplete_age_seconds);

// Flags as orphans the snapshot volumes without their .meta and those a disk's `snapshotting`
// intent names: snapshot_disk writes the .meta right after the copy and clears the intent last
// (and rolls both back on failure), so such a snapshot is one whose call never returned it
// (killed, or its daemon died). Recent by changed_at and `min_age_seconds`, like flag_orphans
// (a copy under way keeps changing).
void flag_unfinished_snapshots(std::vector<OwnedObject>& objects, std::int64_t now,
                               std::int64_t min_age_seconds);

// {"objects": [...], "orphans": [names]}
nlohmann::json inventory_json(const std::vector<OwnedObject>& objects);

// A compact table: KIND, NAME, POOL, SIZE, STATE/ATTACHED, NOTES ("ORPHAN: ..." first).
std::string inventory_table(const std::vector<OwnedObject>& objects);

// "1.5 GiB", "512 MiB", "64 KiB", "100 B"
std::string human_size(std::uint64_t bytes);

}  // namespace cpi::tools
