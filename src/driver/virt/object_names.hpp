#pragma once
// Private to src/driver/virt: the names of libvirt objects for error messages, and strings libvirt
// returns. A name lookup is a libvirt call and resets the thread's last error: call these only
// inside a fail()/check() description (virt/error.hpp), or before the call that may fail.

#include <libvirt/libvirt.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cpi/virt/error.hpp"
#include "cpi/virt/handles.hpp"

namespace cpi::virt {

inline std::string name_of(virDomain& d) {
  const char* n = virDomainGetName(&d);
  return n != nullptr ? n : "?";
}
inline std::string name_of(virStorageVol& v) {
  const char* n = virStorageVolGetName(&v);
  return n != nullptr ? n : "?";
}
inline std::string name_of(virStoragePool& p) {
  const char* n = virStoragePoolGetName(&p);
  return n != nullptr ? n : "?";
}
inline std::string name_of(virNetwork& n) {
  const char* name = virNetworkGetName(&n);
  return name != nullptr ? name : "?";
}

// The first <name> of an XML definition the CPI built (pool, volume and domain XML name the
// object first), for messages about an object that does not exist yet; "?" when there is none.
inline std::string name_in(const std::string& xml) {
  const auto open = xml.find("<name>");
  if (open == std::string::npos) return "?";
  const auto start = open + 6;
  const auto close = xml.find("</name>", start);
  return close == std::string::npos ? "?" : xml.substr(start, close - start);
}

// The string libvirt malloc()ed, or fail(describe) when it returned none.
template <typename Describe>
std::string take_string(char* text, Describe&& describe) {
  if (text == nullptr) fail(std::forward<Describe>(describe));
  OwnedCString owned{text};
  return owned.get();
}

// A lookup by name: the object, nullopt when libvirt's error is `not_found` (that error is
// cleared), else fail(describe).
template <typename Handle, typename Describe>
std::optional<Handle> found_or_none(Handle handle, int not_found, Describe&& describe) {
  if (handle) return std::optional<Handle>{std::move(handle)};
  if (last_error_code() == not_found) {
    virResetLastError();
    return std::nullopt;
  }
  fail(std::forward<Describe>(describe));
}

// The names of the `count` objects a virConnectListAll...-style call returned in `items` (each
// owned, the array freed); fail(describe) when it returned < 0.
template <typename Handle, typename Raw, typename Describe>
std::vector<std::string> listed_names(Raw* items, int count, Describe&& describe) {
  if (count < 0) fail(std::forward<Describe>(describe));
  std::vector<Handle> owned;
  for (int i = 0; i < count; ++i) owned.emplace_back(items[i]);
  std::free(items);
  std::vector<std::string> names;
  for (auto& item : owned) names.push_back(name_of(*item));
  return names;
}

}  // namespace cpi::virt
