#pragma once
// The on-volume format of a `.meta` record, written so that a process killed in the middle of a
// write never leaves a record that reads as garbage or as an older state than the last one
// completely written before it.
//
// libvirt volumes cannot be renamed, so there is no write-new-then-rename: the volume holds two
// slots of k_meta_slot bytes. Each slot is one JSON object, NUL padded: the record's own keys plus
// "@generation" (counts up by one per write) and "@checksum" (FNV-1a 64 of the record's compact
// JSON without the two "@" keys). A reader takes the valid slot with the highest generation.
// A writer puts the new record into the other slot (the invalid or older one) and rewrites the
// newest slot with its own bytes unchanged, in one upload from offset 0: whatever prefix of that
// upload reaches the disk, the slot it did not change still reads as it did, so one valid slot,
// the previous or the new record, is always there.
//
// Records written before this format (one plain JSON object at offset 0) read as generation 0.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace cpi::cloud {

constexpr std::uint64_t k_meta_slot = 32U << 10;                // bytes per slot
constexpr std::uint64_t k_meta_volume_bytes = 2 * k_meta_slot;  // a .meta volume's capacity

struct MetaRecord {
  nlohmann::json record = nlohmann::json::object();  // {} when no slot is valid
  std::uint64_t generation = 0;
  int slot = -1;  // the slot it came from: 0, 1, or -1 when none is valid
};

// The newest valid record in `bytes` (a .meta volume's content; shorter input is fine).
MetaRecord decode_meta(const std::string& bytes);

// The volume content (k_meta_volume_bytes long) that stores `record` as the next generation
// after `current`, which must be decode_meta of `old_bytes` (the volume's content now).
// Throws std::length_error when the record does not fit in a slot.
std::string encode_meta(const nlohmann::json& record, const MetaRecord& current,
                        const std::string& old_bytes);

}  // namespace cpi::cloud
