#pragma once
// Private to src/driver/virt: the names of libvirt objects for error messages, and strings libvirt
// returns. A name lookup is a libvirt call and resets the thread's last error: call these only
// inside a fail()/check() description (virt/error.hpp), or before the call that may fail.

#include <libvirt/libvirt.h>

#include <string>

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

}  // namespace cpi::virt
