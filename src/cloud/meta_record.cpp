#include "cpi/cloud/meta_record.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace cpi::cloud {
namespace {

constexpr const char* k_generation = "@generation";
constexpr const char* k_checksum = "@checksum";

std::string fnv1a(const std::string& text) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

std::string compact(const nlohmann::json& record) {
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct Slot {
  bool valid = false;
  bool legacy = false;  // a plain JSON object of the old one-record format
  std::uint64_t generation = 0;
  nlohmann::json record;
};

Slot read_slot(const std::string& bytes, std::size_t offset, std::size_t length) {
  Slot slot;
  if (offset >= bytes.size()) return slot;
  std::string text = bytes.substr(offset, length);
  text.resize(std::min(text.size(), text.find('\0')));
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (!parsed.is_object()) return slot;
  if (!parsed.contains(k_generation) && !parsed.contains(k_checksum)) {
    slot.valid = offset == 0;  // the old format only ever wrote at 0
    slot.legacy = true;
    slot.record = std::move(parsed);
    return slot;
  }
  const auto gen = parsed.find(k_generation);
  const auto sum = parsed.find(k_checksum);
  if (gen == parsed.end() || !gen->is_number_unsigned() || sum == parsed.end() ||
      !sum->is_string()) {
    return slot;
  }
  slot.generation = gen->get<std::uint64_t>();
  const std::string checksum = sum->get<std::string>();
  parsed.erase(k_generation);
  parsed.erase(k_checksum);
  if (fnv1a(compact(parsed)) != checksum) return slot;
  slot.valid = true;
  slot.record = std::move(parsed);
  return slot;
}

}  // namespace

MetaRecord decode_meta(const std::string& bytes) {
  // The old format's record may run past the first slot: read it whole.
  // A valid slot 1 is newer than any old-format record: the new format writes there first.
  const Slot first = read_slot(bytes, 0, k_meta_slot);
  const Slot second = read_slot(bytes, k_meta_slot, k_meta_slot);
  if (first.legacy && !(second.valid && !second.legacy)) {
    const Slot whole = read_slot(bytes, 0, bytes.size());
    if (whole.valid && whole.legacy) return {whole.record, 0, 0};
  }
  MetaRecord out;
  if (first.valid && !first.legacy) out = {first.record, first.generation, 0};
  if (second.valid && (out.slot < 0 || second.generation > out.generation)) {
    out = {second.record, second.generation, 1};
  }
  return out;
}

std::string encode_meta(const nlohmann::json& record, const MetaRecord& current,
                        const std::string& old_bytes) {
  nlohmann::json stored = record.is_object() ? record : nlohmann::json::object();
  stored.erase(k_generation);
  stored.erase(k_checksum);
  const std::string checksum = fnv1a(compact(stored));
  stored[k_generation] = current.slot < 0 ? 1 : current.generation + 1;
  stored[k_checksum] = checksum;
  std::string text = compact(stored);
  if (text.size() >= k_meta_slot) {
    throw std::length_error("the record is " + std::to_string(text.size()) + " bytes, at most " +
                            std::to_string(k_meta_slot - 1) + " fit");
  }
  std::string out = old_bytes;
  out.resize(k_meta_volume_bytes, '\0');
  // The new record goes where the newest valid one is not (slot 0 when none is); an old-format
  // record at 0 is the newest, so the first new-format write goes into slot 1 (unless that
  // record is so long that it reaches into slot 1: then slot 0, the only choice left).
  std::size_t target = current.slot == 0 ? 1 : 0;
  if (current.slot == 0 && current.generation == 0 &&
      std::min(old_bytes.size(), old_bytes.find('\0')) >= k_meta_slot) {
    target = 0;
    out.assign(k_meta_volume_bytes, '\0');
  }
  text.resize(k_meta_slot, '\0');
  out.replace(target * k_meta_slot, k_meta_slot, text);
  return out;
}

}  // namespace cpi::cloud
