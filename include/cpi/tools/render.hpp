#pragma once
// Human-readable text for the JSON that inspect_cid (inspect.hpp) returns. Pure (no libvirt).

#include <nlohmann/json.hpp>

#include <string>

namespace cpi::tools {

// Fields read, by "kind":
//   vm        found, state, vcpus, memory_mib, volumes[] (with present, live), persistent_disks[],
//             nics[], facts{}, console_log{path, tail | note}; leftover_volumes[] when not found
//   disk      found, volume{}, attached_to, attached_in[], metadata{}, snapshots[]
//   snapshot  found, volume{}, disk, metadata{}
//   stemcell  found, volume{}, used_by[]
//   unknown   error
// A volume{} has pool, name, format, path, capacity, allocation (and backing_path).
std::string render_details(const nlohmann::json& details);

}  // namespace cpi::tools
