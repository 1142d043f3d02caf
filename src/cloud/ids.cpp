#include "cpi/cloud/ids.hpp"

#include <algorithm>

#include "cpi/util/uuid.hpp"

namespace cpi::cloud {
namespace {

bool is_hex(const std::string& text, std::size_t from, std::size_t count) {
  if (text.size() < from + count) {
    return false;
  }
  return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(from),
                     text.begin() + static_cast<std::ptrdiff_t>(from + count),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_uuid_at(const std::string& text, std::size_t from) {
  if (text.size() != from + 36) {
    return false;
  }
  for (std::size_t i = 0; i < 36; ++i) {
    const char c = text[from + i];
    const bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

StemcellCid new_stemcell_cid() { return {"sc-" + util::uuid4()}; }
VmCid new_vm_cid() { return {"vm-" + util::uuid4()}; }
DiskCid new_disk_cid() { return {"disk-" + util::random_hex(15)}; }
SnapshotCid new_snapshot_cid() { return {"snap-" + util::uuid4()}; }
std::string new_ephemeral_serial() { return "eph-" + util::random_hex(16); }

bool is_stemcell_cid(const std::string& text) {
  return starts_with(text, "sc-") && is_uuid_at(text, 3);
}
bool is_vm_cid(const std::string& text) { return starts_with(text, "vm-") && is_uuid_at(text, 3); }
bool is_disk_cid(const std::string& text) {
  return text.size() == k_disk_cid_length && starts_with(text, "disk-") && is_hex(text, 5, 15);
}
bool is_snapshot_cid(const std::string& text) {
  return starts_with(text, "snap-") && is_uuid_at(text, 5);
}

}  // namespace cpi::cloud
