#pragma once
// `cpi inspect` and `cpi cleanup` on a live host, through the Hypervisor seam only.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpi/config/config.hpp"
#include "cpi/tools/inventory.hpp"
#include "cpi/virt/hypervisor.hpp"

namespace cpi::tools {

// What the tools know about the connection besides the Hypervisor.
struct HostContext {
  std::string display_uri;  // no secrets
  std::string transport;    // unix | tcp | tls | ssh | test | other (virt::ConnectTarget)
  // Files the domains name (console logs) are on this machine.
  bool local() const { return transport == "unix" || transport == "test"; }
};

struct InventoryOptions {
  std::int64_t now = 0;                // seconds since the epoch
  std::int64_t min_age_seconds = 600;  // younger orphans are marked recent
  // A VM whose create_vm has not finished for this long is an orphan (younger: recent).
  std::int64_t incomplete_age_seconds = 3600;
};

// Every object this CPI owns (name prefix from `config`): its domains and the volumes of every
// active pool, sorted (each VM followed by its volumes), orphans flagged. A disk's attachment
// is read from its .meta; a .meta that cannot be read becomes a note, not a failure.
// Throws virt::LibvirtError when listing fails.
std::vector<OwnedObject> take_inventory(virt::Hypervisor& hv, const config::Config& config,
                                        const InventoryOptions& options);

// Details of the object a CID names (vm-, disk-, snap-, sc-), as JSON with "kind", "cid" and
// "found"; see render_details (render.hpp) for the fields. `log_lines`: console log lines.
// Metadata and facts go through util::mask_secret_values: values under secret-looking keys
// (password, secret, key, token, credential, ...) print as "***", URL passwords are masked.
nlohmann::json inspect_cid(virt::Hypervisor& hv, const config::Config& config,
                           const HostContext& host, const std::string& cid, int log_lines);

struct CleanupResult {
  std::vector<std::string> finished;      // unfinished snapshot_disk calls finished: what was done
  std::vector<std::string> would_finish;  // dry run: the disks (or vms) whose intent it would
  std::vector<std::string> deleted;                         // volume names
  std::vector<std::string> would_delete;                    // dry run
  std::vector<std::string> spared;                          // recent orphans
  std::vector<std::pair<std::string, std::string>> failed;  // name, why
  nlohmann::json to_json() const;
  std::string text() const;
};

// First finishes the snapshot_disk calls that never did (a disk's or a VM's `snapshotting`
// intent; LibvirtCloud::finish_interrupted_snapshot): the copy job ended, a VM the CPI paused
// resumed, the partial snapshot deleted; one whose disk lock is held, or whose snapshot volume
// changed within the grace period, is still under way and spared. Then deletes exactly the
// orphans take_inventory flags (VM volumes without their domain, .meta
// volumes without their disk/snapshot, VMs whose create_vm never finished with their VM
// volumes, snapshot volumes snapshot_disk never finished), each re-checked right before it is
// deleted; never a persistent disk, stemcell or finished snapshot, and never a VM with a
// persistent disk in its definition. Recent orphans are spared. With `dry_run`, deletes
// nothing and lists what it would delete.
CleanupResult cleanup_orphans(virt::Hypervisor& hv, const config::Config& config,
                              const InventoryOptions& options, bool dry_run);

// --- shared by the tools
// When the domain's create_vm has not finished: the incomplete_since fact of its CPI metadata
// (nullopt for a complete VM, one of an older version, or unreadable metadata).
// Throws virt::LibvirtError.
std::optional<std::int64_t> incomplete_since(virt::Hypervisor& hv, virDomain& domain);
// The disk CID a VM's facts name in an unfinished snapshot_disk intent ("?" when the intent
// names none), "" when there is none. Throws virt::LibvirtError.
std::string snapshot_intent(virt::Hypervisor& hv, virDomain& domain);
// "running", "shut off", ... for a virDomainState value.
std::string domain_state_name(int state);
// The JSON object a .meta volume holds ({} when empty or not JSON). Throws virt::LibvirtError.
nlohmann::json read_meta_volume(virt::Hypervisor& hv, virStorageVol& meta);
// The pool the pool record of `name` (a disk or snapshot volume name; cloud/names.hpp) names,
// read from the configured pool; nullopt when there is none or it is malformed.
std::optional<std::string> read_pool_record(virt::Hypervisor& hv, const config::Config& config,
                                            const std::string& name);

}  // namespace cpi::tools
